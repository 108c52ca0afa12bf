/**
 * Read-only folders in a snapshot (mode 0555: `chmod a-w`), restored by a user whom
 * permissions bind (root is not bound: these run the CLI as `nobody`). A restore gives
 * folders their mode last, so its own read-only folders must not stop a later
 * `restore --force` (merge) or `--delete` (swap, then removal of the old target) over the
 * same target, nor the removal of its temporary folder after a failure.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { formatBackupKey, generateBackupKey } from '#sdk/format/index.js';
import { assertSameTree, removeDir, tempDir, runCliAs, type CliRun } from './helpers.js';

const MAIN_JS = fileURLToPath(new URL('../../../packages/cli/dist/cli/main.js', import.meta.url));
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

describe(
  'read-only folders do not stop a restore over an earlier one',
  { skip: isRoot ? false : 'needs root to run the CLI as another user' },
  () => {
    let dir: string;
    let home: string;
    let src: string;
    let common: string[];
    const run = (args: string[]): Promise<CliRun> => runCliAs(MAIN_JS, NOBODY, home, args);
    /** Nothing of a restore left beside the targets. */
    const leftovers = async (): Promise<string[]> =>
      (await readdir(home)).filter((n) => n.includes('backvault-restore'));

    before(async () => {
      dir = await tempDir('bv-edge-ro-');
      await chmod(dir, 0o755);
      home = join(dir, 'nobody');
      src = join(home, 'chat');
      await mkdir(join(src, 'sent', 'old'), { recursive: true });
      await writeFile(join(src, 'msgstore.db'), 'messages');
      await writeFile(join(src, 'sent', 'a.jpg'), 'photo a');
      await writeFile(join(src, 'sent', 'old', 'b.jpg'), 'photo b');
      const keyFile = join(home, 'key');
      await writeFile(keyFile, formatBackupKey(generateBackupKey()), { mode: 0o600 });
      execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, home]);
      // Read-only folders, as `chmod a-w` leaves them; the root of the source too.
      await chmod(join(src, 'sent', 'old'), 0o555);
      await chmod(join(src, 'sent'), 0o555);
      await chmod(src, 0o555);
      common = ['--repo', join(home, 'cloud'), '--key-file', keyFile, '--no-progress'];
      const b = await run(['backup', 'chat', '--init', ...common]);
      assert.equal(b.code, 0, b.stderr);
    });
    after(async () => {
      await removeDir(dir);
    });

    it('restore, then restore --force over it: exit 0, the same tree, nothing left beside it', async () => {
      const r1 = await run(['restore', 'out', ...common]);
      assert.equal(r1.code, 0, r1.stderr);
      await assertSameTree(src, join(home, 'out'));
      const r2 = await run(['restore', 'out', '--force', ...common]);
      assert.equal(r2.code, 0, r2.stderr);
      await assertSameTree(src, join(home, 'out'));
      assert.deepEqual(await leftovers(), []);
    });

    it('restore --force into a folder holding other files: the read-only folders move in', async () => {
      const target = join(home, 'other');
      await mkdir(target);
      await writeFile(join(target, 'mine.txt'), 'mine');
      execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, target]);
      const r = await run(['restore', 'other', '--force', ...common]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await stat(join(target, 'sent'))).mode & 0o777, 0o555);
      assert.equal((await stat(join(target, 'sent', 'old'))).mode & 0o777, 0o555);
      assert.equal((await stat(target)).mode & 0o777, 0o555);
      assert.deepEqual(await leftovers(), []);
    });

    it('restore --force --delete over it removes the old read-only tree: exit 0, nothing left', async () => {
      const r0 = await run(['restore', 'del', ...common]);
      assert.equal(r0.code, 0, r0.stderr);
      const r = await run(['restore', 'del', '--force', '--delete', ...common]);
      assert.equal(r.code, 0, r.stderr);
      await assertSameTree(src, join(home, 'del'));
      assert.deepEqual(await leftovers(), []);
    });
  },
);
