/**
 * Sealing and opening one blob: HMAC id, optional compression, AES-256-GCM. Runs inside
 * the job runner (workers/jobs.ts: worker threads or the calling thread; pack-builder.ts).
 */
import { CorruptBackupError, UsageError } from '../../errors.js';
import {
  Compression,
  ObjectKind,
  blobAd,
  type BlobKind,
  type BlobRef,
  type CompressionValue,
} from '../../format/index.js';
import { engineCrypto } from '../platform/current.js';
import { bytesEqual, hmac, open, seal, type RepoKeys } from './keys.js';

/**
 * What the writer compresses with: the crypto provider's choice (Node: Brotli quality 0,
 * measured in node/crypto.ts; a provider without compression stores blobs as they are).
 * Readers accept every method the provider can decompress.
 */
export function writeCompression(): CompressionValue {
  return engineCrypto().compression?.write ?? Compression.NONE;
}

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

/**
 * A chunk whose sampled bytes carry more than this many bits of entropy per byte (order-0,
 * over up to RANDOM_SAMPLE bytes) is taken for random and stored without trying to compress
 * it. Measured here: Brotli q0 on a small random file costs 31-55 µs, the estimate ~4 µs
 * (20,000 files of 1-4 KiB: 0.6-1.1 s against 0.08 s); the bench chat's 6,300 database
 * pages estimate 2.2-6.5 bits, so none is skipped. A uniform sample of 512 bytes reads
 * ~7.6 bits (the estimate is biased low on few bytes), text 4-5, base64 6.
 */
export const RANDOM_BITS = 7.2;
/** Bytes the entropy estimate reads: all of a small chunk, else four 1 KiB slices spread over it. */
export const RANDOM_SAMPLE = 4096;
/** Chunks shorter than this are never taken for random (too few bytes for the estimate). */
export const RANDOM_MIN = 512;

const byteCounts = new Uint32Array(256);
let nLogN: Float64Array | undefined;

/** Order-0 entropy estimate of `plain`'s sample, in bits per byte. */
export function sampleEntropy(plain: Uint8Array): number {
  const counts = byteCounts;
  counts.fill(0);
  let n: number;
  if (plain.length <= RANDOM_SAMPLE) {
    for (let i = 0; i < plain.length; i++) counts[plain[i]!]!++;
    n = plain.length;
  } else {
    const slice = RANDOM_SAMPLE / 4;
    for (let k = 0; k < 4; k++) {
      const at = Math.floor(((plain.length - slice) * k) / 3);
      for (let i = at; i < at + slice; i++) counts[plain[i]!]!++;
    }
    n = RANDOM_SAMPLE;
  }
  if (n === 0) return 0;
  if (!nLogN) {
    nLogN = new Float64Array(RANDOM_SAMPLE + 1);
    for (let i = 1; i <= RANDOM_SAMPLE; i++) nLogN[i] = i * Math.log2(i);
  }
  let sum = 0;
  for (let i = 0; i < 256; i++) sum += nLogN[counts[i]!]!;
  return Math.log2(n) - sum / n;
}

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
  const z = engineCrypto().compression;
  if (!z) throw new UsageError('this crypto provider has no compression');
  return z.compress(c, data);
}

/** Decide whether compressing `plain` pays, and compress it if so. */
export function maybeCompress(plain: Uint8Array): {
  compression: CompressionValue;
  body: Uint8Array;
} {
  const method = writeCompression();
  if (plain.length < 256 || method === Compression.NONE)
    return { compression: Compression.NONE, body: plain };
  if (plain.length >= RANDOM_MIN && sampleEntropy(plain) > RANDOM_BITS)
    return { compression: Compression.NONE, body: plain };
  if (plain.length > PROBE_ABOVE) {
    const sample = plain.subarray(0, PROBE_BYTES);
    if (compress(method, sample).length >= sample.length * PROBE_RATIO) {
      return { compression: Compression.NONE, body: plain };
    }
  }
  const z = compress(method, plain);
  if (z.length < plain.length * KEEP_RATIO) return { compression: method, body: z };
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
  const z = engineCrypto().compression;
  if (!z || !z.reads.includes(c))
    throw new UsageError(
      `this engine's crypto provider (${engineCrypto().name}) cannot decompress blobs of method ${c}`,
      'Give the engine a crypto provider whose compression reads it (the Node provider reads every method).',
    );
  // The cap stops a forged stream from inflating without bound.
  return z.decompress(c, body, Math.max(1, rawLength));
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
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new CorruptBackupError('blob does not decompress', object);
    }
  }
  if (plain.length !== ref.rawLength)
    throw new CorruptBackupError('blob has the wrong length', object);
  if (!recomputeId) return plain;
  const id = hmac(keys.blobId, plain);
  if (!bytesEqual(id, ref.id))
    throw new CorruptBackupError('blob id does not match its content', object);
  return plain;
}
