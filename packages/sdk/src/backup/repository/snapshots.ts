/**
 * The snapshot chain: every snapshot object read and verified, the chain from the head
 * back (rollback, forks, gaps), and the notes callers show about damaged older snapshots.
 */

import { CorruptBackupError, HINTS, MissingObjectError, RollbackError } from '../../errors.js';
import {
  ObjectKind,
  PREFIX,
  decodeSnapshot,
  encodeSnapshot,
  objectAd,
  toHex,
  type Snapshot,
} from '../../format/index.js';
import { seal, sha256Hex } from './keys.js';
import type { CheckProblem } from '../api.js';
import { readSeenHead, recordSeenHead, type SeenHead } from './state.js';

import { type Repo, forEachSealed } from './repository.js';

/** A verified snapshot object with its id. */
export interface LoadedSnapshot {
  id: string;
  snap: Snapshot;
}

/**
 * Load and verify every snapshot object (name = SHA-256 of content, AEAD, layout).
 * @param onProblem when given, a bad snapshot is reported and skipped instead of thrown.
 */
export async function loadSnapshots(
  repo: Repo,
  onProblem?: (p: CheckProblem) => void,
): Promise<LoadedSnapshot[]> {
  const out: LoadedSnapshot[] = [];
  await forEachSealed(repo, PREFIX.snapshots, ObjectKind.SNAPSHOT, onProblem, (name, plain) => {
    out.push({ id: name.slice(PREFIX.snapshots.length), snap: decodeSnapshot(plain, name) });
  });
  return out;
}

/**
 * What a chain verification found besides problems: snapshots that are not in the store
 * (forgotten by `forget`, or lost) and snapshot objects that failed verification and were
 * left out. Neither stops the snapshots that remain from being used.
 */
export interface ChainNotes {
  /** Sequence numbers below the head that no stored snapshot carries, ascending. */
  missingSeqs: number[];
  /** Snapshot objects that are damaged (CORRUPT) or vanished while being read. */
  damaged: CheckProblem[];
}

