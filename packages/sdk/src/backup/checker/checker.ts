/**
 * `check`: verify a whole repository without restoring, collecting every problem instead of
 * stopping at the first. Config and key problems still throw (nothing else can be checked).
 */
import { BackvaultError, UsageError, throwIfAborted } from '../../errors.js';
import {
  EntryType,
  ObjectKind,
  PREFIX,
  bytesEqual,
  packName,
  parsePackName,
  toHex,
  type BlobEntry,
  type BlobKind,
  type TreeEntry,
} from '../../format/index.js';
import type { CheckOptions, CheckProblem, CheckResult } from '../api.js';
import { sha256Hex } from '../repository/keys.js';
import { enginePlatform } from '../platform/current.js';
import { startPool } from '../workers/start.js';
import { listAll, openRepository } from '../repository/repository.js';
import { READER_ATTEMPTS, indexGeneration, loadIndex } from '../repository/indexes.js';
import { loadSnapshots, chainNoteWarnings, verifyChain } from '../repository/snapshots.js';
import { readPackHeader, readTree } from '../repository/packs.js';
import { readSeenHead, recordSeenHead } from '../repository/state.js';
import { walkTrees } from '../repository/tree-walk.js';
import { lockProblems } from '../repository/lock.js';
import { repairIndex } from './repair.js';
import type { BlobIndex } from '../repository/indexes.js';
import type { LoadedSnapshot } from '../repository/snapshots.js';
import type { Repo } from '../repository/repository.js';

function sameEntry(a: BlobEntry, b: BlobEntry): boolean {
  return (
    a.kind === b.kind &&
    a.compression === b.compression &&
    a.offset === b.offset &&
    a.length === b.length &&
    a.rawLength === b.rawLength &&
    bytesEqual(a.id, b.id)
  );
}

/**
 * Verify a repository.
 * @throws WrongKeyError / NoRepositoryError / CorruptBackupError (config) / UnavailableError.
 */
export async function check(opts: CheckOptions): Promise<CheckResult> {
  return checkAttempt(opts, 1, performance.now());
}

/**
 * One pass of {@link check}. Check takes no lock (read-only credentials check too), so a
 * prune may replace the packs and index it loaded: a pack that went missing while the
 * index changed is that, not damage, and the check starts again, {@link READER_ATTEMPTS}
 * times at most.
 */
