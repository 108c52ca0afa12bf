/**
 * Vectors of SPEC.md §8: packs (sealed blobs, sealed header, trailer).
 */

import {
ObjectKind,
concatBytes,
objectAd
} from '#sdk/format/index.js';

import { type Json,VECTOR_KEY,VECTOR_REPO_ID,VecPack,VectorKeys,blobJson,entryJson,flipAt,header,hex,packJson } from './common.js';

import { BuiltRepo } from './repo.js';










export async function packVectors(keys: VectorKeys, repo: BuiltRepo): Promise<Json> {
  const p = repo.packs[0] as VecPack;
  const withTrailer = (n: number): string => {
    const b = p.bytes.slice();
    new DataView(b.buffer).setUint32(b.length - 4, n, true);
    return hex(b);
  };
  return {
    ...header(
      'Packs: sealed blobs || sealed header || u32le sealed header length; name = "data/" + hex[0:2] + "/" + hex, hex = SHA-256 of the pack. Index objects list packs and their entries. Every invalid pack must fail with `code` when its header is read.',
    ),
    backupKey: hex(VECTOR_KEY),
    repoId: hex(VECTOR_REPO_ID),
    packs: repo.packs.map(packJson),
    blobs: repo.packs.flatMap((pk) => pk.blobs).map(blobJson),
    indexes: repo.indexes.map((i) => ({
      name: i.name,
      plaintext: hex(i.plain),
      nonce: hex(i.nonce),
      ad: hex(objectAd(ObjectKind.INDEX, keys.repoId)),
      sealed: hex(repo.objects.get(i.name) as Uint8Array),
      packs: i.packs.map((x) => ({ packId: hex(x.packId), entries: x.blobs.map(entryJson) })),
    })),
    invalidPacks: [
      {
        description: 'trailer length larger than the pack',
        bytes: withTrailer(p.bytes.length),
        code: 'CORRUPT',
      },
      {
        description: 'trailer length too small for a header',
        bytes: withTrailer(10),
        code: 'CORRUPT',
      },
      {
        description: 'trailer length off by one',
        bytes: withTrailer(p.sealedHeader.length + 1),
        code: 'CORRUPT',
      },
      {
        description: 'header byte flipped',
        bytes: hex(flipAt(p.bytes, p.bytes.length - 10)),
        code: 'CORRUPT',
      },
      {
        description: 'a byte removed from the first blob',
        bytes: hex(concatBytes(p.bytes.subarray(0, 5), p.bytes.subarray(6))),
        code: 'CORRUPT',
      },
      { description: 'three bytes only', bytes: hex(p.bytes.subarray(0, 3)), code: 'CORRUPT' },
    ],
  };
}
