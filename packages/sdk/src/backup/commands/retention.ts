/**
 * The retention policy of `forget`: which snapshots to keep, with restic's semantics, as a
 * pure function of the snapshots' times (no store, no clock unless none is given).
 *
 * Snapshots are taken newest first (by time, then by sequence number). Each `--keep-*` count
 * is a bucket walked over that list:
 *
 * - `last N`: the N newest snapshots;
 * - `hourly|daily|weekly|monthly|yearly N`: the newest snapshot of each of the N newest
 *   hours / days / ISO weeks / months / years that have a snapshot, by the snapshot's
 *   calendar time in the given time zone. When the list ends before a bucket has used up
 *   its count, its oldest snapshot is kept too ("oldest daily snapshot"): the history then
 *   reaches as far back as it can;
 * - `within DURATION` (`2y5m7d3h`: years, months, days, hours, each at most once, in any
 *   order): every snapshot strictly newer than the newest snapshot's time minus DURATION,
 *   the years, months and days subtracted on the calendar of the time zone (31 March minus
 *   one month is 3 March, as in Go's `AddDate`), the hours as 3,600 s each. The newest
 *   snapshot here is the newest that is not in the future (a clock set wrong on one backup
 *   must not expire all the others).
 *
 * A snapshot is kept when any rule keeps it (the union), with every reason recorded. A count
 * of -1 ("unlimited") keeps one snapshot per bucket without limit. On top of restic, the head
 * of the chain (highest sequence number) is always kept, even when its clock put it among
 * older ones: deleting it would let a store pass off the previous snapshot as the latest.
 * A policy that keeps nothing (no count and no duration) is refused: restic then keeps
 * everything; a backup product should rather say that the command line is incomplete.
 *
 * This module imports nothing but the error classes, so the device profile can validate a
 * stored policy without loading the engine.
 */
import { HINTS, UsageError } from '../../errors.js';

/** Keep counts and duration of a retention policy. Every field optional; -1 = unlimited. */
export interface RetentionPolicy {
  /** Keep the newest N snapshots. */
  last?: number;
  /** Keep the newest snapshot of each of the N newest hours with snapshots. */
  hourly?: number;
  daily?: number;
  /** ISO 8601 weeks (Monday to Sunday), as restic. */
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Keep every snapshot newer than the newest minus this duration (`2y5m7d3h`). */
  within?: string;
}

/** A parsed `within` duration. */
export interface CalendarDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/** What the policy needs to know about a snapshot. */
export interface PolicySnapshot {
  id: string;
  seq: number;
  /** Milliseconds since the Unix epoch. */
  timeMs: number;
}

/** The outcome for one snapshot. */
export interface PolicyDecision<T extends PolicySnapshot> {
  snapshot: T;
  /** Why it is kept (restic's wording: `daily snapshot`, `within 7d`, …); empty if removed. */
  reasons: string[];
}

/** Result of {@link applyRetentionPolicy}: every snapshot in exactly one list, newest first. */
export interface PolicyPlan<T extends PolicySnapshot> {
  keep: PolicyDecision<T>[];
  remove: T[];
}

/** Options of {@link applyRetentionPolicy}. */
export interface PolicyOptions {
  /** IANA time zone of the calendar buckets (`Europe/Berlin`, `UTC`). Default: the process's. */
  timeZone?: string;
  /** Current time (ms) for `within`: snapshots after it are not "the newest". Default: now. */
  now?: number;
}

/** Reason given for the head of the chain when no rule of the policy keeps it. */
export const HEAD_REASON = 'latest snapshot (the head is always kept)';

const COUNT_FIELDS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
type CountField = (typeof COUNT_FIELDS)[number];

/** Largest count accepted: far beyond any history, small enough to stay an exact integer. */
export const MAX_KEEP = 1_000_000;
/** Largest number per unit of a duration (restic has no limit; ours keeps dates in range). */
const MAX_DURATION_UNIT = 100_000;

/** The process's time zone (`TZ`, else the system's). */
export function defaultTimeZone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/**
 * Parse a duration in restic's syntax: numbers each followed by `y`, `m`, `d` or `h`
 * (`2y5m7d3h`, `36h`, `1m`). Stricter than restic: no sign, each unit at most once.
 * @throws UsageError naming what is wrong.
 */
export function parseDuration(text: string): CalendarDuration {
  const s = text.trim();
  const d: CalendarDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const unitOf: Record<string, keyof CalendarDuration> = {
    y: 'years',
    m: 'months',
    d: 'days',
    h: 'hours',
  };
  const hint = 'A duration is numbers with units y, m, d, h, e.g. 2y5m7d3h or 36h.';
  if (s === '') throw new UsageError('empty duration', hint);
  const seen = new Set<string>();
  const re = /(\d+)([a-zA-Z]?)/y;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) throw new UsageError(`invalid duration "${printable(s)}": expected a number`, hint);
    const [, digits = '', unit = ''] = m;
    if (unit === '') {
      throw new UsageError(`invalid duration "${printable(s)}": no unit after ${digits}`, hint);
    }
    const field = unitOf[unit];
    if (!field) {
      throw new UsageError(`invalid duration "${printable(s)}": unknown unit "${unit}"`, hint);
    }
    if (seen.has(unit)) {
      throw new UsageError(`invalid duration "${printable(s)}": "${unit}" given twice`, hint);
    }
    seen.add(unit);
    const n = Number(digits);
    if (!Number.isSafeInteger(n) || n > MAX_DURATION_UNIT) {
      throw new UsageError(`invalid duration "${printable(s)}": ${digits} is too large`, hint);
    }
    d[field] = n;
    at = re.lastIndex;
  }
  return d;
}

