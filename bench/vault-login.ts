/**
 * Vault login benchmark. In ONE invocation, per run (default 3 runs, fresh vault each):
 *  (a) the CPU cost of the OPAQUE server operations alone (server startLogin + finishLogin,
 *      in this process, one core, CPU time from process.cpuUsage so other people's load on
 *      the machine does not inflate it) -> limit = 2 cores / cost;
 *  (b) peak full logins/s (start + client finish + finish) against one real vault node
 *      (`serve --workers 2`, embedded SQLite store, software HSM) on loopback, closed loop
 *      at several concurrencies;
 *  (c) p50/p99 at half that peak, OPEN loop (requests paced on a fixed schedule; latency
 *      counted from the scheduled time, so a stalled generator cannot hide queueing);
 *  (d) two floors that bound what any vault can reach here: the CPU per login of a bare
 *      node:http server doing only the OPAQUE operations (`floor-server.ts`: no framework,
 *      store, token check or sealing) at the vault's peak concurrency, and the CPU of one
 *      durable 4 KiB overwrite + fdatasync in the vault's temp directory (a login commits
 *      the counter twice);
 *  (e) the vault's share of that floor: floor ÷ vault CPU per login in adjacent windows
 *      (floor, vault, floor, vault …; both servers up), median of the pairs.
 *
 * The load generator shares the vault's 2 cores. To keep its share small: every client
 * KE1 (startLogin) is precomputed between steps (it does not depend on the server); the
 * client finishLogin must run per login (KE3 depends on KE2) and uses the lightest client
 * stretching the library offers (`argon2id-custom`, t=1, m=8 KiB; the server's work is
 * identical for any client stretching); HTTP goes over node:http keep-alive sockets.
 * Its CPU per login is still ~1 ms here, so the observed peak is bounded by
 * 2 cores / (vault + generator CPU per login). The honest efficiency figure is therefore
 * the VAULT's own CPU per login (primary + workers, from /proc): the capacity of 2 cores
 * dedicated to the vault is 2000 / that, reported beside the observed peak.
 *
 * Bounded: at most MAX_LOGINS per step, `--seconds` per step; 127.0.0.1 only.
 * Usage: node bench/vault-login.js [--runs 3] [--workers 2] [--accounts 256] [--seconds 4]
 *          [--wait-load 1.5 --wait-max 180] [--nice 0] [--warmup fixed]
 * Prints a table; writes bench/results/vault-<date>.json (relative to the cwd).
 */
import { Agent, request } from 'node:http';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import {
  NO_RATE_LIMITS,
  childrenOf,
  cpuMsOf,
  launchVault,
  startVaultProcess,
} from '../test/vault/vault-process.js';

const STRETCH = { 'argon2id-custom': { iterations: 1, memory: 8, parallelism: 1 } } as const;
const MAX_LOGINS = 20_000;
const CLOSED_CONCURRENCY = [2, 4, 8, 16];

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isFinite(v)) throw new Error(`${name} needs a number`);
  return v;
}
const RUNS = arg('--runs', 3);
const WORKERS = arg('--workers', 2);
const ACCOUNTS = arg('--accounts', 256);
const STEP_SECONDS = arg('--seconds', 4);
const WAIT_LOAD = arg('--wait-load', 1.5);
const WAIT_MAX_S = arg('--wait-max', 0);
const NICE = arg('--nice', 0);
/** `--warmup fixed`: the old warm-up (one step at concurrency 4), for comparisons. */
const FIXED_WARMUP =
  process.argv.includes('--warmup') &&
  process.argv[process.argv.indexOf('--warmup') + 1] === 'fixed';

