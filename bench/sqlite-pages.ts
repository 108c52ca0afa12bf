/**
 * Page-change analysis of a SQLite file before and after a mutation: how many 4 KiB pages
 * differ, and into how many distinct aligned blocks of 16/32/64 KiB (and larger) they fall.
 * This is the number that decides the engine's chunk size for databases: a backup that
 * chunks the file in aligned blocks of B bytes stores (blocks touched × B) again.
 *
 * CLI: node dist/bench/sqlite-pages.js BEFORE AFTER [--page-size 4096] [--json] [--cdc]
 * (--cdc adds an emulation of content-defined chunkers: restic-like 1 MiB, 64 KiB, 16 KiB).
 */
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { isMain, numberOption, runMain } from './cli-util.js';
import { createRng } from './prng.js';

/** Block sizes reported by default (bytes). */
export const DEFAULT_BLOCK_SIZES: readonly number[] = [
  16 * 1024,
  32 * 1024,
  64 * 1024,
  128 * 1024,
  256 * 1024,
  1024 * 1024,
];

/** Result of {@link comparePages}. */
export interface PageChangeStats {
  pageSize: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Pages present in both files whose bytes differ. */
  pagesChanged: number;
  /** Pages beyond the end of the old file (the file grew). */
  pagesAppended: number;
  /** Pages of the old file beyond the end of the new one. */
  pagesRemoved: number;
  /** (pagesChanged + pagesAppended) × pageSize. */
  bytesChanged: number;
  /** For each block size: distinct aligned blocks holding a changed or appended page. */
  blocks: { blockSize: number; blocks: number; bytes: number }[];
}

/**
 * Compare two files page by page, streaming (1 MiB reads), so any size works.
 * @throws RangeError when a block size is not a multiple of the page size.
 * @throws Error (ENOENT…) when a file cannot be read.
 */
export async function comparePages(
  before: string,
  after: string,
  pageSize = 4096,
  blockSizes: readonly number[] = DEFAULT_BLOCK_SIZES,
): Promise<PageChangeStats> {
  for (const b of blockSizes) {
    if (b % pageSize !== 0)
      throw new RangeError(`block size ${b} is not a multiple of ${pageSize}`);
  }
  const fa = await open(before, 'r');
  const fb = await open(after, 'r');
  try {
    const sizeA = (await fa.stat()).size;
    const sizeB = (await fb.stat()).size;
    const changed: number[] = [];
    const READ = 1024 * 1024 - ((1024 * 1024) % pageSize);
    const bufA = Buffer.alloc(READ);
    const bufB = Buffer.alloc(READ);
    const common = Math.min(sizeA, sizeB);
    for (let off = 0; off < common; off += READ) {
      const len = Math.min(READ, common - off);
      await fa.read(bufA, 0, len, off);
      await fb.read(bufB, 0, len, off);
      for (let p = 0; p < len; p += pageSize) {
        const end = Math.min(p + pageSize, len);
        if (bufA.compare(bufB, p, end, p, end) !== 0) changed.push((off + p) / pageSize);
      }
    }
    const pagesCommon = Math.ceil(common / pageSize);
    const pagesAppended = Math.max(0, Math.ceil(sizeB / pageSize) - pagesCommon);
    const pagesRemoved = Math.max(0, Math.ceil(sizeA / pageSize) - pagesCommon);
    const all = [...changed];
    for (let p = pagesCommon; p < pagesCommon + pagesAppended; p++) all.push(p);
    const blocks = blockSizes.map((blockSize) => {
      const per = blockSize / pageSize;
      const n = new Set(all.map((p) => Math.floor(p / per))).size;
      return { blockSize, blocks: n, bytes: n * blockSize };
    });
    return {
      pageSize,
      bytesBefore: sizeA,
      bytesAfter: sizeB,
      pagesChanged: changed.length,
      pagesAppended,
      pagesRemoved,
      bytesChanged: all.length * pageSize,
      blocks,
    };
  } finally {
    await fa.close();
    await fb.close();
  }
}

/** Parameters of a content-defined chunker (bytes). */
export interface CdcParams {
  min: number;
  avg: number;
  max: number;
}

/**
 * Like restic's chunker: 512 KiB min, a 20-bit split mask after the minimum (so the mean chunk
 * is ~1.5 MiB), 8 MiB max.
 */
export const RESTIC_LIKE_CDC: CdcParams = {
  min: 512 * 1024,
  avg: 1536 * 1024,
  max: 8 * 1024 * 1024,
};

