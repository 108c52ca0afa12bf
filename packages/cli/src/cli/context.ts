/**
 * What a command runs with: its streams and environment (injected, so commands never reach for
 * globals), the output mode, the progress bar, and the secrets to keep out of any message.
 */
import type { Progress } from 'backvault/backup';
import type { BackvaultError } from 'backvault/errors';
import type { StoreEvent } from 'backvault/storage';
import { printable } from './format.js';
import { Interrupt } from './interrupt.js';
import { ProgressBar, renderStoreLine } from './progress.js';
import type { PromptIo } from './prompt.js';

/** The process-level things a CLI run touches. `main.ts` passes the real ones. */
export interface CliIo extends PromptIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown; isTTY?: boolean; columns?: number };
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Ctrl-C, from `main.ts`'s SIGINT handler; absent where nothing sends one (tests, the UI). */
  interrupt?: Interrupt;
}

/** Shown on a terminal after the first Ctrl-C, in place of the progress bar. */
export const STOPPING_LINE = 'Stopping… (Ctrl-C again to quit at once)';

/** On stderr after a Ctrl-C that came once the operation was complete (it is kept). */
export function lateCtrlCNote(what: string): string {
  return `Ctrl-C came after the ${what} was complete; it was kept.`;
}

/** What a command hands back; the runner prints it (JSON or human) and picks the exit code. */
export interface CommandResult {
  /** The one JSON object printed on stdout with `--json`. */
  json: Record<string, unknown>;
  /** Lines printed on stdout without `--json`. */
  human: string[];
  /**
   * A failure found by a command that still has a result to show (e.g. `check` listing
   * problems). Printed like a thrown error; the JSON object carries both result and error.
   */
  error?: BackvaultError;
}

const REDACTED = '[redacted]';

/** Per-invocation state shared by the runner and the command. */
export class CliContext {
  readonly io: CliIo;
  /** `--json`: one JSON object on stdout, no progress bar, no chatter. */
  readonly json: boolean;
  private readonly secrets = new Set<string>();
  /** `--quiet`: no progress bar and no result lines on success (errors still print). */
  readonly quiet: boolean;
  /** `--no-progress` turns the bar off (`--quiet` and `--json` do too). */
  readonly progress: boolean;
  private bar: ProgressBar | undefined;
  /** An outage has been reported on a line of its own (no bar): once per outage. */
  private outageNoted = false;
  /** Ctrl-C (see interrupt.ts). */
  readonly interrupt: Interrupt;
  /** The "Stopping…" line is on screen (it replaced the bar, which stays off). */
  private stoppingShown = false;

  constructor(io: CliIo, json: boolean, opts: { quiet?: boolean; progress?: boolean } = {}) {
    this.io = io;
    this.json = json;
    this.quiet = opts.quiet ?? false;
    this.progress = (opts.progress ?? true) && !this.quiet;
    this.interrupt = io.interrupt ?? new Interrupt();
    this.interrupt.onStopping = () => this.showStopping();
  }

  /**
   * Run the command's main engine operation so that the first Ctrl-C aborts it instead of
   * ending the process (see interrupt.ts). If it completes anyway (the Ctrl-C came after its
   * commit point), one note on stderr says so and the command reports its result as usual.
   * @param what how the note names the operation (`backup`, `restore`).
   * @throws Interrupted when the operation stopped before its commit point.
   */
  async stoppable<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { value, lateCtrlC } = await this.interrupt.run(fn);
    if (lateCtrlC) this.note(lateCtrlCNote(what));
    return value;
  }

  /** First Ctrl-C on a terminal: the bar gives way to one line saying what happens now. */
  private showStopping(): void {
    const { stderr, env } = this.io;
    if (this.json || this.quiet || !stderr.isTTY || env.TERM === 'dumb') return;
    this.clearProgress();
    this.bar = undefined;
    // No newline: whatever comes next (the INTERRUPTED line, or the note) replaces it.
    stderr.write(`\r\x1b[2K${STOPPING_LINE}`);
    this.stoppingShown = true;
  }

  /** Remember a secret (in every textual form it may take) so no message can print it. */
  addSecret(...forms: string[]): void {
    for (const f of forms) if (f.length >= 8) this.secrets.add(f);
  }

  /** `text` with every registered secret replaced. Applied to every error line we print. */
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join(REDACTED);
    return out;
  }

  /**
   * A progress callback for the engine when a bar makes sense (stderr is a terminal, not
   * `--json`, not `TERM=dumb`), else `undefined` so the engine skips the work entirely.
   */
  progressSink(): ((p: Progress) => void) | undefined {
    const { stderr, env } = this.io;
    if (this.json || !this.progress || !stderr.isTTY || env.TERM === 'dumb') return undefined;
    const bar = new ProgressBar(stderr);
    this.bar = bar;
    // Once stopping, the bar stays off (the "Stopping…" line holds its place).
    return (p) => this.bar?.update(p);
  }

  /**
   * The store became unreachable or reachable again (from the retry wrapper). With a bar,
   * the bar says so and counts down to the next try; without one, one line per outage on
   * stderr (not one per try), unless `--quiet`.
   */
  storeEvent(e: StoreEvent): void {
    if (this.bar) {
      this.bar.setStore(
        e.type === 'unreachable'
          ? { reason: e.reason, nextTryAt: e.nextTryAt, giveUpAt: e.giveUpAt }
          : undefined,
      );
      return;
    }
    if (e.type === 'reachable') {
      this.outageNoted = false;
      return;
    }
    if (this.outageNoted || this.quiet) return;
    this.outageNoted = true;
    this.note(renderStoreLine(e, Date.now(), { countdown: false }));
  }

  /** Erase the progress bar, if any, before anything else is printed. */
  clearProgress(): void {
    this.bar?.clear();
    if (this.stoppingShown) this.io.stderr.write('\r\x1b[2K');
    this.stoppingShown = false;
  }

  /** A warning on stderr (stdout stays reserved for results, `--json` or not). */
  note(line: string): void {
    this.clearProgress();
    this.io.stderr.write(`${printable(line)}\n`);
  }
}
