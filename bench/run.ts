/**
 * The backup benchmark of issue 2: first backup, second backup after "a few days" of chat,
 * restore to a fresh directory (verified byte for byte), on the generated chat, local
 * directory store, warm page cache. Each measured step runs in a fresh child process, so its
 * peak RSS is its own. If `restic` is installed, the same steps run with restic on the same
 * corpus in the same run, and the table shows both with ratios.
 *
 * CLI: node dist/bench/run.js [--scale 1] [--runs 3] [--seed 1] [--workdir .tmp/bench]
 *                             [--workers N] [--keep] [--no-restic] [--cpu-prof DIR]
 * Prints a table; writes bench/results/backup-<date>[-scale<S>].json.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFile,
  link,
  mkdir,
  open,
  readFile,
  readdir,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { BackupResult, RestoreResult } from '#sdk/backup/api.js';
import { generateBackupKey } from '#sdk/format/key-encoding.js';
import type { ChildRequest } from './engine-child.js';
import type { FloorMeasure } from './floor.js';
import { isMain, numberOption, runMain } from './cli-util.js';
import { DB_PATH, fixDirMtimes, generateChat, treeSize, type ChatStats } from './gen-chat.js';
import { mutateChat, type MutationStats } from './mutate.js';
import { comparePages, formatPageChanges, type PageChangeStats } from './sqlite-pages.js';
import { diffTrees, hashTree } from './tree-hash.js';

/** Targets of issue 2 (2-core machine, warm cache, local directory store). */
export const TARGETS = {
  firstBackupMBps: 400,
  secondBackupDbNewMB: 10,
  restoreMBps: 400,
  peakRssMiB: 200,
} as const;

/** Targets of issue 17, as ratios measured in the same run (time ÷ time, lower is better). */
export const TARGETS_17 = {
  firstBackupVsRestic: 0.5,
  firstBackupVsFloor: 2,
  restoreVsRestic: 0.5,
  peakRssMiB: 100,
  dbIncrementalVsRestic: 0.1,
} as const;

/** One measured step, as a child process reports it. */
export interface StepMeasure {
  /** Seconds of the operation itself, measured inside the child. */
  seconds: number;
  /** Seconds from spawning the child to its exit (includes Node start-up and imports). */
  wallSeconds: number;
  peakRssMiB: number;
  /** User + system CPU seconds of the step's process (all threads); cores used = cpu / seconds. */
  cpuSeconds?: number;
  /** Source bytes (backup) or restored bytes (restore) divided by `seconds`, in MB/s. */
  mbPerSec: number;
  /** Bytes written to the store (engine: bytesStoredNew; restic: data_added). */
  bytesStoredNew?: number;
  /** Plaintext bytes not already in the repository (engine: bytesNew). */
  bytesNew?: number;
  result?: unknown;
}

/** Measurements of one tool in one run. */
export interface RunMeasure {
  first: StepMeasure;
  second: StepMeasure;
  restore: StepMeasure;
  /**
   * Engine only: the same restore with `durable: false` (nothing fsynced), as restic
   * restores: what durability costs on this machine's disk.
   */
  restoreScratch?: StepMeasure;
  /** second.bytesStoredNew minus the plaintext size of the new photos (random, incompressible). */
  secondDbStoredNewEstimate?: number;
  /** Exact bytes stored new when only the database is backed up before and after the change. */
  dbOnlySecondStoredNew?: number;
  verified: { contentDiffs: number; metadataDiffs: number };
}

const here = dirname(fileURLToPath(import.meta.url));
// Loaded at run time, not imported statically, so the bench harness compiles and its tests run
// while the engine is being written; the types still come from src/backup/api.ts.
const ENGINE_URL = new URL('../../packages/sdk/dist/backup/index.js', import.meta.url);
const MB = 1e6;
const CLI_MAIN = fileURLToPath(new URL('../../packages/cli/dist/cli/main.js', import.meta.url));

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// Parent side.

export interface ChildOutcome {
  seconds: number;
  cpuSeconds?: number;
  wallSeconds: number;
  peakRssMiB: number;
  stdout: string;
  result?: unknown;
}

