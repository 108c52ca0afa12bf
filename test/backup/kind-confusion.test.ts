/**
 * A file chunk whose bytes equal a tree's encoding has the same blob id as that tree. Blobs
 * are identified by kind AND id (SPEC.md §6): before 0.2 the writer deduplicated by id
 * alone, stored the tree as nothing (the chunk stood in for it), and `backup` reported
 * success for a snapshot that `restore` and `check` then refused. These tests fail on that
 * writer.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, check, restore } from '#sdk/backup/index.js';
import { deriveRepoKeys, open, seal, sha256Hex } from '#sdk/backup/repository/keys.js';
import { hasCode } from '#sdk/errors.js';
import {
  ObjectKind,
  PREFIX,
  decodeConfig,
  decodeIndex,
  encodeIndex,
  encodeTree,
  generateBackupKey,
  objectAd,
} from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { assertSameTree, removeDir, tempDir } from './helpers.js';

/** The encoding of an empty directory's tree: u8 version 1, u32 entry count 0. */
const EMPTY_TREE = encodeTree([]);

describe('blob kinds are never confused', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('bv-kinds-');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('the empty tree is the 5 bytes 01 00 00 00 00', () => {
    assert.deepEqual([...EMPTY_TREE], [1, 0, 0, 0, 0]);
  });

  it('a file with a tree’s bytes beside an empty directory restores and checks clean', async () => {
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'looks-like-a-tree'), EMPTY_TREE);
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey,
      source: src,
      workers: 1,
    });
    await mkdir(join(src, 'empty'));
    const r2 = await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey,
      source: src,
      workers: 1,
    });
    const target = join(dir, 'out');
    await restore({ rollbackProtection: false, storage, backupKey, target, workers: 1 });
    await assertSameTree(src, target);
    assert.deepEqual(await readFile(join(target, 'looks-like-a-tree')), Buffer.from(EMPTY_TREE));
    const c = await check({ rollbackProtection: false, storage, backupKey, workers: 1 });
    assert.ok(c.ok, JSON.stringify(c.problems));

    // The other way round: the tree first, then the file; and both in one backup.
    const s2 = new MemoryStorage();
    const src2 = join(dir, 'src2');
    await mkdir(join(src2, 'empty'), { recursive: true });
    await backup({
      rollbackProtection: false,
      init: true,
      storage: s2,
      backupKey,
      source: src2,
      workers: 2,
    });
    await writeFile(join(src2, 'looks-like-a-tree'), EMPTY_TREE);
    await backup({
      rollbackProtection: false,
      init: true,
      storage: s2,
      backupKey,
      source: src2,
      workers: 2,
    });
    await restore({
      rollbackProtection: false,
      storage: s2,
      backupKey,
      target: join(dir, 'out2'),
      workers: 1,
    });
    await assertSameTree(src2, join(dir, 'out2'));
    assert.ok((await check({ rollbackProtection: false, storage: s2, backupKey, workers: 1 })).ok);
    assert.equal(r2.seq, 2);
  });

  it('a repository written with the confusion is named by check and healed by the next backup', async () => {
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const src = join(dir, 'src3');
    await mkdir(src);
    await writeFile(join(src, 'looks-like-a-tree'), EMPTY_TREE);
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey,
      source: src,
      workers: 1,
    });
    await mkdir(join(src, 'empty'));
    const before2 = new Set(storage.raw().keys());
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey,
      source: src,
      workers: 1,
    });

    // Make it what 0.1 wrote: the second backup's index without the tree blob of the empty
    // directory (0.1 never stored it: the data blob with the same id stood in for it).
    const keys = deriveRepoKeys(
      backupKey,
      decodeConfig(storage.raw().get(PREFIX.config) as Uint8Array).repoId,
    );
    const ad = objectAd(ObjectKind.INDEX, keys.repoId);
    const newIndex = [...storage.raw().keys()].find(
      (n) => n.startsWith(PREFIX.index) && !before2.has(n),
    ) as string;
    const packs = decodeIndex(
      open(keys.meta, ad, storage.raw().get(newIndex) as Uint8Array, newIndex),
      newIndex,
    );
    let removed = 0;
    const doctored = packs.map((p) => ({
      ...p,
      blobs: p.blobs.filter((b) => {
        const hit =
          b.kind === ObjectKind.TREE_BLOB &&
          b.rawLength === EMPTY_TREE.length &&
          b.compression === 0;
        if (hit) removed += 1;
        return !hit;
      }),
    }));
    assert.equal(removed, 1, 'the second backup stored the empty tree as a tree');
    const sealed = seal(keys.meta, ad, encodeIndex(doctored));
    storage.raw().delete(newIndex);
    storage.raw().set(PREFIX.index + sha256Hex(sealed), sealed);

    // What users of 0.1 saw, now with a message that says what happened and what to do.
    await assert.rejects(
      restore({
        rollbackProtection: false,
        storage,
        backupKey,
        target: join(dir, 'broken'),
        workers: 1,
      }),
      (e: unknown) =>
        hasCode(e, 'MISSING_OBJECT') &&
        /stored only as a file chunk/.test(e.hint) &&
        /`backup\(\)`/.test(e.hint),
    );
    const c = await check({ rollbackProtection: false, storage, backupKey, workers: 1 });
    assert.ok(!c.ok);
    assert.ok(
      c.problems.some((p) => p.code === 'MISSING_OBJECT' && p.object.startsWith('tree/')),
      JSON.stringify(c.problems),
    );

    // The next backup stores the tree as a tree: every snapshot restores, check is clean.
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey,
      source: src,
      workers: 1,
    });
    const healed = await check({ rollbackProtection: false, storage, backupKey, workers: 1 });
    assert.ok(healed.ok, JSON.stringify(healed.problems));
    const target = join(dir, 'healed');
    await restore({ rollbackProtection: false, storage, backupKey, target, workers: 1 });
    await assertSameTree(src, target);
  });
});