/**
 * Warm-up of the vault and of the floor before anything is measured, until the server's
 * CPU per login stops falling: closed-loop windows of `--seconds` at concurrency 16; it
 * ends once {@link WARMUP.flat} windows in a row fail to beat the best (lowest) CPU per
 * login so far by more than {@link WARMUP.gain}, or after {@link WARMUP.maxSeconds}.
 * Every window is kept in the JSON. Why: the vault runs its logins on two worker
 * processes, each JIT-compiling a much larger code path (Fastify, the service, the store,
 * the journal) with half the traffic, while the floor is one small process. With the
 * former fixed warm-up (one step at concurrency 4) the vault was still warming up when
 * measured: perf put ~9 % of the workers' samples in TurboFan compile jobs 3–10 s into a
 * load (2026-12-06), and their CPU per login kept falling for 20–40 s. CPU per login, not the rate, decides
 * the plateau: on this shared VM the rate moves with other people's load.
 */
const WARMUP = { concurrency: 16, gain: 0.03, flat: 3, maxSeconds: 60 };

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
function median(xs: readonly number[]): number {
  return pct(
    [...xs].sort((a, b) => a - b),
    50,
  );
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function post(
  url: string,
  path: string,
  body: unknown,
  token?: string,
): Promise<Record<string, unknown>> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url + path,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(data),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const j = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
          if (res.statusCode !== 200) reject(new Error(`${path}: ${res.statusCode}`));
          else resolve(j);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** CPU seconds of the vault: primary + workers. */
async function vaultCpu(pids: readonly number[]): Promise<number> {
  let s = 0;
  for (const p of pids) s += (await cpuMsOf(p)) / 1000;
  return s;
}

function cpuMsNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** OPAQUE server operations alone, one core, CPU ms per op (median of batches). */
function measureServerOps(): { startMs: number; finishMs: number } {
  const setup = opaque.server.createSetup();
  const c = opaque.client.startRegistration({ password: 'bench-password' });
  const r = opaque.server.createRegistrationResponse({
    serverSetup: setup,
    userIdentifier: 'u',
    registrationRequest: c.registrationRequest,
  });
  const f = opaque.client.finishRegistration({
    password: 'bench-password',
    clientRegistrationState: c.clientRegistrationState,
    registrationResponse: r.registrationResponse,
    keyStretching: STRETCH,
  });
  const starts: number[] = [];
  const finishes: number[] = [];
  const n = 200;
  for (let batch = 0; batch < 5; batch++) {
    const kes = Array.from({ length: n }, () =>
      opaque.client.startLogin({ password: 'bench-password' }),
    );
    let t = cpuMsNow();
    const started = kes.map((k) =>
      opaque.server.startLogin({
        serverSetup: setup,
        userIdentifier: 'u',
        registrationRecord: f.registrationRecord,
        startLoginRequest: k.startLoginRequest,
      }),
    );
    starts.push((cpuMsNow() - t) / n);
    const kes3 = kes.map((k, i) =>
      opaque.client.finishLogin({
        password: 'bench-password',
        clientLoginState: k.clientLoginState,
        loginResponse: started[i]!.loginResponse,
        keyStretching: STRETCH,
      })!,
    );
    t = cpuMsNow();
    for (let i = 0; i < n; i++)
      opaque.server.finishLogin({
        serverLoginState: started[i]!.serverLoginState,
        finishLoginRequest: kes3[i]!.finishLoginRequest,
      });
    finishes.push((cpuMsNow() - t) / n);
  }
  return { startMs: median(starts), finishMs: median(finishes) };
}

/**
 * CPU µs of one durable 4 KiB overwrite + fdatasync in `dir` (median of batches): the
 * kernel's share of every commit, which no store can skip.
 */
function measureDurableWrite(dir: string): number {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'w');
  try {
    const page = Buffer.alloc(4096, 7);
    for (let i = 0; i < 64; i++) writeSync(fd, page, 0, page.length, i * 4096);
    fdatasyncSync(fd);
    const perOp: number[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const t = cpuMsNow();
      for (let i = 0; i < 100; i++) {
        writeSync(fd, page, 0, page.length, (i % 64) * 4096);
        fdatasyncSync(fd);
      }
      perOp.push(((cpuMsNow() - t) / 100) * 1000);
    }
    return median(perOp);
  } finally {
    closeSync(fd);
  }
}