/** Run a process to completion; peak RSS from GNU time when present, else by polling /proc. */
export async function runProcess(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeFile: string | undefined,
): Promise<{ wallSeconds: number; stdout: string; peakRssMiB: number; cpuSeconds?: number }> {
  const useTime = timeFile !== undefined;
  const argv = useTime ? ['-f', '%M %U %S', '-o', timeFile, cmd, ...args] : args;
  const started = performance.now();
  const child = spawn(useTime ? '/usr/bin/time' : cmd, argv, {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  let hwmKiB = 0;
  const poll = useTime
    ? undefined
    : setInterval(() => {
        readFile(`/proc/${child.pid}/status`, 'utf8')
          .then((s) => {
            const m = /VmHWM:\s+(\d+)/.exec(s);
            if (m?.[1] !== undefined) hwmKiB = Math.max(hwmKiB, Number(m[1]));
          })
          .catch(() => undefined);
      }, 20);
  const code = await new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('close', res);
  });
  const wallSeconds = (performance.now() - started) / 1000;
  if (poll !== undefined) clearInterval(poll);
  if (code !== 0)
    throw new Error(`${cmd} ${args[0] ?? ''} failed (exit ${code}): ${stderr.trim()}`);
  if (!useTime) return { wallSeconds, stdout, peakRssMiB: hwmKiB / 1024 };
  const last = (await readFile(timeFile, 'utf8')).trim().split('\n').pop() ?? '';
  const [rssKiB, user, sys] = last.split(' ').map(Number);
  return {
    wallSeconds,
    stdout,
    peakRssMiB: (rssKiB ?? Number.NaN) / 1024,
    cpuSeconds: (user ?? Number.NaN) + (sys ?? Number.NaN),
  };
}

/** When set (--cpu-prof DIR), every engine child writes V8 CPU profiles (all threads) there. */
let cpuProfileDir: string | undefined;
/**
 * The environment and node flags the `backvault` executable runs with, from its shebang
 * (`#!/usr/bin/env -S NAME=VALUE … node --flag …`): the engine child runs with the same, so
 * the bench measures what the CLI does.
 */
async function cliRuntime(): Promise<{ env: Record<string, string>; nodeArgs: string[] }> {
  const first = (await readFile(CLI_MAIN, 'utf8')).split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S (.*)$/.exec(first);
  if (!m?.[1]) return { env: {}, nodeArgs: [] };
  const words = m[1].trim().split(/\s+/);
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[i] ?? ''); i++) {
    const w = words[i] as string;
    env[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
  }
  if (words[i] !== 'node') throw new Error(`unexpected shebang in ${CLI_MAIN}: ${first}`);
  return { env, nodeArgs: words.slice(i + 1) };
}

let stepNo = 0;

/**
 * Write back every dirty page before a measured step, so that no step pays for an earlier
 * one's writeback — of either tool. restic leaves its restored files dirty; a restore of
 * ours ends with a syncfs of the file system (README.md, session 15), which then wrote back
 * restic's gigabyte as well: in the session-15 run our restores slowed from run to run
 * (1.86, 3.17, 3.58 s) more than restic's. Both tools' durability work stays in their own
 * times (restic fsyncs the packs it writes; its restore syncs nothing).
 */
export function settleDirtyPages(): void {
  spawnSync('sync', [], { stdio: 'ignore' });
}

export async function runEngineStep(
  work: string,
  req: Omit<ChildRequest, 'resultPath'>,
  keyHex: string,
): Promise<ChildOutcome> {
  const resultPath = join(work, `step-${process.pid}-${Date.now()}.json`);
  const requestPath = `${resultPath}.req`;
  await writeFile(requestPath, JSON.stringify({ ...req, resultPath }));
  settleDirtyPages();
  // The key goes through the environment, not argv: argv is visible to every user in ps.
  const cli = await cliRuntime();
  const env = { ...process.env, ...cli.env, BACKVAULT_BENCH_KEY: keyHex };
  const { wallSeconds, stdout } = await runProcess(
    process.execPath,
    [
      ...cli.nodeArgs,
      ...(cpuProfileDir === undefined
        ? []
        : ['--cpu-prof', '--cpu-prof-dir', join(cpuProfileDir, `${++stepNo}-${req.op}`)]),
      // A child that imports the engine and nothing else of the bench (the generator loads
      // better-sqlite3 and more), so its peak RSS is the engine's.
      join(here, 'engine-child.js'),
      requestPath,
    ],
    env,
    undefined,
  );
  const out = JSON.parse(await readFile(resultPath, 'utf8')) as {
    seconds: number;
    cpuSeconds: number;
    peakRssMiB: number;
    result: unknown;
  };
  await rm(resultPath, { force: true });
  await rm(requestPath, { force: true });
  return { ...out, wallSeconds, stdout };
}

/** Read every file once so that the measured step finds the page cache warm. */
export async function warm(root: string): Promise<number> {
  const buf = Buffer.alloc(4 * 1024 * 1024);
  let bytes = 0;
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const fh = await open(join(e.parentPath, e.name), 'r');
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        bytes += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
  return bytes;
}

/** Make `dest` a copy of the pristine corpus: media hard-linked (never modified), database copied. */
async function prepareSource(pristine: string, dest: string): Promise<void> {
  await rm(dest, { recursive: true, force: true });
  for (const e of await readdir(pristine, { withFileTypes: true, recursive: true })) {
    const from = join(e.parentPath, e.name);
    const to = join(dest, relative(pristine, from));
    if (e.isDirectory()) {
      await mkdir(to, { recursive: true });
    } else if (e.isFile()) {
      await mkdir(dirname(to), { recursive: true });
      if (relative(pristine, from).split('\\').join('/') === DB_PATH) {
        // The mutation rewrites pages of the database in place: it must be a real copy.
        await copyFile(from, to);
        const st = await stat(from);
        await utimes(to, st.atime, st.mtime);
      } else {
        await link(from, to);
      }
    }
  }
  await fixDirMtimes(dest);
}

