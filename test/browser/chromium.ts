/**
 * Headless Chromium for the browser tests: Debian bookworm's `chromium-headless-shell`
 * (installed by `make test-deps`), started on one URL and stopped by its own PID.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

/** The Debian package that provides the browser. */
export const CHROMIUM_PACKAGE = 'chromium-headless-shell';

/**
 * Where the package puts the browser. The ELF comes first: `/usr/bin/chromium-headless-shell`
 * is a `sh` wrapper that runs it as a CHILD (no exec), so its PID is not the browser's.
 */
export const CHROMIUM_CANDIDATES = [
  '/usr/lib/chromium/chromium-headless-shell',
  '/usr/bin/chromium-headless-shell',
] as const;

/**
 * The browser binary.
 * @throws Error naming the Debian package when none is installed (the test fails, never skips).
 */
export function findChromium(): string {
  for (const path of CHROMIUM_CANDIDATES) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    `headless Chromium not found (looked at ${CHROMIUM_CANDIDATES.join(', ')}): ` +
      `install the Debian package ${CHROMIUM_PACKAGE} (apt-get install -y ${CHROMIUM_PACKAGE}; ` +
      `make test-deps does it)`,
  );
}

/** A running browser. */
export interface ChromiumProcess {
  readonly pid: number;
  /** Resolves with the exit code/signal when the browser exits on its own (or is stopped). */
  readonly exited: Promise<string>;
  /** What the browser wrote to stderr (last 64 KiB). */
  stderr(): string;
  /** SIGTERM to its process group (by its PID), SIGKILL after 3 s. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts headless Chromium on `url`. Runs as root in CI, hence `--no-sandbox`. Its own process
 * group (detached) so that stopping it by PID also takes its renderer and utility children.
 */
export function launchChromium(binary: string, url: string, userDataDir: string): ChromiumProcess {
  const child = spawn(
    binary,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-extensions',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--metrics-recording-only',
      '--mute-audio',
      // The page's console on stderr: it names what a failed module import tried to load
      // (the page itself only sees "Failed to fetch dynamically imported module").
      '--enable-logging=stderr',
      '--v=0',
      `--user-data-dir=${userDataDir}`,
      url,
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
      env: { ...process.env, HOME: userDataDir },
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-65_536);
  });
  const exited = new Promise<string>((resolve) => {
    child.on('exit', (code, signal) => resolve(signal ?? String(code)));
    child.on('error', (e) => resolve(`spawn error: ${e.message}`));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${binary}`);
  let stopping: Promise<void> | undefined;
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      // the group is already gone
    }
  };
  return {
    pid,
    exited,
    stderr: () => stderr,
    stop() {
      stopping ??= (async () => {
        if (running()) {
          killGroup('SIGTERM');
          const t = setTimeout(() => killGroup('SIGKILL'), 3_000);
          await exited;
          clearTimeout(t);
        }
        // Children that outlived the browser (same group) go too.
        killGroup('SIGKILL');
      })();
      return stopping;
    },
  };
}