/** "1", "1-3", "1-3, 5" for sorted sequence numbers. */
export function formatSeqRanges(seqs: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < seqs.length;) {
    let j = i;
    while (j + 1 < seqs.length && (seqs[j + 1] as number) === (seqs[j] as number) + 1) j += 1;
    parts.push(i === j ? `${seqs[i]}` : `${seqs[i]}-${seqs[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

/**
 * Human sentences for chain notes. Gaps are normal after `forget`, so only `snapshots` and
 * `check` mention them (`gaps`); damaged snapshot objects are always said.
 */
export function chainNoteWarnings(notes: ChainNotes, opts: { gaps?: boolean } = {}): string[] {
  const out: string[] = [];
  const n = notes.missingSeqs.length;
  if (n > 0 && opts.gaps) {
    out.push(
      `${n === 1 ? 'snapshot' : 'snapshots'} ${formatSeqRanges(notes.missingSeqs)} ${
        n === 1 ? 'is' : 'are'
      } not in the repository (forgotten, or lost by the store); the others are unaffected`,
    );
  }
  for (const d of notes.damaged) {
    out.push(
      `${d.object} is damaged and was left out (${d.message}); the other snapshots are unaffected`,
    );
  }
  return out;
}

/**
 * Verify the snapshot chain and, given what this device saw last, that the store did not
 * roll back. Snapshots form one line by sequence number: a snapshot whose previous is
 * stored must have seq = previous.seq + 1; two snapshots with the same seq or the same
 * previous, two first snapshots, or a previous that is missing while another snapshot holds
 * its seq are a fork (ROLLBACK). A previous that is simply absent is a gap (forgotten by
 * `forget`, or lost): reported in `notes`, never an error, so an old snapshot's loss never
 * blocks the newer ones.
 * Returns the stored snapshots oldest first, the problems (empty when all is well) and the
 * notes.
 */
export function verifyChain(
  snaps: readonly LoadedSnapshot[],
  seen: SeenHead | undefined,
): { chain: LoadedSnapshot[]; problems: CheckProblem[]; notes: ChainNotes } {
  const problems: CheckProblem[] = [];
  const byId = new Map(snaps.map((s) => [s.id, s]));
  const bySeq = new Map<number, LoadedSnapshot[]>();
  for (const s of snaps) bySeq.set(s.snap.seq, [...(bySeq.get(s.snap.seq) ?? []), s]);
  const children = new Map<string, number>();
  let roots = 0;
  let rewritten = false;
  for (const s of snaps) {
    const object = PREFIX.snapshots + s.id;
    if (s.snap.prev === null) {
      roots += 1;
      continue;
    }
    const prevId = toHex(s.snap.prev);
    children.set(prevId, (children.get(prevId) ?? 0) + 1);
    const p = byId.get(prevId);
    if (!p) {
      // Absent previous: a gap, unless another snapshot sits at its seq (mixed histories).
      if (bySeq.has(s.snap.seq - 1)) rewritten = true;
    } else if (s.snap.seq !== p.snap.seq + 1) {
      problems.push({
        code: 'CORRUPT',
        object,
        message: 'snapshot sequence does not follow its previous snapshot',
      });
    }
  }
  const sameSeq = [...bySeq.values()].some((l) => l.length > 1);
  const forks = [...children.values()].some((n) => n > 1) || roots > 1 || sameSeq || rewritten;
  if (forks)
    problems.push({
      code: 'ROLLBACK',
      object: PREFIX.snapshots,
      message:
        'the snapshot chain forks: the store served an old head to a backup, or mixed histories',
    });

  const chain = [...snaps].sort((a, b) => a.snap.seq - b.snap.seq || (a.id < b.id ? -1 : 1));
  const head = chain[chain.length - 1];
  const missingSeqs: number[] = [];
  for (let seq = 1; head && seq < head.snap.seq; seq++) if (!bySeq.has(seq)) missingSeqs.push(seq);

  if (seen) {
    const headSeq = head?.snap.seq ?? 0;
    if (headSeq < seen.seq) {
      problems.push({
        code: 'ROLLBACK',
        object: PREFIX.snapshots + seen.snapshot,
        message: `the store's latest snapshot is ${headSeq}, but this device has already seen snapshot ${seen.seq}`,
      });
    } else {
      const same = bySeq.get(seen.seq)?.[0];
      if (same && same.id !== seen.snapshot) {
        problems.push({
          code: 'ROLLBACK',
          object: PREFIX.snapshots + same.id,
          message: `snapshot ${seen.seq} differs from the one this device has seen: history was rewritten`,
        });
      }
    }
  }
  return { chain, problems, notes: { missingSeqs, damaged: [] } };
}

/** Throw the error matching the first problem, if any. */
export function throwProblem(problems: readonly CheckProblem[]): void {
  const p = problems[0];
  if (!p) return;
  if (p.code === 'ROLLBACK') throw new RollbackError(p.message);
  if (p.code === 'MISSING_OBJECT') throw new MissingObjectError(p.object);
  throw new CorruptBackupError(p.message, p.object);
}

/** A verified chain with what was noticed on the way. */
export interface LoadedChain {
  /** Stored, verified snapshots, oldest first. */
  chain: LoadedSnapshot[];
  notes: ChainNotes;
  /**
   * `damagedSeenHead`: the head is a damaged object, the very one this device saw as its
   * latest (its name), at the seq it saw. A backup chains onto it (SPEC.md §11).
   */
  damagedHead?: { id: string; seq: number };
}

/**
 * Load, verify and rollback-check the snapshot chain; remember the head in the state file.
 *
 * Gaps (snapshots forgotten or lost) and damaged snapshot objects that a verified snapshot
 * names as its previous (so they are provably older than the head) are returned in `notes`
 * and do not stop the others. A damaged object that no verified snapshot names could be the
 * newest snapshot: taking an older one as the head would be a silent rollback, so it is
 * CORRUPT. With `strict` (prune: a snapshot that cannot be read must not lose its data)
 * every damaged object is CORRUPT.
 * @throws RollbackError, CorruptBackupError, MissingObjectError (`strict`), UnavailableError.
 */
