/**
 * Sealing and opening one blob: HMAC id, optional compression, AES-256-GCM. Runs inside
 * the worker threads (see worker.ts, pack-builder.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants as zc,
  deflateRawSync,
  inflateRawSync,
} from 'node:zlib';
import { CorruptBackupError } from '../../errors.js';
import {
  Compression,
  ObjectKind,
  blobAd,
  type BlobKind,
  type BlobRef,
  type CompressionValue,
} from '../../format/index.js';
import { hmac, open, seal, type RepoKeys } from './keys.js';

/**
 * What the writer compresses with. Measured on 32 KiB pages of the bench chat database
 * (2 loaded cores, 2026-11-24): Brotli quality 0 ~300 MB/s at ratio 0.54; raw deflate
 * level 1 ~105 MB/s at 0.50; deflate level 6 ~28 MB/s at 0.47. Compression is the most
 * expensive step of a first backup, so the writer uses Brotli q0. Readers accept both;
 * switching back to deflate is this one constant.
 */
export const WRITE_COMPRESSION: CompressionValue = Compression.BROTLI;

/**
 * Chunks larger than this are probed first: the first PROBE_BYTES are compressed, and the
 * whole chunk only if the sample shrank below PROBE_RATIO. Random data (photos, voice notes)
 * fails the probe at a small fraction of the cost of compressing it all. Smaller chunks
 * (SQLite pages) are compressed directly: a probe would cost as much as the work.
 */
export const PROBE_ABOVE = 64 * 1024;
export const PROBE_BYTES = 4 * 1024;
export const PROBE_RATIO = 0.9;
/** Keep the compressed form only if it saves at least 3 %. */
export const KEEP_RATIO = 0.97;

/** A sealed blob ready to be appended to a pack. */
export interface SealedBlob {
  id: Uint8Array;
  compression: CompressionValue;
  rawLength: number;
  sealed: Uint8Array;
}

function keyFor(keys: RepoKeys, kind: BlobKind): Uint8Array {
  return kind === ObjectKind.DATA_BLOB ? keys.data : keys.meta;
}

/** Compress with `c` (not NONE). */
export function compress(c: CompressionValue, data: Uint8Array): Uint8Array {
  if (c === Compression.DEFLATE_RAW) return deflateRawSync(data, { level: 1, memLevel: 9 });
  return brotliCompressSync(data, {
    params: {
      [zc.BROTLI_PARAM_QUALITY]: 0,
      [zc.BROTLI_PARAM_SIZE_HINT]: data.length,
      [zc.BROTLI_PARAM_MODE]: zc.BROTLI_MODE_GENERIC,
    },
  });
}

/** Decide whether compressing `plain` pays, and compress it if so. */
export function maybeCompress(plain: Uint8Array): {
  compression: CompressionValue;
  body: Uint8Array;
} {
  if (plain.length < 256) return { compression: Compression.NONE, body: plain };
  if (plain.length > PROBE_ABOVE) {
    const sample = plain.subarray(0, PROBE_BYTES);
    if (compress(WRITE_COMPRESSION, sample).length >= sample.length * PROBE_RATIO) {
      return { compression: Compression.NONE, body: plain };
    }
  }
  const z = compress(WRITE_COMPRESSION, plain);
  if (z.length < plain.length * KEEP_RATIO) return { compression: WRITE_COMPRESSION, body: z };
  return { compression: Compression.NONE, body: plain };
}

/** Seal one blob; its id is computed over the plaintext. */
export function sealBlob(
  keys: RepoKeys,
  kind: BlobKind,
  plain: Uint8Array,
  doCompress: boolean,
): SealedBlob {
  const id = hmac(keys.blobId, plain);
  const { compression, body } = doCompress
    ? maybeCompress(plain)
    : { compression: Compression.NONE, body: plain };
  const sealed = seal(keyFor(keys, kind), blobAd(kind, keys.repoId, compression, id), body);
  return { id, compression, rawLength: plain.length, sealed };
}

function decompress(c: CompressionValue, body: Uint8Array, rawLength: number): Uint8Array {
  // The cap stops a forged stream from inflating without bound.
  const opts = { maxOutputLength: Math.max(1, rawLength) };
  return c === Compression.DEFLATE_RAW
    ? inflateRawSync(body, opts)
    : brotliDecompressSync(body, opts);
}

/**
 * Open one blob and verify it: AEAD (binding kind, repo, compression and id) and the
 * decompressed length, then (unless `recomputeId` is false) the id recomputed from the
 * plaintext.
 *
 * The AEAD check alone already proves the plaintext is the one a holder of the backup key
 * sealed under this id: the id is in the associated data, and only a key holder can seal.
 * Recomputing the id (an HMAC under a subkey of the same key) adds no protection against a
 * store or anyone else without the key; it guards only against a writer bug that sealed
 * other bytes than it named. `check` recomputes it; restore skips it (it is ~13 % of
 * restore CPU) and says so in SPEC.md.
 * @throws CorruptBackupError naming `object` on any mismatch.
 */
export function openBlob(
  keys: RepoKeys,
  ref: BlobRef,
  sealed: Uint8Array,
  object: string,
  recomputeId = true,
): Uint8Array {
  const body = open(
    keyFor(keys, ref.kind),
    blobAd(ref.kind, keys.repoId, ref.compression, ref.id),
    sealed,
    object,
  );
  let plain: Uint8Array = body;
  if (ref.compression !== Compression.NONE) {
    try {
      plain = decompress(ref.compression, body, ref.rawLength);
    } catch {
      throw new CorruptBackupError('blob does not decompress', object);
    }
  }
  if (plain.length !== ref.rawLength)
    throw new CorruptBackupError('blob has the wrong length', object);
  if (!recomputeId) return plain;
  const id = hmac(keys.blobId, plain);
  if (!timingSafeEqual(id, ref.id))
    throw new CorruptBackupError('blob id does not match its content', object);
  return plain;
}
