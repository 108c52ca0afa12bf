/**
 * Opening a repository: config and key check, the blob index, the snapshot chain, and
 * reading single blobs. Shared by backup, restore, check, prune and listSnapshots.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  BackvaultError,
  CorruptBackupError,
  InvalidKeyError,
  MissingObjectError,
  NoRepositoryError,
  RollbackError,
  WrongKeyError,
} from '../../errors.js';
import {
  BLOB_ENTRY_BYTES,
  CONFIG_BYTES,
  FORMAT_VERSION,
  ObjectKind,
  PREFIX,
  REPO_ID_BYTES,
  SEAL_OVERHEAD,
  decodeConfig,
  decodeIndex,
  decodePackHeader,
  decodeSnapshot,
  decodeTree,
  encodeConfig,
  fromHex,
  objectAd,
  packName,
  packTrailer,
  parsePackName,
  toHex,
  type BlobEntry,
  type Snapshot,
  type TreeEntry,
} from '../../format/index.js';
import type { Storage } from '../../storage/storage.js';
import type { CheckProblem, RepoAccess } from '../api.js';
import { openBlob } from './blob-codec.js';
import { deriveRepoKeys, keyCheckValueNode, open, sha256Hex, type RepoKeys } from './keys.js';
import {
  readKnownLocation,
  readSeenHead,
  recordLocation,
  recordSeenHead,
  type SeenHead,
} from './state.js';
import { BlobIndexBuilder, type CompactBlobMap, type IndexedBlob } from './blob-index.js';

export type { IndexedBlob } from './blob-index.js';

/** An opened repository. */
export interface Repo {
  storage: Storage;
  keys: RepoKeys;
  repoIdHex: string;
  statePath: string | undefined;
}

/** The blob index of a repository: blob id (hex) -> location. */
export interface BlobIndex {
  blobs: CompactBlobMap;
  /** Names of the index objects read. */
  indexNames: string[];
  /** Pack ids (hex) named by any index. */
  packs: Set<string>;
  /**
   * Pack ids (hex) named by an index but absent from the store or too short for the blobs
   * listed in them (only when `loadIndex` was given the stored packs).
   */
  lostPacks: string[];
  /** Packs no index named whose blobs were adopted (`adoptOrphans`), with their entries. */
  adopted: { packId: string; entries: BlobEntry[]; size: number }[];
}

/** How `loadIndex` treats entries of lost packs (see {@link loadIndex}). */
export interface PackPresence {
  /** Every stored pack: id (hex) -> size, from one listing of `data/`. */
  stored: ReadonlyMap<string, number>;
  /**
   * `drop`: leave their entries out (a backup must not deduplicate against them);
   * `demote`: use them only for blobs no healthy pack holds (restore, prune: a blob stored
   * again by a later backup is read from its new pack; otherwise the error stays what it
   * was, MISSING_OBJECT or CORRUPT).
   */
  lost: 'drop' | 'demote';
  /**
   * Adopt stored packs that no index names (a backup interrupted before its index: a
   * Ctrl-C, a kill -9, a lost network): their headers are read and authenticated and their
   * blobs join the map, so a backup resumes instead of uploading them again. It must list
   * them in its own index (see `adopted`). Only for a holder of the exclusive lock: no
   * other backup's packs-in-progress can be among them.
   */
  adoptOrphans?: boolean;
}

/**
 * Smallest size of a pack holding a blob that ends at `extent`: the sealed header (with at
 * least one entry) and the 4-byte trailer follow the last blob.
 */
const PACK_TAIL_MIN = SEAL_OVERHEAD + 5 + BLOB_ENTRY_BYTES + 4;

