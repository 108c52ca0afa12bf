/**
 * The per-account journal kept (HSM-sealed) in the vault record next to the attempt
 * counter, and changed in the same compare-and-swap:
 *
 * - the security event log: enable, password change, each counted login start, each
 *   successful login, the lockout. Bounded ({@link MAX_EVENTS}, oldest dropped), only ever
 *   appended to by the vault, kept across password changes. Entries are chained:
 *   `hash_n = SHA-256(EVENT_CHAIN_LABEL || hash_{n-1} || canonical(entry_n))` (see
 *   {@link eventCanonical} in `src/wire`), so a device that remembers `(seq, hash)` of the
 *   last entry it saw detects a log whose past was rewritten or cut back;
 * - the latest snapshot head (`seq`, snapshot id) the backup-key holder recorded;
 * - the stored answers of idempotent login starts (request id, KE1 digest, KE2, sealed
 *   login state, attempts left), valid for the login state TTL and the current login epoch.
 *
 * The journal is sealed with {@link Hsm.sealRecord} for the account (AES-256-GCM, account
 * as AAD) behind a domain label, so the store can neither read nor forge nor move it to
 * another account; it can only replay an older copy of the whole record, which a device
 * that saw a later event detects.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { CorruptBackupError } from 'backvault/errors';
import type { Hsm } from '../hsm/hsm.js';
import {
  EVENT_CHAIN_GENESIS,
  EVENT_CHAIN_LABEL,
  eventCanonical,
  type SecurityEvent,
  type SecurityEventKind,
  type SnapshotHead,
} from 'backvault/wire';

/** Most events kept; older ones are dropped (the chain hash before the first is kept). */
export const MAX_EVENTS = 32;
/** Most idempotent answers kept (the newest win). */
export const MAX_ANSWERS = 8;

const MAGIC = 'backvault/vault/journal/v1\n';

/** Event kinds as stored (an index into this list). */
const KINDS: readonly SecurityEventKind[] = [
  'enabled',
  'password-changed',
  'guess',
  'success',
  'locked',
];

/**
 * The stored form, kept small because it is rewritten with every counted guess: events
 * without their hashes, `[seq, at, kind, attemptsLeft]`, and the chain hash of the last
 * event (`l`), so that opening a journal costs no hashing. Journals written before `l`
 * existed have their chain recomputed from `p` when opened.
 */
interface StoredJournal {
  readonly p: string;
  readonly e: readonly (readonly [number, number, number, number | null])[];
  readonly h: SnapshotHead | null;
  readonly a: readonly StoredAnswer[];
  readonly l?: string;
}

/** A stored answer of an idempotent login start. */
export interface StoredAnswer {
  readonly requestId: string;
  /** SHA-256 of the KE1 (base64url), to refuse another KE1 under the same id. */
  readonly ke1Digest: string;
  /** The login epoch the answer is bound to. */
  readonly loginEpoch: number;
  /** When the guess was counted (ms). */
  readonly at: number;
  readonly loginResponse: string;
  readonly loginState: string;
  readonly attemptsLeft: number;
}

/** A security event without its chain hash (the hash follows from the chain). */
export type JournalEntry = Omit<SecurityEvent, 'hash'>;

/**
 * What the journal holds. The events' chain hashes are not kept per event: only the last
 * one ({@link Journal.lastHash}); {@link journalEvents} computes them all when the log is
 * read. A login (two opens, two appends) thus hashes twice instead of ~70 times: opening
 * a full journal and recomputing its chain cost ~0.1 ms of CPU here, twice per login.
 */
export interface Journal {
  /** Hash before `entries[0]` (genesis when nothing was dropped). */
  readonly firstPrevHash: string;
  /** The events, oldest first, without their hashes. */
  readonly entries: readonly JournalEntry[];
  /** Chain hash of the last entry ({@link firstPrevHash} when there is none). */
  readonly lastHash: string;
  readonly head: SnapshotHead | null;
  readonly answers: readonly StoredAnswer[];
}

/** The journal of a record that has none yet. */
export const EMPTY_JOURNAL: Journal = {
  firstPrevHash: EVENT_CHAIN_GENESIS,
  entries: [],
  lastHash: EVENT_CHAIN_GENESIS,
  head: null,
  answers: [],
};

function b64u(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}

/** `hash_n` from `hash_{n-1}` and the entry (the same computation the SDK does). */
export function chainHash(prevHash: string, e: Omit<SecurityEvent, 'hash'>): string {
  return b64u(
    createHash('sha256')
      .update(EVENT_CHAIN_LABEL)
      .update(Buffer.from(prevHash, 'base64url'))
      .update(eventCanonical(e))
      .digest(),
  );
}

/** SHA-256 of a KE1 as stored in an answer. */
export function ke1Digest(startLoginRequest: string): string {
  return b64u(createHash('sha256').update(startLoginRequest).digest());
}

