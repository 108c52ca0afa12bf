/**
 * The pure-JS crypto provider (platform/types.ts: EngineCrypto) on @noble/hashes and
 * @noble/ciphers (audited, no WebAssembly, no WebCrypto): for engines that have neither
 * node:crypto nor a usable WebCrypto — React Native's Hermes above all. Synchronous, so
 * it runs the engine's job loop as node:crypto does. The same bytes as the Node provider
 * (test/backup/platform.test.ts compares them); slower (pure JS AES-GCM).
 *
 * Randomness: `crypto.getRandomValues` (on React Native: react-native-get-random-values or
 * react-native-quick-crypto install it), or a `randomBytes` of the app's.
 *
 * Compression: none by default — blobs are stored as they are, and a blob another device
 * compressed cannot be read until a `compression` is given (README, "What runs where").
 */
import { gcm } from '@noble/ciphers/aes.js';
import { equalBytes } from '@noble/ciphers/utils.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { BlobCompression, EngineCrypto } from './types.js';

/** Options of {@link nobleCrypto}. */
export interface NobleCryptoOptions {
  /** A CSPRNG (default: `globalThis.crypto.getRandomValues`). */
  randomBytes?: (n: number) => Uint8Array;
  /** Blob compression (default: none). */
  compression?: BlobCompression;
}

function webRandom(n: number): Uint8Array {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (typeof c?.getRandomValues !== 'function')
    throw new Error(
      'nobleCrypto: no crypto.getRandomValues on this engine; install react-native-get-random-values or pass randomBytes',
    );
  const out = new Uint8Array(n);
  // getRandomValues fills at most 65536 bytes per call.
  for (let i = 0; i < n; i += 65536) c.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** The pure-JS provider. */
export function nobleCrypto(options: NobleCryptoOptions = {}): EngineCrypto {
  const random = options.randomBytes ?? webRandom;
  return {
    name: 'noble',
    sha256: (data) => sha256(data),
    hmacSha256: (key, data) => hmac(sha256, key, data),
    hkdfSha256: (ikm, salt, info, length) => hkdf(sha256, ikm, salt, info, length),
    aesGcmSealInto(key, nonce, ad, plain, out, at) {
      out.set(gcm(key, nonce, ad).encrypt(plain), at);
    },
    aesGcmOpen(key, nonce, ad, sealed) {
      try {
        return gcm(key, nonce, ad).decrypt(sealed);
      } catch {
        return undefined;
      }
    },
    randomBytes: (n) => random(n),
    equal: (a, b) => a.length === b.length && equalBytes(a, b),
    ...(options.compression ? { compression: options.compression } : {}),
  };
}
