/**
 * A pseudo-terminal for journey tests: the real `backvault` runs under util-linux `script`,
 * with stdin, stdout and stderr on a pty, so prompts, hidden input, Ctrl-C (a real SIGINT
 * from the terminal's line discipline) and the progress bar behave as for a person.
 *
 * `screen()` renders what a terminal would show: carriage returns, line erases and
 * backspaces applied, so tests assert exact screen lines rather than raw bytes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAIN_JS } from './cli-harness.js';

/** True when util-linux `script` is installed. */
export const HAS_SCRIPT = spawnSync('script', ['--version']).status === 0;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A control sequence: ESC [ parameters letter. */
const CSI = new RegExp(`^${String.fromCharCode(0x1b)}\\[([0-9;?]*)([A-Za-z])`);

/**
 * Render terminal output into lines: `\r` returns to column 0, `\n` starts a new line,
 * `ESC[2K` erases the line, `\b` moves left; other escape sequences are dropped.
 */
export function renderScreen(raw: string): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let col = 0;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '\x1b') {
      const m = CSI.exec(raw.slice(i));
      if (m) {
        if (m[2] === 'K' && m[1] === '2') lines[row] = [];
        i += m[0].length - 1;
      }
      continue;
    }
    if (ch === '\r') col = 0;
    else if (ch === '\n') {
      row++;
      col = 0;
      lines[row] ??= [];
    } else if (ch === '\b') col = Math.max(0, col - 1);
    else if (ch >= ' ' || ch === '\t') {
      const line = lines[row] as string[];
      while (line.length < col) line.push(' ');
      line[col] = ch;
      col++;
    }
  }
  return lines
    .map((l) => l.join('').trimEnd())
    .filter((l, i, all) => l !== '' || i < all.length - 1);
}

/** One CLI run on a terminal. */
export class Terminal {
  private raw = '';
  private readonly closed: Promise<number | null>;
  private readonly child: ChildProcess;

  /**
   * Start `backvault ARGS` on a new pty in `cwd` with exactly `env` (plus TERM and COLUMNS).
   */
  constructor(args: readonly string[], opts: { cwd: string; env: Record<string, string> }) {
    // `exec`: the CLI replaces the shell `script` starts. A non-interactive shell waiting for
    // it would die of the terminal's SIGINT itself, and `script` would then report 130 for
    // a CLI that went on to exit 0 (a Ctrl-C the CLI handles without exiting).
    const cmd = `exec ${[process.execPath, MAIN_JS, ...args].map(shellQuote).join(' ')}`;
    // -q quiet, -e return the child's exit code, -f flush at once, -c run this command.
    this.child = spawn('script', ['-qefc', cmd, '/dev/null'], {
      cwd: opts.cwd,
      env: { ...opts.env, TERM: 'xterm', COLUMNS: '100', LINES: '40' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const take = (s: string): void => {
      this.raw += s;
    };
    this.child.stdout?.setEncoding('utf8').on('data', take);
    this.child.stderr?.setEncoding('utf8').on('data', take);
    this.closed = new Promise((resolve) => this.child.on('close', (c) => resolve(c)));
  }

  /** Everything the terminal received so far, as raw bytes (escape sequences included). */
  get output(): string {
    return this.raw;
  }

  /** The rendered screen lines so far. */
  screen(): string[] {
    return renderScreen(this.raw);
  }

  /** Wait until the raw output (after `from` characters) contains `what`. */
  async waitFor(what: string | RegExp, timeoutMs = 30_000, from = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const seen = (): boolean => {
      const s = this.raw.slice(from);
      return typeof what === 'string' ? s.includes(what) : what.test(s);
    };
    while (!seen()) {
      if (Date.now() > deadline || this.child.exitCode !== null) {
        if (seen()) return;
        throw new Error(
          `terminal never showed ${String(what)}; screen:\n${this.screen().join('\n')}`,
        );
      }
      await sleep(20);
    }
  }

  /** Send keystrokes (Enter is `\r`, Ctrl-C is `\x03`). */
  type(keys: string): void {
    this.child.stdin?.write(keys);
  }

  /** Wait for the command to end; returns its exit code. Killed (by PID) after the timeout. */
  async exit(timeoutMs = 60_000): Promise<number | null> {
    const timer = setTimeout(() => {
      if (this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL');
    }, timeoutMs);
    const code = await this.closed;
    clearTimeout(timer);
    this.child.stdin?.destroy();
    return code;
  }
}

/** Run to completion, typing each of `answers` after its prompt appears. */
export async function onTerminal(
  args: readonly string[],
  opts: { cwd: string; env: Record<string, string> },
  answers: readonly [prompt: string | RegExp, keys: string][] = [],
): Promise<{ code: number | null; screen: string[]; output: string }> {
  const t = new Terminal(args, opts);
  let from = 0;
  for (const [prompt, keys] of answers) {
    await t.waitFor(prompt, 30_000, from);
    from = t.output.length;
    t.type(keys);
  }
  const code = await t.exit();
  return { code, screen: t.screen(), output: t.output };
}
