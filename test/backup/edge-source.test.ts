/**
 * The paths an app hands over, at the edges: a source that is a symlink to the folder (an
 * absolute one, as `ln -s /data/chat ~/chat` makes), and an empty string for the source or
 * the target (an unset setting), which must be refused, never taken as the current folder.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, restore } from '#sdk/backup/index.js';
import { hasCode } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { MemoryFiles } from '#sdk/backup/platform/memory-files.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
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
