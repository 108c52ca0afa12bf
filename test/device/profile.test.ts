/** The device profile directory: layout, permissions, atomic updates, refusals. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DEVICE_FILES,
  createDevice,
  deviceExists,
  loadDevice,
  resolveDeviceDir,
  updateDeviceProfile,
} from '#cli/device/profile.js';
import { formatBackupKey, parseBackupKey } from '#sdk/format/key-encoding.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'backvault-device-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

test('default location follows XDG, then ~/.local/share', () => {
  assert.equal(resolveDeviceDir('d', {}, '/w'), '/w/d');
  assert.equal(resolveDeviceDir(undefined, { BACKVAULT_DEVICE: 'x' }, '/w'), '/w/x');
  assert.equal(
    resolveDeviceDir(undefined, { XDG_DATA_HOME: '/data', HOME: '/h' }, '/w'),
    '/data/backvault/device',
  );
  assert.equal(
    resolveDeviceDir(undefined, { XDG_DATA_HOME: 'relative', HOME: '/h' }, '/w'),
    '/h/.local/share/backvault/device',
  );
});

test('create writes a 0700 dir, a 0600 key file usable as --key-file, and the profile', async () => {
  const dir = join(root, 'a', 'device');
  const key = new Uint8Array(randomBytes(32));
  const d = await createDevice(
    dir,
    {
      mode: 'password',
      repo: '/cloud',
      vaultUrl: 'http://127.0.0.1:1',
      account: 'alice',
      serverPublicKey: 'pk',
    },
    key,
  );
  assert.equal(d.statePath, join(dir, DEVICE_FILES.state));
  assert.equal(await mode(dir), 0o700);
  assert.equal(await mode(join(dir, DEVICE_FILES.backupKey)), 0o600);
  assert.equal(await mode(join(dir, DEVICE_FILES.profile)), 0o600);
  const keyText = await readFile(join(dir, DEVICE_FILES.backupKey), 'utf8');
  assert.equal(keyText, `${formatBackupKey(key)}\n`);
  assert.deepEqual(parseBackupKey(keyText), key);
  const profileText = await readFile(join(dir, DEVICE_FILES.profile), 'utf8');
  assert.ok(!profileText.includes(formatBackupKey(key)), 'no key in profile.json');
  assert.ok(!profileText.includes(Buffer.from(key).toString('hex')));
  const loaded = await loadDevice(dir);
  assert.deepEqual(loaded.backupKey, key);
  assert.equal(loaded.profile.account, 'alice');
  assert.equal(loaded.profile.mode, 'password');
  assert.ok(await deviceExists(dir));
  await assert.rejects(createDevice(dir, { mode: 'recovery-key', repo: '/x' }, key), {
    code: 'USAGE',
  });
});

test('updates are atomic (no temporary files left) and can drop fields', async () => {
  const dir = join(root, 'b');
  const key = new Uint8Array(randomBytes(32));
  await createDevice(
    dir,
    { mode: 'password', repo: '/c', vaultUrl: 'http://v', account: 'bob', serverPublicKey: 'k' },
    key,
  );
  for (let seq = 1; seq <= 5; seq++) {
    await updateDeviceProfile(dir, {
      lastBackup: { snapshotId: 'ab'.repeat(32), seq, time: new Date().toISOString() },
    });
  }
  const p = await updateDeviceProfile(dir, {
    mode: 'recovery-key',
    vaultUrl: undefined,
    account: undefined,
    serverPublicKey: undefined,
  });
  assert.equal(p.mode, 'recovery-key');
  assert.equal(p.lastBackup?.seq, 5);
  assert.equal('vaultUrl' in p, false);
  assert.deepEqual((await readdir(dir)).sort(), [DEVICE_FILES.backupKey, DEVICE_FILES.profile]);
  // Password mode without the vault fields is not a valid profile.
  await assert.rejects(updateDeviceProfile(dir, { mode: 'password' }), { code: 'CORRUPT' });
  assert.equal((await loadDevice(dir)).profile.mode, 'recovery-key');
});

test('refusals: missing profile, key readable by others, damaged profile', async () => {
  await assert.rejects(loadDevice(join(root, 'none')), { code: 'NOT_FOUND' });
  const dir = join(root, 'c');
  await createDevice(dir, { mode: 'recovery-key', repo: '/c' }, new Uint8Array(randomBytes(32)));
  await chmod(join(dir, DEVICE_FILES.backupKey), 0o644);
  await assert.rejects(loadDevice(dir), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'USAGE');
    assert.match(e.message, /readable by other users/);
    return true;
  });
  await chmod(join(dir, DEVICE_FILES.backupKey), 0o600);
  await writeFile(join(dir, DEVICE_FILES.profile), '{"version":1,"mode":"x"');
  await assert.rejects(loadDevice(dir), { code: 'CORRUPT' });
  await writeFile(join(dir, DEVICE_FILES.profile), '{"version":2,"mode":"recovery-key"}');
  await assert.rejects(loadDevice(dir), { code: 'CORRUPT' });
});
