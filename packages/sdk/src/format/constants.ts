/**
 * Constants of repository format version 1. Changing any of them changes the format:
 * bump {@link FORMAT_VERSION} and keep decoders for the old value.
 *
 * Overview of a repository (object names in the store):
 *
 *   config                          clear header + key check value      (config.ts)
 *   data/<2 hex>/<64 hex>           pack: sealed blobs + sealed header  (pack.ts)
 *   index/<64 hex>                  sealed index: blob id -> pack entry (pack.ts)
 *   snapshots/<64 hex>              sealed snapshot                     (snapshot.ts)
 *   keys/<32 hex>                   key slot: wraps the backup key      (key-slot.ts)
 *   keys/manifest                   sealed list of the key slots        (key-slot.ts)
 *
 * The 64 hex digits of every pack, index and snapshot name are the SHA-256 of the object's
 * stored bytes, so a swapped or altered object is caught from its name alone. Blobs (file
 * chunks and directory trees) live inside packs and are named by blob id =
 * HMAC-SHA256(blob-id subkey, plaintext).
 *
 * Browser-safe: no `node:` imports.
 */

/** Repository format version written by this build and the only one it reads. */
export const FORMAT_VERSION = 1;

/** Bytes of the random repository id chosen at init (HKDF salt, bound into every AD). */
export const REPO_ID_BYTES = 16;
/** Bytes of a blob id, pack id, index id, snapshot id (SHA-256 / HMAC-SHA256 output). */
export const ID_BYTES = 32;
/** Bytes of every subkey. */
export const SUBKEY_BYTES = 32;
/** AES-256-GCM nonce: 96 random bits per sealed object. */
export const NONCE_BYTES = 12;
/** AES-256-GCM tag. */
export const TAG_BYTES = 16;
/** Nonce + tag: what sealing adds to a plaintext. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/**
 * HKDF-SHA256 `info` prefix; the full info of a subkey is this prefix followed by the
 * label, e.g. `backvault/v1/data`. IKM is the 32-byte backup key, salt is the repo id.
 */
export const HKDF_INFO_PREFIX = 'backvault/v1/';

/** Subkey labels. Each subkey has exactly one use. */
export const SUBKEY_LABELS = {
  /** HMAC key of the key check value in `config`. */
  keyCheck: 'key-check',
  /** HMAC key naming blobs: blob id = HMAC-SHA256(key, plaintext). */
  blobId: 'blob-id',
  /** AES-256-GCM key of data blobs (file chunks). */
  data: 'data',
  /** AES-256-GCM key of tree blobs, pack headers, index and snapshot objects. */
  meta: 'meta',
  /** Seed of the keyed gear table of content-defined chunking (writer-side only). */
  chunker: 'chunker',
} as const;

/** The name of a subkey. */
export type SubkeyLabel = keyof typeof SUBKEY_LABELS;

/**
 * Object kinds bound into the associated data of every sealed object, so that no sealed
 * object can be presented as another kind.
 */
export const ObjectKind = {
  DATA_BLOB: 1,
  TREE_BLOB: 2,
  PACK_HEADER: 3,
  INDEX: 4,
  SNAPSHOT: 5,
  /** A repository lock (see src/backup/repository/lock.ts). */
  LOCK: 6,
  /** A key slot's wrapped backup key (see key-slot.ts; AD also binds the slot header). */
  KEY_SLOT: 7,
  /** The sealed key slot manifest `keys/manifest` (see key-slot.ts). */
  KEY_MANIFEST: 8,
} as const;

/** One of {@link ObjectKind}. */
export type ObjectKindValue = (typeof ObjectKind)[keyof typeof ObjectKind];

/** The blob kinds (what a pack holds). */
export type BlobKind = typeof ObjectKind.DATA_BLOB | typeof ObjectKind.TREE_BLOB;

/** Compression of a blob's plaintext before sealing. */
export const Compression = {
  NONE: 0,
  /** RFC 1951 raw deflate (no zlib or gzip header). */
  DEFLATE_RAW: 1,
  /** RFC 7932 Brotli stream. */
  BROTLI: 2,
} as const;

/** One of {@link Compression}. */
export type CompressionValue = (typeof Compression)[keyof typeof Compression];

/** True when `v` is a blob kind. */
export function isBlobKind(v: number): v is BlobKind {
  return v === ObjectKind.DATA_BLOB || v === ObjectKind.TREE_BLOB;
}

/** True when `v` is a known compression. */
export function isCompression(v: number): v is CompressionValue {
  return v === Compression.NONE || v === Compression.DEFLATE_RAW || v === Compression.BROTLI;
}

/** Largest plaintext of one blob the format allows (decoders reject more). */
export const MAX_BLOB_RAW_BYTES = 64 * 1024 * 1024;

/** Object name prefixes. */
export const PREFIX = {
  config: 'config',
  data: 'data/',
  index: 'index/',
  snapshots: 'snapshots/',
  locks: 'locks/',
  keys: 'keys/',
} as const;
