/**
 * Memory against shape (issue 17): the engine's peak RSS must be set by its configuration
 * (workers, pack size, read buffers), not by the size of the largest file or the number of
 * files. Two sources, each backed up (then restored) by a fresh child process:
 *
 * - one 4 GiB sparse file (reads as zeros: chunks at the chunker's maximum, deduplicated);
 * - 200,000 small files (1–4 KiB of random bytes each) in 400 folders of 500.
 *
 * CLI: node dist/bench/memory.js [--workdir .tmp/bench-memory] [--files 200000] [--gib 4]
 * Prints a table; writes bench/results/memory-<date>.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isMain, numberOption, runMain } from './cli-util.js';
import { runEngineStep, type ChildOutcome } from './run.js';

interface Shape {
  name: string;
  files: number;
  bytes: number;
  backup: ChildOutcome;
  restore: ChildOutcome;
}

async function sparseFile(dir: string, gib: number): Promise<{ files: number; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const bytes = gib * 1024 ** 3;
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

async function measure(
  work: string,
  name: string,
  make: (dir: string) => Promise<{ files: number; bytes: number }>,
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
  const backup = await runEngineStep(work, { op: 'backup', repo, statePath, source: src }, keyHex);
  console.log(`${name}: restore …`);
  const restore = await runEngineStep(work, { op: 'restore', repo, statePath, target }, keyHex);
  for (const p of [src, repo, target]) await rm(p, { recursive: true, force: true });
  return { name, files, bytes, backup, restore };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workdir: { type: 'string' },
      files: { type: 'string' },
      gib: { type: 'string' },
    },
  });
  const work = resolve(values.workdir ?? join('.tmp', 'bench-memory'));
  const count = Math.round(numberOption('files', values.files, 200_000, 1));
  const gib = numberOption('gib', values.gib, 4, 0.001);
  await mkdir(work, { recursive: true });
  const shapes = [
    await measure(work, `sparse-${gib}GiB`, (d) => sparseFile(d, gib)),
    await measure(work, `small-${count}`, (d) => smallFiles(d, count)),
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
  for (const s of shapes) {
    rows.push([
      s.name,
      String(s.files),
      (s.bytes / 1e6).toFixed(0),
      s.backup.seconds.toFixed(1),
      s.backup.peakRssMiB.toFixed(0),
      s.restore.seconds.toFixed(1),
      s.restore.peakRssMiB.toFixed(0),
    ]);
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
        })),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${relative(process.cwd(), out)}`);
}

if (isMain(import.meta.url)) runMain(main);