/** Generate the corpus once per (scale, seed) and reuse it across bench invocations. */
async function ensureCorpus(
  workdir: string,
  scale: number,
  seed: number,
): Promise<{ dir: string; stats: ChatStats }> {
  const name = `corpus-s${scale}-seed${seed}`;
  const dir = join(workdir, name);
  const marker = join(workdir, `${name}.json`);
  try {
    const stats = JSON.parse(await readFile(marker, 'utf8')) as ChatStats;
    if (stats.scale === scale && stats.seed === seed) {
      console.log(`corpus: reusing ${dir}`);
      return { dir, stats };
    }
  } catch {
    // No marker: (re)generate below.
  }
  await rm(dir, { recursive: true, force: true });
  console.log(`corpus: generating ${dir} (scale ${scale}, seed ${seed}) …`);
  const stats = await generateChat(dir, { scale, seed });
  // The marker is written last: an interrupted generation is redone, never reused.
  await writeFile(marker, JSON.stringify(stats, null, 2));
  console.log(`corpus: ${(stats.totalBytes / MB).toFixed(1)} MB in ${stats.seconds.toFixed(1)} s`);
  return { dir, stats };
}

/** The nearest directory above `from` whose package.json is this project's (any outDir depth). */
async function findProjectRoot(from: string): Promise<string> {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
      };
      if (pkg.name === 'backvault') return dir;
    } catch {
      // Not here: go up.
    }
    if (dirname(dir) === dir) return process.cwd();
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function stepFrom(o: ChildOutcome, bytes: number, stored?: number, plainNew?: number): StepMeasure {
  return {
    seconds: o.seconds,
    wallSeconds: o.wallSeconds,
    peakRssMiB: o.peakRssMiB,
    ...(o.cpuSeconds === undefined ? {} : { cpuSeconds: o.cpuSeconds }),
    mbPerSec: bytes / MB / o.seconds,
    ...(stored === undefined ? {} : { bytesStoredNew: stored }),
    ...(plainNew === undefined ? {} : { bytesNew: plainNew }),
    ...(o.result === undefined ? {} : { result: o.result }),
  };
}

interface Ctx {
  work: string;
  pristine: string;
  scale: number;
  seed: number;
  workers?: number;
  /**
   * Restored trees, deleted only when every run is done. On this VM's ext4 (no journal)
   * every file created in the 30 s after many were deleted pays a scan over the freed
   * inodes (`recently_deleted`): deleting one tool's 2,302-file restore right before the
   * other tool's restore added up to ~1 s of system time to that restore (session 13),
   * to whichever tool came next.
   */
  restored: string[];
}

async function verifyRestore(source: string, restored: string): Promise<RunMeasure['verified']> {
  const [a, b] = await Promise.all([hashTree(source), hashTree(restored)]);
  const d = diffTrees(a, b);
  if (d.content.length > 0) {
    throw new Error(
      `restore differs from source in ${d.content.length} file(s), e.g. ${d.content.slice(0, 3).join(', ')}`,
    );
  }
  return { contentDiffs: 0, metadataDiffs: d.metadata.length };
}

/** The database-only pair of backups: exact bytes stored new for the database change. */
async function dbOnlyPair(
  ctx: Ctx,
  mutatedDb: string,
  backupOnce: (src: string, repoTag: string, second: boolean) => Promise<number>,
  tag: string,
): Promise<number> {
  const src = join(ctx.work, `dbonly-${tag}`);
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, dirname(DB_PATH)), { recursive: true });
  const target = join(src, DB_PATH);
  for (const [from, second] of [
    [join(ctx.pristine, DB_PATH), false],
    [mutatedDb, true],
  ] as const) {
    await copyFile(from, target);
    const st = await stat(from);
    await utimes(target, st.atime, st.mtime);
    await warm(src);
    const stored = await backupOnce(src, `dbonly-${tag}`, second);
    if (second) {
      await rm(src, { recursive: true, force: true });
      return stored;
    }
  }
  return Number.NaN;
}

/**
 * How fast this machine's disk makes written bytes durable: 256 MiB written in 1 MiB
 * pieces, then one fdatasync, in MB/s. A durable restore cannot beat its bytes ÷ this;
 * restic's restore makes nothing durable, so this is where the two differ most.
 */
