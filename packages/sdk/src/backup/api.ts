/**
 * Public types of the backup engine (Node-only: it reads and writes directories).
 * The functions live in commands/ (checker/ for check) and are re-exported from index.ts
 * (the rooms behind them: docs/ARCHITECTURE.md):
 *
 *   backup(opts: BackupOptions): Promise<BackupResult>
 *   restore(opts: RestoreOptions): Promise<RestoreResult>
 *   listSnapshots(opts: RepoAccess): Promise<SnapshotInfo[]>        (oldest first)
 *   check(opts: CheckOptions): Promise<CheckResult>
 *   prune(opts: RepoAccess & { onProgress? }): Promise<PruneResult>
 *   forget(opts: ForgetOptions): Promise<ForgetResult>
 *   applyRetentionPolicy(snapshots, policy, { timeZone?, now? })      (pure, commands/retention.ts)
 *   initRepository(opts: RepoAccess): Promise<{ repoId: string }>   (backup() calls it on first use)
 *   repositoryExists(storage: Storage): Promise<boolean>
 *
 * Every function throws the typed errors of `src/errors.ts`: WrongKeyError before reading any
 * data when the key is not the repository's; CorruptBackupError / MissingObjectError /
 * RollbackError for integrity failures; UnavailableError when the store cannot be reached;
 * NoRepositoryError when there is no repository.
 */
import type { NetworkOptions, StoreStatus } from '../storage/network.js';
import type { Storage } from '../storage/storage.js';
import type { DatabaseCapture } from './archiver/databases.js';
import type { EngineFiles } from './platform/types.js';
import type { RetentionPolicy } from './commands/retention.js';

export type { RetentionPolicy } from './commands/retention.js';

/**
 * What every operation needs: the store, the 32-byte backup key, and the local state file;
 * plus, optionally, how to treat the network (`retryFor`, `signal`, `limitUpload`,
 * `limitDownload`, `control`, `onStoreEvent`: see storage/network.ts), applied by backup,
 * restore, check, prune, forget, verify and listSnapshots (initRepository uses the store as
 * given).
 */
export interface RepoAccess extends NetworkOptions {
  storage: Storage;
  /** The 256-bit backup key (32 bytes). */
  backupKey: Uint8Array;
  /**
   * Path of the small local state file that remembers, per repository, the highest snapshot
   * sequence number and hash this device has seen, so that a store serving an older
   * snapshot as the latest is caught (rollback detection). Required: every operation
   * rejects with USAGE before touching the store when it is missing, unless
   * `rollbackProtection: false` turns rollback detection off by name. Keep it in the app's
   * private data directory (on Electron `app.getPath('userData')`), one per device.
   */
  statePath?: string;
  /**
   * `false` turns rollback detection off: no state file is read or written, and a store
   * that serves an older snapshot, or a new repository in place of a vanished one, is not
   * noticed. Only for throwaway repositories (tests, drills). Default: on, which needs
   * `statePath`; giving both is a USAGE error.
   */
  rollbackProtection?: boolean;
  /**
   * Stops the operation (abort stops it within a second): it rejects with `signal.reason`
   * (a DOMException named `AbortError` for a plain `abort()`), the repository stays
   * consistent (nothing half-committed; a later backup reuses the packs already stored)
   * and a restore target is left as it was. See {@link NetworkOptions.signal}.
   */
  signal?: AbortSignal;
  /**
   * How long an operation that takes the repository's lock (backup, prune, forget, check
   * with `repair`) waits for another process's or device's conflicting lock to go away: ms, or a duration such as `30s`, `15m`, `1h`; it tries again with
   * growing, jittered pauses (1 s up to 30 s). Default 0: fail at once with CONFLICT (as
   * restic's `--retry-lock`). A wait ends at once on `signal`. Readers take no lock.
   */
  retryLock?: number | string;
  /** Told before each wait for another's lock (see {@link RepoAccess.retryLock}). */
  onLockWait?: (wait: LockWait) => void;
}