export async function loadChainNotes(
  repo: Repo,
  strict = false,
  opts: {
    /**
     * Backup: a damaged object that is exactly the head this device saw (by name, at the
     * seq it saw) is no unknown: it is the head, damaged. The backup names it as previous,
     * which makes it provably older, so every command works again. Without this, one
     * flipped bit in the newest snapshot stopped every command for good.
     */
    damagedSeenHead?: boolean;
  } = {},
): Promise<LoadedChain> {
  const damaged: CheckProblem[] = [];
  const snaps = await loadSnapshots(repo, (p) => damaged.push(p));
  const seen = repo.statePath ? await readSeenHead(repo.statePath, repo.repoIdHex) : undefined;
  const verified = verifyChain(snaps, seen);
  const { chain, notes } = verified;
  let problems = verified.problems;
  const named = new Set(snaps.flatMap((s) => (s.snap.prev ? [toHex(s.snap.prev)] : [])));
  const older = damaged.filter((d) => named.has(d.object.slice(PREFIX.snapshots.length)));
  let unplaced = damaged.filter((d) => !older.includes(d));
  let damagedHead: LoadedChain['damagedHead'];
  const seenName = seen ? PREFIX.snapshots + seen.snapshot : undefined;
  if (
    opts.damagedSeenHead &&
    !strict &&
    seen &&
    unplaced.length === 1 &&
    unplaced[0]?.code === 'CORRUPT' &&
    unplaced[0].object === seenName &&
    chain.every((s) => s.snap.seq < seen.seq)
  ) {
    // The only "rollback" is the one this damage explains: the seen head is there, damaged.
    const explained = (p: CheckProblem): boolean => p.code === 'ROLLBACK' && p.object === seenName;
    if (problems.every(explained)) {
      problems = [];
      damagedHead = { id: seen.snapshot, seq: seen.seq };
      older.push(...unplaced);
      unplaced = [];
    }
  }
  // A damaged object that may be the head first (it explains an apparent rollback), then
  // rollback problems: they explain the others.
  try {
    throwProblem([
      ...(strict ? damaged : unplaced),
      ...problems.filter((p) => p.code === 'ROLLBACK'),
      ...problems,
    ]);
  } catch (e) {
    // The generic advice, "restore an older snapshot", is what cannot work here: say how on.
    if (e instanceof CorruptBackupError && unplaced.some((d) => d.object === e.object))
      (e as { hint: string }).hint = HINTS.damagedHead;
    throw e;
  }
  const head = chain[chain.length - 1];
  // With a damaged head, the verified head is older than what this device saw: not recorded.
  if (head && repo.statePath && !damagedHead)
    await recordSeenHead(
      repo.statePath,
      repo.repoIdHex,
      { seq: head.snap.seq, snapshot: head.id },
      repo.storage.location,
    );
  return { chain, notes: { ...notes, damaged: older }, ...(damagedHead ? { damagedHead } : {}) };
}

/**
 * {@link loadChainNotes} for callers that only need the snapshots.
 * @throws RollbackError, CorruptBackupError, UnavailableError.
 */
export async function loadChain(repo: Repo): Promise<LoadedSnapshot[]> {
  return (await loadChainNotes(repo)).chain;
}

/**
 * Encode and seal a snapshot, named by the SHA-256 of its sealed bytes. Storing it is the
 * caller's commit point (after the index that makes its blobs reachable is durable).
 */
export function sealSnapshot(
  repo: Repo,
  snapshot: Snapshot,
): { id: string; name: string; bytes: Uint8Array } {
  const bytes = seal(
    repo.keys.meta,
    objectAd(ObjectKind.SNAPSHOT, repo.keys.repoId),
    encodeSnapshot(snapshot),
  );
  const id = sha256Hex(bytes);
  return { id, name: PREFIX.snapshots + id, bytes };
}