async function durableWriteMBps(dir: string): Promise<number> {
  const path = join(dir, 'durable-probe.bin');
  const block = Buffer.alloc(1 << 20, 0x5a);
  spawnSync('sync', [], { stdio: 'ignore' });
  const started = performance.now();
  const fh = await open(path, 'w');
  try {
    for (let i = 0; i < 256; i++) await fh.write(block, 0, block.length, i * block.length);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  const seconds = (performance.now() - started) / 1000;
  await rm(path, { force: true });
  return (256 * block.length) / MB / seconds;
}

/** One run of the CPU floor (bench/floor.ts) over the corpus, in a process of its own. */
async function floorRun(ctx: Ctx): Promise<FloorMeasure> {
  const threads = ctx.workers ?? os.cpus().length;
  await warm(ctx.pristine);
  settleDirtyPages();
  const { stdout } = await runProcess(
    process.execPath,
    [join(here, 'floor.js'), ctx.pristine, '--threads', String(threads)],
    process.env,
    undefined,
  );
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as FloorMeasure;
}

async function engineRun(
  ctx: Ctx,
  run: number,
  keep: boolean,
  pages: { stats?: PageChangeStats },
): Promise<RunMeasure> {
  const src = join(ctx.work, 'chat');
  const repo = join(ctx.work, `repo-${run}`);
  const restoreDir = join(ctx.work, `restore-${run}`);
  const statePath = join(ctx.work, `state-${run}.json`);
  for (const p of [repo, restoreDir, statePath]) await rm(p, { recursive: true, force: true });
  await prepareSource(ctx.pristine, src);
  const keyHex = Buffer.from(generateBackupKey()).toString('hex');
  const workers = ctx.workers === undefined ? {} : { workers: ctx.workers };

  const srcBytes1 = await warm(src);
  const b1 = await runEngineStep(
    ctx.work,
    { op: 'backup', repo, statePath, source: src, ...workers },
    keyHex,
  );
  const r1 = b1.result as BackupResult;

  const mut: MutationStats = await mutateChat(src, { scale: ctx.scale, seed: ctx.seed });
  if (pages.stats === undefined) {
    pages.stats = await comparePages(join(ctx.pristine, DB_PATH), join(src, DB_PATH));
  }
  const srcBytes2 = await warm(src);
  const b2 = await runEngineStep(
    ctx.work,
    { op: 'backup', repo, statePath, source: src, ...workers },
    keyHex,
  );
  const r2 = b2.result as BackupResult;

  await warm(repo);
  const rs = await runEngineStep(
    ctx.work,
    { op: 'restore', repo, statePath, target: restoreDir, ...workers },
    keyHex,
  );
  const rr = rs.result as RestoreResult;
  const verified = await verifyRestore(src, restoreDir);
  // The same restore, durable: false (the durable one above is the one verified).
  const scratchDir = `${restoreDir}-not-durable`;
  await rm(scratchDir, { recursive: true, force: true });
  const rn = await runEngineStep(
    ctx.work,
    { op: 'restore', repo, statePath, target: scratchDir, durable: false, ...workers },
    keyHex,
  );

  let dbOnly: number | undefined;
  if (run === 0) {
    dbOnly = await dbOnlyPair(
      ctx,
      join(src, DB_PATH),
      async (dir, tag, second) => {
        const r = join(ctx.work, `repo-${tag}`);
        const st = join(ctx.work, `state-${tag}.json`);
        if (!second) for (const p of [r, st]) await rm(p, { recursive: true, force: true });
        const o = await runEngineStep(
          ctx.work,
          { op: 'backup', repo: r, statePath: st, source: dir, ...workers },
          keyHex,
        );
        if (second) for (const p of [r, st]) await rm(p, { recursive: true, force: true });
        return (o.result as BackupResult).bytesStoredNew;
      },
      'engine',
    );
  }
  if (!keep) for (const p of [repo, statePath]) await rm(p, { recursive: true, force: true });
  if (!keep) ctx.restored.push(restoreDir);
  ctx.restored.push(scratchDir);
  return {
    first: stepFrom(b1, srcBytes1, r1.bytesStoredNew, r1.bytesNew),
    second: stepFrom(b2, srcBytes2, r2.bytesStoredNew, r2.bytesNew),
    restore: stepFrom(rs, rr.bytes),
    restoreScratch: stepFrom(rn, (rn.result as RestoreResult).bytes),
    secondDbStoredNewEstimate: Math.max(0, r2.bytesStoredNew - mut.mediaBytes),
    ...(dbOnly === undefined ? {} : { dbOnlySecondStoredNew: dbOnly }),
    verified,
  };
}

// --- restic ------------------------------------------------------------------------------------

export function resticVersion(): string | undefined {
  const r = spawnSync('restic', ['version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return undefined;
  return r.stdout.trim();
}

export async function resticStep(
  ctx: Pick<Ctx, 'work'>,
  args: string[],
  repo: string,
): Promise<{
  wallSeconds: number;
  peakRssMiB: number;
  cpuSeconds?: number;
  summary?: Record<string, number | string>;
}> {
  const env = {
    ...process.env,
    RESTIC_REPOSITORY: repo,
    RESTIC_PASSWORD: process.env.RESTIC_PASSWORD ?? 'backvault-bench-password',
    RESTIC_CACHE_DIR: join(ctx.work, 'restic-cache'),
  };
  const timeFile = join(ctx.work, 'restic-time.txt');
  const hasTime = await stat('/usr/bin/time').then(
    () => true,
    () => false,
  );
  settleDirtyPages();
  const r = await runProcess('restic', args, env, hasTime ? timeFile : undefined);
  let summary: Record<string, number | string> | undefined;
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const obj = JSON.parse(line) as Record<string, number | string>;
      if (obj.message_type === 'summary') summary = obj;
    } catch {
      // Progress lines may be cut; only the summary matters.
    }
  }
  return {
    wallSeconds: r.wallSeconds,
    peakRssMiB: r.peakRssMiB,
    ...(r.cpuSeconds === undefined ? {} : { cpuSeconds: r.cpuSeconds }),
    ...(summary === undefined ? {} : { summary }),
  };
}

async function resticRun(ctx: Ctx, run: number, keep: boolean): Promise<RunMeasure> {
  const src = join(ctx.work, 'chat');
  const repo = join(ctx.work, `restic-repo-${run}`);
  const restoreDir = join(ctx.work, `restic-restore-${run}`);
  for (const p of [repo, restoreDir]) await rm(p, { recursive: true, force: true });
  await prepareSource(ctx.pristine, src);
  await resticStep(ctx, ['init'], repo);
  const asStep = (r: Awaited<ReturnType<typeof resticStep>>, bytes: number): StepMeasure => {
    const added = r.summary?.data_added;
    return {
      seconds: r.wallSeconds,
      wallSeconds: r.wallSeconds,
      peakRssMiB: r.peakRssMiB,
      ...(r.cpuSeconds === undefined ? {} : { cpuSeconds: r.cpuSeconds }),
      mbPerSec: bytes / MB / r.wallSeconds,
      ...(typeof added === 'number' ? { bytesStoredNew: added } : {}),
      ...(r.summary === undefined ? {} : { result: r.summary }),
    };
  };
  const bytes1 = await warm(src);
  const b1 = asStep(await resticStep(ctx, ['backup', '--json', src], repo), bytes1);
  const mut = await mutateChat(src, { scale: ctx.scale, seed: ctx.seed });
  const bytes2 = await warm(src);
  const b2 = asStep(await resticStep(ctx, ['backup', '--json', src], repo), bytes2);
  await warm(repo);
  const rs = asStep(
    await resticStep(ctx, ['restore', 'latest', '--target', restoreDir], repo),
    bytes2,
  );
  // restic restores the absolute source path below the target.
  const verified = await verifyRestore(src, join(restoreDir, resolve(src)));
  let dbOnly: number | undefined;
  if (run === 0) {
    dbOnly = await dbOnlyPair(
      ctx,
      join(src, DB_PATH),
      async (dir, tag, second) => {
        const r = join(ctx.work, `restic-repo-${tag}`);
        if (!second) {
          await rm(r, { recursive: true, force: true });
          await resticStep(ctx, ['init'], r);
        }
        const o = await resticStep(ctx, ['backup', '--json', dir], r);
        if (second) await rm(r, { recursive: true, force: true });
        const added = o.summary?.data_added;
        return typeof added === 'number' ? added : Number.NaN;
      },
      'restic',
    );
  }
  if (!keep) await rm(repo, { recursive: true, force: true });
  if (!keep) ctx.restored.push(restoreDir);
  return {
    first: b1,
    second: b2,
    restore: rs,
    ...(b2.bytesStoredNew === undefined
      ? {}
      : { secondDbStoredNewEstimate: Math.max(0, b2.bytesStoredNew - mut.mediaBytes) }),
    ...(dbOnly === undefined ? {} : { dbOnlySecondStoredNew: dbOnly }),
    verified,
  };
}

// --- summary and report --------------------------------------------------------------------------

/** Medians over runs of every number of a step. */
export interface StepSummary {
  seconds: number;
  mbPerSec: number;
  peakRssMiB: number;
  /** CPU seconds ÷ seconds: how many cores the step kept busy. */
  cores?: number;
  bytesStoredNew?: number;
  bytesNew?: number;
}

/** Medians of one tool over all runs. */
export interface ToolSummary {
  first: StepSummary;
  second: StepSummary;
  restore: StepSummary;
  restoreScratch?: StepSummary;
  secondDbStoredNewEstimate?: number;
  dbOnlySecondStoredNew?: number;
}

function summarize(runs: readonly RunMeasure[]): ToolSummary {
  const step = (k: 'first' | 'second' | 'restore' | 'restoreScratch'): StepSummary => {
    const xs = runs.map((r) => r[k]).filter((x): x is StepMeasure => x !== undefined);
    const opt = (f: (s: StepMeasure) => number | undefined): number | undefined => {
      const v = xs.map(f).filter((n): n is number => n !== undefined);
      return v.length === 0 ? undefined : median(v);
    };
    const stored = opt((s) => s.bytesStoredNew);
    const cores = opt((s) => (s.cpuSeconds === undefined ? undefined : s.cpuSeconds / s.seconds));
    const plain = opt((s) => s.bytesNew);
    return {
      seconds: median(xs.map((s) => s.seconds)),
      mbPerSec: median(xs.map((s) => s.mbPerSec)),
      peakRssMiB: median(xs.map((s) => s.peakRssMiB)),
      ...(cores === undefined ? {} : { cores }),
      ...(stored === undefined ? {} : { bytesStoredNew: stored }),
      ...(plain === undefined ? {} : { bytesNew: plain }),
    };
  };
  const est = runs
    .map((r) => r.secondDbStoredNewEstimate)
    .filter((n): n is number => n !== undefined);
  const dbOnly = runs
    .map((r) => r.dbOnlySecondStoredNew)
    .filter((n): n is number => n !== undefined);
  return {
    first: step('first'),
    second: step('second'),
    restore: step('restore'),
    ...(runs.every((r) => r.restoreScratch) ? { restoreScratch: step('restoreScratch') } : {}),
    ...(est.length === 0 ? {} : { secondDbStoredNewEstimate: median(est) }),
    ...(dbOnly.length === 0 ? {} : { dbOnlySecondStoredNew: median(dbOnly) }),
  };
}

function fmtTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}

