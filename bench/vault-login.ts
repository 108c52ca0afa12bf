/**
 * Vault login benchmark: full logins (start + client finish + finish) per second and
 * p50/p99 latency against one real vault process on loopback, beside the CPU cost of the
 * OPAQUE server operations alone, measured in the same run.
 *
 * Client stretching: the library's "memory-constrained" Argon2id costs ~250 ms per client
 * finish, which would measure Argon2, not the vault. We use its `argon2id-custom` option
 * with minimal parameters (t=1, m=8 KiB); the server's work is identical either way
 * (stretching is client-only in OPAQUE). The load generator shares the 2-core machine
 * with the vault: each full login costs the client ~1 ms of CPU, so we also report the
 * vault's own CPU per login (from /proc) — the capacity it would have on dedicated cores.
 *
 * Bounded: at most MAX_LOGINS per step and STEP_SECONDS per step; loopback only.
 * Usage: node bench/vault-login.js [--accounts 64] [--seconds 4]
 * Prints a table; writes bench/results/vault-<date>.json (relative to the cwd).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';

const SERVE = fileURLToPath(new URL('../src/vault/serve.js', import.meta.url));
const STRETCH = { 'argon2id-custom': { iterations: 1, memory: 8, parallelism: 1 } } as const;
const MAX_LOGINS = 20_000;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const ACCOUNTS = arg('--accounts', 64);
const STEP_SECONDS = arg('--seconds', 4);

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function post(
  url: string,
  path: string,
  body: unknown,
  token?: string,
): Promise<Record<string, unknown>> {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  const j = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(j)}`);
  return j;
}

/** CPU seconds (user+system) of a process, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100/s)
}

/** OPAQUE server operations alone, on this core: ms per login start and per finish. */
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
  const n = 400;
  const kes = Array.from({ length: n }, () =>
    opaque.client.startLogin({ password: 'bench-password' }),
  );
  let t = performance.now();
  const started = kes.map((k) =>
    opaque.server.startLogin({
      serverSetup: setup,
      userIdentifier: 'u',
      registrationRecord: f.registrationRecord,
      startLoginRequest: k.startLoginRequest,
    }),
  );
  const startMs = (performance.now() - t) / n;
  const finishes = kes.map((k, i) =>
    opaque.client.finishLogin({
      password: 'bench-password',
      clientLoginState: k.clientLoginState,
      loginResponse: started[i]!.loginResponse,
      keyStretching: STRETCH,
    })!,
  );
  t = performance.now();
  for (let i = 0; i < n; i++)
    opaque.server.finishLogin({
      serverLoginState: started[i]!.serverLoginState,
      finishLoginRequest: finishes[i]!.finishLoginRequest,
    });
  return { startMs, finishMs: (performance.now() - t) / n };
}

interface Account {
  token: string;
  password: string;
}

async function fullLogin(url: string, a: Account): Promise<void> {
  const c = opaque.client.startLogin({ password: a.password });
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
  errors: number;
}

/** Closed loop: `concurrency` workers; or open loop at `rate` logins/s when given. */
async function step(
  url: string,
  pid: number,
  accounts: Account[],
  concurrency: number,
  rate?: number,
): Promise<Step> {
  const lat: number[] = [];
  let errors = 0;
  let issued = 0;
  const t0 = performance.now();
  const deadline = t0 + STEP_SECONDS * 1000;
  const cpu0 = await cpuSeconds(pid);
  const one = async () => {
    const a = accounts[issued++ % accounts.length]!;
    const s = performance.now();
    try {
      await fullLogin(url, a);
      lat.push(performance.now() - s);
    } catch {
      errors++;
    }
  };
  if (rate === undefined) {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline && issued < MAX_LOGINS) await one();
      }),
    );
  } else {
    const inflight = new Set<Promise<void>>();
    const interval = 1000 / rate;
    let next = performance.now();
    while (performance.now() < deadline && issued < MAX_LOGINS) {
      const now = performance.now();
      if (now >= next) {
        const p = one().finally(() => inflight.delete(p));
        inflight.add(p);
        next += interval;
      } else {
        await new Promise((r) => setTimeout(r, Math.max(0, Math.min(next - now, 5))));
      }
    }
    await Promise.all(inflight);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = (await cpuSeconds(pid)) - cpu0;
  lat.sort((x, y) => x - y);
  return {
    mode: rate === undefined ? 'closed' : `open@${rate}/s`,
    concurrency,
    logins: lat.length,
    seconds: Math.round(seconds * 100) / 100,
    loginsPerSecond: Math.round(lat.length / seconds),
    p50ms: Math.round(pct(lat, 50) * 100) / 100,
    p99ms: Math.round(pct(lat, 99) * 100) / 100,
    vaultCpuMsPerLogin: lat.length ? Math.round(((cpu * 1000) / lat.length) * 100) / 100 : NaN,
    errors,
  };
}

