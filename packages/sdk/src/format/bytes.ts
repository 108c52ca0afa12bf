/**
 * Byte helpers shared by every encoder and decoder of the repository format.
 *
 * All integers in backvault objects are little-endian (the only big-endian integer the
 * engine ever reads is SQLite's own page size, which is not part of our format). Decoders
 * read through {@link ByteReader}, which turns every out-of-bounds or malformed read into a
 * `CorruptBackupError`: a decoder fed arbitrary bytes never throws anything else.
 *
 * Browser-safe: no `node:` imports.
 */
import { CorruptBackupError } from '../errors.js';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * The i64 range, as literals: `2n ** 63n` is lowered to Math.pow by bundlers that target
 * older engines, which throws on BigInts (Hermes, React Native's engine, failed at load).
 */
const I64_MIN = -9223372036854775808n;
const I64_MAX = 9223372036854775807n;

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  // join, not `+=`: concatenation builds a rope of ~30 cons-string nodes per 64-digit id
  // (~1 KB), and ids kept in sets and maps stayed ropes — measured: 45 MB of cons strings in
  // one worker after 100,000 small files. join makes one flat string (~80 bytes).
  const out = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = HEX[bytes[i] as number] as string;
  return out.join('');
}

/**
 * Bytes of a lowercase or uppercase hex string.
 * @throws TypeError when `hex` is not an even number of hex digits (a programming error).
 */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError('not a hex string');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** True when `s` is exactly `length` bytes written as lowercase hex. */
export function isLowerHex(s: string, length: number): boolean {
  return s.length === 2 * length && /^[0-9a-f]*$/.test(s);
}

/** Concatenation of `parts` into one new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Byte-wise equality (not constant-time: use only on public values such as ids). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic comparison of byte strings (the sort order of tree entries). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** A growable little-endian writer. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Append one byte. */
  u8(v: number): this {
    this.reserve(1);
    this.view.setUint8(this.len, v);
    this.len += 1;
    return this;
  }

  /** Append a little-endian u16. */
  u16(v: number): this {
    this.reserve(2);
    this.view.setUint16(this.len, v, true);
    this.len += 2;
    return this;
  }

  /** Append a little-endian u32. */
  u32(v: number): this {
    this.reserve(4);
    this.view.setUint32(this.len, v, true);
    this.len += 4;
    return this;
  }

  /** Append a little-endian u64 given as a safe non-negative integer. */
  u64(v: number): this {
    this.reserve(8);
    this.view.setBigUint64(this.len, BigInt(v), true);
    this.len += 8;
    return this;
  }

  /**
   * Append a little-endian two's-complement i64.
   * @throws RangeError outside [-2^63, 2^63): DataView would wrap it around silently (an
   *   mtime after 2262 became one before 1677).
   */
  i64(v: bigint): this {
    if (v < I64_MIN || v > I64_MAX) throw new RangeError(`${v} does not fit an i64`);
    this.reserve(8);
    this.view.setBigInt64(this.len, v, true);
    this.len += 8;
    return this;
  }

  /** Append raw bytes. */
  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** The bytes written so far (a copy-free view that stays valid until the next write). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/**
 * A bounds-checked little-endian reader. Every failure is a `CorruptBackupError`
 * naming `object`.
 */
export class ByteReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly object?: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** @throws CorruptBackupError with `what` and the object name. */
  fail(what: string): never {
    throw new CorruptBackupError(what, this.object);
  }

  private need(n: number): number {
    if (n > this.buf.length - this.pos) this.fail('object is truncated');
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** @throws CorruptBackupError when truncated. */
  u8(): number {
    return this.view.getUint8(this.need(1));
  }

  /** @throws CorruptBackupError when truncated. */
  u16(): number {
    return this.view.getUint16(this.need(2), true);
  }

  /** @throws CorruptBackupError when truncated. */
  u32(): number {
    return this.view.getUint32(this.need(4), true);
  }

  /** A u64 that must fit a safe integer. @throws CorruptBackupError otherwise. */
  u64(): number {
    const v = this.view.getBigUint64(this.need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail('integer out of range');
    return Number(v);
  }

  /** @throws CorruptBackupError when truncated. */
  i64(): bigint {
    return this.view.getBigInt64(this.need(8), true);
  }

  /** `n` bytes (a view into the input). @throws CorruptBackupError when truncated. */
  bytes(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }

  /** `n` bytes of strict UTF-8. @throws CorruptBackupError when truncated or not UTF-8. */
  utf8(n: number): string {
    const b = this.bytes(n);
    try {
      return strictDecoder.decode(b);
    } catch {
      return this.fail('invalid UTF-8');
    }
  }

  /** @throws CorruptBackupError when bytes are left over. */
  end(): void {
    if (this.pos !== this.buf.length) this.fail('unexpected trailing bytes');
  }
}
