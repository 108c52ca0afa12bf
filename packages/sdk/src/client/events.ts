/**
 * The account's security event log as a device sees it (browser-safe, WebCrypto only):
 * checking the chain, catching a log whose past was rewritten or cut back since this
 * device last saw it, and saying plainly what happened ("3 wrong passwords were tried
 * since your last restore, the last on 2026-12-01 14:02 UTC").
 *
 * The chain (wire doc "Security events"): `hash_n = SHA-256(EVENT_CHAIN_LABEL ||
 * hash_{n-1} || eventCanonical(e_n))`, starting from `firstPrevHash`.
 */
import { CorruptBackupError, RollbackError } from '../errors.js';
import {
  EVENT_CHAIN_LABEL,
  eventCanonical,
  type RecordEventsResponse,
  type SecurityEvent,
} from '../wire/index.js';
import { fromBase64url, toBase64url, utf8Bytes } from './encoding.js';

/** The last entry a device saw: keep it and pass it to the next {@link verifyEventLog}. */
export interface SeenEvent {
  readonly seq: number;
  readonly hash: string;
}

async function sha256(parts: readonly Uint8Array[]): Promise<Uint8Array> {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (crypto.subtle) is not available in this environment');
  const total = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    o += p.length;
  }
  return new Uint8Array(await s.digest('SHA-256', buf));
}

/**
 * Checks the chain of `log` and, with `seen`, that it continues what this device saw.
 * Returns the entry to remember (the last one), or `seen` itself if the log is empty.
 * @throws CorruptBackupError when the chain does not hold (entries edited or reordered);
 *   RollbackError when the log ends before `seen` or holds another entry at its place.
 */
export async function verifyEventLog(
  log: Pick<RecordEventsResponse, 'events' | 'firstPrevHash'>,
  seen?: SeenEvent,
): Promise<SeenEvent | undefined> {
  const label = utf8Bytes(EVENT_CHAIN_LABEL);
  let prev = log.firstPrevHash;
  let prevSeq: number | undefined;
  for (const e of log.events) {
    if (prevSeq !== undefined && e.seq !== prevSeq + 1) {
      throw new CorruptBackupError(`the vault event log skips from ${prevSeq} to ${e.seq}`);
    }
    const h = toBase64url(
      await sha256([label, fromBase64url(prev, 'event hash'), utf8Bytes(eventCanonical(e))]),
    );
    if (h !== e.hash) {
      throw new CorruptBackupError(`the vault event log chain breaks at entry ${e.seq}`);
    }
    prev = h;
    prevSeq = e.seq;
  }
  const first = log.events[0];
  const last = log.events.at(-1);
  if (seen) {
    if (!last || last.seq < seen.seq) {
      throw new RollbackError(
        `the vault's event log ends at entry ${last?.seq ?? 0}, but this device saw entry ${seen.seq}: its history was cut back`,
      );
    }
    const same = log.events.find((e) => e.seq === seen.seq);
    const before = first && first.seq === seen.seq + 1 ? log.firstPrevHash : undefined;
    if ((same && same.hash !== seen.hash) || (before !== undefined && before !== seen.hash)) {
      throw new RollbackError(
        `the vault's event log holds another entry ${seen.seq} than the one this device saw: its history was rewritten`,
      );
    }
  }
  return last ? { seq: last.seq, hash: last.hash } : seen;
}

/** What the user should be told about the guesses in the log. */
export interface GuessSummary {
  /** Wrong (or unfinished) password guesses in the window. */
  readonly wrong: number;
  /** When the last of them was counted (ms since the epoch), or null. */
  readonly lastWrongAt: number | null;
  /** The log says the key was destroyed. */
  readonly locked: boolean;
}

const RESETS = new Set<SecurityEvent['kind']>(['success']);
/** Two successes this close with one guess between are one restore (see below). */
const RELOGIN_WINDOW_MS = 120_000;

/**
 * Counts wrong guesses "since your last restore".
 * - `justRestored: true` (the log's last success is this device's own login): the guesses
 *   between the success before it and it, except its own (the last before it).
 * - otherwise: every guess after the last success (none of them succeeded).
 */
export function summarizeGuesses(
  events: readonly SecurityEvent[],
  opts: { readonly justRestored: boolean },
): GuessSummary {
  const successes = events.flatMap((e, i) => (RESETS.has(e.kind) ? [i] : []));
  let window: readonly SecurityEvent[];
  if (opts.justRestored && successes.length > 0) {
    // A restore whose login-finish answer was lost logs in once more (the SDK does): a
    // success, one guess and a success within moments are one restore.
    let k = successes.length - 1;
    while (k > 0) {
      const prev = successes[k - 1]!;
      const cur = successes[k]!;
      const between = events.slice(prev + 1, cur).filter((e) => e.kind === 'guess');
      if (between.length !== 1 || events[cur]!.at - events[prev]!.at > RELOGIN_WINDOW_MS) break;
      k--;
    }
    const mine = successes[k]!;
    const previous = k > 0 ? successes[k - 1]! : -1;
    const guesses = events.slice(previous + 1, mine).filter((e) => e.kind === 'guess');
    window = guesses.slice(0, -1); // the last guess before the success was this login
  } else {
    const last = successes.at(-1) ?? -1;
    window = events.slice(last + 1).filter((e) => e.kind === 'guess');
  }
  return {
    wrong: window.length,
    lastWrongAt: window.at(-1)?.at ?? null,
    locked: events.at(-1)?.kind === 'locked',
  };
}

/** What became of a counted guess, as far as the log tells. */
export type GuessOutcome = 'success' | 'wrong' | 'locked' | 'pending';

/**
 * Each event with, for a `guess`, its outcome: `success` (the last guess before a
 * success), `locked` (the last guess before the lockout: it was wrong and used the last
 * attempt), `wrong` (any other guess that was followed by another event), `pending` (the
 * newest event, nothing after it yet: wrong, or a login still running). The vault cannot
 * tell a wrong password from an answer the device never received: both show as `wrong`.
 */
export function guessOutcomes(
  events: readonly SecurityEvent[],
): readonly (SecurityEvent & { readonly outcome?: GuessOutcome })[] {
  return events.map((e, i) => {
    if (e.kind !== 'guess') return e;
    const next = events[i + 1];
    const outcome: GuessOutcome =
      next === undefined
        ? 'pending'
        : next.kind === 'success'
          ? 'success'
          : next.kind === 'locked'
            ? 'locked'
            : 'wrong';
    return { ...e, outcome };
  });
}

/** `2026-12-01 14:02 UTC` */
export function formatUtcMinute(ms: number): string {
  const d = new Date(ms).toISOString();
  return `${d.slice(0, 10)} ${d.slice(11, 16)} UTC`;
}

/** `14:07 UTC` (with the date when it is not today, UTC). */
export function formatNextTry(ms: number, now: number = Date.now()): string {
  const d = new Date(ms).toISOString();
  return d.slice(0, 10) === new Date(now).toISOString().slice(0, 10)
    ? `${d.slice(11, 16)} UTC`
    : formatUtcMinute(ms);
}

/** The plain sentence: "3 wrong passwords were tried since your last restore, the last on …". */
export function describeGuesses(s: GuessSummary): string {
  if (s.wrong === 0) return 'no wrong passwords were tried since your last restore';
  const what = s.wrong === 1 ? '1 wrong password was' : `${s.wrong} wrong passwords were`;
  return `${what} tried since your last restore, the last on ${formatUtcMinute(s.lastWrongAt ?? 0)}`;
}
