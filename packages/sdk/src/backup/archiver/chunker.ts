/**
 * Where files are cut into chunks. Writer-side only: a reader never needs these rules, so
 * they can change without a format version (they only affect deduplication).
 *
 * Ordinary files: FastCDC (Xia et al., 2016) with normalized chunking level 2 over a gear
 * hash. The gear table is derived from the repository's `chunker` subkey, so chunk
 * boundaries — and so the sizes the store sees inside packs — do not fingerprint known files:
 *
 *   gear[i] (i = 0..255) = u32 LE at bytes 4i..4i+3 of
 *       HMAC-SHA256(chunker, "gear" || u8 0) || … || HMAC-SHA256(chunker, "gear" || u8 31)
 *
 * SQLite databases (first 16 bytes "SQLite format 3\0") are cut at fixed, page-aligned
 * offsets instead: SQLite rewrites pages in place, so a few thousand new messages touch
 * pages spread all over the file (~1 MB of changed bytes in a 200 MB database); fixed
 * small chunks re-store only the touched ones, where content-defined 1 MiB chunks re-store
 * most of the file.
 */
import { hmac } from '../repository/keys.js';

/**
 * Files up to this size are one chunk: media files are written once and never edited in
 * place, so cutting them buys no deduplication and costs a scan (the gear loop is the
 * slowest per-byte step after compression).
 */
export const SINGLE_CHUNK_MAX = 1024 * 1024;

/** FastCDC limits for ordinary files. */
export const CDC_MIN = 256 * 1024;
export const CDC_AVG = 1024 * 1024;
export const CDC_MAX = 4 * 1024 * 1024;

/**
 * Chunk size for SQLite databases (a multiple of the page size; a page larger than this is
 * one chunk). Measured on bench/gen-chat (205 MB database, 4 KiB pages) after bench/mutate
 * (+10,000 messages), database bytes stored again, compressed: 16 KiB chunks 3.9 MB,
 * 32 KiB 5.6 MB, 64 KiB 8.9 MB (restic: ~90 MB). 32 KiB meets the 10 MB target with margin
 * at half the index entries of 16 KiB.
 */
export const SQLITE_CHUNK = 32 * 1024;

const SQLITE_MAGIC = 'SQLite format 3\0';

/**
 * The fixed chunk size for a file starting with `head` (at least 100 bytes of it), or
 * undefined when the file is not a SQLite database.
 */
export function sqliteChunkSize(head: Uint8Array): number | undefined {
  if (head.length < 100) return undefined;
  for (let i = 0; i < 16; i++) if (head[i] !== SQLITE_MAGIC.charCodeAt(i)) return undefined;
  const raw = ((head[16] as number) << 8) | (head[17] as number);
  const page = raw === 1 ? 65536 : raw;
  // A valid page size is a power of two from 512 to 65536; anything else is not SQLite.
  if (page < 512 || page > 65536 || (page & (page - 1)) !== 0) return undefined;
  return Math.max(page, SQLITE_CHUNK);
}

/** The keyed gear table. */
export function gearTable(chunkerKey: Uint8Array): Uint32Array {
  const bytes = new Uint8Array(1024);
  for (let i = 0; i < 32; i++) {
    bytes.set(hmac(chunkerKey, new Uint8Array([0x67, 0x65, 0x61, 0x72, i])), i * 32);
  }
  const table = new Uint32Array(256);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 256; i++) table[i] = view.getUint32(4 * i, true);
  return table;
}

// Normalized chunking (level 2): a harder mask before the average size, an easier one
// after. Mask bits are the high bits of the 32-bit gear hash, which depend on the last 32
// bytes (the low bits only on the last few).
const bitsAvg = Math.log2(CDC_AVG);
const MASK_S = ((2 ** (bitsAvg + 2) - 1) * 2 ** (32 - (bitsAvg + 2))) | 0;
const MASK_L = ((2 ** (bitsAvg - 2) - 1) * 2 ** (32 - (bitsAvg - 2))) | 0;

/** Whether every byte of `b` is 0 (4 bytes at a time where aligned; no BigInt, for Hermes). */
export function allZero(b: Uint8Array): boolean {
  let i = 0;
  const head = Math.min(b.length, (4 - (b.byteOffset % 4)) % 4);
  for (; i < head; i++) if (b[i] !== 0) return false;
  const words = (b.length - i) >>> 2;
  if (words > 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset + i, words);
    // Eight words per test: 2.1 -> 4.4 GiB/s here (a 4 GiB hole is read and checked).
    const blocks = words & ~7;
    let k = 0;
    for (; k < blocks; k += 8) {
      const x = w[k]! | w[k + 1]! | w[k + 2]! | w[k + 3]!;
      const y = w[k + 4]! | w[k + 5]! | w[k + 6]! | w[k + 7]!;
      if ((x | y) !== 0) return false;
    }
    for (; k < words; k++) if (w[k] !== 0) return false;
    i += words * 4;
  }
  for (; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Per gear table: where a window of zeros is cut (see {@link nextCut}). */
const zeroCuts = new WeakMap<Uint32Array, number>();

function zeroCut(gear: Uint32Array): number {
  let z = zeroCuts.get(gear);
  if (z === undefined) {
    z = scanCut(gear, new Uint8Array(CDC_MAX), 0, CDC_MAX);
    zeroCuts.set(gear, z);
  }
  return z;
}

/**
 * Length of the next chunk of `buf[start, end)`. `final` says no more data follows `end`;
 * without it, returns 0 when more data is needed to decide (fewer than CDC_MAX bytes).
 *
 * A full window whose scanned bytes are zeros (a sparse file's hole, a preallocated image)
 * is cut where a window of zeros is, computed once per gear table: the scan reads only
 * `buf[start + CDC_MIN, cut)`, so the same bytes give the same cut. That makes holes cost
 * a word compare per 4 bytes instead of the gear loop per byte (a 4 GiB sparse file's
 * backup took 22 s, nearly all of it here). Non-zero data fails the check at once.
 */
export function nextCut(
  gear: Uint32Array,
  buf: Uint8Array,
  start: number,
  end: number,
  final: boolean,
): number {
  const n = end - start;
  if (n <= CDC_MIN) return final ? n : 0;
  if (n < CDC_MAX && !final) return 0;
  if (n >= CDC_MAX) {
    const z = zeroCut(gear);
    if (buf[start + CDC_MIN] === 0 && allZero(buf.subarray(start + CDC_MIN, start + z))) return z;
  }
  return scanCut(gear, buf, start, end);
}

/** {@link nextCut}'s gear scan, for a window of more than CDC_MIN bytes (exported for tests). */
export function scanCut(gear: Uint32Array, buf: Uint8Array, start: number, end: number): number {
  const limit = start + Math.min(end - start, CDC_MAX);
  const normal = Math.min(start + CDC_AVG, limit);
  let h = 0;
  let i = start + CDC_MIN;
  for (; i < normal; i++) {
    h = ((h << 1) + (gear[buf[i] as number] as number)) | 0;
    if ((h & MASK_S) === 0) return i + 1 - start;
  }
  for (; i < limit; i++) {
    h = ((h << 1) + (gear[buf[i] as number] as number)) | 0;
    if ((h & MASK_L) === 0) return i + 1 - start;
  }
  return limit - start;
}
