/**
 * `backup`: open (or create) the repository, take the lock, load the index and the chain,
 * run the archiver over the source, then commit: the index, then the snapshot (last), then
 * the local state file.
 *
 * Commit order is the atomicity argument: a snapshot only names trees and chunks that are
 * in durable packs listed by a durable index, so a crash at any moment leaves the previous
 * snapshot intact and restorable; the leftovers of an interrupted backup (packs without an
 * index, an index without a snapshot) are valid objects that the next backup adopts
 * (resume) or `prune` removes.
 *
 * The store may change under a backup: index entries whose pack is gone are not trusted
 * (one listing of `data/` per backup).
 */

import { UsageError, throwIfAborted } from '../../errors.js';
import {
  ObjectKind,
  REPO_ID_BYTES,
  fromHex,
  packName,
  type IndexPack,
} from '../../format/index.js';
import type { BackupOptions, BackupResult } from '../api.js';
import type { DatabaseCapture } from '../archiver/databases.js';
import { ExcludeSet } from '../archiver/exclude.js';
import { enginePlatform, filesFor } from '../platform/current.js';
import type { EngineFiles, EntryInfo } from '../platform/types.js';
import {
  damagedIndexWarning,
  loadIndex,
  storeIndex,
  type EncodedIndexPack,
} from '../repository/indexes.js';
import { deriveRepoKeys, randomBytes } from '../repository/keys.js';
import { PACK_TARGET } from '../repository/pack-builder.js';
import { RepoLock } from '../repository/lock.js';
import {
  initRepository,
  listPacks,
  openRepository,
  repositoryExists,
  type Repo,
  requireRollbackChoice,
} from '../repository/repository.js';
import { chainNoteWarnings, loadChainNotes, sealSnapshot } from '../repository/snapshots.js';
import { recordSeenHead } from '../repository/state.js';
import type { EnginePool, KnownIds } from '../workers/pool-types.js';
import { startPool } from '../workers/start.js';

import { BackupRun } from '../archiver/archiver.js';

/** A symlink target that names a path on its own (POSIX `/…`, Windows `C:\…` or `\\…`). */
function isAbsolute(p: string): boolean {
  return p.startsWith('/') || p.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(p);
}

/**
 * Back up `opts.source` as a new snapshot, creating the repository on first use.
 * @throws UsageError when the source is not a directory, or a file or directory in it cannot
 *   be read for lack of permission (the message names the path; nothing is committed).
 *   Files and directories that vanish while the backup runs are skipped and reported in
 *   `warnings` / `filesSkipped`.
 * @throws WrongKeyError when the key does not open the existing repository.
 * @throws ConflictError when another backup or a prune holds the repository's lock, or this backup lost its
 *   own lock (stopped for longer than a lock lives); nothing is committed then.
 * @throws RollbackError / CorruptBackupError / MissingObjectError when the repository's
 *   snapshot chain or index fails verification (nothing is written then).
 * @throws UnavailableError from the store.
 */
export async function backup(opts: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const startMs = Date.now();
  const files = filesFor(opts);
  // An empty string (an unset setting) would resolve to the current folder: never backed up
  // by accident.
  if (typeof opts.source !== 'string' || opts.source === '')
    throw new UsageError('no source directory given (`source` is empty)');
  const source = files.path.resolve(opts.source);
  let rootStat: EntryInfo;
  try {
    rootStat = await files.lstat(source);
    // The source itself may be a symlink to the folder (entries inside are never followed).
    let at = source;
    for (let hops = 0; rootStat.kind === 'symlink' && hops < 40; hops++) {
      const to = await files.readlink(at);
      // An absolute target stands alone: joined below the link's folder it named a path
      // that does not exist (`ln -s /data/chat ~/chat` failed as "cannot read").
      at = files.path.resolve(isAbsolute(to) ? to : files.path.join(files.path.dirname(at), to));
      rootStat = await files.lstat(at);
    }
  } catch {
    throw new UsageError(`cannot read the source directory: ${source}`);
  }
  if (rootStat.kind !== 'dir') throw new UsageError(`not a directory: ${source}`);
  if (
    opts.packSize !== undefined &&
    !(
      Number.isSafeInteger(opts.packSize) &&
      opts.packSize >= 256 * 1024 &&
      opts.packSize <= 128 * 1024 * 1024
    )
  ) {
    throw new UsageError('packSize must be a whole number of bytes from 256 KiB to 128 MiB');
  }

  // The default database capture is ours to close (an app's own capture is the app's). Its
  // lock helper process starts now, while the repository is opened and its index read.
  const platform = enginePlatform();
  const ownCapture =
    opts.databases === undefined && files === platform.files ? platform.databases?.() : undefined;
  (ownCapture as { warm?: () => void } | undefined)?.warm?.();
  let pool: BackupPool | undefined;
  try {
    requireRollbackChoice(opts);
    let created = false;
    if (!(await repositoryExists(opts.storage))) {
      if (!opts.init) {
        // refuses with what this device saw there, if it saw a repository here before
        await openRepository(opts);
      }
      // The pool starts before anything is written: a pool that cannot start (and every
      // other failure up to here) leaves no repository behind.
      const repoId = randomBytes(REPO_ID_BYTES);
      pool = await startBackupPool(opts, deriveRepoKeys(opts.backupKey, repoId), files);
      created = (await initRepository(opts, { repoId })).created;
      if (!created) {
        // Another device created one meanwhile: start again with its keys.
        await pool.close();
        pool = undefined;
      }
    }
    const repo = await openRepository(opts);
    // Taken before the index is read: a prune must not delete what this backup deduplicates
    // against or has stored but not yet indexed, and another backup must not chain a second
    // snapshot to the same head (a fork). See lock.ts.
    const lock = await RepoLock.acquire(repo, 'backup', true);
    try {
      return await backupLocked(opts, repo, lock, {
        started,
        startMs,
        source,
        rootStat,
        created,
        ownCapture,
        files,
        pool,
      });
    } finally {
      await lock.release();
    }
  } finally {
    await pool?.close();
    await ownCapture?.close?.();
  }
}

