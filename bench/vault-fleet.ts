/**
 * Fleet login benchmark. In ONE invocation, on this machine's loopback:
 *  (1) a single vault node on the embedded store (`serve --workers 1`, SQLite, software HSM);
 *  (2) the fleet: three etcd members and three vault nodes (`--workers 1` each, PKCS#11 on
 *      SoftHSM2 for two when installed), each node on its own etcd member, keys from the
 *      ceremony (`test/fleet/fleet.ts`).
 * For each, after a warm-up that runs until the rate stops rising (see WARMUP): peak full
 * logins/s (login start + client finish + login finish, closed loop at several
 * concurrencies, requests spread round-robin over the nodes; the sweep is repeated
 * `--rounds` times and the median round's best step is the peak), then p50/p99 at half
 * that peak in an OPEN loop (fixed schedule; latency counted from the scheduled time),
 * also `--rounds` times, reporting the run with the median p99.
 *
 * Everything — etcd, vaults and this load generator — shares the machine's cores, so the
 * fleet figure is a lower bound on what three real machines do. Client key stretching is the
 * minimal testing one (the server's work does not depend on it).
 *
 * Targets (issue 4): fleet peak ≥ 50% of the single node's; fleet p99 ≤ 50 ms at half peak.
 *
 * Where the cost goes, over the closed-loop phase: CPU milliseconds per full login of the
 * vault processes, the etcd members and this load generator (utime + stime from
 * /proc/<pid>/stat), and etcd RPCs per login (`grpc_server_handled_total` from each
 * member's /metrics, by method).
 *
 * Usage: node bench/vault-fleet.js [--seconds 3] [--accounts 512] [--rounds 3] [--fleet-only]
 *        [--tls]
 *   --rounds: sweeps over all concurrencies; the peak is the median round's best step.
 *   --fleet-only skips the single node (for quick A/B runs of the fleet path; no ratio).
 *   --tls: mutual TLS between the nodes and etcd and between members, as across sites
 *     (docs/OPERATIONS.md); without it they talk clear text on loopback.
 * Profiling: BACKVAULT_CPU_PROF_DIR=DIR writes a V8 CPU profile of every vault process
 * there when it exits (summarise with bench/profile-summary.js); etcd's CPU is in the table.
 * Prints a table; writes bench/results/vault-fleet-<date>.json (relative to the cwd).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import { startFleet } from '../test/fleet/fleet.js';
import { devToken, login, register } from '../test/vault/test-client.js';
import { NO_RATE_LIMITS, cpuMsOf, startVaultProcess } from '../test/vault/vault-process.js';
import { isMain, numberOption, runMain } from './cli-util.js';

const PASSWORD = 'bench password for the fleet';
const CONCURRENCY = [4, 8, 16, 32, 64, 128];
/**
 * Warm-up before measuring, until the rate stops rising: a server runs for days, so what
 * matters is its JIT-compiled steady state, and the two targets get there at very
 * different speeds. Logins run back to back at concurrency 64 in windows of `--seconds`;
 * warm-up ends once {@link WARMUP.flat} windows in a row fail to beat the best rate so far
 * by more than {@link WARMUP.gain} (or after {@link WARMUP.maxSeconds}). Every window is
 * kept in the JSON.
 *
 * Why not a fixed warm-up: measured 2026-11-25 (perf over the whole machine, and vault
 * CPU per login in 3 s windows at c=64 on a freshly started fleet), a fleet node's CPU
 * per login fell from 4.4–5.2 ms to ~2.0–2.2 ms over its first ~2,000 logins (~25 s:
 * each node sees a third of the traffic, and its compiles compete with six other
 * processes for two cores). In the first window perf put 46 % of the machine's samples in
 * the node binary itself — V8's inline-cache builtins (`Builtins_LoadIC`), baseline code
 * and TurboFan's `GraphReducer` — against 27 % once warm. The previous fixed warm-up
 * (4 s at c=16) ended in the middle of that, so the fleet's first round was still
 * climbing (round peaks 307 / 296 / 379 logins/s in one run). The single node, with all
 * the traffic, is warm after its first window.
 */