interface Account {
  readonly token: string;
  readonly password: string;
}
type Ke1 = ReturnType<typeof opaque.client.startLogin>;

/**
 * Accounts are handed out one login at a time: two concurrent logins on one account would
 * race on its counter (and ten would lock it), which is not what we measure.
 */
class Pool {
  readonly #free: Account[];
  readonly #ke1 = new Map<Account, Ke1[]>();
  onTheFlyKe1 = 0;
  constructor(accounts: Account[]) {
    this.#free = [...accounts];
  }
  take(): Account | undefined {
    return this.#free.pop();
  }
  give(a: Account): void {
    this.#free.unshift(a);
  }
  /** Precomputes KE1s (outside any timed step) so each account has `perAccount`. */
  fill(perAccount: number): void {
    for (const a of this.#free) {
      const list = this.#ke1.get(a) ?? [];
      while (list.length < perAccount)
        list.push(opaque.client.startLogin({ password: a.password }));
      this.#ke1.set(a, list);
    }
  }
  ke1(a: Account): Ke1 {
    const k = this.#ke1.get(a)?.pop();
    if (k) return k;
    this.onTheFlyKe1++;
    return opaque.client.startLogin({ password: a.password });
  }
}

async function fullLogin(url: string, pool: Pool, a: Account): Promise<void> {
  const c = pool.ke1(a);
  const s = await post(url, '/v1/login/start', { startLoginRequest: c.startLoginRequest }, a.token);
  const f = opaque.client.finishLogin({
    password: a.password,
    clientLoginState: c.clientLoginState,
    loginResponse: s.loginResponse as string,
    keyStretching: STRETCH,
  });
  if (!f) throw new Error('login failed');
  await post(
    url,
    '/v1/login/finish',
    { loginState: s.loginState, finishLoginRequest: f.finishLoginRequest },
    a.token,
  );
}

interface Step {
  mode: string;
  concurrency: number;
  logins: number;
  seconds: number;
  loginsPerSecond: number;
  p50ms: number;
  p99ms: number;
  vaultCpuMsPerLogin: number;
  loadgenCpuMsPerLogin: number;
  errors: number;
  noFreeAccount: number;
}

/** Warm-up windows (see {@link WARMUP}); returns each window's server CPU ms per login. */
async function warmUp(
  url: string,
  pids: readonly number[],
  pool: Pool,
  fill: () => void,
): Promise<number[]> {
  if (FIXED_WARMUP) {
    fill();
    return [(await step(url, pids, pool, 4)).vaultCpuMsPerLogin];
  }
  const cpu: number[] = [];
  let best = Infinity;
  let flat = 0;
  const until = Date.now() + WARMUP.maxSeconds * 1000;
  while (flat < WARMUP.flat && Date.now() < until) {
    fill();
    const c = (await step(url, pids, pool, WARMUP.concurrency)).vaultCpuMsPerLogin;
    cpu.push(c);
    if (c < best * (1 - WARMUP.gain)) flat = 0;
    else flat += 1;
    best = Math.min(best, c);
  }
  return cpu;
}