/** A wait for another's lock ({@link RepoAccess.onLockWait}). */
export interface LockWait {
  /** Who holds it: `the repository is locked by a backup on host …`. */
  message: string;
  /** When the next try starts (ms since the epoch). */
  nextTryAt: number;
  /** When the operation gives up with CONFLICT (ms since the epoch). */
  giveUpAt: number;
}

/** Progress of a long operation, reported at most every ~100 ms. */
export interface Progress {
  /** In `forget`, `filesDone`/`filesTotal` count snapshot objects deleted. */
  phase: 'scan' | 'backup' | 'restore' | 'check' | 'forget' | 'prune';
  bytesDone: number;
  bytesTotal?: number;
  filesDone: number;
  filesTotal?: number;
  /** Present while the store is unreachable (retrying) or the operation is paused. */
  store?: StoreStatus;
}

export interface BackupOptions extends RepoAccess {
  /** Directory to back up (the chat: database, media folders, anything). */
  source: string;
  /**
   * The files `source` is read from. Default: the platform's (node:fs on Node). A
   * `MemoryFiles` tree (an app handing over bytes, tests) is read in the calling thread.
   */
  files?: EngineFiles;
  onProgress?: (p: Progress) => void;
  /**
   * Worker threads for chunk hashing, compression and encryption. Default: one per core
   * where the platform has threads (Node). `0`: everything runs in the calling thread (the
   * same jobs the threads run). Threads that cannot start (a bundle shipped without the
   * worker entry: README, "Bundling") fall back to the calling thread with one warning.
   */
  workers?: number;
  /** Recorded in the snapshot. Default: os.hostname(). */
  hostname?: string;
  /**
   * How SQLite databases in the source are read as one committed state while the app keeps
   * writing them (see sqlite-capture.ts). Default: a read-only connection of the backup's
   * own (better-sqlite3); an app can hand over its own way; `false` reads them as plain
   * files (only safe when nothing writes them).
   */
  databases?: DatabaseCapture | false;
  /**
   * Paths to leave out, in restic's glob habits, relative to `source` (see exclude.ts):
   * `*.tmp`, `/cache`, `media/**` (any depth below media). Excluded entries do not make the snapshot partial.
   */
  exclude?: string[];
  /**
   * Target pack size in bytes, from 256 KiB to 128 MiB (default 12 MiB). Smaller packs lose
   * less to an interruption (only packs in flight are uploaded again) at the cost of more
   * objects in the store.
   */
  packSize?: number;
  /**
   * Create the repository when the store holds none. Default false: a backup to a missing
   * repository fails with NO_REPOSITORY and creates nothing, so a mistyped location or an
   * unmounted drive never silently starts a new repository. Even with `init`, a location
   * where this device saw a repository (per the state file) is refused.
   */
  init?: boolean;
}

export interface BackupResult {
  /** Snapshot id: hex SHA-256 of the stored snapshot object. */
  snapshotId: string;
  /** Sequence number of this snapshot (1 for the first). */
  seq: number;
  /** True if this call created the repository. */
  created: boolean;
  files: number;
  dirs: number;
  /** Plaintext bytes read from the source. */
  bytesRead: number;
  /** Plaintext bytes of chunks that were not already in the repository. */
  bytesNew: number;
  /** Bytes written to the store by this backup (packs, indexes, snapshot), after compression and encryption. */
  bytesStoredNew: number;
  chunksTotal: number;
  chunksNew: number;
  /**
   * Source entries not in the snapshot: vanished while the backup ran, unreadable
   * (permission denied, I/O error), special files (FIFOs, sockets, devices), names that are
   * not UTF-8. Each is named in `warnings`.
   */
  filesSkipped: number;
  /**
   * True when something that exists in the source could not be backed up (all but the
   * vanished entries above): the snapshot is saved and marked partial, and the CLI exits 7
   * (PARTIAL) so scripts notice.
   */
  partial: boolean;
  /** Entries left out by `exclude`. */
  excluded: number;
  /** SQLite databases captured as one committed state (their -wal/-shm/-journal left out). */
  databases: number;
  /**
   * Things the user should know although the backup succeeded: skipped (vanished) paths,
   * files that kept changing while being read, packs the store lost (their data was
   * stored again). Paths only, never content.
   */
  warnings: string[];
  /**
   * Packs an interrupted earlier backup had stored before it was stopped, reused by this
   * one instead of uploaded again (0 when there was nothing to resume).
   */
  resumed: { packs: number; bytes: number };
  seconds: number;
  /** Worker threads that ran the jobs; 0: the calling thread (see `workers`). */
  workers: number;
}

