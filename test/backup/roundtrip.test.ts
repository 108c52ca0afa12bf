import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdir, readdir, stat, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backup, check, listSnapshots, restore } from '#sdk/backup/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { hasCode } from '#sdk/errors.js';
import { assertSameTree, makeSampleTree, removeDir, tempDir, writeChatDb } from './helpers.js';

describe('backup and restore round trip', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await removeDir(dir);
  });

  it('restores a sample chat byte-identical with modes and mtimes, then backs up changes incrementally', async () => {
    const src = join(dir, 'src');
    await mkdir(src);
    await makeSampleTree(src);
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const statePath = join(dir, 'state.json');
    const access = { storage, backupKey, statePath };

    const r1 = await backup({
      init: true,
      ...access,
      source: src,
      workers: 2,
      hostname: 'test-host',
    });
    assert.equal(r1.seq, 1);
    assert.equal(r1.created, true);
    assert.ok(r1.files >= 7, `files ${r1.files}`);
    assert.ok(r1.bytesRead > 5 * 1024 * 1024);
    assert.ok(
      r1.bytesStoredNew > 5 * 1024 * 1024 && r1.bytesStoredNew < r1.bytesRead + 1024 * 1024,
    );
    // Nothing in the store names a file or holds plaintext.
    for (const [name, bytes] of storage.raw()) {
      assert.match(
        name,
        /^(config|data\/[0-9a-f]{2}\/[0-9a-f]{64}|index\/[0-9a-f]{64}|snapshots\/[0-9a-f]{64})$/,
      );
      assert.equal(Buffer.from(bytes).includes('ünïcødé content'), false);
      assert.equal(Buffer.from(bytes).includes('SQLite format 3'), false);
    }

    const out = join(dir, 'out1');
    const rr = await restore({ ...access, target: out, workers: 2 });
    assert.equal(rr.snapshotId, r1.snapshotId);
    await assertSameTree(src, out);
    assert.equal((await stat(out)).mode & 0o777, (await stat(src)).mode & 0o777);

    // A second backup with no change stores only a snapshot (and no new packs).
    const r2 = await backup({
      init: true,
      ...access,
      source: src,
      workers: 2,
      hostname: 'test-host',
    });
    assert.equal(r2.seq, 2);
    assert.equal(r2.chunksNew, 0);
    assert.ok(r2.bytesStoredNew < 4096, `stored ${r2.bytesStoredNew}`);

    // A small change: a few new messages and one new note.
    writeChatDb(join(src, 'msgstore.db'), 50, 3000);
    await writeFile(join(src, 'media', 'note.txt'), 'new note\n');
    await appendFile(join(src, 'empty dir', 'x'), 'x');
    const r3 = await backup({
      init: true,
      ...access,
      source: src,
      workers: 2,
      hostname: 'test-host',
    });
    assert.equal(r3.seq, 3);
    assert.ok(r3.chunksNew >= 1 && r3.chunksNew <= 12, `chunksNew ${r3.chunksNew}`);
    assert.ok(r3.bytesStoredNew < 300 * 1024, `stored ${r3.bytesStoredNew}`);

    const snaps = await listSnapshots(access);
    assert.deepEqual(
      snaps.map((s) => s.seq),
      [1, 2, 3],
    );
    assert.equal(snaps[1]?.prev, snaps[0]?.id);

    const out2 = join(dir, 'out2');
    await restore({ ...access, target: out2, workers: 0 });
    await assertSameTree(src, out2);

    // An older snapshot by id prefix.
    const out3 = join(dir, 'out3');
    await restore({ ...access, target: out3, snapshotId: r1.snapshotId.slice(0, 10) });
    assert.equal((await readdir(join(out3, 'empty dir'))).length, 0);

    const c = await check({ ...access, workers: 2 });
    assert.deepEqual(c.problems, []);
    assert.equal(c.ok, true);
    assert.equal(c.snapshots, 3);
  });

  it('refuses a non-empty target without force, and swaps it atomically with force and delete', async () => {
    const src = join(dir, 'src2');
    await mkdir(join(src, 'a'), { recursive: true });
    await writeFile(join(src, 'a', 'f.txt'), 'restored');
    const access = { storage: new MemoryStorage(), backupKey: generateBackupKey() };
    await backup({ rollbackProtection: false, init: true, ...access, source: src, workers: 1 });

    const target = join(dir, 'target');
    await mkdir(target);
    await writeFile(join(target, 'old.txt'), 'old');
    await assert.rejects(restore({ rollbackProtection: false, ...access, target }), (e) =>
      hasCode(e, 'TARGET_NOT_EMPTY'),
    );
    assert.deepEqual(await readdir(target), ['old.txt']);

    await restore({ rollbackProtection: false, ...access, target, force: true, delete: true });
    assert.deepEqual(await readdir(target), ['a']);
    // No temporary or old directories are left beside the target.
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.includes('backvault')),
      [],
    );

    // An empty existing directory is fine without force.
    const empty = join(dir, 'empty-target');
    await mkdir(empty);
    await restore({ rollbackProtection: false, ...access, target: empty });
    await assertSameTree(src, empty);
  });
});
