/**
 * The key schedule and the sealing primitive, asynchronous, over a {@link FormatCrypto}:
 * WebCrypto by default where the engine has it (browsers, Node), or any crypto provider of
 * the engine (`nodeCrypto`, `nobleCrypto()` on Hermes, which has no WebCrypto). Every
 * provider gives the same bytes (tests check them against each other and the vectors).
 *
 *   subkey(label) = HKDF-SHA256(ikm = backup key, salt = repo id,
 *                               info = "backvault/v1/" || label, length = 32)
 *
 * with the labels of {@link SUBKEY_LABELS}. Sealing is AES-256-GCM with a 96-bit random
 * nonce and a 128-bit tag: sealed = nonce || ciphertext || tag (see sealed.ts for the AD).
 */
import { CorruptBackupError, UsageError } from '../errors.js';
import { toHex, utf8 } from './bytes.js';
import {
  HKDF_INFO_PREFIX,
  NONCE_BYTES,
  SEAL_OVERHEAD,
  SUBKEY_BYTES,
  SUBKEY_LABELS,
  type SubkeyLabel,
} from './constants.js';
import { keyCheckMessage } from './config.js';

/**
 * The crypto the format's asynchronous functions (key schedule, sealing, key slots) run
 * on: HKDF-SHA256, HMAC-SHA256, SHA-256, AES-256-GCM and random bytes. The same methods as
 * the engine's `EngineCrypto`, so every engine provider (`nodeCrypto`, `nobleCrypto()`) is
 * one; `webFormatCrypto()` (backvault/format) is WebCrypto's, the default.
 */