async function checkAttempt(
  opts: CheckOptions,
  attempt: number,
  started: number,
): Promise<CheckResult> {
  const readData = opts.readData ?? true;
  if (opts.repair && !readData) {
    throw new UsageError(
      'repair needs the data check (readData): it drops the blobs that check finds damaged',
    );
  }
  const repo = await openRepository(opts);
  const problems: CheckProblem[] = [];
  const add = (p: CheckProblem): void => {
    problems.push(p);
  };
  const asProblem = (e: unknown, object: string): void => {
    if (
      e instanceof BackvaultError &&
      (e.code === 'CORRUPT' || e.code === 'MISSING_OBJECT' || e.code === 'ROLLBACK')
    ) {
      const obj = (e as { object?: string }).object ?? object;
      add({ code: e.code, object: obj, message: e.message });
    } else throw e;
  };
  let bytesRead = 0;
  let blobs = 0;
  let filesDone = 0;
  const progress = (): void =>
    opts.onProgress?.({ phase: 'check', bytesDone: bytesRead, filesDone });

  const generation = await indexGeneration(repo);
  const snaps = await loadSnapshots(repo, add);
  const seen = repo.statePath ? await readSeenHead(repo.statePath, repo.repoIdHex) : undefined;
  const { chain, problems: chainProblems, notes: chainNotes } = verifyChain(snaps, seen);
  problems.push(...chainProblems);
  const notes = chainNoteWarnings(chainNotes, { gaps: true });
  // Objects under locks/ that no backup, prune or forget can read: each stops them all.
  problems.push(...(await lockProblems(repo)));
  // One listing of data/, for the index and for the packs checked below. A damaged index
  // object is reported (CORRUPT) and the packs only it listed are read by their headers, so
  // that blobs still readable are not called missing.
  const listed = await listAll(repo.storage, PREFIX.data);
  const index = await loadIndex(repo, add, {
    stored: new Map(
      listed.flatMap((o) => {
        const id = parsePackName(o.name);
        return id ? [[id, o.size] as const] : [];
      }),
    ),
    lost: 'demote',
    skipDamaged: true,
  });

  // Snapshots oldest first, so each problem names the first snapshot that needs the object.
  const bySeq = [...snaps].sort((a, b) => a.snap.seq - b.snap.seq);
  await walkTrees(
    repo,
    index,
    bySeq.map((s) => s.snap.rootTree),
    () => {},
    () => {},
    (e, root) => {
      const s = bySeq[root];
      if (s && e instanceof BackvaultError && e.code === 'MISSING_OBJECT') {
        // An object no index lists (index lost) or whose pack is gone: say which snapshot.
        const object = (e as { object?: string }).object ?? 'tree';
        add({
          code: 'MISSING_OBJECT',
          object,
          message: `${e.message}; needed by snapshot ${s.snap.seq} (${s.id.slice(0, 8)})`,
        });
      } else asProblem(e, 'tree');
    },
  );

  // Index entries grouped by pack, to compare with pack headers.
  const byPack = new Map<string, BlobEntry[]>();
  for (const { packId, entry } of index.blobs.values()) {
    const list = byPack.get(packId) ?? [];
    list.push(entry);
    byPack.set(packId, list);
  }
  const present = new Set<string>();
  for (const o of listed) {
    const id = parsePackName(o.name);
    if (id) present.add(id);
    else add({ code: 'CORRUPT', object: o.name, message: 'unexpected object in data/' });
  }
  // Damage found below, to name the snapshots and paths it costs: packs that are gone or
  // unreadable as a whole, and single blobs (kind:id) that fail verification.
  const badPacks = new Set<string>();
  const badBlobs = new Set<string>();
  /** The same blobs with their pack (`packId/kind:id`), for `repair`. */
  const badAt = new Set<string>();
  for (const packId of index.packs) {
    if (!present.has(packId)) badPacks.add(packId);
    if (!present.has(packId))
      add({
        code: 'MISSING_OBJECT',
        object: packName(packId),
        message: 'pack named by the index is missing',
      });
  }

  const pool = await startPool(readData ? opts.workers : 0, repo.keys, {}, enginePlatform().files);
  // Abort: the workers stop now and the loop before the next pack (check writes nothing
  // but the state file, and that only after a clean run).
  const signal = opts.signal;
  const stopOnAbort = (): void => void pool.close();
  signal?.addEventListener('abort', stopOnAbort, { once: true });
  try {
    for (const o of listed) {
      throwIfAborted(signal);
      const packId = parsePackName(o.name);
      if (!packId) continue;
      try {
        let whole: Uint8Array | undefined;
        if (readData) {
          whole = await repo.storage.get(o.name);
          bytesRead += whole.length;
          // Reported, then each blob is still verified: the damage may be in one blob (it
          // costs the files that hold it), or in the header or trailer (it costs nothing).
          if (sha256Hex(whole) !== packId)
            add({
              code: 'CORRUPT',
              object: o.name,
              message: 'pack content does not match its name',
            });
        }
        const header = await readPackHeader(repo, o.name, whole?.length ?? o.size, whole);
        bytesRead += header.bytesRead;
        const inHeader = new Map(header.entries.map((e) => [`${e.kind}:${toHex(e.id)}`, e]));
        for (const e of byPack.get(packId) ?? []) {
          const h = inHeader.get(`${e.kind}:${toHex(e.id)}`);
          if (!h || !sameEntry(h, e)) {
            add({
              code: 'CORRUPT',
              object: o.name,
              message: 'index entry does not match the pack header',
            });
            break;
          }
        }
        if (whole) {
          const w = whole;
          const results = await Promise.allSettled(
            header.entries.map((e) => pool.open(e, w.slice(e.offset, e.offset + e.length), o.name)),
          );
          blobs += header.entries.length;
          results.forEach((r, i) => {
            const e = header.entries[i];
            if (r.status === 'rejected' && e) {
              badBlobs.add(`${e.kind}:${toHex(e.id)}`);
              badAt.add(`${packId}/${e.kind}:${toHex(e.id)}`);
            }
          });
          const bad = results.find((r) => r.status === 'rejected');
          if (bad) asProblem((bad as PromiseRejectedResult).reason, o.name);
        } else {
          blobs += header.entries.length;
        }
      } catch (e) {
        throwIfAborted(signal);
        badPacks.add(packId);
        asProblem(e, o.name);
      }
      filesDone += 1;
      progress();
    }
  } finally {
    signal?.removeEventListener('abort', stopOnAbort);
    await pool.close();
  }
  throwIfAborted(signal);

  // What went missing while a prune replaced it is not damage: look again on the new index.
  let changed = false;
  if (
    problems.some((p) => p.code === 'MISSING_OBJECT') &&
    (await indexGeneration(repo)) !== generation
  ) {
    if (attempt < READER_ATTEMPTS) return checkAttempt(opts, attempt + 1, started);
    changed = true;
    notes.push(
      `the repository changed during each of ${attempt} checks (a prune or backup ran beside them): missing objects may be what it replaced; check again when it has finished`,
    );
  }
  if (badPacks.size > 0 || badBlobs.size > 0)
    await nameAffected(repo, index, bySeq, badPacks, badBlobs, problems);
  let repaired: CheckResult['repaired'];
  if (changed && opts.repair)
    notes.push('the index was not repaired: what was checked is not what the repository holds now');
  else if (
    opts.repair &&
    (badPacks.size > 0 || badAt.size > 0 || index.damagedIndexes.length > 0)
  ) {
    try {
      repaired = await repairIndex(repo, badAt, badPacks, signal);
    } catch (e) {
      // A backup or prune holds the lock: the problems found are still the answer.
      if (!(e instanceof BackvaultError && e.code === 'CONFLICT')) throw e;
      notes.push(`the index was not repaired: ${e.message}; run the repair again after it`);
    }
  }

  const head = chain[chain.length - 1];
  if (problems.length === 0 && head && repo.statePath) {
    await recordSeenHead(
      repo.statePath,
      repo.repoIdHex,
      { seq: head.snap.seq, snapshot: head.id },
      repo.storage.location,
    );
  }
  return {
    ok: problems.length === 0,
    snapshots: snaps.length,
    packs: present.size,
    blobs,
    bytesRead,
    problems,
    notes,
    ...(repaired ? { repaired } : {}),
    seconds: (performance.now() - started) / 1000,
  };
}