/** Closed loop with `concurrency` loops, or open loop at `rate` logins/s when given. */
async function step(
  url: string,
  pids: readonly number[],
  pool: Pool,
  concurrency: number,
  rate?: number,
): Promise<Step> {
  const lat: number[] = [];
  let errors = 0;
  let issued = 0;
  let noFree = 0;
  const vault0 = await vaultCpu(pids);
  const gen0 = cpuMsNow();
  const t0 = performance.now();
  const deadline = t0 + STEP_SECONDS * 1000;
  const one = async (scheduledAt: number): Promise<void> => {
    const a = pool.take();
    if (!a) {
      noFree++;
      return;
    }
    issued++;
    try {
      await fullLogin(url, pool, a);
      lat.push(performance.now() - scheduledAt);
    } catch {
      errors++;
    } finally {
      pool.give(a);
    }
  };
  if (rate === undefined) {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline && issued < MAX_LOGINS) await one(performance.now());
      }),
    );
  } else {
    const inflight = new Set<Promise<void>>();
    const interval = 1000 / rate;
    let next = performance.now();
    while (performance.now() < deadline && issued < MAX_LOGINS) {
      // Catch up on every slot that is due: the schedule does not wait for the system.
      while (performance.now() >= next) {
        const p = one(next).finally(() => inflight.delete(p));
        inflight.add(p);
        next += interval;
      }
      await sleep(Math.max(0, Math.min(next - performance.now(), 4)));
    }
    await Promise.all(inflight);
  }
  const seconds = (performance.now() - t0) / 1000;
  const vaultMs = ((await vaultCpu(pids)) - vault0) * 1000;
  const genMs = cpuMsNow() - gen0;
  lat.sort((x, y) => x - y);
  const n = lat.length;
  return {
    mode: rate === undefined ? 'closed' : `open@${rate}/s`,
    concurrency,
    logins: n,
    seconds: round(seconds),
    loginsPerSecond: Math.round(n / seconds),
    p50ms: round(pct(lat, 50)),
    p99ms: round(pct(lat, 99)),
    vaultCpuMsPerLogin: n ? round(vaultMs / n, 3) : NaN,
    loadgenCpuMsPerLogin: n ? round(genMs / n, 3) : NaN,
    errors,
    noFreeAccount: noFree,
  };
}

interface Vault {
  url: string;
  pids: number[];
  stop(): Promise<void>;
}

async function startVault(dir: string): Promise<Vault> {
  const v = await startVaultProcess([
    '--data',
    dir,
    '--dev-auth',
    '--workers',
    String(WORKERS),
    '--log-level',
    'warn',
    ...NO_RATE_LIMITS,
  ]);
  return {
    url: v.url,
    pids: [v.pid, ...(await childrenOf(v.pid))],
    async stop() {
      await v.stop();
    },
  };
}

async function registerAccounts(url: string, n: number): Promise<Account[]> {
  const one = async (i: number): Promise<Account> => {
    const token = (await post(url, '/v1/dev/token', { account: `bench-${i}` })).token as string;
    const password = `pw-${randomBytes(6).toString('hex')}`;
    const c = opaque.client.startRegistration({ password });
    const s = await post(
      url,
      '/v1/registration/start',
      { registrationRequest: c.registrationRequest },
      token,
    );
    const f = opaque.client.finishRegistration({
      password,
      clientRegistrationState: c.clientRegistrationState,
      registrationResponse: s.registrationResponse as string,
      keyStretching: STRETCH,
    });
    await post(
      url,
      '/v1/registration/finish',
      {
        registrationTicket: s.registrationTicket,
        registrationRecord: f.registrationRecord,
        keyEnvelope: randomBytes(60).toString('base64url'),
        keyProof: randomBytes(32).toString('base64url'),
      },
      token,
    );
    return { token, password };
  };
  const out: Account[] = [];
  for (let i = 0; i < n; i += 8) {
    out.push(
      ...(await Promise.all(Array.from({ length: Math.min(8, n - i) }, (_, k) => one(i + k)))),
    );
  }
  return out;
}

