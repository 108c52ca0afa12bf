/**
 * Blob compression in pure JS, for `nobleCrypto({ compression })` where there is no
 * node:zlib (Hermes): deflate-raw with fflate (both ways), Brotli decoding with
 * devongovett's `brotli/decompress` (it has no encoder worth using; a phone writes
 * deflate-raw, and reads the Brotli blobs a desktop wrote). The SDK depends on neither: an
 * app plugs this in itself — the README's React Native recipe is this file.
 *
 * A blob records its raw length; neither decoder may produce more (the engine passes it as
 * `maxLength`), so a decompression bomb costs at most the cap and fails (the engine reports
 * it as CORRUPT):
 * - fflate inflates the body in 4 KiB steps and stops as soon as the output passes the cap.
 * - brotli 2.1.0's public `decompress(body, size)` does NOT honour its size: it grows its
 *   output buffer to whatever each meta-block declares (up to 16 MiB per meta-block, a few
 *   bytes of input each), so a small body can demand gigabytes. Its decoder loop
 *   (`BrotliDecompress(input, output)` in dec/decode.js, which the package's exports map
 *   hides) is therefore driven here with an output that refuses to grow past the cap: at
 *   most the cap plus one meta-block (16 MiB) and Brotli's window (16 MiB) are allocated.
 *
 * Used by the Hermes run (hermes-main.ts) and by test/backup/platform.test.ts on Node.
 */
// The package's exports map has only `brotli/decompress`, whose size cap does not hold
// (above); the same package's decoder loop, by path (from dist/test/phone/ at run time).
// A supported way was looked for (session 13) and there is none: brotli 2.1.0's public API
// is `compress` and `decompress(buffer, outSize?)` alone — no streaming decoder, no output
// callback, no option — and `decompress` allocates each meta-block's declared length before
// decoding it, so no input or `outSize` bounds its memory. The other pure-JS decoders on
// npm are young (brotli-lib 0.0.7 documents a `maxOutputSize`, unreviewed here) and
// Hermes has no WebAssembly for the wasm ones. The deep import stays, pinned by the bomb
// test in test/backup/platform.test.ts (CORRUPT, peak memory < 128 MiB over 1 GiB of
// zeros), which fails if a brotli release changes this loop's input/output contract.
// @ts-expect-error -- brotli ships no types for its dec/ modules
import { BrotliDecompress } from '../../../node_modules/brotli/dec/decode.js';
import { Inflate, deflateSync } from 'fflate';
import { Compression, type CompressionValue } from '#sdk/format/index.js';
import type { BlobCompression } from '#sdk/backup/platform/types.js';

/** Compressed bytes fed to fflate per step (one step inflates to at most ~1032× this). */
const INFLATE_STEP = 4 * 1024;

/** Raw inflate of `body`, failing once the output would pass `maxLength` bytes. */
export function inflateRawCapped(body: Uint8Array, maxLength: number): Uint8Array {
  const out = new Uint8Array(maxLength);
  let n = 0;
  let ended = false;
  const inflater = new Inflate((chunk, final) => {
    if (n + chunk.length > maxLength) throw new Error('inflates beyond its recorded length');
    out.set(chunk, n);
    n += chunk.length;
    if (final) ended = true;
  });
  if (body.length === 0) inflater.push(body, true);
  for (let i = 0; i < body.length; i += INFLATE_STEP) {
    const end = Math.min(body.length, i + INFLATE_STEP);
    inflater.push(body.subarray(i, end), end === body.length);
  }
  if (!ended) throw new Error('deflate stream did not end');
  return out.subarray(0, n);
}

type Decompress = (input: unknown, output: unknown) => void;

/** Brotli-decode `body`, failing once the output would pass `maxLength` bytes. */
export function brotliDecompressCapped(body: Uint8Array, maxLength: number): Uint8Array {
  const out = new Uint8Array(maxLength);
  let n = 0;
  let at = 0;
  const input = {
    read(buf: Uint8Array, i: number, count: number): number {
      const k = Math.min(count, body.length - at);
      buf.set(body.subarray(at, at + k), i);
      at += k;
      return k;
    },
  };
  const beyond = (): never => {
    throw new Error('decompresses beyond its recorded length');
  };
  const output = {
    // The decoder checks `buffer.length` before each meta-block and replaces `buffer` with
    // a larger copy when the block declares more: refuse that.
    get buffer(): Uint8Array {
      return out;
    },
    set buffer(_grown: Uint8Array) {
      beyond();
    },
    write(buf: Uint8Array, count: number): number {
      if (n + count > maxLength) beyond();
      out.set(buf.subarray(0, count), n);
      n += count;
      return count;
    },
  };
  (BrotliDecompress as Decompress)(input, output);
  return out.subarray(0, n);
}

/** What a phone app gives `nobleCrypto({ compression })`. */
export const jsCompression: BlobCompression = {
  write: Compression.DEFLATE_RAW,
  reads: [Compression.DEFLATE_RAW, Compression.BROTLI],
  compress(method: CompressionValue, data: Uint8Array): Uint8Array {
    if (method !== Compression.DEFLATE_RAW) throw new Error(`cannot write compression ${method}`);
    return deflateSync(data, { level: 1 });
  },
  decompress(method: CompressionValue, body: Uint8Array, maxLength: number): Uint8Array {
    if (method === Compression.DEFLATE_RAW) return inflateRawCapped(body, maxLength);
    if (method === Compression.BROTLI) return brotliDecompressCapped(body, maxLength);
    throw new Error(`unknown compression ${method}`);
  },
};