/**
 * A backup's pool and the packs it finished: stored, then listed in this backup's index.
 * Once the stored packs' index records reach a quarter of the pack size, `writePart` (set
 * once the repository is locked) lists them in an index object of their own, so what a
 * backup holds for its index is bounded by its pack size, not by its number of blobs. An
 * index without a snapshot is a state an interrupted backup already leaves: valid, adopted
 * as it is by the next backup, removed by prune if nothing references its blobs.
 */
type BackupPool = EnginePool & {
  sink: {
    packs: (IndexPack | EncodedIndexPack)[];
    bytesStoredNew: number;
    /** Bytes of the encoded index records in `packs`. */
    recordBytes: number;
    writePart?: () => Promise<void>;
  };
};

async function startBackupPool(
  opts: BackupOptions,
  keys: ReturnType<typeof deriveRepoKeys>,
  files: EngineFiles,
  known?: { data: KnownIds; tree: KnownIds },
): Promise<BackupPool> {
  const sink: BackupPool['sink'] = { packs: [], bytesStoredNew: 0, recordBytes: 0 };
  const partBytes = (opts.packSize ?? PACK_TARGET) / 4;
  const pool = await startPool(
    opts.workers,
    keys,
    {
      ...(opts.packSize !== undefined ? { packSize: opts.packSize } : {}),
      ...(known ? { known } : {}),
      onPack: async (p) => {
        await opts.storage.put(packName(p.packId), p.bytes.subarray(0, p.length));
        sink.bytesStoredNew += p.length;
        // Only a durable pack goes into the index.
        sink.packs.push({ packId: fromHex(p.packId), index: p.index });
        sink.recordBytes += p.index.length;
        if (sink.recordBytes >= partBytes && sink.writePart) await sink.writePart();
      },
    },
    files,
  );
  return Object.assign(pool, { sink });
}

