/**
 * Packs and indexes: how blobs are stored.
 *
 * A pack (`data/<first 2 hex>/<64 hex>`, the 64 hex being SHA-256 of the whole pack) is:
 *
 *   sealed blob 0 || sealed blob 1 || … || sealed header || u32 sealed header length
 *
 * Each sealed blob is nonce || AES-256-GCM(ciphertext || tag) of the (maybe compressed)
 * blob plaintext, AD = blobAd(kind, repoId, compression, id) — see sealed.ts. The header is
 * sealed under the meta subkey with AD = objectAd(PACK_HEADER, repoId); its plaintext:
 *
 *   u8 version = 1
 *   u32 entry count
 *   entry × count (BLOB_ENTRY_BYTES = 46 bytes each):
 *     u8  blob kind (1 data, 2 tree)
 *     u8  compression (0 none, 1 raw deflate, 2 brotli)
 *     32  blob id
 *     u32 offset of the sealed blob in the pack
 *     u32 length of the sealed blob
 *     u32 raw length (plaintext bytes before compression)
 *
 * In a pack header the entries are in pack order and contiguous: the first starts at 0 and
 * each starts where the previous ended; the header starts where the last ended.
 *
 * An index object (`index/<64 hex>`, SHA-256 of the stored bytes), sealed under the meta
 * subkey with AD = objectAd(INDEX, repoId), has the plaintext:
 *
 *   u8 version = 1
 *   u32 pack count
 *   per pack: 32 pack id || u32 entry count || entry × count (same 46-byte layout)
 *
 * Browser-safe: no `node:` imports.
 */
import { ByteReader, ByteWriter, concatBytes, toHex } from './bytes.js';
import {
  FORMAT_VERSION,
  ID_BYTES,
  MAX_BLOB_RAW_BYTES,
  SEAL_OVERHEAD,
  isBlobKind,
  isCompression,
  type BlobKind,
  type CompressionValue,
} from './constants.js';

/** Size of one encoded blob entry. */
export const BLOB_ENTRY_BYTES = 1 + 1 + ID_BYTES + 4 + 4 + 4;

/** Where a blob is inside a pack, and how to open it. */
export interface BlobEntry {
  kind: BlobKind;
  compression: CompressionValue;
  id: Uint8Array;
  offset: number;
  length: number;
  rawLength: number;
}

/** The blobs of one pack, as listed in an index. */
export interface IndexPack {
  packId: Uint8Array;
  blobs: BlobEntry[];
}

function writeEntry(w: ByteWriter, e: BlobEntry): void {
  w.u8(e.kind).u8(e.compression).bytes(e.id).u32(e.offset).u32(e.length).u32(e.rawLength);
}

function readEntry(r: ByteReader): BlobEntry {
  const kind = r.u8();
  if (!isBlobKind(kind)) r.fail(`unknown blob kind ${kind}`);
  const compression = r.u8();
  if (!isCompression(compression)) r.fail(`unknown compression ${compression}`);
  const id = r.bytes(ID_BYTES).slice();
  const offset = r.u32();
  const length = r.u32();
  const rawLength = r.u32();
  if (length < SEAL_OVERHEAD) r.fail('blob shorter than its seal');
  if (rawLength > MAX_BLOB_RAW_BYTES) r.fail('blob too large');
  // Uncompressed blobs carry their size twice; the two must agree.
  if (compression === 0 && length !== rawLength + SEAL_OVERHEAD) {
    r.fail('uncompressed blob length does not match its raw length');
  }
  return { kind, compression, id, offset, length, rawLength };
}

/** Encode a pack header plaintext. */
export function encodePackHeader(entries: readonly BlobEntry[]): Uint8Array {
  const w = new ByteWriter(5 + entries.length * BLOB_ENTRY_BYTES);
  w.u8(FORMAT_VERSION).u32(entries.length);
  for (const e of entries) writeEntry(w, e);
  return w.finish().slice();
}

/**
 * Decode a pack header plaintext and check that its entries tile the pack up to
 * `headerOffset` (where the sealed header starts).
 * @throws CorruptBackupError on any malformed content.
 */
