/**
 * What Hermes 0.12 (the `hermes-engine-cli` binary) lacks of the standard globals the
 * device SDK uses, in pure JS, installed before anything else of the phone bundle runs
 * (test/phone/hermes-main.ts imports this first). A React Native app gets most of these
 * from React Native itself (console, performance, TextEncoder since RN 0.74) and the rest
 * from the usual polyfill packages; the README ("What runs where") lists them.
 *
 * Installed only where missing: console, performance.now, Promise.allSettled,
 * Array.prototype.at, Symbol.asyncIterator, TextEncoder, TextDecoder (UTF-8; `fatal` and
 * `ignoreBOM` honoured, as src/format/bytes.ts relies on strict decoding).
 */
type Print = (...args: unknown[]) => void;
const g = globalThis as unknown as Record<string, unknown> & { print?: Print };

export const installed: string[] = [];

function define(target: object, name: PropertyKey, value: unknown): void {
  Object.defineProperty(target, name, { value, writable: true, configurable: true });
}

if (typeof g.console === 'undefined') {
  const print: Print = g.print ?? (() => {});
  const line = (...a: unknown[]): void => print(a.map((x) => String(x)).join(' '));
  g.console = { log: line, error: line, warn: line, info: line, debug: line };
  installed.push('console');
}

if (typeof g.performance === 'undefined') {
  g.performance = { now: () => Date.now() };
  installed.push('performance.now');
}

if (typeof g.setInterval === 'undefined' && typeof g.setTimeout === 'function') {
  // On setTimeout: each tick schedules the next; clearInterval stops the chain.
  const timers = new Map<number, unknown>();
  let next = 1;
  const setTimeout = g.setTimeout as (fn: () => void, ms: number) => unknown;
  const clearTimeout = g.clearTimeout as (t: unknown) => void;
  g.setInterval = (fn: () => void, ms: number) => {
    const id = next++;
    const tick = (): void => {
      timers.set(id, setTimeout(tick, ms));
      fn();
    };
    timers.set(id, setTimeout(tick, ms));
    return id;
  };
  g.clearInterval = (id: number) => {
    if (timers.has(id)) clearTimeout(timers.get(id));
    timers.delete(id);
  };
  installed.push('setInterval');
}

if (typeof (Promise as unknown as { allSettled?: unknown }).allSettled !== 'function') {
  define(Promise, 'allSettled', (items: Iterable<unknown>) =>
    Promise.all(
      Array.from(items, (p) =>
        Promise.resolve(p).then(
          (value) => ({ status: 'fulfilled', value }),
          (reason: unknown) => ({ status: 'rejected', reason }),
        ),
      ),
    ),
  );
  installed.push('Promise.allSettled');
}

if (typeof (Array.prototype as unknown as { at?: unknown }).at !== 'function') {
  define(Array.prototype, 'at', function (this: unknown[], i: number) {
    const k = Math.trunc(i) || 0;
    return this[k < 0 ? this.length + k : k];
  });
  installed.push('Array.prototype.at');
}

if (typeof (Symbol as unknown as { asyncIterator?: unknown }).asyncIterator !== 'symbol') {
  define(Symbol, 'asyncIterator', Symbol.for('Symbol.asyncIterator'));
  installed.push('Symbol.asyncIterator');
}

function utf8Encode(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else c = 0xfffd;
    } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else
      out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

/** UTF-8 decoding as the WHATWG Encoding standard does it (maximal subparts → U+FFFD). */
function utf8Decode(b: Uint8Array, fatal: boolean): string {
  let s = '';
  const bad = (): void => {
    if (fatal) throw new TypeError('The encoded data was not valid for encoding utf-8');
    s += '\ufffd';
  };
  for (let i = 0; i < b.length;) {
    const c = b[i] as number;
    if (c < 0x80) {
      s += String.fromCharCode(c);
      i++;
      continue;
    }
    let need: number;
    let cp: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      cp = c & 0xf;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      cp = c & 0x7;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else {
      bad();
      i++;
      continue;
    }
    let j = 1;
    for (; j <= need; j++) {
      const d = b[i + j];
      if (d === undefined || d < lo || d > hi) break;
      cp = (cp << 6) | (d & 0x3f);
      lo = 0x80;
      hi = 0xbf;
    }
    if (j <= need) {
      bad();
      i += j;
      continue;
    }
    i += need + 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      s += String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else s += String.fromCharCode(cp);
  }
  return s;
}

if (typeof g.TextEncoder === 'undefined') {
  g.TextEncoder = function TextEncoder(this: { encoding: string }) {
    this.encoding = 'utf-8';
  };
  (g.TextEncoder as { prototype: object }).prototype = {
    encode: (s = '') => utf8Encode(String(s)),
  };
  installed.push('TextEncoder');
}

if (typeof g.TextDecoder === 'undefined') {
  g.TextDecoder = function TextDecoder(
    this: { fatal: boolean; ignoreBOM: boolean },
    label = 'utf-8',
    opts: { fatal?: boolean; ignoreBOM?: boolean } = {},
  ) {
    if (!/^utf-?8$/i.test(label)) throw new RangeError(`unsupported encoding ${label}`);
    this.fatal = opts.fatal === true;
    this.ignoreBOM = opts.ignoreBOM === true;
  };
  (g.TextDecoder as { prototype: object }).prototype = {
    decode(this: { fatal: boolean; ignoreBOM: boolean }, input?: ArrayBufferView | ArrayBuffer) {
      if (input === undefined) return '';
      const b =
        input instanceof Uint8Array
          ? input
          : ArrayBuffer.isView(input)
            ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
            : new Uint8Array(input);
      const skip = !this.ignoreBOM && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
      return utf8Decode(b.subarray(skip), this.fatal);
    },
  };
  installed.push('TextDecoder');
}