const mb = (n: number | undefined): string =>
  n === undefined || Number.isNaN(n) ? '—' : (n / MB).toFixed(1);

function toolRows(name: string, s: ToolSummary): string[][] {
  const dbNote = (): string => {
    const exact = s.dbOnlySecondStoredNew;
    const est = s.secondDbStoredNewEstimate;
    return `${mb(s.second.bytesStoredNew)} (db ${exact !== undefined ? mb(exact) : `≈${mb(est)}`})`;
  };
  return [
    [
      `${name} first backup`,
      s.first.seconds.toFixed(2),
      s.first.mbPerSec.toFixed(0),
      s.first.peakRssMiB.toFixed(0),
      s.first.cores?.toFixed(2) ?? '—',
      mb(s.first.bytesStoredNew),
    ],
    [
      `${name} second backup`,
      s.second.seconds.toFixed(2),
      s.second.mbPerSec.toFixed(0),
      s.second.peakRssMiB.toFixed(0),
      s.second.cores?.toFixed(2) ?? '—',
      dbNote(),
    ],
    [
      `${name} restore`,
      s.restore.seconds.toFixed(2),
      s.restore.mbPerSec.toFixed(0),
      s.restore.peakRssMiB.toFixed(0),
      s.restore.cores?.toFixed(2) ?? '—',
      '',
    ],
    ...(s.restoreScratch
      ? [
          [
            `${name} restore, not durable`,
            s.restoreScratch.seconds.toFixed(2),
            s.restoreScratch.mbPerSec.toFixed(0),
            s.restoreScratch.peakRssMiB.toFixed(0),
            s.restoreScratch.cores?.toFixed(2) ?? '—',
            '',
          ],
        ]
      : []),
  ];
}

