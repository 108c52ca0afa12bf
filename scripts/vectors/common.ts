/**
 * Shared by the vector generators: the fixed keys and repository id, deterministic
 * bytes and nonces, sealing with an explicit nonce, and the JSON shapes of blobs, packs,
 * trees and snapshots.
 */

import '#sdk/backup/node/install.js';
import { createHash } from 'node:crypto';
import { brotliCompressSync,deflateRawSync,constants as zc } from 'node:zlib';
import type { RepoKeys } from '#sdk/backup/repository/keys.js';
import {
Compression,
EntryType,
FORMAT_VERSION,
ObjectKind,
assemblePack,
blobAd,
deriveSubkey,
encodePackHeader,
hmacSha256,
objectAd,
packName,
sealWeb,
sha256Hex,
toHex,
type BlobEntry,
type BlobKind,
type CompressionValue,
type ObjectKindValue,
type Snapshot,
type SubkeyLabel,
type TreeEntry
} from '#sdk/format/index.js';












/** A JSON value (what the vector files hold). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The backup key of every positive vector: bytes 00 01 … 1f. */
export const VECTOR_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);

/** A well-formed key that is not the repository's: bytes 1f 1e … 00. */
export const VECTOR_WRONG_KEY = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);

/** The repository id of every positive vector: bytes f0 f1 … ff. */
export const VECTOR_REPO_ID = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);

/**
 * Deterministic bytes: SHA-256(label || u32be counter) for counter = 0, 1, … concatenated,
 * cut to `n` bytes. Stands in for randomness (nonces, "photos") so vectors are reproducible.
 */
export function detBytes(label: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, off = 0; off < n; i++, off += 32) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(i);
    const h = createHash('sha256').update(label).update(ctr).digest();
    out.set(h.subarray(0, Math.min(32, n - off)), off);
  }
  return out;
}

export const nonceOf = (label: string): Uint8Array => detBytes(`backvault-vector-nonce/${label}`, 12);

/** The subkeys of a repository, the engine's shape, derived here through WebCrypto. */
export type VectorKeys = RepoKeys;

export async function keysFor(backupKey: Uint8Array, repoId: Uint8Array): Promise<VectorKeys> {
  const d = (l: SubkeyLabel): Promise<Uint8Array> => deriveSubkey(backupKey, repoId, l);
  return {
    repoId,
    keyCheck: await d('keyCheck'),
    blobId: await d('blobId'),
    data: await d('data'),
    meta: await d('meta'),
    chunker: await d('chunker'),
  };
}

/** A blob sealed for a vector, with everything a reader needs to check each step. */
export interface VecBlob {
  label: string;
  kind: BlobKind;
  compression: CompressionValue;
  plain: Uint8Array;
  body: Uint8Array;
  id: Uint8Array;
  nonce: Uint8Array;
  ad: Uint8Array;
  sealed: Uint8Array;
}

/**
 * Seal one blob. `adKind` overrides the kind bound in the AD (negative vectors only: a
 * blob listed as one kind but sealed as another).
 */
export async function sealVecBlob(
  keys: VectorKeys,
  label: string,
  kind: BlobKind,
  plain: Uint8Array,
  compression: CompressionValue,
  adKind: BlobKind = kind,
): Promise<VecBlob> {
  const id = await hmacSha256(keys.blobId, plain);
  const body =
    compression === Compression.DEFLATE_RAW
      ? new Uint8Array(deflateRawSync(plain, { level: 1 }))
      : compression === Compression.BROTLI
        ? new Uint8Array(brotliCompressSync(plain, { params: { [zc.BROTLI_PARAM_QUALITY]: 0 } }))
        : plain;
  const ad = blobAd(adKind, keys.repoId, compression, id);
  const nonce = nonceOf(label);
  const key = adKind === ObjectKind.DATA_BLOB ? keys.data : keys.meta;
  const sealed = await sealWeb(key, ad, body, nonce);
  return { label, kind, compression, plain, body, id, nonce, ad, sealed };
}

export async function sealObject(
  keys: VectorKeys,
  label: string,
  kind: ObjectKindValue,
  plain: Uint8Array,
): Promise<{ nonce: Uint8Array; ad: Uint8Array; sealed: Uint8Array; name: string }> {
  const ad = objectAd(kind, keys.repoId);
  const nonce = nonceOf(label);
  const sealed = await sealWeb(keys.meta, ad, plain, nonce);
  const dir =
    kind === ObjectKind.INDEX ? 'index/' : kind === ObjectKind.SNAPSHOT ? 'snapshots/' : '';
  return { nonce, ad, sealed, name: dir + (await sha256Hex(sealed)) };
}

