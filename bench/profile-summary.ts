/**
 * Summarize V8 CPU profiles (`.cpuprofile`, e.g. from `run.js --cpu-prof DIR`): self time per
 * function, all threads of a step together, so "where do the CPU seconds go" is one table.
 *
 * CLI: node dist/bench/profile-summary.js DIR [--top 25]
 */
import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMain, numberOption, runMain } from './cli-util.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time of one function over the profiles read, in milliseconds. */
export interface SelfTime {
  name: string;
  ms: number;
}

/**
 * Self time per function over every `.cpuprofile` file below `dir` (idle and GC included as
 * V8 reports them: `(idle)`, `(garbage collector)`, `(program)`).
 * @throws Error when the directory or a profile cannot be read or parsed.
 */
export async function selfTimes(dir: string): Promise<{ totalMs: number; byFunction: SelfTime[] }> {
  const totals = new Map<string, number>();
  let totalMs = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.cpuprofile')) continue;
    const prof = JSON.parse(await readFile(join(e.parentPath, e.name), 'utf8')) as CpuProfile;
    const names = new Map(
      prof.nodes.map((n) => {
        const f = n.callFrame;
        const where = f.url === '' ? '' : ` ${basename(f.url)}:${f.lineNumber + 1}`;
        return [n.id, `${f.functionName === '' ? '(anonymous)' : f.functionName}${where}`];
      }),
    );
    prof.samples.forEach((id, i) => {
      const ms = (prof.timeDeltas[i] ?? 0) / 1000;
      const name = names.get(id) ?? '?';
      totals.set(name, (totals.get(name) ?? 0) + ms);
      totalMs += ms;
    });
  }
  const byFunction = [...totals].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms);
  return { totalMs, byFunction };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string' } },
  });
  const dir = positionals[0];
  if (dir === undefined) {
    console.error('usage: profile-summary DIR [--top 25]');
    process.exitCode = 2;
    return;
  }
  const top = Math.round(numberOption('top', values.top, 25, 1));
  const { totalMs, byFunction } = await selfTimes(dir);
  console.log(`${dir}: ${(totalMs / 1000).toFixed(2)} s of samples (all threads)`);
  for (const f of byFunction.slice(0, top)) {
    const pct = ((100 * f.ms) / totalMs).toFixed(1).padStart(5);
    console.log(`${pct}%  ${(f.ms / 1000).toFixed(2).padStart(6)} s  ${f.name}`);
  }
}

if (isMain(import.meta.url)) runMain(main);
