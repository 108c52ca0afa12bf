/**
 * The terminal progress bar: one line on stderr, redrawn at most ~10 times a second and
 * cleared at the end. Only used when stderr is a terminal and `--json` is off; without a
 * terminal there is no bar at all (logs and pipes stay clean).
 *
 * `renderProgress` is a pure function so the layout is unit-tested without a terminal.
 */
import type { Progress } from 'backvault/backup';
import { formatBytes, formatClock, formatCount } from './format.js';

/** Minimum time between two redraws. */
export const REDRAW_INTERVAL_MS = 100;

const BAR_MAX = 30;
const BAR_MIN = 8;

/**
 * One line describing `p` after `elapsedMs` in the current phase, at most `width - 1`
 * characters (the last column is left free so terminals never wrap).
 *
 * Example: `backup [#######---------]  37%  380 MiB / 1.00 GiB  812/2,300 files  152 MiB/s  ETA 0:04`
 */
export function renderProgress(p: Progress, elapsedMs: number, width: number): string {
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? p.bytesDone / seconds : 0;
  const total = p.bytesTotal !== undefined && p.bytesTotal > 0 ? p.bytesTotal : undefined;
  const fraction = total !== undefined ? Math.min(1, p.bytesDone / total) : undefined;

  const bytes =
    total !== undefined
      ? `${formatBytes(p.bytesDone)} / ${formatBytes(total)}`
      : formatBytes(p.bytesDone);
  // `check` counts packs, `prune` deleted packs: say what is counted.
  const noun = p.phase === 'check' ? 'packs' : p.phase === 'prune' ? 'packs deleted' : 'files';
  const files =
    p.filesTotal !== undefined
      ? `${formatCount(p.filesDone)}/${formatCount(p.filesTotal)} ${noun}`
      : `${formatCount(p.filesDone)} ${noun}`;
  const parts = [bytes, files];
  // A rate over the first instant is noise; wait a little before promising anything.
  if (seconds >= 0.5) parts.push(`${formatBytes(rate)}/s`);
  if (total !== undefined && seconds >= 0.5 && rate > 0) {
    parts.push(`ETA ${formatClock((total - p.bytesDone) / rate)}`);
  }
  const percent =
    fraction !== undefined ? `${String(Math.floor(fraction * 100)).padStart(3)}%` : '';
  const tail = [percent, ...parts].filter((s) => s !== '').join('  ');

  const max = Math.max(0, width - 1);
  let line = `${p.phase} ${tail}`;
  if (fraction !== undefined) {
    const room = max - p.phase.length - tail.length - 5;
    const barWidth = Math.min(BAR_MAX, room);
    if (barWidth >= BAR_MIN) {
      const filled = Math.round(fraction * barWidth);
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
      line = `${p.phase} ${bar} ${tail}`;
    }
  }
  return line.length > max ? line.slice(0, max) : line;
}

/** What the bar shows while the store is unreachable. */
export interface StoreOutage {
  /** A short tag: `ECONNREFUSED`, `SlowDown, HTTP 503`. */
  reason: string;
  /** When the next try starts (ms since the epoch). */
  nextTryAt: number;
  /** When the command gives up (ms since the epoch). */
  giveUpAt: number;
}

/** `14:32`, or `14:32:05` when it is less than two minutes away: a local wall-clock time. */
function clockTime(at: number, now: number): string {
  const d = new Date(at);
  const two = (n: number): string => String(n).padStart(2, '0');
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return at - now < 120_000 ? `${hm}:${two(d.getSeconds())}` : hm;
}

/**
 * The outage line: `store unreachable (ECONNREFUSED) — retrying in 8 s, giving up at 14:32`.
 * Without the countdown (a log line, printed once per outage): `… — retrying until 14:32`.
 */
export function renderStoreLine(
  o: StoreOutage,
  now: number,
  opts: { countdown: boolean } = { countdown: true },
): string {
  const giveUp = clockTime(o.giveUpAt, now);
  if (!opts.countdown) return `store unreachable (${o.reason}) — retrying until ${giveUp}`;
  const secs = Math.max(0, Math.ceil((o.nextTryAt - now) / 1000));
  const next = secs === 0 ? 'retrying now' : `retrying in ${secs} s`;
  return `store unreachable (${o.reason}) — ${next}, giving up at ${giveUp}`;
}

/** Where the bar is drawn: a terminal stream (process.stderr). */
export interface ProgressStream {
  write(chunk: string): unknown;
  columns?: number;
}

const CLEAR_LINE = '\r\x1b[2K';

/** A throttled, self-clearing progress line. */
export class ProgressBar {
  private last: Progress | undefined;
  private lastDraw = -Infinity;
  private phaseStart: number;
  private drawn = false;
  private outage: StoreOutage | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;

  /**
   * @param stream a terminal (the caller checks `isTTY`).
   * @param now clock in milliseconds, injectable for tests.
   */
  constructor(
    private readonly stream: ProgressStream,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.phaseStart = now();
  }

  /** Record progress; redraws when the phase changes or the throttle interval has passed. */
  update(p: Progress): void {
    const t = this.now();
    const phaseChanged = this.last !== undefined && this.last.phase !== p.phase;
    // Each phase has its own rate and ETA: scanning is not reading.
    if (phaseChanged) this.phaseStart = t;
    this.last = p;
    if (!phaseChanged && t - this.lastDraw < REDRAW_INTERVAL_MS) return;
    // A pty with no size set (e.g. under `script`, in CI) reports 0 columns: draw() uses 80.
    this.draw();
  }

  /**
   * Show that the store is unreachable (the line then counts down to the next try, redrawn
   * every second), or with `undefined` that it answers again.
   */
  setStore(outage: StoreOutage | undefined): void {
    this.outage = outage;
    if (outage && !this.ticker) {
      this.ticker = setInterval(() => this.draw(), 1000);
      this.ticker.unref();
    } else if (!outage && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
    this.draw();
  }

  private draw(): void {
    const t = this.now();
    this.lastDraw = t;
    const width = this.stream.columns || 80;
    const max = Math.max(0, width - 1);
    let line: string;
    if (this.outage) {
      const text = renderStoreLine(this.outage, Date.now());
      line = this.last ? `${this.last.phase} ${text}` : text;
      if (line.length > max) line = line.slice(0, max);
    } else if (this.last) {
      line = renderProgress(this.last, t - this.phaseStart, width);
    } else {
      this.clear();
      return;
    }
    this.stream.write(CLEAR_LINE + line);
    this.drawn = true;
  }

  /** Erase the bar (before printing results or an error). Safe to call more than once. */
  clear(): void {
    if (this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
      this.outage = undefined;
    }
    if (this.drawn) this.stream.write(CLEAR_LINE);
    this.drawn = false;
  }
}