export interface VecPack {
  label: string;
  blobs: VecBlob[];
  entries: BlobEntry[];
  headerPlain: Uint8Array;
  headerNonce: Uint8Array;
  sealedHeader: Uint8Array;
  bytes: Uint8Array;
  id: string;
  name: string;
}

export async function buildPack(keys: VectorKeys, label: string, blobs: VecBlob[]): Promise<VecPack> {
  let offset = 0;
  const entries: BlobEntry[] = blobs.map((b) => {
    const e: BlobEntry = {
      kind: b.kind,
      compression: b.compression,
      id: b.id,
      offset,
      length: b.sealed.length,
      rawLength: b.plain.length,
    };
    offset += b.sealed.length;
    return e;
  });
  const headerPlain = encodePackHeader(entries);
  const headerNonce = nonceOf(`${label}/header`);
  const sealedHeader = await sealWeb(
    keys.meta,
    objectAd(ObjectKind.PACK_HEADER, keys.repoId),
    headerPlain,
    headerNonce,
  );
  const bytes = assemblePack(
    blobs.map((b) => b.sealed),
    sealedHeader,
  );
  const id = await sha256Hex(bytes);
  return {
    label,
    blobs,
    entries,
    headerPlain,
    headerNonce,
    sealedHeader,
    bytes,
    id,
    name: packName(id),
  };
}

export const hex = toHex;

export const ns = (v: bigint): string => v.toString();

export function entryJson(e: BlobEntry): Json {
  return {
    kind: e.kind,
    compression: e.compression,
    id: hex(e.id),
    offset: e.offset,
    length: e.length,
    rawLength: e.rawLength,
  };
}

export function treeEntryJson(e: TreeEntry): Json {
  const base = { name: e.name, type: e.type, mode: e.mode, mtimeNs: ns(e.mtimeNs) };
  if (e.type === EntryType.FILE) return { ...base, size: e.size, chunks: e.chunks.map(hex) };
  if (e.type === EntryType.DIR) return { ...base, subtree: hex(e.subtree) };
  return { ...base, target: e.target };
}

export function snapshotJson(s: Snapshot): Json {
  return {
    seq: s.seq,
    prev: s.prev ? hex(s.prev) : null,
    timeMs: s.timeMs,
    hostname: s.hostname,
    rootTree: hex(s.rootTree),
    rootMode: s.rootMode,
    rootMtimeNs: ns(s.rootMtimeNs),
    files: s.files,
    dirs: s.dirs,
    bytes: s.bytes,
    ...(s.partial !== undefined ? { partial: s.partial, skipped: s.skipped ?? 0 } : {}),
  };
}

export function blobJson(b: VecBlob): Json {
  return {
    label: b.label,
    kind: b.kind,
    compression: b.compression,
    plaintext: hex(b.plain),
    id: hex(b.id),
    body: hex(b.body),
    nonce: hex(b.nonce),
    ad: hex(b.ad),
    sealed: hex(b.sealed),
  };
}

export function packJson(p: VecPack): Json {
  return {
    label: p.label,
    name: p.name,
    id: p.id,
    headerPlaintext: hex(p.headerPlain),
    headerNonce: hex(p.headerNonce),
    sealedHeader: hex(p.sealedHeader),
    entries: p.entries.map(entryJson),
    blobs: p.blobs.map((b) => b.label),
    bytes: hex(p.bytes),
  };
}

export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export const objectsJson = (m: Map<string, Uint8Array>): Json =>
  Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, hex(v)]));

/** Differences from `base` to `variant`: changed/added objects as hex, removed as null. */
export function diffObjects(base: Map<string, Uint8Array>, variant: Map<string, Uint8Array>): Json {
  const out: Record<string, Json> = {};
  for (const [k, v] of variant) {
    const b = base.get(k);
    if (!b || hex(b) !== hex(v)) out[k] = hex(v);
  }
  for (const k of base.keys()) if (!variant.has(k)) out[k] = null;
  return out;
}

// ---------------------------------------------------------------------------------------

export const header = (about: string): Record<string, Json> => ({
  about,
  spec: 'SPEC.md',
  generator: 'scripts/gen-vectors.ts',
  formatVersion: FORMAT_VERSION,
});

export function flipLast(b: Uint8Array): Uint8Array {
  const c = b.slice();
  c[c.length - 1] = (c[c.length - 1] as number) ^ 0x01;
  return c;
}

export function flipAt(b: Uint8Array, at: number): Uint8Array {
  const c = b.slice();
  c[at] = (c[at] as number) ^ 0x01;
  return c;
}
