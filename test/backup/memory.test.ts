// Memory of a backup against its shape (issue 17): what a backup keeps per blob until it
// writes its index is the encoded index record (46 bytes per blob), and that record is the
// same bytes the format's encodeIndex writes; a worker remembers the blobs it stored in a
// compact set that answers exactly like a Set of `kind:id`; a backup of many blobs lists them
// in index objects of a bounded size as it goes, and restores and checks as before.
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  BLOB_ENTRY_BYTES,
  ObjectKind,
  decodeIndex,
  encodeIndex,
  encodePackHeader,
  type BlobEntry,
  type IndexPack,
} from '#sdk/format/index.js';
import { backup, check, restore } from '#sdk/backup/index.js';
import { encodeIndexRecords } from '#sdk/backup/repository/indexes.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { assertSameTree, removeDir, tempDir } from './helpers.js';
import { StoredIds } from '#sdk/backup/workers/jobs.js';

function entries(n: number): BlobEntry[] {
  const out: BlobEntry[] = [];
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const length = 40 + ((i * 7919) % 5000);
    out.push({
      kind: i % 5 === 0 ? ObjectKind.TREE_BLOB : ObjectKind.DATA_BLOB,
      compression: (i % 3) as BlobEntry['compression'],
      id: new Uint8Array(randomBytes(32)),
      offset,
      length,
      rawLength: i % 3 === 0 ? length - 28 : length * 2,
    });
    offset += length;
  }
  return out;
}

describe('index records of a backup', () => {
  it('encoded records (a pack header without its version byte) make the bytes of encodeIndex', () => {
    const packs: IndexPack[] = [1, 700, 3, 0].map((n) => ({
      packId: new Uint8Array(randomBytes(32)),
      blobs: entries(n),
    }));
    const expected = encodeIndex(packs);
    // What a worker hands over with each pack (PackMessage.index), mixed with packs given
    // as entries (adopted by resume).
    const mixed = packs.map((p, i) =>
      i % 2 === 0 ? { packId: p.packId, index: encodePackHeader(p.blobs).slice(1) } : p,
    );
    const got = encodeIndexRecords(mixed);
    assert.deepEqual(Buffer.from(got), Buffer.from(expected));
    assert.deepEqual(decodeIndex(got), packs);
    assert.equal(encodePackHeader(packs[1]?.blobs ?? []).length - 1, 4 + 700 * BLOB_ENTRY_BYTES);
    assert.deepEqual(Buffer.from(encodeIndexRecords([])), Buffer.from(encodeIndex([])));
  });
});

describe("a worker's set of the blobs it stored", () => {
  it('answers exactly like a Set of kind:id, across growth, for both kinds of one id', () => {
    const set = new StoredIds(16);
    const ref = new Set<string>();
    const ids: Uint8Array[] = [];
    for (let i = 0; i < 20_000; i++) {
      // Ids sharing their first bytes (one hash slot) and ids equal but for the last byte.
      const id = new Uint8Array(randomBytes(32));
      if (i % 7 === 0) id.set([1, 2, 3, 4]);
      if (i % 11 === 0 && ids.length > 0) {
        id.set(ids[ids.length - 1] as Uint8Array);
        id[31] = ((id[31] as number) + 1) & 255;
      }
      ids.push(id);
      const kind = i % 3 === 0 ? ObjectKind.TREE_BLOB : ObjectKind.DATA_BLOB;
      const key = `${kind}:${Buffer.from(id).toString('hex')}`;
      assert.equal(set.has(kind, id), ref.has(key));
      set.add(kind, id);
      ref.add(key);
      assert.equal(set.has(kind, id), true);
    }
    assert.equal(set.size, ref.size);
    for (const id of ids) {
      for (const kind of [ObjectKind.DATA_BLOB, ObjectKind.TREE_BLOB]) {
        const key = `${kind}:${Buffer.from(id).toString('hex')}`;
        assert.equal(set.has(kind, id), ref.has(key), key);
      }
    }
    assert.equal(set.has(ObjectKind.DATA_BLOB, new Uint8Array(32)), false);
  });
});

describe('a backup of many blobs', () => {
  it('writes its index in parts bounded by the pack size; restore and check see one repository', async () => {
    const dir = await tempDir('bv-memory-');
    try {
      const src = join(dir, 'src');
      // 2,000 distinct files of ~2 KB: with 256 KiB packs an index part holds at most 64 KiB
      // of records (1,424 blobs), so this backup lists its blobs in two index objects.
      for (let d = 0; d < 20; d++) {
        await mkdir(join(src, `d${d}`), { recursive: true });
        for (let f = 0; f < 100; f++)
          await writeFile(join(src, `d${d}`, `f${f}`), randomBytes(2000 + ((d * 100 + f) % 50)));
      }
      const storage = new MemoryStorage();
      const access = {
        storage,
        backupKey: new Uint8Array(32).fill(7),
        rollbackProtection: false as const,
      };
      const indexes = async (): Promise<number> => {
        let n = 0;
        for await (const _ of storage.list('index/')) n += 1;
        return n;
      };
      const b = await backup({ ...access, source: src, init: true, packSize: 256 * 1024 });
      assert.equal(b.files, 2000);
      assert.ok((await indexes()) >= 2, `${await indexes()} index objects`);
      assert.deepEqual((await check({ ...access, readData: true })).problems, []);
      const out = join(dir, 'out');
      await restore({ ...access, target: out });
      await assertSameTree(src, out);
      // The next backup finds every blob in those parts: nothing new is stored.
      const again = await backup({ ...access, source: src, packSize: 256 * 1024 });
      assert.equal(again.chunksNew, 0);
    } finally {
      await removeDir(dir);
    }
  });
});
