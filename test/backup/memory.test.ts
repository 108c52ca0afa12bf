// Memory of a backup against its shape (issue 17): what a backup keeps per blob until it
// writes its index is the encoded index record (46 bytes per blob), and that record is the
// same bytes the format's encodeIndex writes.
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
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
import { encodeIndexRecords } from '#sdk/backup/repository/indexes.js';

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
