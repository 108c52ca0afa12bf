/**
 * Restore targets at the edges: a mount point as TARGET (a freshly mounted, empty disk, or
 * one holding files, with `force`). A restore is written beside its target and moved in by
 * rename, which cannot cross into another file system: such a target is refused (USAGE)
 * before anything is written, never failed half way with a raw EBUSY/EXDEV.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, restore } from '#sdk/backup/index.js';
import { hasCode } from '#sdk/errors.js';
import { RESTORE_MARKER, restoreMarker, restoreTempName } from '#sdk/backup/restorer/restorer.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { assertSameTree, mountTmpfs, removeDir, tempDir } from './helpers.js';

const isRoot = process.getuid?.() === 0;

describe(
  'a mount point as restore target',
  { skip: isRoot ? false : 'needs root to mount' },
  () => {
    let dir: string;
    let src: string;
    const mounts: string[] = [];
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const access = { storage, backupKey, rollbackProtection: false as const, workers: 1 };
    before(async () => {
      dir = await tempDir('bv-edge-target-');
      src = join(dir, 'chat');
      await mkdir(join(src, 'media'), { recursive: true });
      await writeFile(join(src, 'msgstore.db'), 'the database');
      await writeFile(join(src, 'media', 'a.jpg'), 'photo a');
      await backup({ ...access, source: src, init: true });
    });
    after(async () => {
      for (const m of mounts) execFileSync('umount', [m]);
      await removeDir(dir);
    });

    /** Nothing of a restore left beside `target` or inside it. */
    async function assertNoLeftovers(target: string): Promise<void> {
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.includes('backvault-restore')),
        [],
      );
      assert.deepEqual(
        (await readdir(target)).filter((n) => n.includes('backvault')),
        [],
      );
    }

    it('an empty mount point is refused with USAGE before anything is written; a folder inside it restores', async (t) => {
      const mnt = join(dir, 'empty-disk');
      await mkdir(mnt);
      if (!mountTmpfs(mnt, '4m')) return t.skip('mount -t tmpfs is not allowed here');
      mounts.push(mnt);
      await assert.rejects(
        restore({ ...access, target: mnt }),
        (e: unknown) =>
          hasCode(e, 'USAGE') && /mount point/.test(e.message) && /inside it/.test(e.hint),
      );
      assert.deepEqual(await readdir(mnt), []);
      await assertNoLeftovers(mnt);
      // What the hint says works.
      await restore({ ...access, target: join(mnt, 'chat') });
      await assertSameTree(src, join(mnt, 'chat'));
    });

    it('a target on a mounted disk reached through a symlinked folder is no mount point: it restores', async (t) => {
      const mnt = join(dir, 'other-disk');
      await mkdir(mnt);
      if (!mountTmpfs(mnt, '4m')) return t.skip('mount -t tmpfs is not allowed here');
      mounts.push(mnt);
      await symlink(mnt, join(dir, 'disk-link'));
      await mkdir(join(mnt, 'chat'));
      await restore({ ...access, target: join(dir, 'disk-link', 'chat') });
      await assertSameTree(src, join(mnt, 'chat'));
    });

    it('an empty bind mount of the same file system (same device) is refused with USAGE too', async (t) => {
      const mnt = join(dir, 'bound');
      const real = join(dir, 'bound-real');
      await mkdir(mnt);
      await mkdir(real);
      try {
        execFileSync('mount', ['--bind', real, mnt], { stdio: 'ignore' });
      } catch {
        return t.skip('mount --bind is not allowed here');
      }
      mounts.push(mnt);
      await assert.rejects(
        restore({ ...access, target: mnt }),
        (e: unknown) => hasCode(e, 'USAGE') && /mount point/.test(e.message),
      );
      assert.deepEqual(await readdir(mnt), []);
      await assertNoLeftovers(mnt);
    });

    it('a mount point inside the target that a --force merge would write into: USAGE, nothing moved', async (t) => {
      const target = join(dir, 'with-sd-card');
      const mnt = join(target, 'media');
      await mkdir(mnt, { recursive: true });
      await writeFile(join(target, 'msgstore.db'), 'older database');
      if (!mountTmpfs(mnt, '4m')) return t.skip('mount -t tmpfs is not allowed here');
      mounts.push(mnt);
      await writeFile(join(mnt, 'mine.jpg'), 'mine');
      await assert.rejects(
        restore({ ...access, target, force: true }),
        (e: unknown) =>
          hasCode(e, 'USAGE') && /mount point/.test(e.message) && /media/.test(e.message),
      );
      assert.equal(await readFile(join(target, 'msgstore.db'), 'utf8'), 'older database');
      assert.deepEqual(await readdir(mnt), ['mine.jpg']);
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.includes('backvault-restore')),
        [],
      );
      // Nothing is left for a later restore to roll forward: one into a new folder just works.
      await restore({ ...access, target: join(dir, 'elsewhere') });
      await restore({ ...access, target, force: true, include: 'msgstore.db' });
      assert.equal(await readFile(join(target, 'msgstore.db'), 'utf8'), 'the database');
    });

    it('a disk mounted inside the target, with force and delete: USAGE, the disk and the target untouched', async (t) => {
      const target = join(dir, 'with-card-delete');
      const mnt = join(target, 'deep', 'card');
      await mkdir(mnt, { recursive: true });
      await writeFile(join(target, 'old.txt'), 'old');
      if (!mountTmpfs(mnt, '4m')) return t.skip('mount -t tmpfs is not allowed here');
      mounts.push(mnt);
      await writeFile(join(mnt, 'on-the-card.jpg'), 'mine');
      await assert.rejects(
        restore({ ...access, target, force: true, delete: true }),
        (e: unknown) =>
          hasCode(e, 'USAGE') && /mount point/.test(e.message) && /deep\/card/.test(e.message),
      );
      assert.deepEqual(await readdir(mnt), ['on-the-card.jpg']);
      assert.deepEqual((await readdir(target)).sort(), ['deep', 'old.txt']);
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.includes('backvault-restore')),
        [],
      );
    });

    /** Bind-mount a new folder at `mnt` (same file system: same st_dev); false if refused. */
    async function bindMount(mnt: string): Promise<boolean> {
      const real = join(dir, `bind-source-${mounts.length}`);
      await mkdir(mnt, { recursive: true });
      await mkdir(real);
      try {
        execFileSync('mount', ['--bind', real, mnt], { stdio: 'ignore' });
      } catch {
        return false;
      }
      mounts.push(mnt);
      return true;
    }

    it('a bind mount holding files, with force: USAGE before the commit, nothing left to roll forward', async (t) => {
      // Same device as its parent: only a rename can tell. The merge failed with EXDEV after
      // its journal, and every later restore to it failed the same way rolling it forward.
      const mnt = join(dir, 'bound-full');
      if (!(await bindMount(mnt))) return t.skip('mount --bind is not allowed here');
      await writeFile(join(mnt, 'keep.txt'), 'mine');
      await assert.rejects(
        restore({ ...access, target: mnt, force: true }),
        (e: unknown) => hasCode(e, 'USAGE') && /is a mount point/.test(e.message),
      );
      assert.deepEqual(await readdir(mnt), ['keep.txt']);
      await assertNoLeftovers(mnt);
      // The next restore is not stuck: into a folder inside it, it restores.
      await restore({ ...access, target: join(mnt, 'chat') });
      assert.equal(await readFile(join(mnt, 'chat', 'msgstore.db'), 'utf8'), 'the database');
    });

    it('a bind mount inside the target that a --force merge would write into: USAGE, nothing moved', async (t) => {
      const target = join(dir, 'with-bound-media');
      const mnt = join(target, 'media');
      if (!(await bindMount(mnt))) return t.skip('mount --bind is not allowed here');
      await writeFile(join(mnt, 'old.jpg'), 'an old photo');
      await writeFile(join(target, 'notes.txt'), 'mine');
      await assert.rejects(
        restore({ ...access, target, force: true }),
        (e: unknown) =>
          hasCode(e, 'USAGE') && /holds a mount point/.test(e.message) && /media/.test(e.message),
      );
      assert.deepEqual((await readdir(target)).sort(), ['media', 'notes.txt']);
      assert.deepEqual(await readdir(mnt), ['old.jpg']);
      await assertNoLeftovers(target);
    });

    it('a mount point holding files, with force: USAGE, its files untouched, no journal left to roll forward', async (t) => {
      const mnt = join(dir, 'full-disk');
      await mkdir(mnt);
      if (!mountTmpfs(mnt, '4m')) return t.skip('mount -t tmpfs is not allowed here');
      mounts.push(mnt);
      await writeFile(join(mnt, 'keep.txt'), 'mine');
      for (const del of [false, true]) {
        await assert.rejects(
          restore({ ...access, target: mnt, force: true, delete: del }),
          (e: unknown) => hasCode(e, 'USAGE') && /mount point/.test(e.message),
        );
        assert.deepEqual(await readdir(mnt), ['keep.txt']);
        assert.equal(await readFile(join(mnt, 'keep.txt'), 'utf8'), 'mine');
        await assertNoLeftovers(mnt);
      }
    });
  },
);