export interface RestoreOptions extends RepoAccess {
  /** Directory to restore into. Must be absent or empty unless `force`. */
  target: string;
  /** Snapshot id or unique prefix; default: the latest. */
  snapshotId?: string;
  /**
   * Restore into a non-empty target: after everything is verified, the snapshot's files
   * replace the target's files at the same paths; everything else in the target is kept
   * (listed in `kept`). Without it a non-empty target is TARGET_NOT_EMPTY.
   */
  force?: boolean;
  /**
   * Salvage: restore every file whose data verifies, leave out (and list in `damaged`) the
   * files and folders whose blobs are damaged or missing. Nothing unverified is written.
   * Without it the first damaged blob stops the restore (the target untouched).
   */
  partial?: boolean;
  /** Restore only this path of the snapshot (a file or folder, relative, `/`-separated). */
  include?: string;
  /**
   * With `force`: make the target exactly the snapshot, deleting what it does not hold
   * (listed in `deleted`). The swap is still atomic and happens only after verification.
   */
  delete?: boolean;
  /**
   * Make the restored files durable before they move into place (default true): an fsync
   * per file, or one syncfs where that is as strong (README, "Atomic"). `false` skips it, for
   * a scratch restore that is read and deleted right away (`verify` does this); after a
   * power loss such a target may hold empty or partial files.
   */
  durable?: boolean;
  /** The files the restore writes to. Default: the platform's (node:fs on Node). */
  files?: EngineFiles;
  onProgress?: (p: Progress) => void;
  /** As in {@link BackupOptions.workers}: `0` runs in the calling thread. */
  workers?: number;
}

export interface RestoreResult {
  snapshotId: string;
  seq: number;
  /** Files restored (verified and in place); with `partial`, the `damaged` ones are not counted. */
  files: number;
  dirs: number;
  /** Bytes of the files restored (as `files`). */
  bytes: number;
  /** Paths (relative to the target) that the snapshot does not hold and were kept. */
  kept: string[];
  /** Paths (relative to the target) deleted because of `delete`. */
  deleted: string[];
  /** Files and links of the target that the snapshot's replaced (`force`). */
  replaced: number;
  /**
   * `partial`: what could not be restored (relative paths; a folder ends with `/` and
   * stands for everything below it), with the reason. Empty when all verified.
   */
  damaged: { path: string; reason: string }[];
  /**
   * What was cleaned up from an earlier, interrupted restore to the same target before
   * this one started (stale temporary directories removed, an old target put back), and
   * snapshots noticed missing or damaged.
   */
  warnings: string[];
  seconds: number;
  /** Worker threads that ran the jobs; 0: the calling thread (see `workers`). */
  workers: number;
}

export interface SnapshotInfo {
  id: string;
  seq: number;
  /** ISO 8601 time the snapshot was made. */
  time: string;
  hostname: string;
  files: number;
  bytes: number;
  /** Id of the previous snapshot, or null for the first. */
  prev: string | null;
  /** Saved without some source entries that could not be read (see BackupResult.partial). */
  partial: boolean;
  /** Source entries the backup left out. */
  skipped: number;
}

export interface CheckOptions extends RepoAccess {
  /** Also download and verify every data blob (default true). */
  readData?: boolean;
  onProgress?: (p: Progress) => void;
  /** Worker threads verifying blobs when `readData`. Default: CPU count; 0: this thread. */
  workers?: number;
  /**
   * When the data check finds damaged blobs or lost packs: rewrite the index without them
   * (under the exclusive lock), so that the next backup stores their content again where
   * the source still has it, instead of referring to the damaged copy forever. Snapshots
   * that used them restore again once it has (blob ids depend on the content only). Needs
   * `readData`. While a backup or prune holds the lock nothing is written, and `notes` says
   * so. Default false: `check` writes nothing.
   */
  repair?: boolean;
}