export interface FormatCrypto {
  sha256(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  hkdfSha256(
    ikm: Uint8Array,
    salt: Uint8Array,
    info: Uint8Array,
    length: number,
  ): Uint8Array | Promise<Uint8Array>;
  /** AES-256-GCM: ciphertext || 16-byte tag of `plain` written into `out` at `at`. */
  aesGcmSealInto(
    key: Uint8Array,
    nonce: Uint8Array,
    ad: Uint8Array,
    plain: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void | Promise<void>;
  /** AES-256-GCM decryption of ciphertext || tag; `undefined` when it does not authenticate. */
  aesGcmOpen(
    key: Uint8Array,
    nonce: Uint8Array,
    ad: Uint8Array,
    sealed: Uint8Array,
  ): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Cryptographically secure random bytes. */
  randomBytes(n: number): Uint8Array;
}

// WebCrypto's typings want ArrayBuffer-backed views; copy when needed.
function buf(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? (b as Uint8Array<ArrayBuffer>) : new Uint8Array(b);
}

/**
 * WebCrypto (`globalThis.crypto.subtle`) as a {@link FormatCrypto}: the default of every
 * function here that takes one.
 * @throws UsageError when the engine has no WebCrypto (React Native's Hermes): pass the
 *   engine's crypto provider (`nobleCrypto()`) instead.
 */
export function webFormatCrypto(): FormatCrypto {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  const subtle = c?.subtle;
  if (!c || !subtle)
    throw new UsageError(
      'this JavaScript engine has no WebCrypto (crypto.subtle)',
      'Pass a crypto provider (e.g. nobleCrypto() from backvault/engine) where a function takes one.',
    );
  const aes = (key: Uint8Array, use: KeyUsage) =>
    subtle.importKey('raw', buf(key), 'AES-GCM', false, [use]);
  return {
    sha256: async (data) => new Uint8Array(await subtle.digest('SHA-256', buf(data))),
    async hmacSha256(key, data) {
      const k = await subtle.importKey('raw', buf(key), { name: 'HMAC', hash: 'SHA-256' }, false, [
        'sign',
      ]);
      return new Uint8Array(await subtle.sign('HMAC', k, buf(data)));
    },
    async hkdfSha256(ikm, salt, info, length) {
      const k = await subtle.importKey('raw', buf(ikm), 'HKDF', false, ['deriveBits']);
      const bits = await subtle.deriveBits(
        { name: 'HKDF', hash: 'SHA-256', salt: buf(salt), info: buf(info) },
        k,
        length * 8,
      );
      return new Uint8Array(bits);
    },
    async aesGcmSealInto(key, nonce, ad, plain, out, at) {
      const ct = await subtle.encrypt(
        { name: 'AES-GCM', iv: buf(nonce), additionalData: buf(ad), tagLength: 128 },
        await aes(key, 'encrypt'),
        buf(plain),
      );
      out.set(new Uint8Array(ct), at);
    },
    async aesGcmOpen(key, nonce, ad, sealed) {
      const k = await aes(key, 'decrypt');
      try {
        const pt = await subtle.decrypt(
          { name: 'AES-GCM', iv: buf(nonce), additionalData: buf(ad), tagLength: 128 },
          k,
          buf(sealed),
        );
        return new Uint8Array(pt);
      } catch {
        return undefined;
      }
    },
    randomBytes(n) {
      const out = new Uint8Array(n);
      // getRandomValues fills at most 65536 bytes per call.
      for (let i = 0; i < n; i += 65536) c.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
      return out;
    },
  };
}

/** HKDF info bytes for a subkey label. */
export function subkeyInfo(label: SubkeyLabel): Uint8Array {
  return utf8(HKDF_INFO_PREFIX + SUBKEY_LABELS[label]);
}

/** Derive one 32-byte subkey (HKDF-SHA256; WebCrypto unless `crypto` is given). */
export async function deriveSubkey(
  backupKey: Uint8Array,
  repoId: Uint8Array,
  label: SubkeyLabel,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<Uint8Array> {
  return crypto.hkdfSha256(backupKey, repoId, subkeyInfo(label), SUBKEY_BYTES);
}

/** HMAC-SHA256 (WebCrypto unless `crypto` is given). */
export async function hmacSha256(
  key: Uint8Array,
  message: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<Uint8Array> {
  return crypto.hmacSha256(key, message);
}

/** SHA-256 as lowercase hex (names of packs, indexes and snapshots). */
export async function sha256Hex(
  data: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<string> {
  return toHex(await crypto.sha256(data));
}

/** The key check value stored in `config` for this key and repo id. */
export async function keyCheckValue(
  backupKey: Uint8Array,
  repoId: Uint8Array,
  version: number,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<Uint8Array> {
  const k = await deriveSubkey(backupKey, repoId, 'keyCheck', crypto);
  return hmacSha256(k, keyCheckMessage(version, repoId), crypto);
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

/**
 * Seal with AES-256-GCM: nonce || ciphertext || tag (WebCrypto unless `crypto` is given).
 * `nonce` is for test vectors only; default random.
 */
export async function sealWeb(
  key: Uint8Array,
  ad: Uint8Array,
  plain: Uint8Array,
  nonce?: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<Uint8Array> {
  const iv = nonce ?? crypto.randomBytes(NONCE_BYTES);
  if (iv.length !== NONCE_BYTES) throw new TypeError('a nonce is 12 bytes');
  const out = new Uint8Array(SEAL_OVERHEAD + plain.length);
  out.set(iv, 0);
  await crypto.aesGcmSealInto(key, iv, ad, plain, out, NONCE_BYTES);
  return out;
}

/**
 * Open an AES-256-GCM sealed object (WebCrypto unless `crypto` is given).
 * @throws CorruptBackupError when authentication fails or the input is too short.
 */
export async function openWeb(
  key: Uint8Array,
  ad: Uint8Array,
  sealed: Uint8Array,
  object?: string,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<Uint8Array> {
  if (sealed.length < SEAL_OVERHEAD)
    throw new CorruptBackupError('sealed object too short', object);
  const pt = await crypto.aesGcmOpen(
    key,
    sealed.subarray(0, NONCE_BYTES),
    ad,
    sealed.subarray(NONCE_BYTES),
  );
  if (pt === undefined) throw new CorruptBackupError('authentication failed', object);
  return pt;
}