const WARMUP = { concurrency: 64, gain: 0.03, flat: 3, maxSeconds: 90 };

interface Account {
  /** Every node; successive logins of the account go to successive nodes (see nextUrl). */
  readonly urls: readonly string[];
  readonly home: number;
  readonly token: string;
  logins: number;
}

/**
 * The node for the account's next login. Rotating over the nodes keeps the bench from
 * flattering the etcd store's memory of its own recent writes (a node answers a
 * non-linearizable read of a record it wrote in the last 2 s without an RPC): real users
 * log in minutes to days apart, so their login starts never find such a record; only the
 * finish, right after its start on the same node, does. With 512 accounts the same node
 * sees an account again only after 3 × 512 / rate seconds, well over 2 s at any rate
 * reached here.
 */
function nextUrl(a: Account): string {
  return a.urls[(a.home + a.logins++) % a.urls.length] ?? '';
}

interface Target {
  readonly name: string;
  readonly urls: readonly string[];
  token(account: string): Promise<string>;
  /** PIDs of the vault processes (read when the measurement starts). */
  vaultPids(): readonly number[];
  /** PIDs of the etcd members, if any. */
  etcdPids(): readonly number[];
  /** Every etcd member's Prometheus /metrics text, if any (they count RPCs). */
  etcdMetrics(): Promise<string[]>;
}

/** Per full login, over the closed-loop phase. */
interface Cost {
  readonly logins: number;
  readonly cpuMsPerLogin: {
    readonly vault: number;
    readonly etcd: number;
    readonly client: number;
  };
  /** etcd RPCs handled per login, by gRPC method (all members together). */
  readonly etcdRpcsPerLogin: Readonly<Record<string, number>>;
}

interface Result {
  readonly name: string;
  readonly nodes: number;
  /** 1-minute load average when the measurement began (other jobs on the machine). */
  readonly loadAtStart: number;
  /** Rate of each warm-up window (logins/s), until it plateaued (see {@link WARMUP}). */
  readonly warmupRates: readonly number[];
  /** Median over rounds of each round's best closed-loop rate. */
  readonly peakLoginsPerSecond: number;
  /** Concurrency of the closed-loop step that gave the median round's peak. */
  readonly peakConcurrency: number;
  /** Each round's best closed-loop rate. */
  readonly roundPeaks: readonly number[];
  readonly closedLoop: readonly {
    round: number;
    concurrency: number;
    loginsPerSecond: number;
    errors: number;
    logins: number;
  }[];
  readonly cost: Cost;
  /** Every open-loop run at half the peak; {@link Result.halfPeak} is the median-p99 one. */
  readonly halfPeakRuns: readonly Result['halfPeak'][];
  readonly halfPeak: {
    readonly rate: number;
    readonly achieved: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly errors: number;
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? NaN;
}

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function accountsFor(t: Target, n: number): Promise<Account[]> {
  const out: Account[] = [];
  for (let i = 0; i < n; i++) {
    const account = `bench-${i}`;
    const url = t.urls[i % t.urls.length] ?? '';
    const token = await t.token(account);
    const r = await register(url, token, PASSWORD, randomBytes(32), { maxAttempts: 10 });
    if (r.status.status !== 200) throw new Error(`register ${account}: ${r.status.status}`);
    out.push({ urls: t.urls, home: i % t.urls.length, token, logins: 0 });
  }
  return out;
}

/** Closed loop: `c` workers, each owning its accounts, logging in back to back. */
async function closed(accounts: readonly Account[], c: number, seconds: number) {
  let done = 0;
  let errors = 0;
  const until = Date.now() + seconds * 1000;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: c }, async (_, w) => {
      const mine = accounts.filter((_a, i) => i % c === w);
      for (let k = 0; Date.now() < until; k++) {
        const a = mine[k % mine.length];
        if (!a) return;
        const r = await login(nextUrl(a), a.token, PASSWORD);
        if (r.ok) done += 1;
        else errors += 1;
      }
    }),
  );
  return {
    concurrency: c,
    loginsPerSecond: done / ((Date.now() - t0) / 1000),
    errors,
    logins: done,
  };
}

