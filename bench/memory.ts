/**
 * Memory against shape (issue 17): the engine's peak RSS must be set by its configuration
 * (workers, pack size, read buffers), not by the size of the largest file or the number of
 * files. Two sources, each backed up (then restored) by a fresh child process:
 *
 * - one 4 GiB sparse file (reads as zeros: chunks at the chunker's maximum, deduplicated);
 * - 200,000 small files (1–4 KiB of random bytes each) in 400 folders of 500.
 *
 * With restic installed, restic backs up and restores the same source in the same run (its
 * cache and repository in the work folder), so "grows with the number of files" has a
 * reference beside it: restic's in-memory index and tree state grow too.
 *
 * CLI: node dist/bench/memory.js [--workdir .tmp/bench-memory] [--files 200000] [--gib 4]
 *        [--no-restic]
 * Prints a table; writes bench/results/memory-<date>.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isMain, numberOption, runMain } from './cli-util.js';
import { resticStep, resticVersion, runEngineStep, warm, type ChildOutcome } from './run.js';

interface Step {
  seconds: number;
  peakRssMiB: number;
}

interface Shape {
  name: string;
  files: number;
  bytes: number;
  backup: ChildOutcome;
  restore: ChildOutcome;
  restic?: { backup: Step; restore: Step };
}

async function sparseFile(dir: string, gib: number): Promise<{ files: number; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const bytes = Math.round(gib * 1024 ** 3);
  const fh = await open(join(dir, 'huge.bin'), 'w');
  try {
    await fh.truncate(bytes);
  } finally {
    await fh.close();
  }
  return { files: 1, bytes };
}

async function smallFiles(dir: string, count: number): Promise<{ files: number; bytes: number }> {
  const perDir = 500;
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const sub = join(dir, `d${String(Math.floor(i / perDir)).padStart(4, '0')}`);
    if (i % perDir === 0) await mkdir(sub, { recursive: true });
    const b = randomBytes(1024 + (i % 3072));
    bytes += b.length;
    await writeFile(join(sub, `f${i}.bin`), b);
  }
  return { files: count, bytes };
}

// Each tool's backup starts from the same warm page cache (run.ts's `warm`). Without it the
// first tool paid for populating the cache (for the sparse file: 4 GiB of zero pages, ~2.7 s
// per GiB of system time here) and restic, second, read it warm.

async function measure(
  work: string,
  name: string,
  make: (dir: string) => Promise<{ files: number; bytes: number }>,
  withRestic: boolean,
): Promise<Shape> {
  const src = join(work, `${name}-src`);
  const repo = join(work, `${name}-repo`);
  const target = join(work, `${name}-restore`);
  for (const p of [src, repo, target]) await rm(p, { recursive: true, force: true });
  console.log(`${name}: making the source …`);
  const { files, bytes } = await make(src);
  const keyHex = randomBytes(32).toString('hex');
  const statePath = join(work, `${name}-state.json`);
  await rm(statePath, { force: true });
  console.log(`${name}: backup …`);
  await warm(src);
  const backup = await runEngineStep(work, { op: 'backup', repo, statePath, source: src }, keyHex);
  console.log(`${name}: restore …`);
  const restore = await runEngineStep(work, { op: 'restore', repo, statePath, target }, keyHex);
  let restic: Shape['restic'];
  // restic restores beside ours, not where ours was just deleted: on this VM's ext4 (no
  // journal) each file created in the 30 s after a mass delete pays a scan of the freed
  // inodes (README.md, session 13), which restic alone would have paid.
  const rTarget = join(work, `${name}-restic-restore`);
  if (withRestic) {
    const rRepo = join(work, `${name}-restic-repo`);
    await rm(rRepo, { recursive: true, force: true });
    await rm(rTarget, { recursive: true, force: true });
    await resticStep({ work }, ['init'], rRepo);
    console.log(`${name}: restic backup …`);
    await warm(src);
    const b = await resticStep({ work }, ['backup', '-q', src], rRepo);
    console.log(`${name}: restic restore …`);
    const r = await resticStep({ work }, ['restore', 'latest', '-q', '--target', rTarget], rRepo);
    restic = {
      backup: { seconds: b.wallSeconds, peakRssMiB: b.peakRssMiB },
      restore: { seconds: r.wallSeconds, peakRssMiB: r.peakRssMiB },
    };
    await rm(rRepo, { recursive: true, force: true });
    await rm(join(work, 'restic-cache'), { recursive: true, force: true });
  }
  for (const p of [src, repo, target, rTarget]) await rm(p, { recursive: true, force: true });
  return { name, files, bytes, backup, restore, ...(restic ? { restic } : {}) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workdir: { type: 'string' },
      files: { type: 'string' },
      gib: { type: 'string' },
      'no-restic': { type: 'boolean', default: false },
    },
  });
  const restic = values['no-restic'] ? undefined : resticVersion();
  const work = resolve(values.workdir ?? join('.tmp', 'bench-memory'));
  const count = Math.round(numberOption('files', values.files, 200_000, 1));
  const gib = numberOption('gib', values.gib, 4, 0.001);
  await mkdir(work, { recursive: true });
  const shapes = [
    await measure(work, `sparse-${gib}GiB`, (d) => sparseFile(d, gib), restic !== undefined),
    await measure(work, `small-${count}`, (d) => smallFiles(d, count), restic !== undefined),
  ];
  const rows = [
    [
      'source',
      'files',
      'MB',
      'backup s',
      'backup peak RSS MiB',
      'restore s',
      'restore peak RSS MiB',
    ],
  ];
  const row = (tool: string, s: Shape, b: Step, r: Step): string[] => [
    `${s.name} ${tool}`,
    String(s.files),
    (s.bytes / 1e6).toFixed(0),
    b.seconds.toFixed(1),
    b.peakRssMiB.toFixed(0),
    r.seconds.toFixed(1),
    r.peakRssMiB.toFixed(0),
  ];
  for (const s of shapes) {
    rows.push(row('backvault', s, s.backup, s.restore));
    if (s.restic) rows.push(row('restic', s, s.restic.backup, s.restic.restore));
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows)
    console.log(
      r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '),
    );
  const out = join('bench', 'results', `memory-${new Date().toISOString().slice(0, 10)}.json`);
  await mkdir(join('bench', 'results'), { recursive: true });
  await writeFile(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        shapes: shapes.map((s) => ({
          name: s.name,
          files: s.files,
          bytes: s.bytes,
          backup: { seconds: s.backup.seconds, peakRssMiB: s.backup.peakRssMiB },
          restore: { seconds: s.restore.seconds, peakRssMiB: s.restore.peakRssMiB },
          ...(s.restic ? { restic: s.restic } : {}),
        })),
        restic: restic ?? null,
      },
      null,
      2,
    ) + '\n',
  );
  if (restic === undefined && !values['no-restic'])
    console.log('restic: not installed (apt-get install restic to compare)');
  console.log(`wrote ${relative(process.cwd(), out)}`);
}

if (isMain(import.meta.url)) runMain(main);
