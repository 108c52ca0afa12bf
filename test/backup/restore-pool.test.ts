/**
 * A restore starts its worker threads while it loads the snapshots and the index. Every way
 * out before the restorer takes the threads over must stop them again: a worker thread left
 * running keeps the app's process alive after the restore has failed. Each case runs in a
 * child process, which must exit by itself with the restore's error.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup } from '#sdk/backup/index.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { removeDir, tempDir } from './helpers.js';

/** The child: one restore, then print its error's code; nothing else may keep it alive. */
const CHILD = `
import { restore } from '#sdk/backup/index.js';
import { parseBackupKey } from '#sdk/format/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
const [repo, target, snapshotId] = process.argv.slice(1);
try {
  await restore({
    storage: new LocalStorage(repo),
    backupKey: parseBackupKey(process.env.BACKVAULT_TEST_KEY ?? ''),
    rollbackProtection: false,
    target,
    workers: 2,
    ...(snapshotId ? { snapshotId } : {}),
  });
  console.log('restored');
} catch (e) {
  console.log('failed', e.code);
}
`;

/** Run the child; its output, or 'hung' when it has not exited after `ms`. */
function runChild(args: string[], keyHex: string, ms = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, ...args], {
      env: { ...process.env, BACKVAULT_TEST_KEY: keyHex },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('hung');
    }, ms);
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(out.trim());
    });
  });
}

describe('a failed restore stops the worker threads it started early', () => {
  let dir: string;
  let repo: string;
  const key = generateBackupKey();
  const keyHex = Buffer.from(key).toString('hex');

  before(async () => {
    dir = await tempDir('bv-restore-pool-');
    const src = join(dir, 'src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'a.bin'), randomBytes(100_000));
    repo = join(dir, 'repo');
    await backup({
      init: true,
      storage: new LocalStorage(repo),
      backupKey: key,
      rollbackProtection: false,
      source: src,
    });
  });
  after(async () => removeDir(dir));

  it('restores (the child works at all)', async () => {
    assert.equal(await runChild([repo, join(dir, 'ok')], keyHex), 'restored');
  });

  it('exits after a snapshot id that matches nothing (while the threads start)', async () => {
    assert.equal(await runChild([repo, join(dir, 'none'), 'ffffffff'], keyHex), 'failed NOT_FOUND');
  });

  it('exits when the target folder cannot be created (after the threads started)', async (t) => {
    if (!existsSync('/sys/kernel')) return t.skip('no /sys');
    // sysfs refuses new folders (EPERM): the restorer's first write fails, the pool running.
    assert.equal(
      await runChild([repo, '/sys/backvault-no-such/target'], keyHex),
      'failed PERMISSION_DENIED',
    );
  });

  it('fails, never spins, where a folder exists but refuses new children (ENOENT)', async (t) => {
    if (!existsSync('/proc/1')) return t.skip('no /proc');
    // /proc/1 is such a folder. Node's own recursive mkdir looped there forever: the restore
    // never returned (a mounted cloud drive may answer the same way).
    assert.equal(await runChild([repo, '/proc/1/backvault/target'], keyHex), 'failed ENOENT');
  });
});
