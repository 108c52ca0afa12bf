/**
 * The Node crypto provider (platform/types.ts: EngineCrypto): node:crypto and node:zlib,
 * synchronous, so it runs inside the worker threads' loops. Node-only.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants as zc,
  deflateRawSync,
  inflateRawSync,
} from 'node:zlib';
import { Compression, TAG_BYTES, type CompressionValue } from '../../format/index.js';
import type { BlobCompression, EngineCrypto } from '../platform/types.js';

/** Cipher updates of this size: Node allocates each update's output, and small short-lived
 * outputs are both faster (~2.3 vs ~1.1 GB/s at 1 MiB) and reclaimed sooner. */
const UPDATE_BYTES = 64 * 1024;

/**
 * Brotli quality 0 (~300 MB/s at ratio 0.54 on 32 KiB pages of the bench chat database,
 * 2026-11-24) or raw deflate level 1 (~105 MB/s at 0.50): see blob-codec.ts.
 */
export const nodeCompression: BlobCompression = {
  write: Compression.BROTLI,
  reads: [Compression.DEFLATE_RAW, Compression.BROTLI],
  compress(c: CompressionValue, data: Uint8Array): Uint8Array {
    if (c === Compression.DEFLATE_RAW) return deflateRawSync(data, { level: 1, memLevel: 9 });
    return brotliCompressSync(data, {
      params: {
        [zc.BROTLI_PARAM_QUALITY]: 0,
        [zc.BROTLI_PARAM_SIZE_HINT]: data.length,
        [zc.BROTLI_PARAM_MODE]: zc.BROTLI_MODE_GENERIC,
      },
    });
  },
  decompress(c: CompressionValue, body: Uint8Array, maxLength: number): Uint8Array {
    // The cap stops a forged stream from inflating without bound.
    const opts = { maxOutputLength: Math.max(1, maxLength) };
    if (c === Compression.DEFLATE_RAW) return inflateRawSync(body, opts);
    if (c === Compression.BROTLI) return brotliDecompressSync(body, opts);
    throw new Error(`unknown compression ${c}`);
  },
};

export const nodeCrypto: EngineCrypto = {
  name: 'node',
  sha256: (data) => new Uint8Array(createHash('sha256').update(data).digest()),
  hmacSha256(key, data) {
    // Copy out of Node's shared 8 KiB Buffer pool: ids are kept and sent between threads,
    // and a view into the pool would keep (and clone) the whole pool slab.
    const out = new Uint8Array(32);
    out.set(createHmac('sha256', key).update(data).digest());
    return out;
  },
  hkdfSha256: (ikm, salt, info, length) =>
    new Uint8Array(hkdfSync('sha256', ikm, salt, info, length)),
  aesGcmSealInto(key, nonce, ad, plain, out, at) {
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(ad);
    let o = at;
    for (let i = 0; i < plain.length; i += UPDATE_BYTES) {
      const ct = c.update(plain.subarray(i, Math.min(plain.length, i + UPDATE_BYTES)));
      out.set(ct, o);
      o += ct.length;
    }
    const fin = c.final();
    out.set(fin, o);
    o += fin.length;
    out.set(c.getAuthTag(), o);
  },
  aesGcmOpen(key, nonce, ad, sealed) {
    try {
      const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
      d.setAAD(ad);
      d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const a = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      const b = d.final();
      if (b.length === 0) return new Uint8Array(a.buffer, a.byteOffset, a.length);
      return new Uint8Array(Buffer.concat([a, b]));
    } catch {
      return undefined;
    }
  },
  randomBytes: (n) => randomBytes(n),
  equal: (a, b) => a.length === b.length && timingSafeEqual(a, b),
  compression: nodeCompression,
};
