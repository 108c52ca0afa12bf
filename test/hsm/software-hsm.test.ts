import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, chmod, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runHsmConformance } from './conformance.js';
import {
  HSM_KEYS_ENV,
  encodeSoftwareHsmKeys,
  generateSoftwareHsmKeys,
  loadOrCreateKeyFile,
  openSoftwareHsm,
} from '#vault/hsm/software-hsm.js';
import { hasCode } from '#sdk/errors.js';

runHsmConformance('software', async (o) =>
  openSoftwareHsm({ keys: await generateSoftwareHsmKeys(), ...o }),
);

describe('software HSM key file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-hsm-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('creates the key file 0600 once, and reads the same keys back', async () => {
    const path = join(dir, 'keys.json');
    const a = await openSoftwareHsm({ keyFile: path });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const b = await openSoftwareHsm({ keyFile: path });
    assert.equal(await a.serverPublicKey(), await b.serverPublicKey());
    // sealed by one, opened by the other: fleet nodes with the same keys interoperate
    const sealed = await a.sealRecord('x', new Uint8Array([1, 2, 3]));
    assert.deepEqual([...(await b.openRecord('x', sealed))], [1, 2, 3]);
  });

  it('concurrent first starts agree on one key set and leave no temp files', async () => {
    const path = join(dir, 'race.json');
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateKeyFile(path)));
    const first = encodeSoftwareHsmKeys(keys[0]!);
    for (const k of keys) assert.equal(encodeSoftwareHsmKeys(k), first);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith('race')),
      ['race.json'],
    );
  });

  it('refuses a key file readable by group or others', async () => {
    const path = join(dir, 'loose.json');
    const keys = await loadOrCreateKeyFile(path);
    await chmod(path, 0o644);
    await assert.rejects(openSoftwareHsm({ keyFile: path }), (e: unknown) => {
      assert.ok(hasCode(e, 'USAGE'));
      assert.ok(!(e as Error).message.includes(keys.serverSetup));
      return true;
    });
  });

  it('takes keys from BACKVAULT_HSM_KEYS, and rejects garbage without echoing it', async () => {
    const keys = await generateSoftwareHsmKeys();
    const text = encodeSoftwareHsmKeys(keys);
    process.env[HSM_KEYS_ENV] = text;
    try {
      const h = await openSoftwareHsm({});
      const h2 = await openSoftwareHsm({ keys });
      assert.equal(await h.serverPublicKey(), await h2.serverPublicKey());
      process.env[HSM_KEYS_ENV] = 'secret-garbage-value';
      await assert.rejects(openSoftwareHsm({}), (e: unknown) => {
        assert.ok(hasCode(e, 'USAGE'));
        assert.ok(!(e as Error).message.includes('secret-garbage-value'));
        return true;
      });
    } finally {
      delete process.env[HSM_KEYS_ENV];
    }
    const onDisk = await readFile(join(dir, 'keys.json'), 'utf8');
    assert.ok(onDisk.includes('backvault-hsm-keys'));
  });
});
