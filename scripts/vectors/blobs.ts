/**
 * Vectors of SPEC.md §5-6: sealing and blobs (ids, compression, associated data).
 */

import {
Compression,
EntryType,
ObjectKind,
encodeTree,
sortTreeEntries,
utf8,
type TreeEntry
} from '#sdk/format/index.js';

import { type Json,VECTOR_KEY,VECTOR_REPO_ID,VecBlob,VectorKeys,blobJson,detBytes,header,hex,sealVecBlob } from './common.js';

import { mt } from './repo.js';










export async function blobVectors(keys: VectorKeys): Promise<Json> {
  const text = utf8(
    Array.from({ length: 64 }, (_, i) => `row ${i}|alice|hi bob, lunch at noon?\n`).join(''),
  );
  const photo = detBytes('blob vector photo', 600);
  const treePlain = encodeTree(
    sortTreeEntries(
      Array.from({ length: 20 }, (_, i): TreeEntry => ({
        type: EntryType.FILE,
        name: `IMG_${String(i).padStart(4, '0')}.jpg`,
        mode: 0o644,
        mtimeNs: mt(i),
        size: 0,
        chunks: [],
      })),
    ),
  );
  const blobs = [
    await sealVecBlob(
      keys,
      'data blob, uncompressed',
      ObjectKind.DATA_BLOB,
      photo,
      Compression.NONE,
    ),
    await sealVecBlob(
      keys,
      'data blob, deflate-raw',
      ObjectKind.DATA_BLOB,
      text,
      Compression.DEFLATE_RAW,
    ),
    await sealVecBlob(
      keys,
      'tree blob, deflate-raw',
      ObjectKind.TREE_BLOB,
      treePlain,
      Compression.DEFLATE_RAW,
    ),
    await sealVecBlob(keys, 'data blob, brotli', ObjectKind.DATA_BLOB, text, Compression.BROTLI),
    await sealVecBlob(
      keys,
      'empty data blob',
      ObjectKind.DATA_BLOB,
      new Uint8Array(0),
      Compression.NONE,
    ),
  ];
  const [b0, b1, b2, b3] = blobs as [VecBlob, VecBlob, VecBlob, VecBlob];
  const ref = (b: VecBlob): Record<string, Json> => ({
    kind: b.kind,
    compression: b.compression,
    id: hex(b.id),
    rawLength: b.plain.length,
  });
  const flipped = b0.sealed.slice();
  flipped[20] = (flipped[20] as number) ^ 0x04;
  const asTree = await sealVecBlob(
    keys,
    'data blob sealed as tree',
    ObjectKind.DATA_BLOB,
    photo,
    Compression.NONE,
    ObjectKind.TREE_BLOB,
  );
  const invalid: Json[] = [
    {
      description: 'one ciphertext bit flipped',
      ref: ref(b0),
      sealed: hex(flipped),
      code: 'CORRUPT',
    },
    {
      description: 'truncated (tag cut)',
      ref: ref(b0),
      sealed: hex(b0.sealed.subarray(0, b0.sealed.length - 1)),
      code: 'CORRUPT',
    },
    {
      description: 'shorter than nonce + tag',
      ref: ref(b0),
      sealed: hex(b0.sealed.subarray(0, 27)),
      code: 'CORRUPT',
    },
    {
      description: 'listed as a tree (AD kind 2, meta key)',
      ref: { ...ref(b0), kind: ObjectKind.TREE_BLOB },
      sealed: hex(b0.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'a data blob sealed with the TREE_BLOB AD, listed as data',
      ref: ref(asTree),
      sealed: hex(asTree.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'compression flag flipped to deflate-raw',
      ref: { ...ref(b0), compression: Compression.DEFLATE_RAW },
      sealed: hex(b0.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'compression flag flipped to none',
      ref: { ...ref(b1), compression: Compression.NONE },
      sealed: hex(b1.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'another blob id',
      ref: { ...ref(b0), id: hex(b1.id) },
      sealed: hex(b0.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'another blob swapped in',
      ref: ref(b0),
      sealed: hex(b1.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'brotli blob listed as deflate-raw',
      ref: { ...ref(b3), compression: Compression.DEFLATE_RAW },
      sealed: hex(b3.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'wrong raw length',
      ref: { ...ref(b1), rawLength: b1.plain.length - 1 },
      sealed: hex(b1.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'tree blob listed as data',
      ref: { ...ref(b2), kind: ObjectKind.DATA_BLOB },
      sealed: hex(b2.sealed),
      code: 'CORRUPT',
    },
  ];
  return {
    ...header(
      'Sealed blobs: id = HMAC-SHA256(subkey blobId, plaintext); body = plaintext (compression 0), its raw deflate (1, RFC 1951) or a Brotli stream (2, RFC 7932); sealed = nonce || AES-256-GCM(key, nonce, body, ad) with tag appended; key = subkey data for kind 1, meta for kind 2. Opening `sealed` with `ref` must yield `plaintext`; each invalid case must fail with `code`.',
    ),
    backupKey: hex(VECTOR_KEY),
    repoId: hex(VECTOR_REPO_ID),
    subkeys: { blobId: hex(keys.blobId), data: hex(keys.data), meta: hex(keys.meta) },
    blobs: blobs.map(blobJson),
    invalid,
  };
}