async function cpuMs(pids: readonly number[]): Promise<number> {
  let sum = 0;
  for (const p of pids) sum += await cpuMsOf(p);
  return sum;
}

/** Sum over members of etcd's `grpc_server_handled_total`, by method. */
async function etcdRpcs(t: Target): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const text of await t.etcdMetrics()) {
    for (const line of text.split('\n')) {
      if (!line.startsWith('grpc_server_handled_total{')) continue;
      const method = /grpc_method="([^"]+)"/.exec(line)?.[1];
      const n = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (method && Number.isFinite(n)) out.set(method, (out.get(method) ?? 0) + n);
    }
  }
  return out;
}

/** Open loop at `rate`/s: logins start on schedule; latency counts from the scheduled time. */
async function open(accounts: readonly Account[], rate: number, seconds: number) {
  const total = Math.max(1, Math.floor(rate * seconds));
  const interval = 1000 / rate;
  const latencies: number[] = [];
  let errors = 0;
  const busy = new Set<number>();
  const t0 = performance.now() + 50;
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const at = t0 + i * interval;
    const wait = at - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // One login per account at a time (concurrent logins of one account contend).
    let idx = i % accounts.length;
    for (let j = 0; j < accounts.length && busy.has(idx); j++) idx = (idx + 1) % accounts.length;
    const a = accounts[idx];
    if (!a) continue;
    busy.add(idx);
    jobs.push(
      login(nextUrl(a), a.token, PASSWORD).then(
        (r) => {
          busy.delete(idx);
          if (r.ok) latencies.push(performance.now() - at);
          else errors += 1;
        },
        () => {
          busy.delete(idx);
          errors += 1;
        },
      ),
    );
  }
  await Promise.all(jobs);
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((x, y) => x - y);
  return {
    rate,
    achieved: latencies.length / elapsed,
    p50Ms: pct(latencies, 50),
    p99Ms: pct(latencies, 99),
    errors,
  };
}

/** Other people's jobs share this machine: wait (bounded) for a calmer moment, and record it. */
async function waitForQuiet(maxSeconds: number): Promise<number> {
  const limit = cpus().length * 0.75;
  const until = Date.now() + maxSeconds * 1000;
  while ((loadavg()[0] ?? 0) > limit && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 2000));
  }
  return loadavg()[0] ?? 0;
}

/** Closed-loop windows at {@link WARMUP}'s concurrency until the rate plateaus; their rates. */
async function warmUp(accounts: readonly Account[], seconds: number): Promise<number[]> {
  const rates: number[] = [];
  let best = 0;
  let flat = 0;
  const until = Date.now() + WARMUP.maxSeconds * 1000;
  while (flat < WARMUP.flat && Date.now() < until) {
    const r = (await closed(accounts, WARMUP.concurrency, seconds)).loginsPerSecond;
    rates.push(r);
    if (r > best * (1 + WARMUP.gain)) flat = 0;
    else flat += 1;
    best = Math.max(best, r);
  }
  return rates;
}

