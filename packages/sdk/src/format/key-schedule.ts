/**
 * The key schedule and the sealing primitive, with WebCrypto (browser-safe reference
 * implementation; the Node engine uses node:crypto and produces identical bytes — a test
 * checks both against each other).
 *
 *   subkey(label) = HKDF-SHA256(ikm = backup key, salt = repo id,
 *                               info = "backvault/v1/" || label, length = 32)
 *
 * with the labels of {@link SUBKEY_LABELS}. Sealing is AES-256-GCM with a 96-bit random
 * nonce and a 128-bit tag: sealed = nonce || ciphertext || tag (see sealed.ts for the AD).
 */
import { CorruptBackupError } from '../errors.js';
import { concatBytes, toHex, utf8 } from './bytes.js';
import {
  HKDF_INFO_PREFIX,
  NONCE_BYTES,
  SEAL_OVERHEAD,
  SUBKEY_BYTES,
  SUBKEY_LABELS,
  type SubkeyLabel,
} from './constants.js';
import { keyCheckMessage } from './config.js';

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;

// WebCrypto's typings want ArrayBuffer-backed views; copy when needed.
function buf(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? (b as Uint8Array<ArrayBuffer>) : new Uint8Array(b);
}

/** HKDF info bytes for a subkey label. */
export function subkeyInfo(label: SubkeyLabel): Uint8Array {
  return utf8(HKDF_INFO_PREFIX + SUBKEY_LABELS[label]);
}

/** Derive one 32-byte subkey with WebCrypto HKDF-SHA256. */
export async function deriveSubkey(
  backupKey: Uint8Array,
  repoId: Uint8Array,
  label: SubkeyLabel,
): Promise<Uint8Array> {
  const ikm = await subtle().importKey('raw', buf(backupKey), 'HKDF', false, ['deriveBits']);
  const bits = await subtle().deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: buf(repoId), info: buf(subkeyInfo(label)) },
    ikm,
    SUBKEY_BYTES * 8,
  );
  return new Uint8Array(bits);
}

/** HMAC-SHA256 with WebCrypto. */
export async function hmacSha256(key: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  const k = await subtle().importKey('raw', buf(key), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  return new Uint8Array(await subtle().sign('HMAC', k, buf(message)));
}

/** SHA-256 as lowercase hex (names of packs, indexes and snapshots). */
export async function sha256Hex(data: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await subtle().digest('SHA-256', buf(data))));
}

/** The key check value stored in `config` for this key and repo id. */
export async function keyCheckValue(
  backupKey: Uint8Array,
  repoId: Uint8Array,
  version: number,
): Promise<Uint8Array> {
  const k = await deriveSubkey(backupKey, repoId, 'keyCheck');
  return hmacSha256(k, keyCheckMessage(version, repoId));
}

/**
 * Constant-time-style comparison of two MACs (no early exit on the first difference).
 * JavaScript cannot promise constant time; this avoids the obvious leak.
 */
export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

/** Seal with AES-256-GCM (WebCrypto). `nonce` is for test vectors only; default random. */
export async function sealWeb(
  key: Uint8Array,
  ad: Uint8Array,
  plain: Uint8Array,
  nonce?: Uint8Array,
): Promise<Uint8Array> {
  const iv = nonce ?? globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const k = await subtle().importKey('raw', buf(key), 'AES-GCM', false, ['encrypt']);
  const ct = await subtle().encrypt(
    { name: 'AES-GCM', iv: buf(iv), additionalData: buf(ad), tagLength: 128 },
    k,
    buf(plain),
  );
  return concatBytes(iv, new Uint8Array(ct));
}

/**
 * Open an AES-256-GCM sealed object (WebCrypto).
 * @throws CorruptBackupError when authentication fails or the input is too short.
 */
export async function openWeb(
  key: Uint8Array,
  ad: Uint8Array,
  sealed: Uint8Array,
  object?: string,
): Promise<Uint8Array> {
  if (sealed.length < SEAL_OVERHEAD)
    throw new CorruptBackupError('sealed object too short', object);
  const k = await subtle().importKey('raw', buf(key), 'AES-GCM', false, ['decrypt']);
  try {
    const pt = await subtle().decrypt(
      {
        name: 'AES-GCM',
        iv: buf(sealed.subarray(0, NONCE_BYTES)),
        additionalData: buf(ad),
        tagLength: 128,
      },
      k,
      buf(sealed.subarray(NONCE_BYTES)),
    );
    return new Uint8Array(pt);
  } catch {
    throw new CorruptBackupError('authentication failed', object);
  }
}