/** What {@link CheckOptions.repair} did. */
export interface CheckRepair {
  /** Index entries removed: blobs that failed verification, or in lost packs. */
  blobsDropped: number;
  /** Packs, gone or unreadable as a whole, whose entries were all removed. */
  packsDropped: number;
  /** Index objects replaced by the one new index. */
  indexesReplaced: number;
}

export interface CheckProblem {
  code: 'CORRUPT' | 'MISSING_OBJECT' | 'ROLLBACK';
  /** Storage object concerned (a name, never content). */
  object: string;
  message: string;
  /**
   * For a damaged or missing pack: each snapshot whose files it costs, with the paths
   * (relative; a folder ends with `/`; at most 200 named, `count` is exact). Absent when
   * the damage costs no file (a pack header or trailer, an unused blob).
   */
  affects?: { snapshot: string; seq: number; count: number; paths: string[] }[];
}

export interface CheckResult {
  ok: boolean;
  snapshots: number;
  packs: number;
  blobs: number;
  bytesRead: number;
  problems: CheckProblem[];
  /**
   * Facts that are not problems: snapshots no longer in the repository (forgotten, or
   * deleted by the store; the others are unaffected).
   */
  notes: string[];
  /** Set when `repair` was asked for and the check found something to repair. */
  repaired?: CheckRepair;
  seconds: number;
}

export interface PruneResult {
  packsDeleted: number;
  indexesDeleted: number;
  bytesFreed: number;
  /** Packs rewritten because they held both used and unused blobs. */
  packsRepacked: number;
  /**
   * Packs (object names) that prune would have rewritten but left exactly as they were,
   * because a blob a snapshot uses fails verification there or the pack is gone: nothing
   * gets worse, and `check()` names what they cost.
   */
  damagedPacks: string[];
  /**
   * Leftovers of interrupted writes removed (temporary files, unfinished uploads older than
   * a minute).
   */
  tempRemoved: number;
  seconds: number;
}

export interface ForgetOptions extends RepoAccess {
  /** Which snapshots to keep (restic's `--keep-*` semantics; see retention.ts). */
  policy: RetentionPolicy;
  /** Decide and report, but delete nothing and take no lock. */
  dryRun?: boolean;
  /**
   * Then run prune under the same lock to free the data no remaining snapshot uses. Unlike
   * restic, also when no snapshot was deleted: the same command run again after a crash
   * finishes an interrupted prune.
   */
  prune?: boolean;
  /** IANA time zone of the hourly/daily/… buckets. Default: the process's. */
  timeZone?: string;
  /** The current time for `within` (ms since the epoch). Default: now. Tests only. */
  now?: number;
  onProgress?: (p: Progress) => void;
}

/** A snapshot in a forget plan, with why it is kept (empty when it is removed). */
export interface ForgetSnapshot extends SnapshotInfo {
  reasons: string[];
}

export interface ForgetResult {
  /** The policy applied, normalised (zero counts left out, `within` canonical). */
  policy: RetentionPolicy;
  /** Time zone of the calendar buckets. */
  timeZone: string;
  dryRun: boolean;
  /** Snapshots kept, oldest first, with their reasons. Never empty if any snapshot exists. */
  keep: ForgetSnapshot[];
  /** Snapshots removed (or, in a dry run, to remove), oldest first: the order of deletion. */
  remove: ForgetSnapshot[];
  /** Snapshot objects this call deleted (0 in a dry run). */
  removed: number;
  /** Present when `prune` was asked and this is not a dry run. */
  prune?: PruneResult;
  /** Snapshots already missing or damaged before this call (see SPEC.md §11). */
  warnings: string[];
  seconds: number;
}
