/**
 * Runs crash-child.js (one engine operation on a LocalStorage repository) as a real child
 * process and SIGKILLs it by its pid at a chosen moment: the kill -9 harness of
 * crash.test.ts and resume.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url));

/** How a child run ended. */
export interface RunResult {
  /** ms from the child's "started" line to its exit (or kill). */
  ms: number;
  killed: boolean;
  code: number | null;
  stderr: string;
}

const live = new Set<ChildProcess>();

/** SIGKILL every child still running (an `after` hook). */
export function killAllChildren(): void {
  for (const c of live) c.kill('SIGKILL');
}

/**
 * Run the child; SIGKILL it `killAfterMs` after it reports "started" (never if undefined),
 * or, given a function, once that returns true (asked every 2 ms from "started": a point
 * of the work, such as "N packs are stored", that does not move with the machine's load).
 * `env` is added to this process's environment.
 */
export function runChild(
  args: string[],
  keyHex: string,
  killAfterMs?: number | (() => Promise<boolean>),
  env: Record<string, string> = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], {
      env: { ...process.env, ...env, BACKVAULT_TEST_KEY: keyHex },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    let started = 0;
    let killed = false;
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      if (!started && s.includes('started')) {
        started = performance.now();
        if (typeof killAfterMs === 'number') {
          timer = setTimeout(() => {
            killed = child.kill('SIGKILL');
          }, killAfterMs);
        } else if (killAfterMs) {
          const when = killAfterMs;
          const poll = async (): Promise<void> => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            if (await when()) killed = child.kill('SIGKILL');
            else timer = setTimeout(() => void poll(), 2);
          };
          void poll();
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('exit', (code) => {
      live.delete(child);
      if (timer) clearTimeout(timer);
      resolve({
        ms: started ? performance.now() - started : 0,
        killed: killed && code === null,
        code,
        stderr,
      });
    });
  });
}

/** Replace `to` with a copy of the repository directory `from`. */
export async function copyRepo(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await cp(from, to, { recursive: true });
}
