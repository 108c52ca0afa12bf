/**
 * A small, fast, seeded PRNG for the benchmark corpus (not for anything secret: the bench
 * only needs the same seed to give the same chat on every machine and Node version).
 *
 * sfc32 seeded through splitmix32: ~200 M numbers/s in V8, good enough statistics for
 * choosing words and sizes, and only 32-bit integer math so results never depend on
 * floating-point details.
 */

/** Deterministic pseudo-random source. */
export interface Rng {
  /** Uniform integer in [0, 2^32). */
  u32(): number;
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * Create a PRNG from a numeric seed and a label, so that independent streams (messages,
 * media sizes, mutation) do not shift each other when one of them changes.
 */
export function createRng(seed: number, label = ''): Rng {
  let h = (seed >>> 0) ^ 0x5bd1e995;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  const mix = splitmix32(h ^ Math.floor(seed / 0x100000000));
  let a = mix();
  let b = mix();
  let c = mix();
  let d = 1;
  const u32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  // Discard the first outputs: sfc32 mixes its seed in over ~12 rounds.
  for (let i = 0; i < 15; i++) u32();
  const next = (): number => u32() / 0x100000000;
  return {
    u32,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
  };
}