/** Result of {@link cdcReuse}. */
export interface CdcReuseStats extends CdcParams {
  chunksAfter: number;
  /** Chunks of the new file not among the old file's chunks. */
  chunksNew: number;
  /** Their bytes: what a deduplicating backup with this chunker stores again (uncompressed). */
  bytesNew: number;
}

/**
 * Emulate a content-defined chunker (a gear rolling hash with the given min/average/max, the
 * same family as restic's Rabin and borg's buzhash chunkers) on both files and count the new
 * file's chunks that the old file does not have. Reads both files whole: an analysis tool.
 * @throws RangeError when min/avg/max are out of order.
 * @throws Error when a file cannot be read.
 */
export async function cdcReuse(
  before: string,
  after: string,
  p: CdcParams,
): Promise<CdcReuseStats> {
  if (!(p.min < p.avg && p.avg < p.max)) throw new RangeError('need min < avg < max');
  const gear = new Uint32Array(256);
  const rng = createRng(0x9e37, 'gear');
  for (let i = 0; i < 256; i++) gear[i] = rng.u32();
  // Cut when the top log2(avg - min) bits of the hash are zero: mean chunk ≈ avg.
  // (Hash bits shift out after 32 bytes: the window is the last 32 bytes, like buzhash's.)
  const bits = Math.max(1, Math.round(Math.log2(p.avg - p.min)));
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  const chunks = (data: Buffer): string[] => {
    const out: string[] = [];
    let start = 0;
    while (start < data.length) {
      let end = Math.min(data.length, start + p.max);
      let h = 0;
      for (let i = start + p.min; i < end; i++) {
        h = ((h << 1) + (gear[data[i] as number] as number)) >>> 0;
        if ((h & mask) === 0) {
          end = i + 1;
          break;
        }
      }
      if (start + p.min >= data.length) end = data.length;
      out.push(
        createHash('sha256').update(data.subarray(start, end)).digest('hex') + ':' + (end - start),
      );
      start = end;
    }
    return out;
  };
  const old = new Set(chunks(await readFile(before)));
  const now = chunks(await readFile(after));
  let chunksNew = 0;
  let bytesNew = 0;
  for (const c of now) {
    if (old.has(c)) continue;
    chunksNew++;
    bytesNew += Number(c.slice(c.indexOf(':') + 1));
  }
  return { ...p, chunksAfter: now.length, chunksNew, bytesNew };
}

/** Human-readable report of {@link comparePages} (one line per block size). */
export function formatPageChanges(s: PageChangeStats): string {
  const mb = (n: number): string => (n / 1e6).toFixed(2);
  const kib = (n: number): string => `${n / 1024} KiB`;
  const lines = [
    `database: ${mb(s.bytesBefore)} MB -> ${mb(s.bytesAfter)} MB (${s.pageSize}-byte pages)`,
    `pages changed in place: ${s.pagesChanged}, appended: ${s.pagesAppended}, removed: ${s.pagesRemoved}` +
      ` = ${mb(s.bytesChanged)} MB of changed pages`,
    ...s.blocks.map(
      (b) =>
        `  aligned ${kib(b.blockSize).padStart(9)} blocks touched: ${String(b.blocks).padStart(6)} = ${mb(b.bytes)} MB`,
    ),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'page-size': { type: 'string' },
      json: { type: 'boolean', default: false },
      cdc: { type: 'boolean', default: false },
    },
  });
  const [before, after] = positionals;
  if (before === undefined || after === undefined) {
    console.error('usage: sqlite-pages BEFORE AFTER [--page-size 4096] [--json]');
    process.exitCode = 2;
    return;
  }
  const stats = await comparePages(
    before,
    after,
    numberOption('page-size', values['page-size'], 4096, 512),
  );
  const cdc: CdcReuseStats[] = [];
  if (values.cdc) {
    for (const params of [
      RESTIC_LIKE_CDC,
      { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 },
      { min: 4 * 1024, avg: 16 * 1024, max: 64 * 1024 },
    ]) {
      cdc.push(await cdcReuse(before, after, params));
    }
  }
  if (values.json) {
    console.log(JSON.stringify({ ...stats, ...(values.cdc ? { cdc } : {}) }, null, 2));
    return;
  }
  console.log(formatPageChanges(stats));
  for (const c of cdc) {
    const k = (n: number): string => `${n / 1024}`;
    console.log(
      `  CDC min/avg/max ${k(c.min)}/${k(c.avg)}/${k(c.max)} KiB: ${c.chunksNew} of ${c.chunksAfter} chunks new = ` +
        `${(c.bytesNew / 1e6).toFixed(2)} MB stored again (before compression)`,
    );
  }
}

if (isMain(import.meta.url)) runMain(main);
