/**
 * The format's key schedule and sealing over the installed crypto provider
 * (platform/types.ts: node:crypto on Node, @noble/* elsewhere; src/format/key-schedule.ts is
 * the WebCrypto reference; all give identical bytes). The engine calls these synchronously,
 * which is why it does not use WebCrypto's async API (much slower with many small
 * operations in flight, and unavailable inside a synchronous worker loop).
 */
import { CorruptBackupError } from '../../errors.js';
import {
  NONCE_BYTES,
  SEAL_OVERHEAD,
  SUBKEY_BYTES,
  keyCheckMessage,
  toHex,
  subkeyInfo,
  type SubkeyLabel,
} from '../../format/index.js';
import { engineCrypto } from '../platform/current.js';

/** The subkeys of one repository, derived once per operation. */
export interface RepoKeys {
  repoId: Uint8Array;
  keyCheck: Uint8Array;
  blobId: Uint8Array;
  data: Uint8Array;
  meta: Uint8Array;
  chunker: Uint8Array;
}

/** HKDF-SHA256 subkey (the installed crypto provider; the name is historical). */
export function deriveSubkeyNode(
  backupKey: Uint8Array,
  repoId: Uint8Array,
  label: SubkeyLabel,
): Uint8Array {
  return engineCrypto().hkdfSha256(backupKey, repoId, subkeyInfo(label), SUBKEY_BYTES);
}

/** All subkeys of a repository. */
export function deriveRepoKeys(backupKey: Uint8Array, repoId: Uint8Array): RepoKeys {
  return {
    repoId: repoId.slice(),
    keyCheck: deriveSubkeyNode(backupKey, repoId, 'keyCheck'),
    blobId: deriveSubkeyNode(backupKey, repoId, 'blobId'),
    data: deriveSubkeyNode(backupKey, repoId, 'data'),
    meta: deriveSubkeyNode(backupKey, repoId, 'meta'),
    chunker: deriveSubkeyNode(backupKey, repoId, 'chunker'),
  };
}

/** HMAC-SHA256 (a fresh 32-byte array, never a view into a shared pool). */
export function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return engineCrypto().hmacSha256(key, data);
}

/** The key check value of `config`. */
export function keyCheckValueNode(keys: RepoKeys, version: number): Uint8Array {
  return hmac(keys.keyCheck, keyCheckMessage(version, keys.repoId));
}

/** SHA-256 as lowercase hex. */
export function sha256Hex(data: Uint8Array): string {
  return toHex(engineCrypto().sha256(data));
}

/** Random bytes from the installed provider. */
export function randomBytes(n: number): Uint8Array {
  return engineCrypto().randomBytes(n);
}

/** Constant-time equality (false for different lengths). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return engineCrypto().equal(a, b);
}

/** AES-256-GCM seal: nonce || ciphertext || tag, in one freshly allocated buffer. */
export function seal(key: Uint8Array, ad: Uint8Array, plain: Uint8Array): Uint8Array {
  const c = engineCrypto();
  const out = new Uint8Array(plain.length + SEAL_OVERHEAD);
  out.set(c.randomBytes(NONCE_BYTES), 0);
  c.aesGcmSealInto(key, out.subarray(0, NONCE_BYTES), ad, plain, out, NONCE_BYTES);
  return out;
}

/**
 * AES-256-GCM open.
 * @throws CorruptBackupError naming `object` when the input is short or fails authentication.
 */
export function open(
  key: Uint8Array,
  ad: Uint8Array,
  sealed: Uint8Array,
  object?: string,
): Uint8Array {
  if (sealed.length < SEAL_OVERHEAD)
    throw new CorruptBackupError('sealed object too short', object);
  let plain: Uint8Array | undefined;
  try {
    plain = engineCrypto().aesGcmOpen(
      key,
      sealed.subarray(0, NONCE_BYTES),
      ad,
      sealed.subarray(NONCE_BYTES),
    );
  } catch {
    plain = undefined;
  }
  if (!plain) throw new CorruptBackupError('authentication failed', object);
  return plain;
}