/** `2y5m7d3h` for a duration (zero units left out; `0h` for zero). */
export function formatDuration(d: CalendarDuration): string {
  const s = `${d.years ? `${d.years}y` : ''}${d.months ? `${d.months}m` : ''}${
    d.days ? `${d.days}d` : ''
  }${d.hours ? `${d.hours}h` : ''}`;
  return s === '' ? '0h' : s;
}

function isZero(d: CalendarDuration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

/** Durations and user text in messages: printable ASCII only, bounded. */
function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
}

/**
 * Check a policy (from flags, the SDK or a device profile) and return it normalised: counts
 * are integers from 0 to 1,000,000 or -1 (unlimited), 0 and absent are the same, and
 * `within` parses. A policy that keeps nothing is refused.
 * @throws UsageError when a field is malformed or the policy keeps nothing.
 */
export function validateRetentionPolicy(policy: unknown): RetentionPolicy {
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new UsageError('a retention policy is an object of keep counts');
  }
  const p = policy as Record<string, unknown>;
  for (const k of Object.keys(p)) {
    if (!(COUNT_FIELDS as readonly string[]).includes(k) && k !== 'within') {
      throw new UsageError(`unknown retention policy field "${printable(k)}"`);
    }
  }
  const out: RetentionPolicy = {};
  for (const k of COUNT_FIELDS) {
    const v = p[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -1 || v > MAX_KEEP) {
      throw new UsageError(
        `keep-${k} must be a whole number from 0 to ${MAX_KEEP}, or unlimited`,
        HINTS.retentionField,
      );
    }
    if (v !== 0) out[k] = v;
  }
  if (p.within !== undefined) {
    if (typeof p.within !== 'string') throw new UsageError('keep-within must be a duration');
    const d = parseDuration(p.within);
    if (!isZero(d)) out.within = formatDuration(d);
  }
  if (Object.keys(out).length === 0) {
    throw new UsageError('this retention policy keeps nothing', HINTS.retentionEmpty);
  }
  return out;
}

/** "keep the last 3 snapshots, 7 daily, all monthly, and all within 2y" — for messages. */
export function describeRetentionPolicy(policy: RetentionPolicy): string {
  const parts: string[] = [];
  const count = (n: number): string => (n === -1 ? 'all' : String(n));
  if (policy.last !== undefined) {
    parts.push(
      policy.last === -1
        ? 'all snapshots'
        : `the last ${policy.last === 1 ? 'snapshot' : `${policy.last} snapshots`}`,
    );
  }
  for (const k of ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) {
    const v = policy[k];
    if (v !== undefined) parts.push(`${count(v)} ${k}`);
  }
  if (policy.within !== undefined) parts.push(`all within ${policy.within} of the newest`);
  const body =
    parts.length <= 1 ? parts.join('') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
  return `keep ${body}`;
}

