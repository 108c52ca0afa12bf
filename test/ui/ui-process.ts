/**
 * `backvault ui` as a real child process on loopback, found by the URL it prints and stopped
 * by its own PID (SIGINT, as Ctrl-C; SIGKILL after 5 s).
 */
import { spawn } from 'node:child_process';
import { MAIN_JS } from '../client/vault-process.js';

/** A running `backvault ui`. */
export interface UiProcess {
  /** The printed URL, with its token. */
  readonly url: string;
  /** `http://localhost:PORT` (the link printed; the socket is 127.0.0.1 only) */
  readonly origin: string;
  readonly port: number;
  readonly pid: number;
  /** stdout + stderr so far. */
  output(): string;
  /** stdout alone. */
  stdout(): string;
  /** SIGINT (Ctrl-C), then SIGKILL after 5 s; resolves with the exit code (or signal). */
  stop(): Promise<string>;
}

/**
 * Starts `backvault ui --no-open --port 0 …args` with a minimal environment.
 * @throws Error with the process's output when no URL appears within 20 s.
 */
export async function startUi(args: readonly string[], home: string): Promise<UiProcess> {
  const child = spawn(process.execPath, [MAIN_JS, 'ui', '--no-open', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: home, XDG_STATE_HOME: `${home}/state` },
  });
  let out = '';
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    stdout += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<string>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? String(code))),
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start backvault ui');
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no URL from backvault ui:\n${out}`)), 20_000);
    const look = (): void => {
      const m = /http:\/\/localhost:\d+\/\?token=[A-Za-z0-9_-]+/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[0]);
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    void exited.then((how) => reject(new Error(`backvault ui exited (${how}):\n${out}`)));
  });
  const origin = new URL(url).origin;
  let stopping: Promise<string> | undefined;
  return {
    url,
    origin,
    port: Number(new URL(url).port),
    pid,
    output: () => out,
    stdout: () => stdout,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          process.kill(pid, 'SIGINT');
          const t = setTimeout(() => process.kill(pid, 'SIGKILL'), 5_000);
          const how = await exited;
          clearTimeout(t);
          return how;
        }
        return exited;
      })();
      return stopping;
    },
  };
}