async function measure(
  t: Target,
  accounts: number,
  seconds: number,
  rounds: number,
): Promise<Result> {
  const accs = await accountsFor(t, accounts);
  const load = await waitForQuiet(60);
  const warmup = await warmUp(accs, seconds);
  const closedLoop = [];
  const vaultPids = t.vaultPids();
  const etcdPids = t.etcdPids();
  const [v0, e0, c0, r0] = [
    await cpuMs(vaultPids),
    await cpuMs(etcdPids),
    process.cpuUsage(),
    await etcdRpcs(t),
  ];
  // Rounds of the whole sweep: a round's peak varies by ±20 % on this shared VM (which
  // process the scheduler favours, where the etcd leader sits); the median round is
  // reported.
  const roundPeaks: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const sweep = [];
    for (const c of CONCURRENCY) sweep.push({ round: r, ...(await closed(accs, c, seconds)) });
    closedLoop.push(...sweep);
    roundPeaks.push(Math.max(...sweep.map((x) => x.loginsPerSecond)));
  }
  const [v1, e1, c1, r1] = [
    await cpuMs(vaultPids),
    await cpuMs(etcdPids),
    process.cpuUsage(c0),
    await etcdRpcs(t),
  ];
  const logins = closedLoop.reduce((n, x) => n + x.logins, 0);
  const per = (x: number): number => x / Math.max(1, logins);
  const cost: Cost = {
    logins,
    cpuMsPerLogin: {
      vault: per(v1 - v0),
      etcd: per(e1 - e0),
      client: per((c1.user + c1.system) / 1000),
    },
    etcdRpcsPerLogin: Object.fromEntries(
      [...r1]
        .filter(([m, n]) => n > (r0.get(m) ?? 0))
        .map(([m, n]) => [m, per(n - (r0.get(m) ?? 0))]),
    ),
  };
  const peak = median(roundPeaks);
  const best = closedLoop.reduce((a, b) =>
    Math.abs(b.loginsPerSecond - peak) < Math.abs(a.loginsPerSecond - peak) ? b : a,
  );
  // The open loop's p99 is the ~6th-worst of ~600 logins per run: one GC pause or fsync
  // stall moves it by 2×. It is measured `rounds` times; the median run is reported.
  const halfPeakRuns = [];
  for (let r = 0; r < rounds; r++) {
    halfPeakRuns.push(await open(accs, Math.max(1, peak / 2), seconds + 1));
  }
  const byP99 = [...halfPeakRuns].sort((a, b) => a.p99Ms - b.p99Ms);
  const halfPeak = byP99[Math.floor((byP99.length - 1) / 2)] ?? halfPeakRuns[0]!;
  return {
    name: t.name,
    nodes: t.urls.length,
    loadAtStart: load,
    warmupRates: warmup,
    peakLoginsPerSecond: peak,
    peakConcurrency: best.concurrency,
    roundPeaks,
    closedLoop,
    cost,
    halfPeak,
    halfPeakRuns,
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (n: string): string | undefined => {
    const i = argv.indexOf(`--${n}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const seconds = numberOption('seconds', opt('seconds'), 3, 1);
  const accounts = numberOption('accounts', opt('accounts'), 512, 64);
  const rounds = numberOption('rounds', opt('rounds'), 3, 1);
  const fleetOnly = argv.includes('--fleet-only');
  const tls = argv.includes('--tls');
  await opaque.ready;
  const results: Result[] = [];

  if (!fleetOnly) results.push(await measureSingle(accounts, seconds, rounds));

  const fleet = await startFleet({
    hsms: ['pkcs11', 'pkcs11', 'software'],
    auth: 'dev',
    etcdDeadlineMs: 3000,
    tls,
  });
  try {
    results.push(
      await measure(
        {
          name: `fleet: 3 nodes on 3-member etcd${tls ? ', mTLS' : ''}`,
          urls: fleet.nodes.map((n) => n.url),
          token: (a) => fleet.token(a),
          vaultPids: () => fleet.nodes.flatMap((n) => n.pid() ?? []),
          etcdPids: () => [0, 1, 2].flatMap((i) => fleet.etcd.pid(i) ?? []),
          etcdMetrics: () => Promise.all([0, 1, 2].map((i) => fleet.etcd.metrics(i))),
        },
        accounts,
        seconds,
        rounds,
      ),
    );
  } finally {
    await fleet.stopAll();
  }
  await report(results, { fleetOnly, tls }, seconds, accounts, rounds);
}

async function measureSingle(accounts: number, seconds: number, rounds: number): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), 'bv-bench-single-'));
  const single = await startVaultProcess([
    '--data',
    dir,
    '--dev-auth',
    '--workers',
    '1',
    '--log-level',
    'warn',
    ...NO_RATE_LIMITS,
  ]);
  try {
    return await measure(
      {
        name: 'single node, embedded SQLite',
        urls: [single.url],
        token: (a) => devToken(single.url, a),
        vaultPids: () => [single.pid],
        etcdPids: () => [],
        etcdMetrics: () => Promise.resolve([]),
      },
      accounts,
      seconds,
      rounds,
    );
  } finally {
    await single.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function report(
  results: readonly Result[],
  { fleetOnly, tls }: { fleetOnly: boolean; tls: boolean },
  seconds: number,
  accounts: number,
  rounds: number,
): Promise<void> {
  const s = fleetOnly ? undefined : results[0];
  const f = results[results.length - 1];
  const ratio = s && f ? f.peakLoginsPerSecond / s.peakLoginsPerSecond : NaN;
  const rows = results.map(
    (r) =>
      `| ${r.name.padEnd(34)} | ${r.peakLoginsPerSecond.toFixed(0).padStart(6)} (c=${String(r.peakConcurrency).padStart(2)}) | ` +
      `${r.loadAtStart.toFixed(1).padStart(4)} | ${r.halfPeak.rate.toFixed(0).padStart(5)} | ${r.halfPeak.p50Ms.toFixed(1).padStart(6)} | ${r.halfPeak.p99Ms.toFixed(1).padStart(6)} | ${String(r.halfPeak.errors).padStart(4)} |`,
  );
  process.stdout.write(
    [
      '',
      `vault logins — ${cpus().length} cores, load ${loadavg()[0]?.toFixed(1)}, ${new Date().toISOString()}`,
      '| target                             | peak logins/s    | load | half  | p50 ms | p99 ms | err  |',
      '|------------------------------------|------------------|------|-------|--------|--------|------|',
      ...rows,
      ...results.map(
        (r) =>
          `  ${r.name}: round peaks ${r.roundPeaks.map((x) => x.toFixed(0)).join(' / ')} logins/s; ` +
          `p99 at half peak ${r.halfPeakRuns.map((x) => x.p99Ms.toFixed(1)).join(' / ')} ms (medians reported)`,
      ),
      '',
      '| target                             | logins | CPU ms/login: vault | etcd | client | etcd RPCs/login      |',
      '|------------------------------------|--------|---------------------|------|--------|----------------------|',
      ...results.map(
        (r) =>
          `| ${r.name.padEnd(34)} | ${String(r.cost.logins).padStart(6)} | ${r.cost.cpuMsPerLogin.vault.toFixed(2).padStart(19)} | ` +
          `${r.cost.cpuMsPerLogin.etcd.toFixed(2).padStart(4)} | ${r.cost.cpuMsPerLogin.client.toFixed(2).padStart(6)} | ` +
          `${Object.entries(r.cost.etcdRpcsPerLogin)
            .map(([m, n]) => `${m} ${n.toFixed(2)}`)
            .join(', ')
            .padEnd(20)} |`,
      ),
      '',
      `fleet / single-node peak: ${(ratio * 100).toFixed(0)}% (target ≥ 50%); ` +
        `fleet p99 at half peak: ${f?.halfPeak.p99Ms.toFixed(1)} ms (target ≤ 50 ms)`,
      '',
    ].join('\n'),
  );
  const out = join(
    'bench',
    'results',
    `vault-fleet${fleetOnly ? '-only' : ''}${tls ? '-tls' : ''}-${new Date().toISOString().slice(0, 10)}.json`,
  );
  await mkdir(join('bench', 'results'), { recursive: true });
  await writeFile(
    out,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: { cores: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
        node: process.version,
        seconds,
        accounts,
        rounds,
        etcdTls: tls,
        results,
        fleetToSingleRatio: ratio,
        targets: { ratio: 0.5, p99Ms: 50 },
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`wrote ${out}\n`);
}

if (isMain(import.meta.url)) runMain(main);