async function backupLocked(
  opts: BackupOptions,
  repo: Repo,
  lock: RepoLock,
  ctx: {
    started: number;
    startMs: number;
    source: string;
    rootStat: EntryInfo;
    created: boolean;
    ownCapture: DatabaseCapture | undefined;
    files: EngineFiles;
    /** Started before this backup created the repository (so it knows no blobs). */
    pool: BackupPool | undefined;
  },
): Promise<BackupResult> {
  const { started, startMs, source, rootStat, created } = ctx;
  const {
    chain,
    notes: chainNotes,
    damagedHead,
  } = await loadChainNotes(repo, false, {
    damagedSeenHead: true,
  });
  // One listing of data/ per backup: index entries whose pack the store lost (or cut short)
  // are not trusted, neither to deduplicate new chunks nor to take over unchanged files, so
  // their data is stored again from the source.
  // Packs an interrupted backup stored before its index are adopted (read by their
  // headers), so this backup resumes where that one stopped: only the packs that were in
  // flight are lost. They go into this backup's index.
  const index = await loadIndex(repo, undefined, {
    stored: await listPacks(repo.storage),
    lost: 'drop',
    adoptOrphans: true,
    // A damaged index object stopped every later backup; its packs are adopted by their
    // headers like a stopped backup's and listed again in this backup's index.
    skipDamaged: true,
  });
  const host = opts.hostname ?? enginePlatform().host.hostname();
  const head = chain[chain.length - 1];
  // Only a snapshot of this host can vouch for files by their times.
  const parent = head && head.snap.hostname === host ? head : undefined;

  // A pool started before the repository existed knows no blobs; so does this index,
  // unless another device's backup got in between.
  const pool =
    ctx.pool && index.blobs.size === 0
      ? ctx.pool
      : await startBackupPool(opts, repo.keys, ctx.files, {
          data: index.blobs.sharedIds(ObjectKind.DATA_BLOB),
          tree: index.blobs.sharedIds(ObjectKind.TREE_BLOB),
        });
  const packs = pool.sink.packs;
  packs.push(...index.adopted.map((a) => ({ packId: fromHex(a.packId), blobs: a.entries })));
  pool.sink.writePart = async () => {
    const part = packs.splice(0);
    pool.sink.recordBytes = 0;
    if (part.length === 0) return;
    // As for the last index below: nothing is indexed by a backup that lost its lock.
    await lock.assertHeld();
    pool.sink.bytesStoredNew += (await storeIndex(repo, part)).size;
  };
  let stopOnAbort: (() => void) | undefined;
  try {
    const run = new BackupRun(
      repo,
      index,
      pool,
      parent,
      opts.onProgress,
      source,
      new ExcludeSet(opts.exclude ?? []),
      opts.databases === false ? undefined : (opts.databases ?? ctx.ownCapture),
      ctx.files,
    );
    for (const w of chainNoteWarnings(chainNotes)) run.warn(w);
    // A local repository inside the source would be backed up into itself: every backup
    // stored the previous one's packs again (their sealed bytes never deduplicate), and
    // each snapshot held a stale copy of the repository, lock files included.
    const config =
      ctx.files === enginePlatform().files ? opts.storage.localPath?.('config') : undefined;
    if (config !== undefined) run.omitDir = ctx.files.path.dirname(config);
    // Abort: the walk stops at its next entry, and the workers stop now (a file being read
    // is not read to its end). Packs already stored stay, unindexed: the next backup
    // adopts them (resume) and `prune` removes what nothing adopts.
    const signal = opts.signal;
    if (signal) {
      stopOnAbort = (): void => {
        run.failure ??= signal.reason;
        void pool.close();
      };
      if (signal.aborted) stopOnAbort();
      else signal.addEventListener('abort', stopOnAbort, { once: true });
    }

    if (index.damagedIndexes.length > 0) {
      run.warn(
        damagedIndexWarning(
          index.damagedIndexes,
          "this backup's index lists them again, and a prune removes the damaged object",
        ),
      );
    }
    if (index.lostPacks.length > 0) {
      run.warn(
        `${index.lostPacks.length} pack(s) named by the index are missing or truncated in the store; their data is stored again where the source still has it (a check tells what else is affected)`,
      );
    }
    const parentRoot = parent ? await run.parentTree(parent.snap.rootTree) : undefined;
    let rootTree: Uint8Array | undefined;
    try {
      rootTree = await run.dir(source, parentRoot);
    } catch (e) {
      throw run.failure ?? e;
    }
    if (rootTree === undefined) throw new UsageError(`the source directory vanished: ${source}`);
    if (run.failure) throw run.failure;
    await pool.flush();
    let bytesStoredNew = pool.sink.bytesStoredNew;
    throwIfAborted(opts.signal);

    // A backup stopped for longer than a lock lives (a suspended laptop) may have been pruned
    // around: it must not index or commit what may be gone.
    await lock.assertHeld();
    if (packs.length > 0) {
      bytesStoredNew += (await storeIndex(repo, packs)).size;
    }

    // A damaged head this device saw is the previous (loadChainNotes): naming it makes it
    // provably older, and the chain whole again.
    const prevHead = damagedHead ?? (head ? { id: head.id, seq: head.snap.seq } : undefined);
    const seq = prevHead ? prevHead.seq + 1 : 1;
    const sealedSnap = sealSnapshot(repo, {
      seq,
      prev: prevHead ? fromHex(prevHead.id) : null,
      timeMs: startMs,
      hostname: host,
      rootTree,
      rootMode: rootStat.mode,
      rootMtimeNs: run.storable(source, rootStat).mtimeNs,
      files: run.files,
      dirs: run.dirs,
      bytes: run.bytesInSnapshot,
      partial: run.partial,
      skipped: run.filesSkipped,
    });
    const snapshotId = sealedSnap.id;
    await lock.assertHeld();
    // The last moment an abort is honoured: after the put below the snapshot exists.
    throwIfAborted(opts.signal);
    // The commit point: from here on the new snapshot exists.
    await repo.storage.put(sealedSnap.name, sealedSnap.bytes);
    bytesStoredNew += sealedSnap.bytes.length;
    if (repo.statePath)
      await recordSeenHead(
        repo.statePath,
        repo.repoIdHex,
        { seq, snapshot: snapshotId },
        repo.storage.location,
      );
    run.progress(true);

    return {
      snapshotId,
      seq,
      created,
      files: run.files,
      dirs: run.dirs,
      bytesRead: run.bytesRead,
      bytesNew: run.bytesNew,
      bytesStoredNew,
      chunksTotal: run.chunksTotal,
      chunksNew: run.chunksNew,
      filesSkipped: run.filesSkipped,
      partial: run.partial,
      excluded: run.excluded,
      databases: run.databasesCaptured,
      warnings: run.allWarnings(),
      resumed: {
        packs: index.adopted.length,
        bytes: index.adopted.reduce((n, a) => n + a.size, 0),
      },
      seconds: (performance.now() - started) / 1000,
      workers: pool.size,
    };
  } finally {
    if (stopOnAbort) opts.signal?.removeEventListener('abort', stopOnAbort);
    if (pool !== ctx.pool) await pool.close();
  }
}