interface Run {
  loadavgBefore: number[];
  loadavgAfter: number[];
  serverOpsCpuMs: { startMs: number; finishMs: number };
  limitLoginsPerSecond2Cores: number;
  steps: Step[];
  peakLoginsPerSecond: number;
  peakConcurrency: number;
  halfPeak: Step;
  vaultCpuMsPerLoginAtPeak: number;
  loadgenCpuMsPerLoginAtPeak: number;
  ke1ComputedInStep: number;
  /** Server CPU ms per login of each warm-up window (see WARMUP), vault then floor. */
  warmupCpuMsPerLogin: { vault: number[]; floor: number[] };
  /** The bare node:http + OPAQUE server at the vault's peak concurrency. */
  floor: Step;
  /**
   * Floor and vault windows taken back to back at the vault's peak concurrency, both
   * servers running (see {@link PAIRS}).
   */
  pairs: Pair[];
  /**
   * The vault's share of its floor in this run: floor CPU per login ÷ vault CPU per login,
   * the median over {@link Run.pairs} (1 = the vault costs no more than bare node:http +
   * OPAQUE).
   */
  vaultShareOfFloor: number;
  /**
   * The figure as measured up to session 12: the floor's one step ÷ the vault's peak step,
   * taken minutes apart (kept for comparison).
   */
  vaultShareOfFloorUnpaired: number;
  /** Vault peak logins/s ÷ floor logins/s at the same concurrency, same generator. */
  vaultRateVsFloor: number;
  durableWriteCpuUs: number;
}