/** Calendar fields of an instant in a time zone. */
interface Civil {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** Converts instants to calendar fields in one time zone (and back, as Go's `time.Date`). */
class ZoneCalendar {
  private readonly fmt: Intl.DateTimeFormat;

  constructor(readonly timeZone: string) {
    try {
      this.fmt = new Intl.DateTimeFormat('en-US-u-ca-gregory-nu-latn', {
        timeZone,
        era: 'short',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
        hourCycle: 'h23',
      });
    } catch {
      throw new UsageError(
        `unknown time zone "${printable(timeZone)}"`,
        'Use an IANA name such as UTC, Europe/Berlin or America/New_York.',
      );
    }
  }

  civil(ms: number): Civil {
    const f: Record<string, string> = {};
    for (const part of this.fmt.formatToParts(ms)) f[part.type] = part.value;
    const y = Number(f.year);
    return {
      year: f.era === 'BC' || f.era === 'B' ? 1 - y : y,
      month: Number(f.month),
      day: Number(f.day),
      hour: Number(f.hour),
      minute: Number(f.minute),
      second: Number(f.second),
    };
  }

  /** Offset from UTC (ms) in effect at instant `ms`. */
  offset(ms: number): number {
    const c = this.civil(ms);
    return utcOf(c) - (ms - mod(ms, 1000));
  }

  /**
   * The instant of a wall-clock time (fields may overflow: month 0 is December of the year
   * before). Like Go's `time.Date`: a time that a DST change skips or repeats gets the
   * offset in effect just before, or the other one, but always a definite instant.
   */
  instant(c: Civil): number {
    const wall = utcOf(c);
    const guess = wall - this.offset(wall);
    return wall - this.offset(guess);
  }
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

function utcOf(c: Civil): number {
  const d = new Date(0);
  d.setUTCFullYear(c.year, c.month - 1, c.day);
  d.setUTCHours(c.hour, c.minute, c.second, 0);
  return d.getTime();
}

/** ISO 8601 week-numbering year and week of a calendar date. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  const weekday = (d.getUTCDay() + 6) % 7; // Monday = 0
  // The Thursday of this week decides the year.
  d.setUTCDate(d.getUTCDate() - weekday + 3);
  const isoYear = d.getUTCFullYear();
  const jan1 = new Date(0);
  jan1.setUTCFullYear(isoYear, 0, 1);
  const week = 1 + Math.floor((d.getTime() - jan1.getTime()) / (7 * 86_400_000));
  return { year: isoYear, week };
}

interface Bucket {
  field: CountField;
  count: number;
  last: number | undefined;
  reason: string;
  key: (c: Civil, nr: number) => number;
}

/**
 * Decide which snapshots a policy keeps (see the module comment for the rules).
 * @param snapshots - any order; ids must be distinct.
 * @returns keep (with reasons) and remove, both newest first. The head (highest seq) is
 *   always in keep; with an empty input both lists are empty.
 * @throws UsageError when the policy is malformed or keeps nothing, or the time zone is
 *   unknown — before anything is decided.
 */
export function applyRetentionPolicy<T extends PolicySnapshot>(
  snapshots: readonly T[],
  policy: RetentionPolicy,
  opts: PolicyOptions = {},
): PolicyPlan<T> {
  const p = validateRetentionPolicy(policy);
  const zone = new ZoneCalendar(opts.timeZone ?? defaultTimeZone());
  const now = opts.now ?? Date.now();
  const list = [...snapshots].sort((a, b) => b.timeMs - a.timeMs || b.seq - a.seq);
  if (list.length === 0) return { keep: [], remove: [] };

  const rules: Omit<Bucket, 'count' | 'last'>[] = [
    { field: 'last', reason: 'last snapshot', key: (_c, nr) => nr },
    { field: 'hourly', reason: 'hourly snapshot', key: (c) => ymd(c) * 100 + c.hour },
    { field: 'daily', reason: 'daily snapshot', key: (c) => ymd(c) },
    {
      field: 'weekly',
      reason: 'weekly snapshot',
      key: (c) => {
        const w = isoWeek(c.year, c.month, c.day);
        return w.year * 100 + w.week;
      },
    },
    { field: 'monthly', reason: 'monthly snapshot', key: (c) => c.year * 100 + c.month },
    { field: 'yearly', reason: 'yearly snapshot', key: (c) => c.year },
  ];
  const buckets: Bucket[] = rules
    .map((b) => ({ ...b, count: p[b.field] ?? 0, last: undefined }))
    .filter((b) => b.count !== 0);

  let cutoff: number | undefined;
  if (p.within !== undefined) {
    const d = parseDuration(p.within);
    // The newest snapshot that is not in the future; none: everything is within.
    let latest = -Infinity;
    for (const s of list) if (s.timeMs > latest && s.timeMs < now) latest = s.timeMs;
    if (latest === -Infinity) cutoff = -Infinity;
    else {
      const c = zone.civil(latest);
      const sub = ms(latest);
      cutoff =
        zone.instant({
          ...c,
          year: c.year - d.years,
          month: c.month - d.months,
          day: c.day - d.days,
        }) +
        sub -
        d.hours * 3_600_000;
    }
  }

  let headSeq = -Infinity;
  for (const s of list) headSeq = Math.max(headSeq, s.seq);

  const keep: PolicyDecision<T>[] = [];
  const remove: T[] = [];
  list.forEach((cur, nr) => {
    const reasons: string[] = [];
    if (cutoff !== undefined && cur.timeMs > cutoff) reasons.push(`within ${p.within}`);
    const c = buckets.length > 0 ? zone.civil(cur.timeMs) : undefined;
    const oldest = nr === list.length - 1;
    for (const b of buckets) {
      if (b.count === 0) continue;
      const val = b.key(c as Civil, nr);
      if (val !== b.last || oldest) {
        reasons.push(val === b.last ? `oldest ${b.reason}` : b.reason);
        b.last = val;
        if (b.count > 0) b.count -= 1;
      }
    }
    if (reasons.length === 0 && cur.seq === headSeq) reasons.push(HEAD_REASON);
    if (reasons.length > 0) keep.push({ snapshot: cur, reasons });
    else remove.push(cur);
  });
  return { keep, remove };
}

function ymd(c: Civil): number {
  return c.year * 10_000 + c.month * 100 + c.day;
}

/** Milliseconds within the second (calendar fields carry whole seconds). */
function ms(t: number): number {
  return mod(t, 1000);
}
