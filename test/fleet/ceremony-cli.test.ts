/**
 * The key ceremony and the fleet flags through the real CLI and `serve.js` processes:
 * a node added later gets the same fleet keys from the master key file (`vault export`);
 * a bundle is refused for the wrong pinned key; bad fleet configurations fail fast with a
 * usage error. (The PKCS#11 side of the ceremony runs in `fleet.test.ts`.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readKeyFile } from '#vault/hsm/software-hsm.js';
import { runVaultExpectingFailure, startVaultProcess } from '../vault/vault-process.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../../packages/cli/dist/cli/main.js', import.meta.url));
let dir: string;

async function cli(args: readonly string[]): Promise<{ code: number; out: string; json: unknown }> {
  try {
    const { stdout } = await run(process.execPath, [CLI, ...args, '--json']);
    return { code: 0, out: stdout, json: JSON.parse(stdout) as unknown };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, out: `${x.stdout ?? ''}${x.stderr ?? ''}`, json: undefined };
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-ceremony-cli-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('vault key ceremony CLI', () => {
  it('keygen + import, then export for a node added later: both serve the same fleet', async () => {
    const p = (f: string) => join(dir, f);
    for (const n of ['a', 'b']) {
      const r = await cli([
        'vault',
        'transport-key',
        '--hsm',
        'software',
        '--private-key',
        p(`${n}.pem`),
        '--name',
        n,
        '--out',
        p(`${n}.pub.json`),
      ]);
      assert.equal(r.code, 0, r.out);
    }
    const kg = await cli([
      'vault',
      'keygen',
      '--export-for',
      p('a.pub.json'),
      '--out-dir',
      dir,
      '--master-key',
      p('master.json'),
    ]);
    assert.equal(kg.code, 0, kg.out);
    const { serverPublicKey: fleetKey, bundles } = kg.json as {
      serverPublicKey: string;
      bundles: { file: string }[];
    };
    const imp = (bundle: string, node: string, key: string) =>
      cli([
        'vault',
        'import',
        '--bundle',
        bundle,
        '--fleet-key',
        key,
        '--hsm',
        'software',
        '--transport-key',
        p(`${node}.pem`),
        '--key-file',
        p(`${node}.keys.json`),
      ]);
    assert.equal((await imp(bundles[0]!.file, 'a', fleetKey)).code, 0);

    const ex = await cli([
      'vault',
      'export',
      '--master-key',
      p('master.json'),
      '--for',
      p('b.pub.json'),
      '--out',
      p('b.bundle.json'),
    ]);
    assert.equal(ex.code, 0, ex.out);
    // A bundle checked against another pinned key is refused, and nothing is written.
    const wrong = await imp(p('b.bundle.json'), 'b', 'A'.repeat(43));
    assert.equal(wrong.code, 2, wrong.out);
    assert.match(wrong.out, /not the pinned/);
    assert.equal((await imp(p('b.bundle.json'), 'b', fleetKey)).code, 0);
    const [ka, kb] = [await readKeyFile(p('a.keys.json')), await readKeyFile(p('b.keys.json'))];
    assert.equal(ka.serverSetup, kb.serverSetup);
    assert.deepEqual(ka.sealingKey, kb.sealingKey);

    // serve with the imported key file and the pinned fleet key; refuses another fleet key.
    const serveB = (pinned: string): string[] => [
      '--data',
      p('node-b'),
      '--dev-auth',
      '--workers',
      '1',
      '--hsm',
      'software',
      '--hsm-key-file',
      p('b.keys.json'),
      '--fleet-key',
      pinned,
    ];
    const v = await startVaultProcess(serveB(fleetKey));
    assert.equal(v.serverPublicKey, fleetKey);
    await v.stop();
    const other = await runVaultExpectingFailure(serveB('B'.repeat(43)));
    assert.equal(other.code, 2, other.output);
    assert.match(other.output, /not the expected/);
  });

  it('keygen refuses to create keys that would be lost', async () => {
    const r = await cli(['vault', 'keygen', '--out-dir', dir]);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /would be lost/);
  });

  it('fleet flags of serve fail fast with a usage error', async () => {
    const data = join(dir, 'bad');
    const cases: [string[], RegExp][] = [
      [['--store', 'etcd'], /needs --etcd/],
      [
        ['--store', 'etcd', '--etcd', 'http://127.0.0.1:2379', '--etcd-ca', 'ca.pem'],
        /need https:\/\/ etcd endpoints/,
      ],
      [
        ['--store', 'etcd', '--etcd', 'https://127.0.0.1:2379', '--etcd-cert', 'node.pem'],
        /--etcd-cert and --etcd-key go together/,
      ],
      [['--etcd', 'http://127.0.0.1:2379'], /--etcd needs --store etcd/],
      [['--hsm', 'software', '--hsm-key-file', join(dir, 'missing.json')], /does not exist/],
      [['--hsm', 'pkcs11', '--hsm-key-file', join(dir, 'x.json')], /--hsm-key-file is for/],
      [['--hsm', 'hardware'], /--hsm must be software or pkcs11/],
    ];
    for (const [args, message] of cases) {
      const r = await runVaultExpectingFailure([
        '--data',
        data,
        '--dev-auth',
        '--workers',
        '1',
        ...args,
      ]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.output}`);
      assert.match(r.output, message);
    }
  });
});
