/**
 * Vectors of SPEC.md §11: snapshots.
 */

import {
ObjectKind,
concatBytes,
encodeSnapshot,
objectAd,
sealWeb
} from '#sdk/format/index.js';

import { type Json,VECTOR_KEY,VECTOR_REPO_ID,VectorKeys,flipLast,header,hex,snapshotJson } from './common.js';

import { BuiltRepo } from './repo.js';










export async function snapshotVectors(keys: VectorKeys, repo: BuiltRepo): Promise<Json> {
  const s0 = repo.snapshots[0] as BuiltRepo['snapshots'][number];
  const p = s0.plain;
  const set = (at: number, v: number): string => {
    const b = p.slice();
    b[at] = v;
    return hex(b);
  };
  const s2 = repo.snapshots[1] as BuiltRepo['snapshots'][number];
  const asIndex = await sealWeb(
    keys.meta,
    objectAd(ObjectKind.INDEX, keys.repoId),
    s0.plain,
    s0.nonce,
  );
  return {
    ...header(
      'Snapshot objects: plaintext = encodeSnapshot(fields); sealed = nonce || AES-256-GCM(meta, nonce, plaintext, ad = objectAd(SNAPSHOT)); name = "snapshots/" + hex SHA-256(sealed), which is also the snapshot id. Time fields: timeMs (i64 ms), rootMtimeNs (i64 ns, decimal string).',
    ),
    backupKey: hex(VECTOR_KEY),
    repoId: hex(VECTOR_REPO_ID),
    // Layout 2: a partial snapshot (flags bit 0) that left 3 source entries out.
    layout2: [
      { ...s0.snap, partial: true, skipped: 3 },
      { ...s0.snap, partial: false, skipped: 1 },
    ].map((snap) => ({ fields: snapshotJson(snap), plaintext: hex(encodeSnapshot(snap)) })),
    snapshots: repo.snapshots.map((s) => ({
      name: s.name,
      id: s.id,
      fields: snapshotJson(s.snap),
      plaintext: hex(s.plain),
      nonce: hex(s.nonce),
      ad: hex(objectAd(ObjectKind.SNAPSHOT, keys.repoId)),
      sealed: hex(repo.objects.get(s.name) as Uint8Array),
    })),
    invalidPlaintexts: [
      { description: 'seq 0', plaintext: set(1, 0), code: 'CORRUPT' },
      {
        description: 'seq 1 with a previous id',
        plaintext: hex(concatBytes(Uint8Array.of(1, 1, 0, 0, 0, 0, 0, 0, 0), s2.plain.subarray(9))),
        code: 'CORRUPT',
      },
      { description: 'seq 2 without a previous id', plaintext: set(1, 2), code: 'CORRUPT' },
      { description: 'previous flag 2', plaintext: set(9, 2), code: 'CORRUPT' },
      {
        description: 'layout 2 without its flags and skipped count',
        plaintext: set(0, 2),
        code: 'CORRUPT',
      },
      {
        description: 'layout 2 with an unknown flag (2)',
        plaintext: hex(
          concatBytes(Uint8Array.of(2), p.subarray(1), Uint8Array.of(2), new Uint8Array(8)),
        ),
        code: 'CORRUPT',
      },
      { description: 'version 3', plaintext: set(0, 3), code: 'CORRUPT' },
      {
        description: 'trailing byte',
        plaintext: hex(concatBytes(p, new Uint8Array(1))),
        code: 'CORRUPT',
      },
      { description: 'truncated', plaintext: hex(p.subarray(0, p.length - 1)), code: 'CORRUPT' },
    ],
    invalidSealed: [
      {
        description: 'snapshot sealed with the INDEX associated data',
        sealed: hex(asIndex),
        code: 'CORRUPT',
      },
      {
        description: 'last byte (tag) flipped',
        sealed: hex(flipLast(repo.objects.get(s0.name) as Uint8Array)),
        code: 'CORRUPT',
      },
    ],
  };
}