function targetLines(s: ToolSummary): string[] {
  const db = s.dbOnlySecondStoredNew ?? s.secondDbStoredNewEstimate;
  const rss = Math.max(s.first.peakRssMiB, s.second.peakRssMiB, s.restore.peakRssMiB);
  const mark = (ok: boolean): string => (ok ? 'ok  ' : 'MISS');
  return [
    `${mark(s.first.mbPerSec >= TARGETS.firstBackupMBps)} first backup ≥ ${TARGETS.firstBackupMBps} MB/s: ${s.first.mbPerSec.toFixed(0)} MB/s`,
    `${mark(db !== undefined && db / MB <= TARGETS.secondBackupDbNewMB)} second backup ≤ ${TARGETS.secondBackupDbNewMB} MB new for the DB change: ${mb(db)} MB`,
    `${mark(s.restore.mbPerSec >= TARGETS.restoreMBps)} restore ≥ ${TARGETS.restoreMBps} MB/s: ${s.restore.mbPerSec.toFixed(0)} MB/s`,
    `${mark(rss <= TARGETS.peakRssMiB)} peak RSS ≤ ${TARGETS.peakRssMiB} MB: ${rss.toFixed(0)} MiB`,
  ];
}

function targets17Lines(
  s: ToolSummary,
  r: ToolSummary | undefined,
  floorSeconds: number,
): string[] {
  const mark = (ok: boolean): string => (ok ? 'ok  ' : 'MISS');
  const rss = Math.max(s.first.peakRssMiB, s.second.peakRssMiB, s.restore.peakRssMiB);
  const vsFloor = s.first.seconds / floorSeconds;
  const lines = [
    `${mark(vsFloor <= TARGETS_17.firstBackupVsFloor)} first backup ≤ ${TARGETS_17.firstBackupVsFloor}× the CPU floor: ${vsFloor.toFixed(2)}×`,
    `${mark(rss <= TARGETS_17.peakRssMiB)} peak RSS ≤ ${TARGETS_17.peakRssMiB} MiB (backup and restore): ${rss.toFixed(0)} MiB`,
  ];
  if (r === undefined) return [...lines, 'restic not measured: no ratios to restic'];
  const first = s.first.seconds / r.first.seconds;
  const restore = s.restore.seconds / r.restore.seconds;
  const db = s.dbOnlySecondStoredNew ?? s.secondDbStoredNewEstimate;
  const dbR = r.dbOnlySecondStoredNew ?? r.secondDbStoredNewEstimate;
  const dbRatio = db !== undefined && dbR !== undefined && dbR > 0 ? db / dbR : Number.NaN;
  return [
    `${mark(first <= TARGETS_17.firstBackupVsRestic)} first backup ≤ ${TARGETS_17.firstBackupVsRestic}× restic's time: ${first.toFixed(2)}×`,
    ...lines,
    `${mark(restore <= TARGETS_17.restoreVsRestic)} restore ≤ ${TARGETS_17.restoreVsRestic}× restic's time: ${restore.toFixed(2)}×`,
    ...(s.restoreScratch
      ? [
          `info restore without durability (restic's restore syncs nothing) ÷ restic: ${(s.restoreScratch.seconds / r.restore.seconds).toFixed(2)}×`,
        ]
      : []),
    `${mark(dbRatio <= TARGETS_17.dbIncrementalVsRestic)} DB-only incremental bytes ≤ ${TARGETS_17.dbIncrementalVsRestic}× restic's: ${dbRatio.toFixed(3)}×`,
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string' },
      runs: { type: 'string' },
      seed: { type: 'string' },
      workdir: { type: 'string' },
      workers: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'no-restic': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
    },
  });

  const scale = numberOption('scale', values.scale, 1, 0);
  const runs = Math.round(numberOption('runs', values.runs, 3, 1));
  const seed = numberOption('seed', values.seed, 1, 0);
  const workers =
    values.workers === undefined
      ? undefined
      : Math.round(numberOption('workers', values.workers, 0, 1));
  const projectRoot = await findProjectRoot(here);
  const workdir = resolve(values.workdir ?? join(projectRoot, '.tmp', 'bench'));
  const work = join(workdir, 'work');
  await mkdir(work, { recursive: true });

  try {
    await import(ENGINE_URL.href);
  } catch (err) {
    throw new Error(
      `cannot load the backup engine (src/backup/index.ts, built next to this script): ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
  if (values['cpu-prof'] !== undefined) {
    cpuProfileDir = resolve(values['cpu-prof']);
    console.log(`profiling into ${cpuProfileDir}: times are slower than unprofiled runs`);
  }
  const loadBefore = os.loadavg()[0] ?? 0;
  if (loadBefore > 0.5) {
    console.log(`note: load average ${loadBefore.toFixed(1)} before the bench: others use the CPU`);
  }
  const { dir: pristine, stats } = await ensureCorpus(workdir, scale, seed);
  const ctx: Ctx = {
    work,
    pristine,
    scale,
    seed,
    restored: [],
    ...(workers === undefined ? {} : { workers }),
  };
  const restic = values['no-restic'] ? undefined : resticVersion();
  const diskMBps = await durableWriteMBps(work);

  const pages: { stats?: PageChangeStats } = {};
  const ours: RunMeasure[] = [];
  const theirs: RunMeasure[] = [];
  const floors: FloorMeasure[] = [];
  for (let r = 0; r < runs; r++) {
    console.log(`run ${r + 1}/${runs}: CPU floor …`);
    floors.push(await floorRun(ctx));
    console.log(`run ${r + 1}/${runs}: backvault …`);
    ours.push(await engineRun(ctx, r, values.keep && r === runs - 1, pages));
    if (restic !== undefined) {
      console.log(`run ${r + 1}/${runs}: restic …`);
      theirs.push(await resticRun(ctx, r, values.keep && r === runs - 1));
    }
  }
  for (const p of ctx.restored) await rm(p, { recursive: true, force: true });
  if (!values.keep) {
    await rm(join(work, 'chat'), { recursive: true, force: true });
    await rm(join(work, 'restic-cache'), { recursive: true, force: true });
  }

  const oursSum = summarize(ours);
  const floor = {
    seconds: median(floors.map((f) => f.seconds)),
    cpuSeconds: median(floors.map((f) => f.cpuSeconds)),
    threads: floors[0]?.threads ?? 0,
    compressedInput: floors[0]?.compressedInput ?? 0,
  };
  const theirsSum = theirs.length > 0 ? summarize(theirs) : undefined;
  const corpus = await treeSize(pristine);
  const cpus = os.cpus();
  console.log('');
  console.log(
    `backvault backup bench — scale ${scale} (${mb(corpus.bytes)} MB in ${corpus.files} files, db ${mb(stats.dbBytes)} MB, ` +
      `${stats.messages} messages), ${runs} run(s), medians; ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, node ${process.version}`,
  );
  const header = ['step', 'seconds', 'MB/s', 'peak RSS MiB', 'cores', 'stored new MB'];
  const rows = [header, ...toolRows('backvault', oursSum)];
  if (theirsSum !== undefined) rows.push(...toolRows('restic', theirsSum));
  rows.push([
    `CPU floor (${floor.threads} threads)`,
    floor.seconds.toFixed(2),
    (corpus.bytes / MB / floor.seconds).toFixed(0),
    '',
    (floor.cpuSeconds / floor.seconds).toFixed(2),
    '',
  ]);
  console.log(fmtTable(rows));
  console.log(
    `CPU floor: read + HMAC-SHA256 + Brotli q0 where the probe says it pays (${mb(floor.compressedInput)} MB) + AES-256-GCM, 1 MiB blocks, no engine (bench/floor.ts)`,
  );
  console.log(
    `disk: ${diskMBps.toFixed(0)} MB/s made durable (256 MiB written, one fdatasync): a durable restore of the corpus needs ≥ ${(corpus.bytes / MB / diskMBps).toFixed(2)} s of it`,
  );
  if (theirsSum !== undefined) {
    const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : '—');
    const dbOurs = oursSum.dbOnlySecondStoredNew ?? oursSum.secondDbStoredNewEstimate ?? Number.NaN;
    const dbTheirs =
      theirsSum.dbOnlySecondStoredNew ?? theirsSum.secondDbStoredNewEstimate ?? Number.NaN;
    console.log(
      `backvault vs restic: first backup speed ${ratio(oursSum.first.mbPerSec, theirsSum.first.mbPerSec)}, ` +
        `second backup speed ${ratio(oursSum.second.mbPerSec, theirsSum.second.mbPerSec)}, ` +
        `restore speed ${ratio(oursSum.restore.mbPerSec, theirsSum.restore.mbPerSec)}, ` +
        `DB bytes stored new ${ratio(dbOurs, dbTheirs)}, ` +
        `peak RSS ${ratio(oursSum.first.peakRssMiB, theirsSum.first.peakRssMiB)}`,
    );
    console.log(`restic: ${restic ?? ''}`);
  } else if (!values['no-restic']) {
    console.log('restic: not installed (apt-get install restic to compare)');
  }
  console.log('targets (issue 2):');
  for (const l of targetLines(oursSum)) console.log(`  ${l}`);
  console.log('targets (issue 17: time ÷ time in this run, lower is better):');
  for (const l of targets17Lines(oursSum, theirsSum, floor.seconds)) console.log(`  ${l}`);
  if (pages.stats !== undefined) {
    console.log('database page changes by the mutation:');
    console.log(formatPageChanges(pages.stats).replace(/^/gm, '  '));
  }

  const date = new Date().toISOString();
  const out = {
    date,
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? '',
      totalMemMiB: Math.round(os.totalmem() / 1024 / 1024),
      platform: `${os.platform()} ${os.release()}`,
      node: process.version,
      // 1-minute load averages: a busy machine makes every time longer.
      loadAvgBefore: loadBefore,
      loadAvgAfter: os.loadavg()[0] ?? 0,
      /** MB/s this disk makes durable (durableWriteMBps). */
      diskDurableMBps: diskMBps,
    },
    params: { scale, seed, runs, ...(workers === undefined ? {} : { workers }) },
    corpus: { ...stats, files: corpus.files, totalBytes: corpus.bytes },
    targets: TARGETS,
    backvault: { summary: oursSum, runs: ours },
    floor: { summary: floor, runs: floors },
    restic: restic === undefined ? null : { version: restic, summary: theirsSum, runs: theirs },
    sqlitePages: pages.stats ?? null,
  };
  if (cpuProfileDir !== undefined) {
    // Profiled timings are not benchmark results: keep them out of bench/results.
    console.log(`profiles in ${cpuProfileDir} (summarize: node bench/profile-summary.js DIR)`);
    return;
  }
  const resultsDir = join(projectRoot, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(
    resultsDir,
    `backup-${date.slice(0, 10)}${scale === 1 ? '' : `-scale${scale}`}.json`,
  );
  await writeFile(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${relative(process.cwd(), file)}`);
}

if (isMain(import.meta.url)) runMain(main);