async function main(): Promise<void> {
  await opaque.ready;
  const dir = await mkdtemp(join(tmpdir(), 'bv-bench-'));
  const child = spawn(
    process.execPath,
    [
      SERVE,
      '--data',
      dir,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--dev-auth',
      '--log-level',
      'warn',
      '--rate-limit-ip',
      '10000000',
      '--rate-limit-account',
      '10000000',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const pid = child.pid!;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{"listening"'));
        if (line) resolve((JSON.parse(line) as { listening: string }).listening);
      });
      child.once('exit', (c) => reject(new Error(`vault exited ${c}`)));
    });
    const ops = measureServerOps();
    const accounts: Account[] = [];
    for (let i = 0; i < ACCOUNTS; i++) {
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
      accounts.push({ token, password });
    }
    await step(url, pid, accounts, 4); // warm-up
    const steps: Step[] = [];
    for (const c of [1, 4, 16, 32]) steps.push(await step(url, pid, accounts, c));
    const peak = Math.max(...steps.map((s) => s.loginsPerSecond));
    steps.push(await step(url, pid, accounts, 0, Math.max(1, Math.round(peak / 2))));

    const serverOpsMs = ops.startMs + ops.finishMs;
    const limit1 = 1000 / serverOpsMs;
    const limit2 = 2 * limit1;
    const cpuPerLogin = Math.min(
      ...steps.filter((s) => s.logins > 0).map((s) => s.vaultCpuMsPerLogin),
    );
    console.log(
      `\nOPAQUE server ops alone (this run, one core): start ${ops.startMs.toFixed(3)} ms, finish ${ops.finishMs.toFixed(3)} ms`,
    );
    console.log(`limit: ${limit1.toFixed(0)} logins/s per core, ${limit2.toFixed(0)} on 2 cores\n`);
    console.log('mode          conc  logins/s   p50 ms   p99 ms  vault CPU ms/login  errors');
    for (const s of steps) {
      console.log(
        `${s.mode.padEnd(13)} ${String(s.concurrency).padStart(4)} ${String(s.loginsPerSecond).padStart(9)} ${s.p50ms.toFixed(2).padStart(8)} ${s.p99ms.toFixed(2).padStart(8)} ${s.vaultCpuMsPerLogin.toFixed(2).padStart(19)} ${String(s.errors).padStart(7)}`,
      );
    }
    const vaultCapacity1 = 1000 / cpuPerLogin;
    console.log(
      `\npeak ${peak} logins/s = ${((100 * peak) / limit2).toFixed(0)}% of the 2-core limit (${((100 * peak) / limit1).toFixed(0)}% of one core)`,
    );
    console.log(
      `vault CPU per login ${cpuPerLogin.toFixed(2)} ms → ${vaultCapacity1.toFixed(0)} logins/s per dedicated core (${((100 * vaultCapacity1) / limit1).toFixed(0)}% of the per-core limit)`,
    );
    const result = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
      accounts: ACCOUNTS,
      stepSeconds: STEP_SECONDS,
      serverOpsMs: ops,
      limitLoginsPerSecond: { oneCore: Math.round(limit1), twoCores: Math.round(limit2) },
      steps,
      peakLoginsPerSecond: peak,
      vaultCpuMsPerLogin: cpuPerLogin,
    };
    const out = join(process.cwd(), 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = join(out, `vault-${result.date.slice(0, 10)}.json`);
    await writeFile(file, JSON.stringify(result, null, 2) + '\n');
    console.log(`\nwrote ${file}`);
  } finally {
    process.kill(pid, 'SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
