/**
 * Starts the real vault (`src/vault/serve.js`, or any command line that serves one) as a
 * child process on 127.0.0.1:0 and stops it by its PID. Captures stdout and stderr for log
 * assertions. The device-side launcher (test/client/vault-process.ts) builds on
 * {@link launchVault}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const SERVE = fileURLToPath(
  new URL('../../../packages/vault/dist/vault/serve.js', import.meta.url),
);

/**
 * `vault serve` flags that put the per-address and per-account rate limits, and the
 * per-address connection cap, out of reach: every request of a test or a bench comes from
 * 127.0.0.1, so the defaults would throttle the load itself. The attempt counter is
 * separate and stays in force.
 */
export const NO_RATE_LIMITS: readonly string[] = [
  '--rate-limit-ip',
  '10000000',
  '--rate-limit-account',
  '10000000',
  // Wrong-guess pacing too: tests and benches spend guesses back to back on purpose.
  // Pacing has its own tests (test/vault/pacing.test.ts).
  '--pacing',
  'off',
  '--max-connections-per-ip',
  '100000',
];

/** The fields of /proc/PID/stat after the command name (field 3, `state`, is index 0). */
async function statFields(pid: number | string): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // gone
  }
}

/** PIDs whose parent is `pid` (Linux /proc): a `--workers N` vault's worker processes. */
export async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (/^\d+$/.test(e) && Number((await statFields(e))?.[1]) === pid) out.push(Number(e));
  }
  return out;
}

/** CPU time (utime + stime) of a process in ms, from /proc (USER_HZ = 100); 0 when gone. */
export async function cpuMsOf(pid: number): Promise<number> {
  const f = await statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) * 10 : 0;
}

/** A running vault child process. */
export interface VaultProcess {
  readonly url: string;
  readonly serverPublicKey: string;
  readonly pid: number;
  /** The metrics listener's URL from the ready line (absent with `--metrics-listen off`). */
  readonly metricsUrl?: string;
  /** Everything the process wrote so far (stdout + stderr). */
  output(): string;
  /** SIGKILL by PID, no cleanup: simulates a crash. */
  crash(): Promise<void>;
  /** SIGTERM by PID, SIGKILL after 5 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) if (c.pid && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
});

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** Runs serve.js with `args` (environment: this one plus `env`) and waits until it listens. */
export function startVaultProcess(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: { readonly wrapper?: readonly string[] } = {},
): Promise<VaultProcess> {
  return launchVault(
    [SERVE, '--host', '127.0.0.1', '--port', '0', ...args],
    { ...process.env, ...env },
    options,
  );
}

/**
 * Runs `node ARGV` with exactly `env` and waits for the vault's ready line (or failure).
 * With BACKVAULT_CPU_PROF_DIR set, the vault writes a V8 CPU profile there on a graceful
 * exit (Node refuses --cpu-prof in NODE_OPTIONS).
 */
export async function launchVault(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { readonly wrapper?: readonly string[] } = {},
): Promise<VaultProcess> {
  const prof = process.env.BACKVAULT_CPU_PROF_DIR;
  const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [];
  // `wrapper` runs node under another program, e.g. `prlimit --nofile=160:160`.
  const [exe, ...pre] = [...(options.wrapper ?? []), process.execPath];
  const child = spawn(exe as string, [...pre, ...nodeArgs, ...argv], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const ready = await new Promise<{ listening: string; serverPublicKey: string; metrics?: string }>(
    (resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`vault did not start:\n${out}`)), 15_000);
      const onData = () => {
        for (const line of out.split('\n')) {
          if (line.startsWith('{"listening"')) {
            clearTimeout(timer);
            child.stdout!.off('data', onData);
            resolve(
              JSON.parse(line) as { listening: string; serverPublicKey: string; metrics?: string },
            );
            return;
          }
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(
          Object.assign(new Error(`vault exited with ${code}:\n${out}`), {
            exitCode: code,
            output: out,
          }),
        );
      });
    },
  );
  const pid = child.pid!;
  return {
    url: ready.listening,
    serverPublicKey: ready.serverPublicKey,
    ...(ready.metrics ? { metricsUrl: ready.metrics } : {}),
    pid,
    output: () => out,
    async crash() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      await exited(child);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGTERM');
      const t = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      }, 5_000);
      const code = await exited(child);
      clearTimeout(t);
      return code;
    },
  };
}

/** Runs serve.js expecting it to fail; returns exit code and output. */
export async function runVaultExpectingFailure(
  args: readonly string[],
): Promise<{ code: number | null; output: string }> {
  try {
    const v = await startVaultProcess(args);
    await v.stop();
    return { code: 0, output: v.output() };
  } catch (e) {
    const x = e as { exitCode?: number | null; output?: string };
    return { code: x.exitCode ?? null, output: x.output ?? String(e) };
  }
}