/** At most this many paths are named per snapshot and problem (the count is exact). */
const MAX_AFFECTED_PATHS = 200;

/**
 * For each problem about a pack, the snapshots and paths (relative to the backed-up
 * folder; a folder ends with `/` and stands for all below it) that its damage costs: files
 * with a chunk in a lost pack or a blob that failed, folders whose tree is there. Trees
 * are walked once each (a subtree shared by snapshots is remembered).
 */
async function nameAffected(
  repo: Repo,
  index: BlobIndex,
  snapshots: readonly LoadedSnapshot[],
  badPacks: ReadonlySet<string>,
  badBlobs: ReadonlySet<string>,
  problems: CheckProblem[],
): Promise<void> {
  const isBad = (id: Uint8Array, kind: BlobKind): string | undefined => {
    const at = index.blobs.get(id, kind);
    if (!at) return undefined;
    if (badPacks.has(at.packId) || badBlobs.has(`${kind}:${toHex(id)}`)) return packName(at.packId);
    return undefined;
  };
  // tree id -> [pack, path below the tree][]
  const memo = new Map<string, [string, string][]>();
  const walk = async (treeId: Uint8Array, depth: number): Promise<[string, string][]> => {
    const key = toHex(treeId);
    const known = memo.get(key);
    if (known) return known;
    const out: [string, string][] = [];
    memo.set(key, out);
    if (depth > 4096) return out;
    let entries: TreeEntry[];
    try {
      entries = await readTree(repo, index, treeId);
    } catch {
      return out; // reported by the tree walk above
    }
    for (const e of entries) {
      if (e.type === EntryType.DIR) {
        const pack = isBad(e.subtree, ObjectKind.TREE_BLOB);
        if (pack) out.push([pack, `${e.name}/`]);
        else
          for (const [pk, p] of await walk(e.subtree, depth + 1)) out.push([pk, `${e.name}/${p}`]);
      } else if (e.type === EntryType.FILE) {
        for (const c of e.chunks) {
          const pack = isBad(c, ObjectKind.DATA_BLOB);
          if (pack) {
            out.push([pack, e.name]);
            break;
          }
        }
      }
    }
    return out;
  };
  for (const s of snapshots) {
    const rootPack = isBad(s.snap.rootTree, ObjectKind.TREE_BLOB);
    const found: [string, string][] = rootPack
      ? [[rootPack, './']]
      : await walk(s.snap.rootTree, 0);
    const byPack = new Map<string, string[]>();
    for (const [pack, path] of found) byPack.set(pack, [...(byPack.get(pack) ?? []), path]);
    for (const [pack, paths] of byPack) {
      const p = problems.find((x) => x.object === pack);
      if (!p) continue;
      p.affects ??= [];
      p.affects.push({
        snapshot: s.id,
        seq: s.snap.seq,
        count: paths.length,
        paths: paths.slice(0, MAX_AFFECTED_PATHS),
      });
    }
  }
}