async function oneRun(): Promise<Run> {
  const loadavgBefore = loadavg().map((x) => round(x));
  const ops = measureServerOps();
  const limit2 = 2000 / (ops.startMs + ops.finishMs);
  const dir = await mkdtemp(join(tmpdir(), 'bv-bench-'));
  let vault: Vault | undefined;
  try {
    vault = await startVault(dir);
    const pool = new Pool(await registerAccounts(vault.url, ACCOUNTS));
    // Enough KE1s per account for the fastest step we could see, computed untimed.
    const perStep = (rate: number) => Math.ceil((rate * STEP_SECONDS * 1.3) / ACCOUNTS) + 1;
    const vaultWarmup = await warmUp(vault.url, vault.pids, pool, () => pool.fill(perStep(limit2)));
    const steps: Step[] = [];
    for (const c of CLOSED_CONCURRENCY) {
      pool.fill(perStep(limit2));
      steps.push(await step(vault.url, vault.pids, pool, c));
    }
    const peakStep = steps.reduce((a, b) => (b.loginsPerSecond > a.loginsPerSecond ? b : a));
    const half = Math.max(1, Math.round(peakStep.loginsPerSecond / 2));
    pool.fill(perStep(half));
    const halfPeak = await step(vault.url, vault.pids, pool, 0, half);
    steps.push(halfPeak);
    const v = vault;
    const {
      floor,
      warmup: floorWarmup,
      pairs,
    } = await measureFloor(peakStep.concurrency, perStep(limit2), async () => {
      pool.fill(perStep(limit2));
      return step(v.url, v.pids, pool, peakStep.concurrency);
    });
    await vault.stop();
    vault = undefined;
    const durableWriteCpuUs = measureDurableWrite(dir);
    return {
      loadavgBefore,
      loadavgAfter: loadavg().map((x) => round(x)),
      serverOpsCpuMs: { startMs: round(ops.startMs, 3), finishMs: round(ops.finishMs, 3) },
      limitLoginsPerSecond2Cores: Math.round(limit2),
      steps,
      peakLoginsPerSecond: peakStep.loginsPerSecond,
      peakConcurrency: peakStep.concurrency,
      halfPeak,
      vaultCpuMsPerLoginAtPeak: peakStep.vaultCpuMsPerLogin,
      loadgenCpuMsPerLoginAtPeak: peakStep.loadgenCpuMsPerLogin,
      ke1ComputedInStep: pool.onTheFlyKe1,
      warmupCpuMsPerLogin: { vault: vaultWarmup, floor: floorWarmup },
      floor,
      pairs,
      vaultShareOfFloor: round(median(pairs.map((p) => p.share)), 3),
      vaultShareOfFloorUnpaired: round(floor.vaultCpuMsPerLogin / peakStep.vaultCpuMsPerLogin, 3),
      vaultRateVsFloor: round(peakStep.loginsPerSecond / floor.loginsPerSecond, 3),
      durableWriteCpuUs: round(durableWriteCpuUs, 1),
    };
  } finally {
    await vault?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * How many floor/vault window pairs decide the share. Why pairs: up to session 12 the
 * share divided the floor's one step by the vault's peak step, taken minutes apart, and
 * on this shared VM other people's load moves CPU per login by ±30 % within minutes
 * (cache and core contention): the same code read 38 % and 68 % in consecutive runs.
 * Adjacent windows see nearly the same machine, so their ratio measures the servers.
 */
const PAIRS = 3;

interface Pair {
  floorCpuMsPerLogin: number;
  vaultCpuMsPerLogin: number;
  share: number;
}

/**
 * The floor server under the same generator: warm-up, then one closed-loop step, then
 * {@link PAIRS} pairs of windows at `concurrency`, floor then vault (`vaultStep`: one
 * step of the still-running vault).
 */
async function measureFloor(
  concurrency: number,
  ke1PerAccount: number,
  vaultStep: () => Promise<Step>,
): Promise<{ floor: Step; warmup: number[]; pairs: Pair[] }> {
  const floor = await launchVault(
    [new URL('./floor-server.js', import.meta.url).pathname],
    process.env,
  );
  try {
    const pool = new Pool(await registerAccounts(floor.url, ACCOUNTS));
    const warmup = await warmUp(floor.url, [floor.pid], pool, () => pool.fill(ke1PerAccount));
    pool.fill(ke1PerAccount);
    const first = await step(floor.url, [floor.pid], pool, concurrency);
    // The vault sat idle through the floor's registration and warm-up (a minute or more):
    // in four of six runs its first window after that was the run's most expensive (e.g.
    // 6.2 ms per login, then 4.2 and 3.2; 2026-12-07). One untimed step warms it again.
    await vaultStep();
    const pairs: Pair[] = [];
    for (let i = 0; i < PAIRS; i++) {
      pool.fill(ke1PerAccount);
      const f = i === 0 ? first : await step(floor.url, [floor.pid], pool, concurrency);
      const v = await vaultStep();
      pairs.push({
        floorCpuMsPerLogin: f.vaultCpuMsPerLogin,
        vaultCpuMsPerLogin: v.vaultCpuMsPerLogin,
        share: round(f.vaultCpuMsPerLogin / v.vaultCpuMsPerLogin, 3),
      });
    }
    return { floor: first, warmup, pairs };
  } finally {
    await floor.stop();
  }
}

async function waitForQuietMachine(): Promise<{ waitedSeconds: number; reached: boolean }> {
  const t0 = Date.now();
  while (loadavg()[0]! >= WAIT_LOAD && Date.now() - t0 < WAIT_MAX_S * 1000) await sleep(5000);
  return {
    waitedSeconds: Math.round((Date.now() - t0) / 1000),
    reached: loadavg()[0]! < WAIT_LOAD,
  };
}

function printRun(i: number, r: Run): void {
  console.log(
    `\nrun ${i + 1}: load avg ${r.loadavgBefore.join(' ')} -> ${r.loadavgAfter.join(' ')}; ` +
      `OPAQUE server ops (CPU, one core): start ${r.serverOpsCpuMs.startMs} ms + finish ` +
      `${r.serverOpsCpuMs.finishMs} ms -> limit ${r.limitLoginsPerSecond2Cores} logins/s on 2 cores`,
  );
  console.log(
    `warm-up, server CPU ms/login per window: vault ${r.warmupCpuMsPerLogin.vault.join(' ')}; ` +
      `floor ${r.warmupCpuMsPerLogin.floor.join(' ')}`,
  );
  console.log(
    'mode            conc  logins/s   p50 ms   p99 ms  vault CPU ms/login  gen CPU ms/login  errors',
  );
  for (const s of r.steps) {
    console.log(
      `${s.mode.padEnd(15)} ${String(s.concurrency).padStart(4)} ${String(s.loginsPerSecond).padStart(9)} ` +
        `${s.p50ms.toFixed(2).padStart(8)} ${s.p99ms.toFixed(2).padStart(8)} ` +
        `${s.vaultCpuMsPerLogin.toFixed(3).padStart(19)} ${s.loadgenCpuMsPerLogin.toFixed(3).padStart(17)} ` +
        `${String(s.errors + s.noFreeAccount).padStart(7)}`,
    );
  }
  const f = r.floor;
  console.log(
    `floor: bare node:http + OPAQUE at concurrency ${f.concurrency}: ${f.loginsPerSecond} logins/s, ` +
      `${f.vaultCpuMsPerLogin.toFixed(3)} ms CPU/login; durable 4 KiB write + fdatasync: ` +
      `${r.durableWriteCpuUs} µs CPU`,
  );
  console.log(
    `paired windows at concurrency ${f.concurrency}, floor/vault CPU ms/login: ` +
      r.pairs
        .map(
          (p) => `${p.floorCpuMsPerLogin}/${p.vaultCpuMsPerLogin} (${Math.round(100 * p.share)}%)`,
        )
        .join(', ') +
      `; unpaired (floor step ÷ vault peak step): ${Math.round(100 * r.vaultShareOfFloorUnpaired)}%`,
  );
  console.log(
    `vault share of its floor: ${Math.round(100 * r.vaultShareOfFloor)}% of the floor's CPU ` +
      `efficiency (median of the paired windows); ` +
      `logins/s ${Math.round(100 * r.vaultRateVsFloor)}% of the floor's (floor p50/p99 ${f.p50ms}/${f.p99ms} ms)`,
  );
}

async function main(): Promise<void> {
  await opaque.ready;
  const quiet = await waitForQuietMachine();
  const loadavgAtStart = loadavg().map((x) => round(x));
  if (NICE) setPriority(NICE);
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    runs.push(await oneRun());
    printRun(i, runs[i]!);
  }
  const m = (f: (r: Run) => number) => round(median(runs.map(f)), 3);
  const limit = m((r) => r.limitLoginsPerSecond2Cores);
  const serverOpsMs = m((r) => r.serverOpsCpuMs.startMs + r.serverOpsCpuMs.finishMs);
  const peak = m((r) => r.peakLoginsPerSecond);
  const vaultCpu = m((r) => r.vaultCpuMsPerLoginAtPeak);
  const genCpu = m((r) => r.loadgenCpuMsPerLoginAtPeak);
  const summary = {
    serverOpsCpuMsPerLogin: serverOpsMs,
    limitLoginsPerSecond2Cores: limit,
    peakLoginsPerSecond: peak,
    peakVsLimit: round(peak / limit, 3),
    halfPeakRate: m((r) => Number(r.halfPeak.mode.replace(/\D+/g, ''))),
    halfPeakP50ms: m((r) => r.halfPeak.p50ms),
    halfPeakP99ms: m((r) => r.halfPeak.p99ms),
    vaultCpuMsPerLogin: vaultCpu,
    vaultCapacity2DedicatedCores: Math.round(2000 / vaultCpu),
    vaultCapacityVsLimit: round(serverOpsMs / vaultCpu, 3),
    loadgenCpuMsPerLogin: genCpu,
    coLocatedCeiling: Math.round(2000 / (vaultCpu + genCpu)),
    floorCpuMsPerLogin: m((r) => r.floor.vaultCpuMsPerLogin),
    floorVsLimit: round(serverOpsMs / m((r) => r.floor.vaultCpuMsPerLogin), 3),
    floorLoginsPerSecond: m((r) => r.floor.loginsPerSecond),
    floorP50ms: m((r) => r.floor.p50ms),
    floorP99ms: m((r) => r.floor.p99ms),
    peakP50ms: m((r) => r.steps.find((s) => s.concurrency === r.peakConcurrency)!.p50ms),
    peakP99ms: m((r) => r.steps.find((s) => s.concurrency === r.peakConcurrency)!.p99ms),
    vaultShareOfFloor: m((r) => r.vaultShareOfFloor),
    vaultShareOfFloorUnpaired: m((r) => r.vaultShareOfFloorUnpaired),
    vaultRateVsFloor: m((r) => r.vaultRateVsFloor),
    durableWriteCpuUs: m((r) => r.durableWriteCpuUs),
    cpuMsPerLoginAt80Percent: round(serverOpsMs / 0.8, 3),
  };
  console.log(
    `\nmedians of ${RUNS} runs (vault --workers ${WORKERS}, embedded SQLite, software HSM):`,
  );
  const rows: [string, string][] = [
    ['OPAQUE server ops alone (CPU ms/login)', `${summary.serverOpsCpuMsPerLogin}`],
    ['limit on 2 cores (logins/s)', `${summary.limitLoginsPerSecond2Cores}`],
    [
      'peak observed, generator on the same cores (logins/s)',
      `${summary.peakLoginsPerSecond}  (${Math.round(100 * summary.peakVsLimit)}% of limit)`,
    ],
    [
      `p50 / p99 at half peak, open loop (${summary.halfPeakRate}/s)`,
      `${summary.halfPeakP50ms} / ${summary.halfPeakP99ms} ms`,
    ],
    ['vault CPU per login, all processes (ms)', `${summary.vaultCpuMsPerLogin}`],
    [
      'vault capacity on 2 dedicated cores (logins/s)',
      `${summary.vaultCapacity2DedicatedCores}  (${Math.round(100 * summary.vaultCapacityVsLimit)}% of limit)`,
    ],
    ['load generator CPU per login (ms)', `${summary.loadgenCpuMsPerLogin}`],
    [
      'ceiling with the generator co-located: 2000/(vault+gen)',
      `${summary.coLocatedCeiling} logins/s`,
    ],
    ['CPU per login allowed at 80% of the limit (ms)', `${summary.cpuMsPerLoginAt80Percent}`],
    [
      'floor: bare node:http + OPAQUE, CPU per login (ms)',
      `${summary.floorCpuMsPerLogin}  (${Math.round(100 * summary.floorVsLimit)}% of limit)`,
    ],
    ['one durable 4 KiB write + fdatasync, CPU (µs; 2 per login)', `${summary.durableWriteCpuUs}`],
    [
      'floor logins/s, p50 / p99 at the peak concurrency',
      `${summary.floorLoginsPerSecond}, ${summary.floorP50ms} / ${summary.floorP99ms} ms`,
    ],
    [
      'vault at its peak: p50 / p99 (closed loop)',
      `${summary.peakP50ms} / ${summary.peakP99ms} ms`,
    ],
    [
      'VAULT SHARE OF ITS FLOOR (floor ÷ vault CPU/login, paired)',
      `${Math.round(100 * summary.vaultShareOfFloor)}%  (unpaired: ${Math.round(100 * summary.vaultShareOfFloorUnpaired)}%; logins/s: ${Math.round(100 * summary.vaultRateVsFloor)}% of the floor's)`,
    ],
  ];
  for (const [k, v] of rows) console.log(`  ${k.padEnd(58)} ${v}`);
  const result = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      node: process.version,
      loadavgAtStart,
      loadavgAtEnd: loadavg().map((x) => round(x)),
      waitedForLoadBelow: WAIT_LOAD,
      ...quiet,
    },
    config: {
      runs: RUNS,
      workers: WORKERS,
      accounts: ACCOUNTS,
      stepSeconds: STEP_SECONDS,
      closedConcurrency: CLOSED_CONCURRENCY,
      warmup: FIXED_WARMUP ? 'fixed: one step at concurrency 4' : WARMUP,
      loadgenNice: NICE,
      clientStretching: STRETCH,
      ke1: 'precomputed between steps',
      http: 'node:http keep-alive',
    },
    summary,
    runs,
  };
  const out = join(process.cwd(), 'bench', 'results');
  await mkdir(out, { recursive: true });
  const file = join(out, `vault-${result.date.slice(0, 10)}.json`);
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nwrote ${file}`);
  agent.destroy();
}

await main();
