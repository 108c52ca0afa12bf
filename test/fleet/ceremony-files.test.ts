/**
 * Issue 16: every ceremony command's file errors are clear — exit 2 (USAGE) naming the
 * path and what to do, or 6 (UNAVAILABLE) when the storage itself fails — never INTERNAL,
 * and a keygen that cannot write its bundles writes nothing and generates no key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../../packages/cli/dist/cli/main.js', import.meta.url));
let dir: string;
const p = (f: string) => join(dir, f);

async function cli(args: readonly string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, out: `${stdout}${stderr}` };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}

function assertClear(r: { code: number; out: string }, code: number, ...patterns: RegExp[]) {
  assert.equal(r.code, code, r.out);
  assert.doesNotMatch(r.out, /INTERNAL/, r.out);
  for (const re of patterns) assert.match(r.out, re);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-ceremony-files-'));
  const r = await cli([
    'vault',
    'transport-key',
    '--hsm',
    'software',
    '--private-key',
    p('a.pem'),
    '--out',
    p('a.pub.json'),
  ]);
  assert.equal(r.code, 0, r.out);
  await writeFile(p('a-file'), 'x');
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('vault ceremony file errors', () => {
  it('keygen --out-dir to a folder that does not exist: USAGE, the path, mkdir -p', async () => {
    const missing = p('no/such/folder');
    const r = await cli(['vault', 'keygen', '--export-for', p('a.pub.json'), '--out-dir', missing]);
    assertClear(r, 2, /USAGE/, /does not exist/, new RegExp(`mkdir -p ${missing}`));
  });

  it('keygen --out-dir that is a file, and --master-key in a missing folder', async () => {
    const r1 = await cli([
      'vault',
      'keygen',
      '--export-for',
      p('a.pub.json'),
      '--out-dir',
      p('a-file'),
    ]);
    assertClear(r1, 2, /is not a folder/);
    const before = await readdir(dir);
    const r2 = await cli([
      'vault',
      'keygen',
      '--export-for',
      p('a.pub.json'),
      '--out-dir',
      dir,
      '--master-key',
      p('gone/master.json'),
    ]);
    assertClear(r2, 2, /does not exist/, /mkdir -p/);
    assert.deepEqual(await readdir(dir), before, 'no bundle was written before the failure');
  });

  it('keygen --export-for a missing file; import --bundle a missing file or a folder', async () => {
    assertClear(
      await cli(['vault', 'keygen', '--export-for', p('nope.json'), '--out-dir', dir]),
      2,
      /cannot read transport public key .*nope\.json: no such file/,
    );
    const imp = (bundle: string) =>
      cli([
        'vault',
        'import',
        '--bundle',
        bundle,
        '--fleet-key',
        'A'.repeat(43),
        '--hsm',
        'software',
        '--transport-key',
        p('a.pem'),
        '--key-file',
        p('keys.json'),
      ]);
    assertClear(await imp(p('nope.json')), 2, /cannot read bundle .*nope\.json: no such file/);
    await mkdir(p('a-folder'), { recursive: true });
    assertClear(await imp(p('a-folder')), 2, /it is a folder/);
  });

  it('transport-key --out into a missing folder leaves no private key behind', async () => {
    const r = await cli([
      'vault',
      'transport-key',
      '--hsm',
      'software',
      '--private-key',
      p('b.pem'),
      '--out',
      p('missing/b.pub.json'),
    ]);
    assertClear(r, 2, /does not exist/);
    assert.ok(!(await readdir(dir)).includes('b.pem'), 'no orphan private key');
  });

  it('a full disk is DISK_FULL (exit 8) naming the folder, not INTERNAL', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to mount a tmpfs');
      return;
    }
    const mnt = p('tiny');
    await mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', mnt]);
    try {
      // Fill it, then ask for a bundle there.
      await writeFile(join(mnt, 'fill'), Buffer.alloc(8192)).catch(() => undefined);
      const r = await cli(['vault', 'keygen', '--export-for', p('a.pub.json'), '--out-dir', mnt]);
      assertClear(r, 8, /DISK_FULL/, new RegExp(mnt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
