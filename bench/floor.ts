/**
 * The CPU floor of a first backup on this machine: the same primitives as the engine, and
 * nothing else — every file of the corpus read in 1 MiB blocks, each block keyed-hashed
 * (HMAC-SHA256), compressed the way the writer does (Brotli quality 0 when a 4 KiB probe
 * shrinks below 90 %, kept when it saves 3 %), and sealed (AES-256-GCM) — on as many worker
 * threads as the machine has cores. No chunker, no packs, no store, no tree: what a backup
 * could not go below with these primitives, so "engine ÷ floor" says how much of the time
 * is the engine's own.
 *
 * CLI: node dist/bench/floor.js DIR [--threads N]   → one JSON line {seconds, cpuSeconds, bytes, …}
 * (run.ts runs it as a child process, several times, beside the engine and restic.)
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { brotliCompressSync, constants as zc } from 'node:zlib';
import { isMain, numberOption, runMain } from './cli-util.js';

/** What one floor run measured. */
export interface FloorMeasure {
  /** Wall seconds from the first read to the last seal. */
  seconds: number;
  /** User + system CPU seconds of the process (all threads). */
  cpuSeconds: number;
  bytes: number;
  files: number;
  threads: number;
  /** Bytes that went through Brotli (the probe said compressing pays). */
  compressedInput: number;
}

const BLOCK = 1024 * 1024;
const PROBE = 4 * 1024;

function brotli(b: Uint8Array): Buffer {
  return brotliCompressSync(b, {
    params: {
      [zc.BROTLI_PARAM_QUALITY]: 0,
      [zc.BROTLI_PARAM_SIZE_HINT]: b.length,
      [zc.BROTLI_PARAM_MODE]: zc.BROTLI_MODE_GENERIC,
    },
  });
}

async function listFiles(dir: string, out: string[] = []): Promise<string[]> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await listFiles(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** One thread's share: files i, i+n, i+2n, … */
async function work(files: readonly string[]): Promise<{ bytes: number; compressedInput: number }> {
  const hmacKey = randomBytes(32);
  const aesKey = randomBytes(32);
  const buf = Buffer.allocUnsafe(BLOCK);
  let bytes = 0;
  let compressedInput = 0;
  for (const path of files) {
    const fh = await open(path, 'r');
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, BLOCK, null);
        if (bytesRead === 0) break;
        const block = buf.subarray(0, bytesRead);
        bytes += bytesRead;
        createHmac('sha256', hmacKey).update(block).digest();
        let body: Uint8Array = block;
        const sample = block.subarray(0, Math.min(PROBE, block.length));
        if (block.length >= 256 && brotli(sample).length < sample.length * 0.9) {
          compressedInput += block.length;
          const z = brotli(block);
          if (z.length < block.length * 0.97) body = z;
        }
        const c = createCipheriv('aes-256-gcm', aesKey, randomBytes(12));
        c.update(body);
        c.final();
        c.getAuthTag();
      }
    } finally {
      await fh.close();
    }
  }
  return { bytes, compressedInput };
}

/** Run the floor over `dir` on `threads` worker threads (in this process). */
export async function measureFloor(dir: string, threads: number): Promise<FloorMeasure> {
  const files = await listFiles(dir);
  const shares = Array.from({ length: threads }, (_, i) =>
    files.filter((_, j) => j % threads === i),
  );
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const results = await Promise.all(
    shares.map(
      (share) =>
        new Promise<{ bytes: number; compressedInput: number }>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: share });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(cpu0);
  return {
    seconds,
    cpuSeconds: (cu.user + cu.system) / 1e6,
    bytes: results.reduce((n, r) => n + r.bytes, 0),
    compressedInput: results.reduce((n, r) => n + r.compressedInput, 0),
    files: files.length,
    threads,
  };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  void work(workerData as string[]).then((r) => port.postMessage(r));
} else if (isMain(import.meta.url)) {
  runMain(async () => {
    const { values, positionals } = parseArgs({
      allowPositionals: true,
      options: { threads: { type: 'string' } },
    });
    const dir = positionals[0];
    if (!dir) throw new Error('usage: node dist/bench/floor.js DIR [--threads N]');
    const threads = Math.round(numberOption('threads', values.threads, cpus().length, 1));
    console.log(JSON.stringify(await measureFloor(dir, threads)));
  });
}
