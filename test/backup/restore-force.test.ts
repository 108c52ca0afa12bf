/**
 * A restore never destroys what the user had: `--force` replaces the files the snapshot
 * holds and keeps everything else (listed in `kept`); only `--delete` removes extras; a
 * TARGET that is a file or a symlink is refused before anything is read.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, restore } from '#sdk/backup/index.js';
import { RESTORE_MARKER, restoreMarker, restoreTempName } from '#sdk/backup/restorer/restorer.js';
import { hasCode } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { assertSameTree, removeDir, tempDir } from './helpers.js';

describe('restore never destroys', () => {
  let dir: string;
  let src: string;
  const storage = new MemoryStorage();
  const backupKey = generateBackupKey();
  const access = { storage, backupKey };
  before(async () => {
    dir = await tempDir('bv-force-');
    src = join(dir, 'chat');
    await mkdir(join(src, 'media', 'sent'), { recursive: true });
    await writeFile(join(src, 'msgstore.db'), 'the database, as backed up');
    await writeFile(join(src, 'media', 'a.jpg'), 'photo a');
    await writeFile(join(src, 'media', 'sent', 'b.jpg'), 'photo b');
    await backup({ rollbackProtection: false, ...access, source: src, workers: 1, init: true });
  });
  after(async () => {
    await removeDir(dir);
  });

  it('--force replaces the snapshot’s files and keeps every other file, listed', async () => {
    const target = join(dir, 't1');
    await mkdir(join(target, 'media'), { recursive: true });
    await mkdir(join(target, 'notes'));
    await writeFile(join(target, 'msgstore.db'), 'a newer database the user made');
    await writeFile(join(target, 'media', 'a.jpg'), 'another photo a');
    await writeFile(join(target, 'media', 'c.jpg'), 'a photo only the device has');
    await writeFile(join(target, 'notes', 'todo.txt'), 'my notes');
    await writeFile(join(target, 'keep.txt'), 'keep me');

    await assert.rejects(
      restore({ rollbackProtection: false, ...access, target, workers: 1 }),
      (e: unknown) => hasCode(e, 'TARGET_NOT_EMPTY'),
    );
    const r = await restore({
      rollbackProtection: false,
      ...access,
      target,
      force: true,
      workers: 1,
    });
    assert.deepEqual(r.kept, ['keep.txt', 'media/c.jpg', 'notes']);
    assert.deepEqual(r.deleted, []);
    assert.equal(r.replaced, 2);
    assert.equal(await readFile(join(target, 'msgstore.db'), 'utf8'), 'the database, as backed up');
    assert.equal(await readFile(join(target, 'media', 'a.jpg'), 'utf8'), 'photo a');
    assert.equal(await readFile(join(target, 'media', 'sent', 'b.jpg'), 'utf8'), 'photo b');
    assert.equal(
      await readFile(join(target, 'media', 'c.jpg'), 'utf8'),
      'a photo only the device has',
    );
    assert.equal(await readFile(join(target, 'notes', 'todo.txt'), 'utf8'), 'my notes');
    assert.equal(await readFile(join(target, 'keep.txt'), 'utf8'), 'keep me');
    // Directory metadata is the snapshot's, and nothing is left beside the target.
    const st = await lstat(join(target, 'media'), { bigint: true });
    const orig = await lstat(join(src, 'media'), { bigint: true });
    assert.equal(st.mode & 0o7777n, orig.mode & 0o7777n);
    // Whole ms from the ns (see describeTree in helpers.ts); restores keep microseconds.
    assert.equal(st.mtimeNs / 1_000_000n, orig.mtimeNs / 1_000_000n);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.includes('backvault')),
      [],
      'temporary directories left behind',
    );
  });

  it('--force --delete makes the target exactly the snapshot and lists what it deleted', async () => {
    const target = join(dir, 't2');
    await mkdir(join(target, 'media'), { recursive: true });
    await writeFile(join(target, 'media', 'c.jpg'), 'extra');
    await writeFile(join(target, 'extra.txt'), 'extra');
    const r = await restore({
      rollbackProtection: false,
      ...access,
      target,
      force: true,
      delete: true,
      workers: 1,
    });
    assert.deepEqual(r.deleted, ['extra.txt', 'media/c.jpg']);
    await assertSameTree(src, target);
  });

  it('--force --delete lists a directory it deleted where the snapshot has a file', async () => {
    const target = join(dir, 't2b');
    // The snapshot has a file `msgstore.db`; the target a directory of that name with files.
    await mkdir(join(target, 'msgstore.db', 'inner'), { recursive: true });
    await writeFile(join(target, 'msgstore.db', 'inner', 'mine.txt'), 'mine');
    const r = await restore({
      rollbackProtection: false,
      ...access,
      target,
      force: true,
      delete: true,
      workers: 1,
    });
    assert.deepEqual(r.deleted, ['msgstore.db']);
    await assertSameTree(src, target);
  });

  it('a directory where the snapshot has a file is a conflict: nothing moves', async () => {
    const target = join(dir, 't3');
    await mkdir(join(target, 'msgstore.db'), { recursive: true });
    await writeFile(join(target, 'msgstore.db', 'inside'), 'would be lost');
    await assert.rejects(
      restore({ rollbackProtection: false, ...access, target, force: true, workers: 1 }),
      (e: unknown) =>
        hasCode(e, 'TARGET_NOT_EMPTY') &&
        /msgstore\.db/.test(e.message) &&
        /`delete: true`/.test(e.hint),
    );
    assert.deepEqual(await readdir(target), ['msgstore.db']);
    assert.equal(await readFile(join(target, 'msgstore.db', 'inside'), 'utf8'), 'would be lost');
  });

  it('a symlink in the target is replaced as an entry, never followed', async () => {
    const target = join(dir, 't4');
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await mkdir(target);
    await symlink(outside, join(target, 'media'));
    await restore({ rollbackProtection: false, ...access, target, force: true, workers: 1 });
    assert.deepEqual(await readdir(outside), [], 'the restore wrote through a symlink');
    assert.ok((await lstat(join(target, 'media'))).isDirectory());
  });

  it('a killed merge whose target was removed since: its old/ is never put back as the target', async () => {
    const target = join(dir, 't5');
    const tmp = join(dir, restoreTempName(target, 'abcdef123456'));
    await mkdir(join(tmp, 'root', 'media'), { recursive: true });
    await mkdir(join(tmp, 'old'), { recursive: true });
    await writeFile(join(tmp, RESTORE_MARKER), restoreMarker(2 ** 22 + 12345, 'another-host'));
    await writeFile(join(tmp, 'commit'), 'backvault-restore-commit 2\nd 755 0 ""\n');
    await writeFile(join(tmp, 'old', 'msgstore.db'), 'only a replaced file, not a whole target');
    const r = await restore({ rollbackProtection: false, ...access, target, workers: 1 });
    assert.ok(
      r.warnings.some((w) => /removed the temporary directory/.test(w)),
      r.warnings.join(),
    );
    await assertSameTree(src, target);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.includes('backvault-restore')),
      [],
    );
  });

  it('a file or a symlink as TARGET is refused before anything is read', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a folder');
    const empty = new MemoryStorage(); // no repository: the target is judged first
    for (const force of [false, true]) {
      await assert.rejects(
        restore({
          rollbackProtection: false,
          storage: empty,
          backupKey,
          target: file,
          force,
          workers: 1,
        }),
        (e: unknown) => hasCode(e, 'USAGE') && /not a directory/.test(e.message),
      );
    }
    assert.equal(await readFile(file, 'utf8'), 'not a folder');
    const link = join(dir, 'a-link');
    await mkdir(join(dir, 'real-dir'));
    await symlink(join(dir, 'real-dir'), link);
    await assert.rejects(
      restore({ rollbackProtection: false, ...access, target: link, force: true, workers: 1 }),
      (e: unknown) => hasCode(e, 'USAGE'),
    );
    assert.equal(await readlink(link), join(dir, 'real-dir'));
  });
});