describe('restore targets with long names', () => {
  let dir: string;
  let src: string;
  const storage = new MemoryStorage();
  const backupKey = generateBackupKey();
  const access = { storage, backupKey, rollbackProtection: false as const, workers: 1 };
  before(async () => {
    dir = await tempDir('bv-long-target-');
    src = join(dir, 'chat');
    await mkdir(src);
    await writeFile(join(src, 'msgstore.db'), 'the database');
    await backup({ ...access, source: src, init: true });
  });
  after(async () => removeDir(dir));

  it('the temporary name fits NAME_MAX, differs for names sharing 200 bytes, and is found again', async () => {
    const a = 'a'.repeat(200) + 'x'.repeat(50);
    const b = 'a'.repeat(200) + 'y'.repeat(50);
    const bytes = (s: string): number => new TextEncoder().encode(s).length;
    for (const n of [a, b, 'é'.repeat(127)])
      assert.ok(bytes(restoreTempName(n, 'abcdef123456')) <= 255, n);
    assert.notEqual(restoreTempName(a, 'abcdef123456'), restoreTempName(b, 'abcdef123456'));
    assert.equal(restoreTempName('chat', 'abcdef123456'), '.chat.backvault-restore-abcdef123456');
    // A restore to `a` killed while writing: the next one finds its folder by that name.
    const tmp = join(dir, restoreTempName(a, 'abcdef123456'));
    await mkdir(join(tmp, 'root'), { recursive: true });
    await writeFile(join(tmp, RESTORE_MARKER), restoreMarker(999_999_999, 'elsewhere'));
    const r = await restore({ ...access, target: join(dir, a) });
    assert.ok(
      r.warnings.some((w) => /removed the temporary directory/.test(w)),
      r.warnings.join('\n'),
    );
  });

  // Valid names up to NAME_MAX (255 bytes); the temporary directory's name adds 32 bytes.
  // From 224 bytes on the restore failed: "a name … too long".
  for (const [label, name] of [
    ['240 ASCII bytes', 't'.repeat(240)],
    ['254 bytes of two-byte characters', 'é'.repeat(127)],
    ['255 bytes', 'x'.repeat(255)],
  ] as const) {
    it(`restores into a target named with ${label}, also with --force over it`, async () => {
      const target = join(dir, name);
      await restore({ ...access, target });
      await assertSameTree(src, target);
      await writeFile(join(target, 'mine.txt'), 'kept');
      await restore({ ...access, target, force: true });
      assert.equal(await readFile(join(target, 'mine.txt'), 'utf8'), 'kept');
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.includes('backvault')),
        [],
        'no temporary directory left',
      );
    });
  }
});
