/**
 * The paths an app hands over, at the edges: a source that is a symlink to the folder (an
 * absolute one, as `ln -s /data/chat ~/chat` makes), and an empty string for the source or
 * the target (an unset setting), which must be refused, never taken as the current folder.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, restore } from '#sdk/backup/index.js';
import { hasCode } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { MemoryFiles } from '#sdk/backup/platform/memory-files.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { assertSameTree, removeDir, tempDir } from './helpers.js';

describe('source and target paths at the edges', () => {
  let dir: string;
  let src: string;
  const access = {
    storage: new MemoryStorage(),
    backupKey: generateBackupKey(),
    rollbackProtection: false as const,
    workers: 1,
  };
  before(async () => {
    dir = await tempDir('bv-edge-src-');
    src = join(dir, 'data', 'chat');
    await mkdir(join(src, 'media'), { recursive: true });
    await writeFile(join(src, 'msgstore.db'), 'messages');
    await writeFile(join(src, 'media', 'a.jpg'), 'photo');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('a source that is an absolute or relative symlink to the folder is backed up through it', async () => {
    await symlink(src, join(dir, 'abs-link'));
    await symlink('data/chat', join(dir, 'rel-link'));
    await symlink(join(dir, 'abs-link'), join(dir, 'link-to-link'));
    for (const link of ['abs-link', 'rel-link', 'link-to-link']) {
      const r = await backup({ ...access, source: join(dir, link), init: true });
      assert.equal(r.files, 2, link);
      const out = join(dir, `out-${link}`);
      await restore({ ...access, target: out });
      await assertSameTree(src, out);
    }
  });

  it('the same through MemoryFiles: an absolute symlink as the source', async () => {
    const files = new MemoryFiles();
    files.mkdirp('/data/chat');
    files.writeFile('/data/chat/note.txt', new TextEncoder().encode('hi'));
    files.symlink('/data/chat', '/home/chat');
    const r = await backup({ ...access, files, source: '/home/chat', init: true });
    assert.equal(r.files, 1);
  });

  it('hard links: each name is backed up, and restored as its own copy', async () => {
    const s = join(dir, 'linked');
    await mkdir(s);
    await writeFile(join(s, 'a.jpg'), 'one photo, two names');
    await link(join(s, 'a.jpg'), join(s, 'b.jpg'));
    const r = await backup({ ...access, source: s, init: true });
    assert.equal(r.files, 2);
    assert.equal(r.partial, false);
    const out = join(dir, 'linked-out');
    await restore({ ...access, target: out });
    await assertSameTree(s, out);
    assert.equal(await readFile(join(out, 'b.jpg'), 'utf8'), 'one photo, two names');
    assert.notEqual((await stat(join(out, 'a.jpg'))).ino, (await stat(join(out, 'b.jpg'))).ino);
  });

  it('a path deeper than PATH_MAX: skipped and named (partial), the rest backed up', async () => {
    const s = join(dir, 'deep');
    await mkdir(s);
    await writeFile(join(s, 'top.txt'), 'top');
    // 20 levels of 250-byte names: the path passes 4096 bytes around the 16th.
    const segs: string[] = [];
    for (let i = 0; i < 20; i++) segs.push(`${String(i).padStart(2, '0')}${'d'.repeat(248)}`);
    // Made with chdir (a shell's `cd` keeps the logical path, which fails past PATH_MAX).
    execFileSync('python3', [
      '-c',
      'import os,sys\nos.chdir(sys.argv[1])\nfor d in sys.argv[2:]:\n  os.mkdir(d); os.chdir(d)\nopen("leaf.txt","w").write("leaf")',
      s,
      ...segs,
    ]);
    const r = await backup({ ...access, source: s, init: true });
    assert.equal(r.partial, true);
    assert.equal(r.filesSkipped, 1);
    assert.ok(
      r.warnings.some((w) => /cannot be opened, skipped: /.test(w)),
      JSON.stringify(r.warnings),
    );
    const out = join(dir, 'deep-out');
    await restore({ ...access, target: out });
    assert.equal(await readFile(join(out, 'top.txt'), 'utf8'), 'top');
    assert.ok((await stat(join(out, ...segs.slice(0, 3)))).isDirectory());
    // fs.rm cannot remove it either (ENAMETOOLONG); GNU rm works relative to each folder.
    execFileSync('rm', ['-rf', s, out]);
  });

  it('a local repository inside the source is left out of it, with a warning', async () => {
    const s = join(dir, 'with-repo');
    await mkdir(s);
    await writeFile(join(s, 'photo.jpg'), randomBytes(300_000));
    const inside = {
      storage: new LocalStorage(join(s, 'backup')),
      backupKey: generateBackupKey(),
      rollbackProtection: false as const,
      workers: 1,
    };
    const r1 = await backup({ ...inside, source: s, init: true });
    assert.equal(r1.files, 1);
    const r2 = await backup({ ...inside, source: s });
    // Nothing new: not the first backup's packs again.
    assert.ok(r2.bytesStoredNew < 10_000, `stored ${r2.bytesStoredNew}`);
    assert.equal(r2.partial, false);
    assert.ok(
      r2.warnings.some(
        (w) => /repository is inside the source/.test(w) && w.endsWith(join(s, 'backup')),
      ),
      JSON.stringify(r2.warnings),
    );
    const out = join(dir, 'with-repo-out');
    await restore({ ...inside, target: out });
    assert.deepEqual(await readdir(out), ['photo.jpg']);
  });

  it('an empty source or target is USAGE, never the current folder', async () => {
    await assert.rejects(
      backup({ ...access, source: '', init: true }),
      (e: unknown) => hasCode(e, 'USAGE') && /source/.test(e.message),
    );
    const before = await readdir(process.cwd());
    for (const force of [false, true])
      await assert.rejects(
        restore({ ...access, target: '', force }),
        (e: unknown) => hasCode(e, 'USAGE') && /target/.test(e.message),
      );
    assert.deepEqual(await readdir(process.cwd()), before);
  });
});