export function decodePackHeader(
  plain: Uint8Array,
  headerOffset: number,
  object?: string,
): BlobEntry[] {
  const r = new ByteReader(plain, object);
  const version = r.u8();
  if (version !== FORMAT_VERSION) r.fail(`unsupported pack header version ${version}`);
  const count = r.u32();
  if (count * BLOB_ENTRY_BYTES !== r.remaining) r.fail('pack header length does not match');
  const entries: BlobEntry[] = [];
  let expect = 0;
  for (let i = 0; i < count; i++) {
    const e = readEntry(r);
    if (e.offset !== expect) r.fail('pack header entries are not contiguous');
    expect = e.offset + e.length;
    entries.push(e);
  }
  if (expect !== headerOffset) r.fail('pack header does not cover the pack');
  r.end();
  return entries;
}

/**
 * Split a pack's trailer: the sealed header's offset and length, given the pack size and
 * its last 4 bytes.
 * @throws CorruptBackupError when the length is impossible.
 */
export function packTrailer(
  packSize: number,
  last4: Uint8Array,
  object?: string,
): { headerOffset: number; headerLength: number } {
  const r = new ByteReader(last4, object);
  if (packSize < 4 + SEAL_OVERHEAD) r.fail('pack too short');
  const headerLength = r.u32();
  r.end();
  if (headerLength < SEAL_OVERHEAD + 5 || headerLength > packSize - 4) {
    r.fail('bad pack header length');
  }
  return { headerOffset: packSize - 4 - headerLength, headerLength };
}

/** The 4-byte trailer holding the sealed header length. */
export function encodePackTrailer(headerLength: number): Uint8Array {
  return new ByteWriter(4).u32(headerLength).finish().slice();
}

/** Assemble a pack from its sealed blobs (in entry order) and its sealed header. */
export function assemblePack(
  sealedBlobs: readonly Uint8Array[],
  sealedHeader: Uint8Array,
): Uint8Array {
  return concatBytes(...sealedBlobs, sealedHeader, encodePackTrailer(sealedHeader.length));
}

/** Storage name of a pack given its id (SHA-256 of its bytes). */
export function packName(packId: Uint8Array | string): string {
  const hex = typeof packId === 'string' ? packId : toHex(packId);
  return `data/${hex.slice(0, 2)}/${hex}`;
}

/** Pack id (hex) from a storage name, or undefined when the name is not a pack name. */
export function parsePackName(name: string): string | undefined {
  const m = /^data\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(name);
  return m && m[2]?.startsWith(m[1] as string) ? m[2] : undefined;
}

/** Encode an index plaintext. */
export function encodeIndex(packs: readonly IndexPack[]): Uint8Array {
  const w = new ByteWriter(1024);
  w.u8(FORMAT_VERSION).u32(packs.length);
  for (const p of packs) {
    w.bytes(p.packId).u32(p.blobs.length);
    for (const e of p.blobs) writeEntry(w, e);
  }
  return w.finish().slice();
}

/**
 * Decode an index plaintext.
 * @throws CorruptBackupError on any malformed content.
 */
export function decodeIndex(plain: Uint8Array, object?: string): IndexPack[] {
  const r = new ByteReader(plain, object);
  const version = r.u8();
  if (version !== FORMAT_VERSION) r.fail(`unsupported index version ${version}`);
  const count = r.u32();
  if (count > r.remaining / (ID_BYTES + 4)) r.fail('index pack count too large');
  const packs: IndexPack[] = [];
  for (let i = 0; i < count; i++) {
    const packId = r.bytes(ID_BYTES).slice();
    const n = r.u32();
    if (n > r.remaining / BLOB_ENTRY_BYTES) r.fail('index entry count too large');
    const blobs: BlobEntry[] = [];
    for (let j = 0; j < n; j++) blobs.push(readEntry(r));
    packs.push({ packId, blobs });
  }
  r.end();
  return packs;
}

/** Parameters of a blob as needed by its AD and checks. */
export type BlobRef = Pick<BlobEntry, 'kind' | 'compression' | 'id' | 'rawLength'>;