/** A verified snapshot object with its id. */
export interface LoadedSnapshot {
  id: string;
  snap: Snapshot;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Run `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(runners);
  return out;
}

/** Collect an async iterable. */
export async function listAll(
  storage: Storage,
  prefix: string,
): Promise<{ name: string; size: number }[]> {
  const out: { name: string; size: number }[] = [];
  for await (const o of storage.list(prefix)) out.push(o);
  return out;
}

/**
 * One listing of `data/`: pack id (hex) -> size. Names that are not pack names are left out
 * (`check` reports them).
 * @throws UnavailableError from the store.
 */
export async function listPacks(storage: Storage): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of storage.list(PREFIX.data)) {
    const id = parsePackName(o.name);
    if (id) out.set(id, o.size);
  }
  return out;
}

/** True when the store holds a repository (a `config` object). */
export async function repositoryExists(storage: Storage): Promise<boolean> {
  return (await storage.stat(PREFIX.config)) !== undefined;
}

function checkKeyLength(backupKey: Uint8Array): void {
  if (!(backupKey instanceof Uint8Array) || backupKey.length !== 32) {
    throw new InvalidKeyError('a backup key is 32 bytes (64 hexadecimal digits)');
  }
}

/**
 * Read `config` and verify the key check value. Nothing else is read before the key is
 * known to be right.
 * @throws NoRepositoryError when there is no `config`.
 * @throws CorruptBackupError when `config` is malformed (see format/config.ts).
 * @throws WrongKeyError when the key check value does not match.
 * @throws UnavailableError from the store.
 */
export async function openRepository(access: RepoAccess): Promise<Repo> {
  checkKeyLength(access.backupKey);
  let bytes: Uint8Array;
  try {
    bytes = await access.storage.get(PREFIX.config);
  } catch (e) {
    if (e instanceof MissingObjectError) {
      await refuseVanished(access);
      throw new NoRepositoryError(access.storage.location);
    }
    throw e;
  }
  const config = decodeConfig(bytes);
  const keys = deriveRepoKeys(access.backupKey, config.repoId);
  const expected = keyCheckValueNode(keys, config.version);
  if (!timingSafeEqual(expected, config.keyCheck)) {
    throw new WrongKeyError();
  }
  await refuseReplaced(access, toHex(config.repoId));
  return {
    storage: access.storage,
    keys,
    repoIdHex: toHex(config.repoId),
    statePath: access.statePath,
  };
}

/**
 * A device that has seen snapshots in a repository at this location refuses to treat it as
 * absent: the repository vanished (an unmounted cloud drive, a mistyped path that happens to
 * exist elsewhere) and starting over at seq 1 would hide that.
 * @throws NoRepositoryError saying what this device saw there.
 */
async function refuseVanished(access: RepoAccess): Promise<void> {
  if (!access.statePath) return;
  const known = await readKnownLocation(access.statePath, access.storage.location);
  if (!known?.seen) return;
  throw new NoRepositoryError(
    access.storage.location,
    `this device has seen snapshot ${known.seen.seq} in a repository here, and it is gone`,
    'Check that the drive or bucket is mounted and reachable and that --repo is right. To really start a new repository at this place, run `backvault init` with --replace-missing.',
  );
}

/**
 * A device that has seen snapshots of one repository at this location refuses another one
 * found there (a new, empty repository created over a vanished one): it is a rollback to
 * nothing.
 * @throws RollbackError.
 */
async function refuseReplaced(access: RepoAccess, repoIdHex: string): Promise<void> {
  if (!access.statePath) return;
  const known = await readKnownLocation(access.statePath, access.storage.location);
  if (!known?.seen || known.repoIdHex === repoIdHex) return;
  throw new RollbackError(
    `the repository at ${access.storage.location} is not the one this device backed up to (it had seen snapshot ${known.seen.seq} there); the old repository was replaced`,
  );
}

/**
 * Create a repository (a new random repo id and `config`), or open the existing one.
 * @param opts.replaceMissing create one even where this device saw a repository that is
 *   gone (the user checked it is not merely unmounted).
 * @throws WrongKeyError when a repository exists and the key does not open it.
 * @throws NoRepositoryError when this device saw a repository at this location that is
 *   gone, without `replaceMissing`.
 * @throws UnavailableError from the store.
 */
export async function initRepository(
  access: RepoAccess,
  opts: { replaceMissing?: boolean } = {},
): Promise<{ repoId: string; created: boolean }> {
  checkKeyLength(access.backupKey);
  if (await repositoryExists(access.storage)) {
    const repo = await openRepository(access);
    return { repoId: repo.repoIdHex, created: false };
  }
  if (!opts.replaceMissing) await refuseVanished(access);
  const repoId = new Uint8Array(randomBytes(REPO_ID_BYTES));
  const keys = deriveRepoKeys(access.backupKey, repoId);
  const config = encodeConfig({
    version: FORMAT_VERSION,
    repoId,
    keyCheck: keyCheckValueNode(keys, FORMAT_VERSION),
  });
  if (config.length !== CONFIG_BYTES) throw new Error('config length');
  await access.storage.put(PREFIX.config, config);
  if (access.statePath)
    await recordLocation(access.statePath, access.storage.location, toHex(repoId));
  return { repoId: toHex(repoId), created: true };
}

/**
 * Read, verify (name = SHA-256 of the bytes) and open a sealed metadata object.
 * @throws CorruptBackupError / MissingObjectError / UnavailableError.
 */
export async function readSealedObject(
  repo: Repo,
  name: string,
  kind: typeof ObjectKind.INDEX | typeof ObjectKind.SNAPSHOT,
): Promise<{ plain: Uint8Array; size: number }> {
  const hex = name.slice(name.lastIndexOf('/') + 1);
  const bytes = await repo.storage.get(name);
  if (!HEX64.test(hex) || sha256Hex(bytes) !== hex) {
    throw new CorruptBackupError('object content does not match its name', name);
  }
  return {
    plain: open(repo.keys.meta, objectAd(kind, repo.keys.repoId), bytes, name),
    size: bytes.length,
  };
}

/**
 * Read, verify and open every object under `prefix` (`index/` or `snapshots/`: names are
 * the prefix and 64 hex digits), 8 at a time, and hand each plaintext to `use`.
 * @param onProblem when given, an object that is CORRUPT or MISSING_OBJECT (in `use` too) is
 *   reported and skipped instead of thrown.
 */
async function forEachSealed(
  repo: Repo,
  prefix: typeof PREFIX.index | typeof PREFIX.snapshots,
  kind: typeof ObjectKind.INDEX | typeof ObjectKind.SNAPSHOT,
  onProblem: ((p: CheckProblem) => void) | undefined,
  use: (name: string, plain: Uint8Array) => void,
): Promise<void> {
  const name64 = new RegExp(`^${prefix}[0-9a-f]{64}$`);
  await mapLimit(await listAll(repo.storage, prefix), 8, async ({ name }) => {
    try {
      if (!name64.test(name)) throw new CorruptBackupError('unexpected object name', name);
      const { plain } = await readSealedObject(repo, name, kind);
      use(name, plain);
    } catch (e) {
      if (
        onProblem &&
        e instanceof BackvaultError &&
        (e.code === 'CORRUPT' || e.code === 'MISSING_OBJECT')
      ) {
        onProblem({ code: e.code, object: name, message: e.message });
      } else throw e;
    }
  });
}

/**
 * Load every index object into one map.
 * @param onProblem when given, a bad index object is reported and skipped instead of thrown.
 * @param presence when given, entries of packs that are absent or too short are dropped or
 *   demoted (see {@link PackPresence}) and the packs reported in `lostPacks`.
 * @throws CorruptBackupError / MissingObjectError / UnavailableError.
 */
export async function loadIndex(
  repo: Repo,
  onProblem?: (p: CheckProblem) => void,
  presence?: PackPresence,
): Promise<BlobIndex> {
  const builder = new BlobIndexBuilder();
  const indexNames: string[] = [];
  const packSet = new Set<string>();
  await forEachSealed(repo, PREFIX.index, ObjectKind.INDEX, onProblem, (name, plain) => {
    const packs = decodeIndex(plain, name);
    indexNames.push(name);
    for (const p of packs) {
      const packId = toHex(p.packId);
      packSet.add(packId);
      for (const entry of p.blobs) builder.add(packId, entry);
    }
  });
  const adopted: BlobIndex['adopted'] = [];
  if (presence?.adoptOrphans) {
    const orphans = [...presence.stored].filter(([id]) => !packSet.has(id));
    await mapLimit(orphans, 8, async ([packId, size]) => {
      try {
        const { entries } = await readPackHeader(repo, packName(packId), size);
        adopted.push({ packId, entries, size });
      } catch (e) {
        // A pack whose header does not authenticate is not used; check reports it, and
        // prune removes it like any pack no index names.
        if (e instanceof BackvaultError && (e.code === 'CORRUPT' || e.code === 'MISSING_OBJECT'))
          return;
        throw e;
      }
    });
    for (const a of adopted) {
      packSet.add(a.packId);
      for (const entry of a.entries) builder.add(a.packId, entry);
    }
  }
  const lostPacks: string[] = [];
  if (presence) {
    for (const [packId, extent] of builder.packExtents()) {
      const size = presence.stored.get(packId);
      if (size === undefined || size < extent + PACK_TAIL_MIN) lostPacks.push(packId);
    }
  }
  const lost = new Set(lostPacks);
  const blobs = builder.finish(
    presence?.lost === 'drop' ? { drop: lost } : presence ? { demote: lost } : {},
  );
  return { blobs, indexNames, packs: packSet, lostPacks, adopted };
}

/**
 * Read one blob's sealed bytes from its pack.
 * @throws CorruptBackupError when the pack is shorter than the index says.
 * @throws MissingObjectError when the pack is gone.
 */
export async function readSealedBlob(repo: Repo, at: IndexedBlob): Promise<Uint8Array> {
  const name = packName(at.packId);
  const b = await repo.storage.getRange(name, at.entry.offset, at.entry.length);
  if (b.length !== at.entry.length) throw new CorruptBackupError('pack is truncated', name);
  return b;
}

/**
 * Read, verify and decode the tree blob `id`.
 * @throws MissingObjectError when the index does not know it or its pack is gone.
 * @throws CorruptBackupError on any verification failure.
 */
export async function readTree(repo: Repo, index: BlobIndex, id: Uint8Array): Promise<TreeEntry[]> {
  const hex = toHex(id);
  const at = index.blobs.get(hex, ObjectKind.TREE_BLOB);
  if (!at) {
    if (index.blobs.has(hex, ObjectKind.DATA_BLOB)) {
      // Written by backvault 0.1, which deduplicated by id alone: a file chunk with the
      // same bytes as this tree stood in for it. The tree was never stored as a tree.
      throw new MissingObjectError(
        `tree/${hex}`,
        'This tree was stored only as a file chunk with the same bytes (a bug of backvault 0.1). Run `backvault backup` of the same source: it stores the tree again and the snapshot restores.',
      );
    }
    throw new MissingObjectError(`blob/${hex}`);
  }
  const name = packName(at.packId);
  const plain = openBlob(repo.keys, at.entry, await readSealedBlob(repo, at), name);
  return decodeTree(plain, name);
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
export async function loadChainNotes(repo: Repo, strict = false): Promise<LoadedChain> {
  const damaged: CheckProblem[] = [];
  const snaps = await loadSnapshots(repo, (p) => damaged.push(p));
  const seen = repo.statePath ? await readSeenHead(repo.statePath, repo.repoIdHex) : undefined;
  const { chain, problems, notes } = verifyChain(snaps, seen);
  const named = new Set(snaps.flatMap((s) => (s.snap.prev ? [toHex(s.snap.prev)] : [])));
  const older = damaged.filter((d) => named.has(d.object.slice(PREFIX.snapshots.length)));
  const unplaced = damaged.filter((d) => !older.includes(d));
  // A damaged object that may be the head first (it explains an apparent rollback), then
  // rollback problems: they explain the others.
  throwProblem([
    ...(strict ? damaged : unplaced),
    ...problems.filter((p) => p.code === 'ROLLBACK'),
    ...problems,
  ]);
  const head = chain[chain.length - 1];
  if (head && repo.statePath)
    await recordSeenHead(
      repo.statePath,
      repo.repoIdHex,
      { seq: head.snap.seq, snapshot: head.id },
      repo.storage.location,
    );
  return { chain, notes: { ...notes, damaged: older } };
}

/**
 * {@link loadChainNotes} for callers that only need the snapshots.
 * @throws RollbackError, CorruptBackupError, UnavailableError.
 */
export async function loadChain(repo: Repo): Promise<LoadedSnapshot[]> {
  return (await loadChainNotes(repo)).chain;
}

/** Bytes of a hex id (for ids already validated as 64 lowercase hex). */
export function idBytes(hex: string): Uint8Array {
  return fromHex(hex);
}

/**
 * Read a pack's header (from the whole pack when given, else by ranges).
 * @throws CorruptBackupError / MissingObjectError / UnavailableError.
 */
export async function readPackHeader(
  repo: Repo,
  name: string,
  size: number,
  whole?: Uint8Array,
): Promise<{ entries: BlobEntry[]; bytesRead: number }> {
  let bytesRead = 0;
  const range = async (off: number, len: number): Promise<Uint8Array> => {
    if (whole) return whole.subarray(off, off + len);
    const b = await repo.storage.getRange(name, off, len);
    bytesRead += b.length;
    return b;
  };
  const { headerOffset, headerLength } = packTrailer(
    size,
    await range(Math.max(0, size - 4), 4),
    name,
  );
  const sealed = await range(headerOffset, headerLength);
  const plain = open(
    repo.keys.meta,
    objectAd(ObjectKind.PACK_HEADER, repo.keys.repoId),
    sealed,
    name,
  );
  return { entries: decodePackHeader(plain, headerOffset, name), bytesRead };
}
