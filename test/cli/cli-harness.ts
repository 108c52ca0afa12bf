/**
 * Runs the real `backvault` executable in a child process, as a user or a script would.
 * Each harness has its own temporary HOME and state file so tests never touch the real ones.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled CLI next to this compiled test (test/cli → src/cli). */
export const MAIN_JS = fileURLToPath(
  new URL('../../../packages/cli/dist/cli/main.js', import.meta.url),
);

/** What a CLI run produced. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of one run. */
export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Written to stdin, then closed. */
  input?: string;
  timeoutMs?: number;
}

/** A temporary directory plus a `run` bound to it. */
export class CliHarness {
  private constructor(readonly dir: string) {}

  /** Create a harness with a fresh temporary directory. */
  static async create(prefix = 'backvault-cli-'): Promise<CliHarness> {
    return new CliHarness(await mkdtemp(join(tmpdir(), prefix)));
  }

  /** Path inside the harness directory. */
  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Base environment: no inherited BACKVAULT_* or AWS_* values, private HOME and state. */
  baseEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const k of ['PATH', 'LANG', 'SYSTEMROOT', 'TMPDIR']) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    env.HOME = this.path('home');
    env.BACKVAULT_STATE = this.path('state.json');
    return env;
  }

  /** Run `backvault ARGS` and collect its output. Kills it (by PID) on timeout. */
  run(args: readonly string[], opts: RunOptions = {}): Promise<CliRun> {
    const env: Record<string, string> = this.baseEnv();
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const child = spawn(process.execPath, [MAIN_JS, ...args], {
      cwd: opts.cwd ?? this.dir,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, opts.timeoutMs ?? 45_000);
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  /** Remove the temporary directory. */
  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Parse the single JSON object a `--json` run prints (fails if there is more than one line). */
export function parseJsonOutput(run: CliRun): Record<string, unknown> {
  const lines = run.stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1) {
    throw new Error(`expected exactly one JSON line on stdout, got ${lines.length}: ${run.stdout}`);
  }
  return JSON.parse(lines[0] as string) as Record<string, unknown>;
}

/** The stderr lines of a run (without the trailing empty one). */
export function stderrLines(run: CliRun): string[] {
  return run.stderr.split('\n').filter((l) => l !== '');
}
