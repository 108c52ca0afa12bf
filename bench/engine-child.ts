/**
 * One measured step of bench/run.ts, in a process of its own: a backup or a restore through
 * the engine's public API on a local directory store, peak RSS read at the end.
 *
 * It imports the engine and the local store and nothing else of the bench (the chat
 * generator loads better-sqlite3 and more), so the peak RSS it reports is the engine's.
 * The key comes through the environment (BACKVAULT_BENCH_KEY), never argv, which any user
 * can read in ps.
 *
 * Usage (by run.ts): node bench/engine-child.js REQUEST.json
 */
import { readFile, writeFile } from 'node:fs/promises';
import type {
  BackupOptions,
  BackupResult,
  RestoreOptions,
  RestoreResult,
} from '#sdk/backup/api.js';
import { LocalStorage } from '#sdk/storage/node/local.js';

/** What run.ts asks for. */
export interface ChildRequest {
  op: 'backup' | 'restore';
  repo: string;
  statePath: string;
  source?: string;
  target?: string;
  workers?: number;
  /** Restore only: `false` makes nothing durable (restic's restore syncs nothing). */
  durable?: boolean;
  resultPath: string;
}

interface Engine {
  backup(opts: BackupOptions): Promise<BackupResult>;
  restore(opts: RestoreOptions): Promise<RestoreResult>;
}

// Loaded at run time so that this file compiles while the engine is being changed; the types
// still come from src/backup/api.ts.
const ENGINE_URL = new URL('../../packages/sdk/dist/backup/index.js', import.meta.url);

async function main(requestPath: string): Promise<void> {
  const req = JSON.parse(await readFile(requestPath, 'utf8')) as ChildRequest;
  const backupKey = Uint8Array.from(Buffer.from(process.env.BACKVAULT_BENCH_KEY ?? '', 'hex'));
  const engine = (await import(ENGINE_URL.href)) as Engine;
  const storage = new LocalStorage(req.repo);
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  let result: BackupResult | RestoreResult;
  try {
    const common = { storage, backupKey, statePath: req.statePath };
    const workers = req.workers === undefined ? {} : { workers: req.workers };
    result =
      req.op === 'backup'
        ? await engine.backup({ init: true, ...common, ...workers, source: req.source ?? '' })
        : await engine.restore({
            ...common,
            ...workers,
            target: req.target ?? '',
            ...(req.durable === false ? { durable: false } : {}),
          });
  } finally {
    await storage.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  // maxRSS is in KiB on Linux.
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  await writeFile(req.resultPath, JSON.stringify({ seconds, cpuSeconds, peakRssMiB, result }));
}

const requestPath = process.argv[2];
if (requestPath === undefined) {
  console.error('usage: node bench/engine-child.js REQUEST.json');
  process.exit(2);
}
await main(requestPath);
