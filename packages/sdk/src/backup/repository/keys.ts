/**
 * node:crypto implementation of the format's key schedule and sealing (see
 * src/format/key-schedule.ts for the WebCrypto reference; both give identical bytes).
 * The engine uses node:crypto because WebCrypto's async API is much slower with many
 * small operations in flight, and node:crypto runs synchronously inside worker threads.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
} from 'node:crypto';
import { CorruptBackupError } from '../../errors.js';
import {
  NONCE_BYTES,
  SEAL_OVERHEAD,
  SUBKEY_BYTES,
  TAG_BYTES,
  keyCheckMessage,
  subkeyInfo,
  type SubkeyLabel,
} from '../../format/index.js';

/** The subkeys of one repository, derived once per operation. */
export interface RepoKeys {
  repoId: Uint8Array;
  keyCheck: Uint8Array;
  blobId: Uint8Array;
  data: Uint8Array;
  meta: Uint8Array;
  chunker: Uint8Array;
}

/** HKDF-SHA256 subkey (node:crypto). */
export function deriveSubkeyNode(
  backupKey: Uint8Array,
  repoId: Uint8Array,
  label: SubkeyLabel,
): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', backupKey, repoId, subkeyInfo(label), SUBKEY_BYTES));
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

/** HMAC-SHA256. */
export function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  // Copy out of Node's shared 8 KiB Buffer pool: ids are kept and sent between threads, and
  // a view into the pool would keep (and clone) the whole pool slab.
  const out = new Uint8Array(32);
  out.set(createHmac('sha256', key).update(data).digest());
  return out;
}

/** The key check value of `config`. */
export function keyCheckValueNode(keys: RepoKeys, version: number): Uint8Array {
  return hmac(keys.keyCheck, keyCheckMessage(version, keys.repoId));
}

/** SHA-256 as lowercase hex. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** AES-256-GCM seal: nonce || ciphertext || tag, in one freshly allocated buffer. */
export function seal(key: Uint8Array, ad: Uint8Array, plain: Uint8Array): Uint8Array {
  const out = new Uint8Array(plain.length + SEAL_OVERHEAD);
  const nonce = randomBytes(NONCE_BYTES);
  out.set(nonce, 0);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(ad);
  const a = c.update(plain);
  out.set(a, NONCE_BYTES);
  const b = c.final();
  out.set(b, NONCE_BYTES + a.length);
  out.set(c.getAuthTag(), NONCE_BYTES + a.length + b.length);
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
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES), {
      authTagLength: TAG_BYTES,
    });
    d.setAAD(ad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const a = d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
    const b = d.final();
    if (b.length === 0) return new Uint8Array(a.buffer, a.byteOffset, a.length);
    return new Uint8Array(Buffer.concat([a, b]));
  } catch {
    throw new CorruptBackupError('authentication failed', object);
  }
}