/** Constant-time comparison of two digests (base64url). */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'base64url');
  const y = Buffer.from(b, 'base64url');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Appends an event (next seq, chained), dropping the oldest beyond {@link MAX_EVENTS}. */
export function appendEvent(
  j: Journal,
  kind: SecurityEventKind,
  at: number,
  attemptsLeft?: number,
): Journal {
  const last = j.entries.at(-1);
  const entry: JournalEntry = {
    seq: (last?.seq ?? seqBefore(j)) + 1,
    at,
    kind,
    ...(attemptsLeft !== undefined ? { attemptsLeft } : {}),
  };
  const lastHash = chainHash(j.lastHash, entry);
  let entries = [...j.entries, entry];
  let firstPrevHash = j.firstPrevHash;
  while (entries.length > MAX_EVENTS) {
    // The hash before the new first entry is the dropped entry's own hash.
    firstPrevHash = chainHash(firstPrevHash, entries[0]!);
    entries = entries.slice(1);
  }
  return { ...j, entries, lastHash, firstPrevHash };
}

/**
 * The events with their chain hashes, recomputed from {@link Journal.firstPrevHash}.
 * @throws CorruptBackupError if the chain does not end in {@link Journal.lastHash} (a
 *   journal sealed by this vault always does; anything else is a bug or a key misuse).
 */
export function journalEvents(j: Journal): SecurityEvent[] {
  const events: SecurityEvent[] = [];
  let prev = j.firstPrevHash;
  for (const e of j.entries) {
    prev = chainHash(prev, e);
    events.push({ ...e, hash: prev });
  }
  if (prev !== j.lastHash) {
    throw new CorruptBackupError(
      'the vault journal of this record does not chain',
      'vault journal',
    );
  }
  return events;
}

/** Seq of the entry before the first kept (0 when nothing was dropped). */
function seqBefore(j: Journal): number {
  return j.firstPrevHash === EVENT_CHAIN_GENESIS ? 0 : (j.entries[0]?.seq ?? 1) - 1;
}

/** Keeps only answers still usable at `now` for `loginEpoch`, plus `add`, newest last. */
export function withAnswer(
  j: Journal,
  add: StoredAnswer | undefined,
  loginEpoch: number,
  now: number,
  ttlMs: number,
): Journal {
  const answers = j.answers.filter((a) => a.loginEpoch === loginEpoch && now <= a.at + ttlMs);
  if (add) answers.push(add);
  return { ...j, answers: answers.slice(-MAX_ANSWERS) };
}

/** Opens a record's sealed journal (null/absent = empty). */
export async function openJournal(
  hsm: Hsm,
  account: string,
  sealed: Uint8Array | null | undefined,
): Promise<Journal> {
  if (!sealed) return EMPTY_JOURNAL;
  const bad = (): CorruptBackupError =>
    new CorruptBackupError('the vault journal of this record does not open', 'vault journal');
  let text: string;
  try {
    text = Buffer.from(await hsm.openRecord(account, sealed)).toString('utf8');
  } catch {
    throw bad();
  }
  if (!text.startsWith(MAGIC)) throw bad();
  let stored: StoredJournal;
  try {
    stored = JSON.parse(text.slice(MAGIC.length)) as StoredJournal;
  } catch {
    throw bad();
  }
  if (
    typeof stored !== 'object' ||
    stored === null ||
    !Array.isArray(stored.e) ||
    !Array.isArray(stored.a) ||
    typeof stored.p !== 'string' ||
    (stored.l !== undefined && typeof stored.l !== 'string')
  ) {
    throw bad();
  }
  const entries: JournalEntry[] = new Array<JournalEntry>(stored.e.length);
  for (let i = 0; i < stored.e.length; i++) {
    const row = stored.e[i]!;
    const kind = Array.isArray(row) ? KINDS[row[2]] : undefined;
    if (kind === undefined) throw bad();
    // No spread of a temporary object: a login opens 32 of these twice.
    entries[i] =
      row[3] !== null
        ? { seq: row[0], at: row[1], kind, attemptsLeft: row[3] }
        : { seq: row[0], at: row[1], kind };
  }
  let lastHash = stored.l;
  if (lastHash === undefined) {
    // Written before `l` was stored: recompute the chain once.
    lastHash = stored.p;
    for (const e of entries) lastHash = chainHash(lastHash, e);
  }
  return {
    firstPrevHash: stored.p,
    entries,
    lastHash,
    head: stored.h ?? null,
    answers: stored.a,
  };
}

/** Seals a journal for the record. */
export async function sealJournal(hsm: Hsm, account: string, j: Journal): Promise<Uint8Array> {
  const stored: StoredJournal = {
    p: j.firstPrevHash,
    e: j.entries.map((e) => [e.seq, e.at, KINDS.indexOf(e.kind), e.attemptsLeft ?? null] as const),
    h: j.head,
    a: j.answers,
    l: j.lastHash,
  };
  return hsm.sealRecord(account, Buffer.from(MAGIC + JSON.stringify(stored), 'utf8'));
}
