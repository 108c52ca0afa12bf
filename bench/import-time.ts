/**
 * Import time of the device SDK (issue 19: `import` of it stays under 150 ms). Each sample is
 * a fresh Node process that imports one entry point by its package name (the workspace
 * links `backvault` to packages/sdk, the same files an app gets from the tarball) and reports
 * the time of the `import()` alone, measured inside the child (Node's own start-up is not
 * the SDK's). Medians of `--runs` samples per entry point, taken round-robin so that load
 * on the machine falls on all of them alike; also which heavy modules each entry loaded.
 *
 * CLI: node dist/bench/import-time.js [--runs 15]
 * Prints a table; writes bench/results/import-<date>.json.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { isMain, numberOption, runMain } from './cli-util.js';

const run = promisify(execFile);

export const ENTRY_POINTS = [
  'backvault',
  'backvault/client',
  'backvault/backup',
  'backvault/format',
  'backvault/node',
] as const;

/** Modules whose loading is worth naming (what makes an import slow). */
const HEAVY = [
  '@serenity-kit/opaque',
  '@sinclair/typebox',
  '@zxcvbn-ts',
  '@aws-sdk',
  'better-sqlite3',
];

const CHILD = `
const t0 = performance.now();
await import(process.argv[1]);
console.log(JSON.stringify({ ms: performance.now() - t0 }));
`;

async function sample(entry: string): Promise<number> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD, entry]);
  return (JSON.parse(stdout.trim()) as { ms: number }).ms;
}

/** Which heavy packages `entry` loads (ESM loads are visible to a resolve hook only). */
async function heavyLoads(entry: string): Promise<string[]> {
  const hook = `
import { register } from 'node:module';
const seen = new Set();
const { port1, port2 } = new MessageChannel();
port1.on('message', (m) => seen.add(m));
port1.unref();
register('data:text/javascript,' + encodeURIComponent(\`
let port;
export function initialize(data) { port = data.port; }
export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  port.postMessage(r.url);
  return r;
}\`), { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] });
await import(process.argv[1]);
await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify([...seen]));
`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', hook, entry]);
  const urls = JSON.parse(stdout.trim()) as string[];
  return HEAVY.filter((h) => urls.some((u) => u.includes(`/node_modules/${h}`)));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' } } });
  const runs = Math.round(numberOption('runs', values.runs, 15, 1));
  const samples = new Map<string, number[]>(ENTRY_POINTS.map((e) => [e, []]));
  for (let i = 0; i < runs; i++) {
    for (const e of ENTRY_POINTS) samples.get(e)!.push(await sample(e));
  }
  const rows = [];
  for (const e of ENTRY_POINTS) {
    const ms = samples.get(e)!;
    rows.push({
      entry: e,
      medianMs: Math.round(median(ms) * 10) / 10,
      minMs: Math.round(Math.min(...ms) * 10) / 10,
      maxMs: Math.round(Math.max(...ms) * 10) / 10,
      heavy: await heavyLoads(e),
    });
  }
  console.log(`import time of the device SDK, median of ${runs} fresh processes (target < 150 ms)`);
  console.log('| entry point | median | min–max | heavy modules loaded |');
  console.log('|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| \`${r.entry}\` | ${r.medianMs} ms | ${r.minMs}–${r.maxMs} ms | ${r.heavy.join(', ') || '—'} |`,
    );
  }
  const dir = join('bench', 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `import-${new Date().toISOString().slice(0, 10)}.json`);
  await writeFile(file, `${JSON.stringify({ node: process.version, runs, rows }, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

if (isMain(import.meta.url)) runMain(main);
