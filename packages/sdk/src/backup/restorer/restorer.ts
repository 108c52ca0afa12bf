/**
 * The restorer: verifies and writes a snapshot into a temporary directory beside the target,
 * then move it into place. The target is never half-written: it is either untouched (on
 * any failure the temporary directory is removed) or replaced as a whole by rename.
 *
 * Layout beside TARGET while a restore runs (all inside one directory, mode 0700):
 *
 *   .TARGET.backvault-restore-<12 hex>/
 *       .backvault-restore   marker, written first: "backvault-restore 1 pid=<pid> host=<host>"
 *       root/                the snapshot being written; renamed to TARGET when complete
 *       old/                 with force: the previous TARGET, moved aside for the swap
 *
 * A restore killed at any moment leaves only this directory behind, and the next restore to
 * the same TARGET recognises it by its exact name and marker (see `recoverInterrupted`):
 * the old target goes back if the kill fell between the two renames of the swap, and the
 * rest is removed, so no plaintext stays behind.
 *
 * Every blob is verified before its bytes are used: AEAD (binding kind, repo, compression
 * and id), decompressed length, and each file's chunk sizes against its recorded size. The
 * id is not recomputed from the plaintext here (the AEAD binds it; `check` recomputes it:
 * see openBlob and SPEC.md §6). Tree entry names that could escape the target
 * ("", ".", "..", "/", NUL) are rejected by the tree decoder as CORRUPT.
 */
import {
  BackvaultError,
  CorruptBackupError,
  HINTS,
  MissingObjectError,
  NotFoundError,
  throwIfAborted,
  UsageError,
} from '../../errors.js';
import {
  EntryType,
  ObjectKind,
  packName,
  toHex,
  type FileEntry,
  type TreeEntry,
  type Snapshot,
} from '../../format/index.js';
import type { RestoreOptions } from '../api.js';
import type { EngineFiles, EngineHost, TargetFile, TargetFiles } from '../platform/types.js';
import { type BlobIndex } from '../repository/indexes.js';
import { randomBytes, sha256Hex } from '../repository/keys.js';
import { readTree } from '../repository/packs.js';
import { type IndexedBlob, type Repo } from '../repository/repository.js';
import { ByteSemaphore, type EnginePool, type PackFileRange } from '../workers/pool-types.js';
import { startPool } from '../workers/start.js';
import {
  MergeConflictError,
  codeOf,
  findMergeConflicts,
  findMountPoints,
  findMountsBelow,
  findStaleCompanions,
  listExtras,
  lstatOrUndefined,
  mergeInto,
  removeStrayProbe,
} from './merge.js';

/** Sealed bytes fetched and not yet written. */
const RESTORE_IN_FLIGHT = 16 * 1024 * 1024;

/** Range reads in flight (also bounds the files open at once). */
const MAX_BATCHES = 8;

/** Largest single range read from a pack. */
const READ_BATCH = 2 * 1024 * 1024;

/**
 * With one syncfs at the end (`TargetFiles.syncFileSystem`), files of at least this size are
 * still synced as they finish: their writeback then overlaps the decoding, where the final
 * syncfs writes serially (1 GB bench chat: 0.53 s of syncfs after the restore, against
 * ~0.3 s that fsyncs of all 2,302 files add). An fsync costs ~100 µs whatever the size, the
 * writeback of 256 KiB about as much.
 */
const SYNC_ALONE = 256 * 1024;

/** Files being finished (chmod, utimes, fsync, close) concurrently. */
const FINISHING = 16;

/**
 * Most blobs in one batch: with the batches in flight and being built it bounds the files
 * open at once, (MAX_BATCHES + OPEN_BATCHES) × BATCH_BLOBS + FINISHING = 592 (small files,
 * one blob each, would otherwise put thousands in one 2 MiB read).
 */
const BATCH_BLOBS = 48;

/**
 * Batches being built at once, each for its own pack. A backup's workers each fill their own
 * pack, so files met one after the other alternate between packs: with one batch being
 * built, each alternation issued it, and 20,000 small files went out in 4,259 batches of ~5
 * blobs (one message to a worker each, the restore's main cost after the file calls).
 */
const OPEN_BATCHES = 4;

interface PlannedDir {
  path: string;
  mode: number;
  mtimeNs: bigint;
}

/** Name of the marker file inside a restore's temporary directory. */
export const RESTORE_MARKER = '.backvault-restore';

/**
 * Written (and synced) once `root/` is complete and a merge into a non-empty target begins:
 * from then on an interrupted restore is finished by the next one (roll forward), never
 * undone. Holds the snapshot root directory's mode and mtime for the target itself.
 */
export const RESTORE_COMMIT = 'commit';

const COMMIT_HEAD = 'backvault-restore-commit 2\n';

/**
 * Written (and synced) before a merge moves the stale `-wal`/`-shm`/`-journal` of the
 * databases it replaces into `old/`, ahead of its commit: one JSON path (relative to the
 * target) per line. A restore killed before the commit leaves the old databases in place,
 * and the next one puts these back beside them (each is part of its database).
 */
export const RESTORE_STALE = 'stale-companions';

const COMMIT_DIR = /^d ([0-7]{1,5}) (-?\d{1,20}) (".*")$/;

/** A directory of the snapshot, relative to the target ('' is the target itself). */
interface DirMeta {
  rel: string;
  mode: number;
  mtimeNs: bigint;
}

/**
 * The commit journal: a header line, then one line per directory of the snapshot with its
 * mode and mtime (`d <octal mode> <mtime ns> <JSON path>`), applied after the merge.
 */
function commitText(dirs: readonly DirMeta[]): string {
  return (
    COMMIT_HEAD +
    dirs.map((d) => `d ${d.mode.toString(8)} ${d.mtimeNs} ${JSON.stringify(d.rel)}\n`).join('')
  );
}

/** USAGE: disks mounted at `paths` inside the target (relative), which the restore cannot use. */
function innerMounts(paths: readonly string[], why: string): UsageError {
  const some = paths.slice(0, 5).join(', ') + (paths.length > 5 ? ', …' : '');
  const what = paths.length === 1 ? 'a mount point' : `${paths.length} mount points`;
  return new UsageError(`restore target holds ${what} ${why}: ${some}`, HINTS.targetInnerMount);
}

/**
 * `mode` with read, write and search for the owner. A directory being restored keeps them
 * until it is in place: moving a directory to another parent needs write permission on it
 * (its `..`), moving entries in or out needs it on their parent, and a merge reads the
 * tree. A snapshot's read-only directory (0555) otherwise stopped its own restore for a
 * user whom permissions bind (root is not): EACCES at the final rename, and the cleanup
 * could not empty it.
 */
export function ownerFull(mode: number): number {
  return mode | 0o700;
}

/** The directories whose exact mode {@link ownerFull} held back. */
function restricted(dirs: readonly DirMeta[]): DirMeta[] {
  return dirs.filter((d) => ownerFull(d.mode) !== d.mode);
}

/** Give every directory of the snapshot its mode and mtime, deepest first. */
async function applyDirMeta(
  fs: TargetFiles,
  target: string,
  dirs: readonly DirMeta[],
): Promise<void> {
  const order = [...dirs].sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
  for (const d of order)
    await fs.setMeta(
      d.rel === '' ? target : fs.path.join(target, ...d.rel.split('/')),
      d.mode,
      d.mtimeNs,
    );
}

const MARKER_LINE = /^backvault-restore 1 pid=(\d+) host=([^\n]*)\n$/;

/** A marker line cut short by a kill: a proper prefix of `restoreMarker`'s line. */
function isCutMarker(text: string): boolean {
  return (
    'backvault-restore 1 pid='.startsWith(text) ||
    /^backvault-restore 1 pid=\d+(?: (?:h(?:o(?:s(?:t(?:=[^\n]*)?)?)?)?)?)?$/.test(text)
  );
}

/** The marker's content for process `pid` on `host` (tests build interrupted states with it). */
export function restoreMarker(pid: number, host: string): string {
  return `backvault-restore 1 pid=${pid} host=${host}\n`;
}

/** Longest file name (bytes) on the file systems a restore writes to (NAME_MAX). */
const NAME_MAX = 255;

/**
 * The target's name as it appears in its temporary directory's name: as it is, unless the
 * 32 bytes the temporary name adds would pass NAME_MAX; then its first 200 bytes (whole
 * characters) and 8 hex digits of its SHA-256, so names that share those bytes still differ.
 * A valid target name of 224 bytes or more failed as "name too long".
 */
export function tempBase(name: string): string {
  const enc = new TextEncoder();
  const bytes = enc.encode(name);
  if (bytes.length + '..backvault-restore-'.length + 12 <= NAME_MAX) return name;
  let cut = '';
  let n = 0;
  for (const ch of name) {
    const l = enc.encode(ch).length;
    if (n + l > 200) break;
    cut += ch;
    n += l;
  }
  return `${cut}~${sha256Hex(bytes).slice(0, 8)}`;
}

/** Name of the mount probe of a restore (see findMountPoints), for its `tag`. */
export function probeName(tag: string): string {
  return `.backvault-probe-${tag}`;
}

/** Name of the temporary directory of a restore to `target`, for a 12-hex-digit `tag`. */
export function restoreTempName(target: string, tag: string, fs?: TargetFiles): string {
  const base = fs ? fs.path.basename(target) : target.slice(target.lastIndexOf('/') + 1);
  return `.${tempBase(base)}.backvault-restore-${tag}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Clean up after earlier restores to `target` that were killed: for each directory beside
 * it named exactly `.<name>.backvault-restore-<12 hex>`, owned by this user and holding our
 * marker (and not belonging to a restore still running on this host):
 * - if it holds `old/` (the previous target, moved aside by a forced restore) and the
 *   target is missing, the kill fell between the two renames of the swap: `old/` is put
 *   back as the target;
 * - if it holds `old/` and `root/` (the new tree, not moved in) and something is at the
 *   target now (put there since), nothing is touched and a warning says where the old
 *   content is;
 * - otherwise it is removed (partial or complete plaintext that never reached the target,
 *   or the old target after a completed swap).
 * An empty directory of that name without a marker (killed before writing it) is removed
 * too, and so is one holding nothing but a marker cut short (killed while writing it).
 * Also puts back a `.<name>.backvault-old-<12 hex>` directory (the layout of earlier
 * versions) when the target is missing and it is the only one.
 * @returns what was done, for the result's warnings.
 * @throws file-system errors other than ENOENT (e.g. EACCES on the target's parent).
 */
export async function recoverInterrupted(
  fs: TargetFiles,
  host: EngineHost,
  target: string,
): Promise<string[]> {
  const { join, dirname, basename } = fs.path;
  const parent = dirname(target);
  const name = basename(target);
  const warnings: string[] = [];
  let names: string[];
  try {
    names = await fs.readdir(parent);
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return warnings;
    throw e;
  }
  const pattern = new RegExp(
    `^\\.${escapeRegExp(tempBase(name))}\\.backvault-(restore|old)-([0-9a-f]{12})$`,
  );
  const uid = host.uid;
  const ours = async (path: string): Promise<boolean> => {
    const st = await lstatOrUndefined(fs, path);
    return (
      !!st && st.kind === 'dir' && (uid === undefined || st.uid === undefined || st.uid === uid)
    );
  };
  let targetExists = (await lstatOrUndefined(fs, target)) !== undefined;
  const legacy: string[] = [];
  for (const n of names.sort()) {
    const m = pattern.exec(n);
    if (!m) continue;
    const dir = join(parent, n);
    if (!(await ours(dir))) continue;
    if (m[1] === 'old') {
      legacy.push(dir);
      continue;
    }
    const markerPath = join(dir, RESTORE_MARKER);
    const markerStat = await lstatOrUndefined(fs, markerPath);
    if (!markerStat) {
      // Killed between creating the directory and writing the marker: nothing inside.
      try {
        await fs.rmdir(dir);
        warnings.push(`removed an empty temporary directory of an interrupted restore: ${dir}`);
      } catch {
        // Not empty: not ours to judge.
      }
      continue;
    }
    if (markerStat.kind !== 'file' || markerStat.size > 4096n) continue;
    const markerText = new TextDecoder().decode(await fs.readFile(markerPath));
    const mk = MARKER_LINE.exec(markerText);
    if (!mk) {
      // Killed between creating the marker and writing its line: the restore never got
      // further, so the marker is all there is (no plaintext, no old target).
      if (isCutMarker(markerText) && (await fs.readdir(dir)).length === 1) {
        await fs.rm(dir);
        warnings.push(`removed the temporary directory of an interrupted restore: ${dir}`);
      }
      continue;
    }
    const pid = Number(mk[1]);
    if (mk[2] === host.hostname() && pid !== host.pid && host.isProcessAlive(pid)) {
      warnings.push(
        `left in place: the temporary directory of a restore still running (pid ${pid}): ${dir}`,
      );
      continue;
    }
    const old = join(dir, 'old');
    const hasOld = await ours(old);
    const hasRoot = (await lstatOrUndefined(fs, join(dir, 'root'))) !== undefined;
    const commit = await readCommit(fs, join(dir, RESTORE_COMMIT));
    if (!commit && hasRoot && targetExists) {
      // Killed while probing for mounts (before its commit): its probe may be in the target.
      const stray = await removeStrayProbe(fs, join(dir, 'root'), target, probeName(m[2]!));
      if (stray) warnings.push(`removed the mount probe of an interrupted restore: ${stray}`);
    }
    if (commit && hasRoot && targetExists) {
      // Killed while merging a complete, verified snapshot into the target: finish it.
      const root = join(dir, 'root');
      if ((await findMergeConflicts(fs, root, target)).length > 0) {
        warnings.push(
          `a restore into ${target} was interrupted, and something put there since is in its way: the rest of the snapshot is kept in ${root}`,
        );
        continue;
      }
      await mergeInto(fs, root, target, old);
      await applyDirMeta(fs, target, commit);
      await removeMarked(fs, dir);
      warnings.push(`a restore into ${target} was interrupted while moving files in: finished it`);
      continue;
    }
    if (!commit && hasOld && targetExists && (await putBackStale(fs, dir, target))) {
      warnings.push(
        `a restore into ${target} was interrupted before it began moving files in: the old database files it had set aside were put back`,
      );
      await removeMarked(fs, dir);
      continue;
    }
    if (commit || (await lstatOrUndefined(fs, join(dir, RESTORE_COMMIT)))) {
      // A merge whose target is gone since (or that had finished moving): its `old/` holds
      // only replaced files, never a whole previous target to put back.
      await removeMarked(fs, dir);
      warnings.push(`removed the temporary directory of an interrupted restore: ${dir}`);
      continue;
    }
    if (hasOld && !targetExists) {
      await fs.rename(old, target);
      targetExists = true;
      warnings.push(
        `a restore was interrupted while replacing ${target}: its previous content was put back`,
      );
    } else if (hasOld && hasRoot) {
      warnings.push(
        `a restore was interrupted while replacing ${target}, and something was put there since: its previous content is kept in ${old}`,
      );
      continue;
    }
    await removeMarked(fs, dir);
    warnings.push(`removed the temporary directory of an interrupted restore: ${dir}`);
  }
  if (!targetExists && legacy.length === 1) {
    await fs.rename(legacy[0] as string, target);
    warnings.push(
      `a restore was interrupted while replacing ${target}: its previous content was put back`,
    );
  } else {
    for (const dir of legacy) {
      warnings.push(
        `the previous content of ${target} from an interrupted restore is kept in ${dir}; remove it when it is no longer needed`,
      );
    }
  }
  if (warnings.length > 0) await fs.sync(parent);
  return warnings;
}

/**
 * A merge killed before its commit, after it set aside the stale companions of the databases
 * it replaces (RESTORE_STALE lists them): put each back where the target has nothing of that
 * name. True when the journal was there and `old/` holds nothing else, so the temporary
 * directory may go; false (nothing touched) otherwise.
 */
async function putBackStale(fs: TargetFiles, dir: string, target: string): Promise<boolean> {
  const { join } = fs.path;
  const journal = join(dir, RESTORE_STALE);
  if (!(await lstatOrUndefined(fs, journal))) return false;
  const rels: string[] = [];
  for (const line of new TextDecoder().decode(await fs.readFile(journal)).split('\n')) {
    if (line === '') continue;
    try {
      const rel = JSON.parse(line) as unknown;
      if (
        typeof rel === 'string' &&
        rel !== '' &&
        !rel.split('/').some((p) => p === '..' || p === '.' || p === '')
      )
        rels.push(rel);
    } catch {
      // A line cut short by the kill: that file was not moved yet.
    }
  }
  const old = join(dir, 'old');
  // Only files set aside this way, and the folders made for them: never a whole old target.
  const allowed = new Set<string>();
  for (const rel of rels) {
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) allowed.add(parts.slice(0, i).join('/'));
  }
  const inOld: string[] = [];
  const walk = async (at: string, rel: string): Promise<boolean> => {
    for (const name of await fs.readdir(at)) {
      const r = rel ? `${rel}/${name}` : name;
      if (!allowed.has(r)) return false;
      const st = await fs.lstat(join(at, name));
      if (st.kind === 'dir') {
        if (!(await walk(join(at, name), r))) return false;
      } else inOld.push(r);
    }
    return true;
  };
  if (!(await walk(old, ''))) return false;
  for (const rel of inOld) {
    const to = join(target, ...rel.split('/'));
    if (await lstatOrUndefined(fs, to)) return false; // something took its place since
  }
  for (const rel of inOld)
    await fs.rename(join(old, ...rel.split('/')), join(target, ...rel.split('/')));
  return true;
}

/**
 * The commit journal of a merge (its directories), or undefined when absent or not whole:
 * it is synced before anything moves, so a journal cut short means nothing moved yet.
 */
async function readCommit(fs: TargetFiles, path: string): Promise<DirMeta[] | undefined> {
  let text: string;
  try {
    text = new TextDecoder().decode(await fs.readFile(path));
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return undefined;
    throw e;
  }
  if (!text.startsWith(COMMIT_HEAD) || !text.endsWith('\n')) return undefined;
  const dirs: DirMeta[] = [];
  for (const line of text.slice(COMMIT_HEAD.length, -1).split('\n')) {
    if (line === '') continue;
    const m = COMMIT_DIR.exec(line);
    if (!m) return undefined;
    const rel = JSON.parse(m[3] as string) as unknown;
    // Never outside the target: relative, no '..' segment.
    if (typeof rel !== 'string' || rel.startsWith('/') || rel.split('/').includes('..'))
      return undefined;
    dirs.push({ rel, mode: parseInt(m[1] as string, 8), mtimeNs: BigInt(m[2] as string) });
  }
  return dirs.some((d) => d.rel === '') ? dirs : undefined;
}

/**
 * Remove a restore's temporary directory, its marker last: a kill in the middle leaves a
 * directory that still says it is ours, which the next restore then finishes removing. (A
 * plain recursive rm may delete the marker first, and what it left — part of an old target —
 * would then never be recognised.)
 */
async function removeMarked(fs: TargetFiles, dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return;
    throw e;
  }
  // `root/` and `old/` before the merge journal: a merge's `old/` holds only the files it
  // replaced, and without its journal a later restore would take it for a whole previous
  // target and put it back (found by the kill -9 test).
  const order = (n: string): number =>
    n === 'root' || n === 'old' ? 0 : n === RESTORE_COMMIT ? 1 : 2;
  for (const n of [...names].sort((a, b) => order(a) - order(b))) {
    if (n !== RESTORE_MARKER) await fs.rm(fs.path.join(dir, n));
  }
  await fs.rm(dir);
}

/** A file being restored: created, written by the batches that hold its blobs, finished. */
interface LiveFile {
  path: string;
  entry: FileEntry;
  /** Created ahead of its batch (not awaited: see `addFile`). */
  fd: Promise<TargetFile>;
  /** Batches issued that hold a blob of it and have not finished. */
  pending: number;
  /** Every batch holding a blob of it has been issued. */
  issued: boolean;
  /** A damaged blob spoiled it (`partial`): removed, never moved in. */
  spoiled: boolean;
  /** Being finished or closed already. */
  done: boolean;
}

/** Blobs next to each other in one pack, read with one range read. */
interface Seg {
  file: LiveFile;
  position: number;
  at: IndexedBlob;
  /** The file's last blob (always written: see jobs.ts `write`). */
  last: boolean;
}
interface Batch {
  packId: string;
  offset: number;
  length: number;
  segs: Seg[];
  /** The files with a blob in it (each counts it once in `pending`). */
  files: Set<LiveFile>;
}

/**
 * One restore into `root`: walks the snapshot's trees and writes each file as it is met.
 * Nothing is planned ahead: the walk issues a batch as soon as it is complete and waits
 * while MAX_BATCHES are in flight, so memory is bounded by the configuration (bytes and
 * batches in flight, files being finished) and by one directory's tree, not by the number
 * of files (issue 17: 200,000 small files took 605 MiB when every file was planned first).
 */
export class RestoreRun {
  dirs: PlannedDir[] = [];
  /** Files restored (or being restored): counted as the walk meets them. */
  files = 0;
  bytes = 0;
  bytesDone = 0;
  filesDone = 0;
  private lastProgress = 0;
  /** Totals for progress: the snapshot's own when it is restored whole. */
  private readonly totals: { files: number; bytes: number } | undefined;

  /** `partial`: paths (relative to the target) that could not be restored, and why. */
  readonly damaged = new Map<string, string>();
  /** `include`, as relative path segments. */
  private readonly include: string[] | undefined;
  /** Whether `include` named something in the snapshot. */
  includeFound = false;
  /**
   * Files of at least this many bytes are synced as they are finished; 0: every file and
   * directory. Above 0, the rest is made durable at once before the tree moves into place
   * (`TargetFiles.syncFileSystem`), unless it is Infinity (`durable: false`: nothing is).
   */
  syncFrom = 0;

  // Writing state.
  /** Batches being built, oldest first (at most OPEN_BATCHES, one per pack). */
  private readonly open: Batch[] = [];
  private readonly sem = new ByteSemaphore(RESTORE_IN_FLIGHT);
  private readonly running = new Set<Promise<void>>();
  private readonly finishing = new Set<Promise<void>>();
  /** Created and not yet finished or closed (closed on failure). */
  private readonly live = new Set<LiveFile>();
  private failure: unknown;
  private failed = false;
  /** Failing: files whose batches end are left to `restore`'s cleanup, not finished. */
  private stopping = false;
  /** Woken whenever a job of `running` or `finishing` ends. */
  private waiters: (() => void)[] = [];

  constructor(
    readonly repo: Repo,
    readonly index: BlobIndex,
    readonly pool: EnginePool,
    readonly opts: RestoreOptions,
    readonly root: string,
    readonly fsys: EngineFiles,
    readonly host: EngineHost,
    snap?: Pick<Snapshot, 'files' | 'bytes'>,
  ) {
    const inc = opts.include?.split('/').filter((s) => s !== '' && s !== '.');
    this.include = inc && inc.length > 0 ? inc : undefined;
    this.totals =
      snap && this.include === undefined ? { files: snap.files, bytes: snap.bytes } : undefined;
  }

  /** A damage error (CORRUPT, MISSING_OBJECT) that `partial` turns into a damaged path. */
  private salvageable(e: unknown): e is BackvaultError {
    return (
      this.opts.partial === true &&
      e instanceof BackvaultError &&
      (e.code === 'CORRUPT' || e.code === 'MISSING_OBJECT')
    );
  }

  private rel(p: string): string {
    const { relative, sep } = this.fsys.out.path;
    return relative(this.root, p).split(sep).join('/');
  }

  /**
   * With `include`: whether the entry at relative segments `segs` is restored (`all`), only
   * walked toward the included path (`walk`, a directory above it), or left out.
   */
  private wanted(segs: string[]): 'all' | 'walk' | 'skip' {
    const inc = this.include;
    if (!inc) return 'all';
    const n = Math.min(segs.length, inc.length);
    for (let i = 0; i < n; i++) if (segs[i] !== inc[i]) return 'skip';
    return segs.length >= inc.length ? 'all' : 'walk';
  }

  progress(force = false): void {
    const cb = this.opts.onProgress;
    if (!cb) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < 100) return;
    this.lastProgress = now;
    cb({
      phase: 'restore',
      bytesDone: this.bytesDone,
      bytesTotal: force ? this.bytes : Math.max(this.totals?.bytes ?? 0, this.bytes),
      filesDone: this.filesDone,
      filesTotal: force ? this.files : Math.max(this.totals?.files ?? 0, this.files),
    });
  }

  private fail(e: unknown): void {
    if (!this.failed) {
      this.failed = true;
      this.failure = e;
    }
  }

  private track(set: Set<Promise<void>>, p: Promise<void>): void {
    const t = p.catch((e: unknown) => this.fail(e));
    const tt = t.finally(() => {
      set.delete(tt);
      const w = this.waiters;
      this.waiters = [];
      for (const wake of w) wake();
    });
    set.add(tt);
  }

  /**
   * Wait until `set` holds fewer than `n` jobs. (Not `Promise.race(set)`: each race adds a
   * reaction to every job still running, so a job outliving many races collects thousands;
   * measured on 50,000 small files: 12.8 s of the main thread's garbage collection.)
   */
  private async below(set: Set<Promise<void>>, n: number): Promise<void> {
    while (set.size >= n) await new Promise<void>((wake) => this.waiters.push(wake));
  }

  /** Throw the first failure of a job (or the abort). */
  private check(): void {
    // A local pack is read by the workers, not through the store: check the abort here.
    if (this.opts.signal?.aborted) this.fail(this.opts.signal.reason);
    if (this.failed) throw this.failure;
  }

  /**
   * Walk the snapshot from `treeId` into `path` and write every file, verified blob by blob;
   * returns when every file is written and finished (mode, times, sync, close). On failure
   * the files still open are closed and the first error is thrown (the caller removes the
   * temporary directory).
   */
  async restore(treeId: Uint8Array, path: string): Promise<void> {
    try {
      await this.walk(treeId, path, 0);
      while (this.open.length > 0) await this.issue(this.open[0] as Batch);
      await this.below(this.running, 1);
      await this.below(this.finishing, 1);
      this.check();
    } finally {
      this.stopping = true;
      while (this.running.size > 0 || this.finishing.size > 0)
        await Promise.allSettled([...this.running, ...this.finishing]);
      // Each file is closed once: those being finished were awaited above (and left `live`).
      for (const f of this.live) {
        const r = await Promise.allSettled([f.fd]);
        if (r[0]?.status === 'fulfilled') await r[0].value.close().catch(() => {});
      }
      this.live.clear();
    }
  }

  /**
   * Walk the trees: create directories and symlinks, write files. With `partial`, a tree or
   * file that cannot be read is recorded in `damaged` (a directory once, for all below it)
   * and left out; the snapshot's root tree must still be readable.
   */
  private async walk(
    treeId: Uint8Array,
    path: string,
    depth: number,
    segs: string[] = [],
  ): Promise<void> {
    if (depth > 4096) throw new CorruptBackupError('tree nesting too deep');
    let entries: TreeEntry[];
    try {
      entries = await readTree(this.repo, this.index, treeId);
    } catch (e) {
      if (depth === 0 || !this.salvageable(e)) throw e;
      // Nothing was written into it yet: the directory is still empty.
      this.damaged.set(this.rel(path) + '/', e.message);
      await this.fsys.out.rmdir(path);
      this.dirs = this.dirs.filter((d) => d.path !== path);
      return;
    }
    const treeObject = packName(
      (this.index.blobs.get(toHex(treeId), ObjectKind.TREE_BLOB) as { packId: string }).packId,
    );
    const out = this.fsys.out;
    for (const e of entries) {
      this.check();
      throwIfAborted(this.opts.signal);
      const p = out.path.join(path, e.name);
      const want = this.wanted([...segs, e.name]);
      if (want === 'skip' || (want === 'walk' && e.type !== EntryType.DIR)) continue;
      if (want === 'all') this.includeFound = true;
      if (e.type === EntryType.DIR) {
        await out.mkdir(p, { mode: 0o700 });
        this.dirs.push({ path: p, mode: e.mode, mtimeNs: e.mtimeNs });
        await this.walk(e.subtree, p, depth + 1, [...segs, e.name]);
      } else if (e.type === EntryType.SYMLINK) {
        await out.symlink(e.target, p, e.mtimeNs);
      } else {
        await this.addFile(p, e, treeObject);
      }
    }
  }

  /**
   * Check a file's chunks against the index and its size, create it and add its blobs to
   * the batch being built (issuing each batch as it is complete).
   */
  private async addFile(p: string, e: FileEntry, treeObject: string): Promise<void> {
    const ats: IndexedBlob[] = [];
    let sum = 0;
    try {
      for (const c of e.chunks) {
        const at = this.index.blobs.get(toHex(c), ObjectKind.DATA_BLOB);
        if (!at) throw new MissingObjectError(`blob/${toHex(c)}`);
        sum += at.entry.rawLength;
        ats.push(at);
      }
      if (sum !== e.size)
        throw new CorruptBackupError('file size does not match its chunks', treeObject);
    } catch (err) {
      if (!this.salvageable(err)) throw err;
      this.damaged.set(this.rel(p), err.message);
      return;
    }
    this.files += 1;
    this.bytes += e.size;
    // Created without waiting: awaiting each create in turn here (slow on ext4, and queued
    // behind range reads and fsyncs on the thread pool) held back the batches. Measured: the
    // loop spent 2.8 s of 3.5 s there on the 1 GB bench chat. The batch's job awaits it.
    const fd = this.fsys.out.create(p);
    fd.catch((err: unknown) => this.fail(err));
    const file: LiveFile = {
      path: p,
      entry: e,
      fd,
      pending: 0,
      issued: false,
      spoiled: false,
      done: false,
    };
    this.live.add(file);
    let position = 0;
    for (const [i, at] of ats.entries()) {
      const last = i === ats.length - 1;
      const en = at.entry;
      let b = this.open.find((x) => x.packId === at.packId);
      if (
        b &&
        !(
          b.offset + b.length === en.offset &&
          b.length + en.length <= READ_BATCH &&
          b.segs.length < BATCH_BLOBS
        )
      ) {
        await this.issue(b);
        b = undefined;
      }
      if (!b) {
        const oldest = this.open.length >= OPEN_BATCHES ? this.open[0] : undefined;
        if (oldest) await this.issue(oldest);
        b = { packId: at.packId, offset: en.offset, length: 0, segs: [], files: new Set() };
        this.open.push(b);
      }
      b.length += en.length;
      if (!b.files.has(file)) {
        b.files.add(file);
        file.pending += 1;
      }
      b.segs.push({ file, position, at, last });
      position += en.rawLength;
    }
    file.issued = true;
    this.settle(file);
    await this.below(this.finishing, FINISHING);
  }

  /** Finish `file` once every batch holding a blob of it is done. */
  private settle(file: LiveFile): void {
    if (!file.issued || file.pending > 0 || file.done || this.stopping) return;
    file.done = true;
    this.track(
      this.finishing,
      (async () => {
        const fd = await file.fd;
        this.live.delete(file);
        if (file.spoiled) {
          // Partly written from blobs that verified, but incomplete: never moved in.
          await fd.close();
          await this.fsys.out.rm(file.path);
          return;
        }
        await fd.finish(file.entry.mode, file.entry.mtimeNs, file.entry.size >= this.syncFrom);
        this.filesDone += 1;
      })(),
    );
  }

  private spoil(file: LiveFile, why: string): void {
    if (file.spoiled) return;
    file.spoiled = true;
    this.damaged.set(this.rel(file.path), why);
    // Counted when it was started: the result counts what is restored (the CLI says "N
    // files, all verified").
    this.files -= 1;
    this.bytes -= file.entry.size;
  }

  /**
   * Issue batch `b` (no longer being built): wait for room (MAX_BATCHES jobs,
   * RESTORE_IN_FLIGHT bytes), then have a worker verify its blobs and write each straight
   * into its file at its position, so plaintext never crosses threads.
   */
  private async issue(b: Batch): Promise<void> {
    const at = this.open.indexOf(b);
    if (at >= 0) this.open.splice(at, 1);
    const files = [...b.files];
    const release = (): void => {
      for (const f of files) {
        f.pending -= 1;
        this.settle(f);
      }
    };
    try {
      this.check();
      await this.below(this.running, MAX_BATCHES);
      await this.sem.acquire(b.length);
    } catch (e) {
      release();
      throw e;
    }
    if (this.failed) {
      this.sem.release(b.length);
      release();
      this.check();
    }
    this.track(this.running, this.runBatch(b, files).finally(release));
  }

  private async runBatch(b: Batch, files: LiveFile[]): Promise<void> {
    try {
      const name = packName(b.packId);
      // A local pack file is read by the worker thread itself: no copy through this thread.
      const path = this.pool.size > 0 ? this.repo.storage.localPath?.(name) : undefined;
      const fds = await Promise.all(files.map((f) => f.fd));
      let sealed: Uint8Array | PackFileRange;
      try {
        sealed =
          path === undefined
            ? await this.repo.storage.getRange(name, b.offset, b.length)
            : { path, offset: b.offset, length: b.length };
        if (sealed instanceof Uint8Array && sealed.length !== b.length)
          throw new CorruptBackupError('pack is truncated', name);
      } catch (e) {
        if (!this.salvageable(e)) throw e;
        // The whole range is gone or cut: every file with a blob in it is damaged.
        for (const seg of b.segs) this.spoil(seg.file, e.message);
        sealed = new Uint8Array(0);
      }
      const fdOf = new Map(files.map((f, i) => [f, (fds[i] as TargetFile).handle]));
      const items = b.segs.map((s) => ({
        ref: s.at.entry,
        offset: s.at.entry.offset - b.offset,
        length: s.at.entry.length,
        handle: fdOf.get(s.file) as number,
        position: s.position,
        last: s.last,
      }));
      let bytes = 0;
      try {
        if (!b.segs.every((sg) => sg.file.spoiled))
          bytes = await this.pool.write(sealed, name, items);
      } catch (e) {
        if (!this.salvageable(e)) throw e;
        // One blob of the batch is bad: write the others one by one, so only the files that
        // hold a bad blob are lost.
        bytes = 0;
        for (let i = 0; i < b.segs.length; i++) {
          const seg = b.segs[i] as Seg;
          const item = items[i] as (typeof items)[number];
          if (seg.file.spoiled) continue;
          try {
            const one =
              path === undefined
                ? await this.repo.storage.getRange(name, seg.at.entry.offset, seg.at.entry.length)
                : { path, offset: seg.at.entry.offset, length: seg.at.entry.length };
            bytes += await this.pool.write(one, name, [{ ...item, offset: 0 }]);
          } catch (e2) {
            if (!this.salvageable(e2)) throw e2;
            this.spoil(seg.file, e2.message);
          }
        }
      }
      this.bytesDone += bytes;
      if (sealed instanceof Uint8Array) this.host.accountGarbage?.(b.length);
      this.progress();
    } finally {
      this.sem.release(b.length);
    }
  }
  /**
   * Directory modes and times, deepest first (writing inside a dir changes its mtime). Each
   * keeps read, write and search for its owner until it is in place (see {@link ownerFull}):
   * the caller gives the few that deny them their exact mode afterwards.
   */
  async finishDirs(root: string, rootMode: number, rootMtimeNs: bigint): Promise<void> {
    const out = this.fsys.out;
    const all = [...this.dirs].sort((a, b) => b.path.length - a.path.length);
    for (const d of all) {
      if (this.syncFrom === 0) await out.sync(d.path);
      await out.setMeta(d.path, ownerFull(d.mode), d.mtimeNs);
    }
    if (this.syncFrom === 0) await out.sync(root);
    await out.setMeta(root, ownerFull(rootMode), rootMtimeNs);
  }
}

/**
 * Thrown by {@link restoreSnapshot} before its commit point when the blobs it could not
 * read went missing because the repository changed under it (`changed`): the restore
 * command starts again on the new index.
 */
export class RepositoryChangedError extends Error {
  constructor() {
    super('the repository changed during the restore');
    Object.setPrototypeOf(this, new.target.prototype); // see BackvaultError (src/errors.ts)
  }
}

/**
 * Write `snap` beside `target` (a marked temporary directory), verify every blob on the
 * way, and move the result into place: one rename into an absent or empty target; with
 * `force`, a journalled merge that keeps what the snapshot does not hold; with `delete` as
 * well, a swap that moves the old target aside first. On failure the target is untouched
 * (or, for a merge past its commit point, rolled forward by the next restore).
 * @param state what the target held when the command checked it.
 * @param changed whether the repository changed since `index` was loaded; asked when a
 *   `partial` restore met blobs it could not read ({@link RepositoryChangedError}).
 */
export async function restoreSnapshot(
  repo: Repo,
  index: BlobIndex,
  snap: Snapshot,
  opts: RestoreOptions,
  target: string,
  state: 'absent' | 'empty' | 'full',
  files: EngineFiles,
  host: EngineHost,
  starting?: Promise<EnginePool>,
  changed?: () => Promise<boolean>,
): Promise<{
  run: RestoreRun;
  kept: string[];
  deleted: string[];
  replaced: number;
  /** Stale `-wal`/`-shm`/`-journal` of replaced databases, removed from the target. */
  staleCompanions: string[];
  workers: number;
}> {
  const fs = files.out;
  const { join, dirname, relative, sep } = fs.path;
  const parent = dirname(target);
  const tag = toHex(randomBytes(6));
  const tmp = join(parent, restoreTempName(target, tag, fs));
  const root = join(tmp, 'root');
  const aside = join(tmp, 'old');
  // The pool first (`starting`: the caller started it already): threads that cannot start
  // fall back before anything is written.
  const pool = await (starting ?? startPool(opts.workers, repo.keys, {}, files));
  try {
    await fs.mkdir(parent, { recursive: true, mode: 0o777 });
    await fs.mkdir(tmp, { mode: 0o700 });
  } catch (e) {
    await pool.close();
    throw e;
  }
  try {
    // Written first: only a directory holding it is ever removed by a later restore.
    await fs.writeNewFile(
      join(tmp, RESTORE_MARKER),
      new TextEncoder().encode(restoreMarker(host.pid, host.hostname())),
    );
  } catch (e) {
    await pool.close();
    await fs.rmdir(tmp).catch(() => {});
    throw e;
  }
  // Abort: the workers stop now (their files are incomplete, in the temporary directory,
  // which is removed below); nothing reaches the target before the commit point.
  const stopOnAbort = (): void => void pool.close();
  opts.signal?.addEventListener('abort', stopOnAbort, { once: true });
  let run: RestoreRun;
  let oldAside = false;
  let swapped = false;
  let committed = false;
  let kept: string[] = [];
  let deleted: string[] = [];
  /** Stale `-wal`/`-shm`/`-journal` moved aside (see findStaleCompanions). */
  const staleAside: { from: string; to: string }[] = [];
  const staleMoved: string[] = [];
  let replaced = 0;
  try {
    await fs.mkdir(root, { mode: 0o700 });
    run = new RestoreRun(repo, index, pool, opts, root, files, host, snap);
    // One syncfs for the tree's small files and folders where the platform can (Linux, a
    // local disk): an fsync per file cost a restore of 20,000 small files 1.8 s of its
    // 3.1 s. This first call also finds out whether it can.
    // A scratch restore (`durable: false`, the restore drill) syncs nothing.
    const durable = opts.durable !== false;
    if (!durable) run.syncFrom = Infinity;
    else if (fs.syncFileSystem && (await fs.syncFileSystem(tmp))) run.syncFrom = SYNC_ALONE;
    try {
      await run.restore(snap.rootTree, root);
      // `partial` met missing or damaged blobs. If a prune replaced packs meanwhile, that is
      // its doing, not damage: nothing is committed, and the caller starts again.
      if (run.damaged.size > 0 && (await changed?.())) throw new RepositoryChangedError();
      if (opts.include !== undefined && !run.includeFound)
        throw new NotFoundError(`the snapshot holds no ${opts.include}`, HINTS.includeMissing);
    } catch (e) {
      if (
        !opts.partial &&
        e instanceof BackvaultError &&
        (e.code === 'CORRUPT' || e.code === 'MISSING_OBJECT')
      )
        (e as { hint: string }).hint = `${e.hint} ${HINTS.partial}`;
      throw e;
    }
    throwIfAborted(opts.signal);
    await run.finishDirs(root, snap.rootMode, snap.rootMtimeNs);
    // Every file's bytes, mode and time and every directory durable before anything moves.
    if (durable && run.syncFrom > 0 && !(await fs.syncFileSystem?.(tmp)))
      throw new Error('the restored files could not be made durable');
    run.progress(true);
    // The last moment an abort is honoured: from here the snapshot moves into place (one
    // rename, or a journalled merge that the next restore rolls forward if stopped).
    throwIfAborted(opts.signal);

    // Move into place. An empty directory or no directory: one rename (rename over an
    // empty directory is atomic on POSIX). A full one with --force: merged file by file,
    // keeping what the snapshot does not hold (restore-merge.ts); with --delete as well:
    // moved aside as a whole first, into the marked temporary directory, so a kill between
    // the two renames is recoverable.
    const dirMeta: DirMeta[] = [
      { rel: '', mode: snap.rootMode, mtimeNs: snap.rootMtimeNs },
      ...run.dirs.map((d) => ({
        rel: relative(root, d.path).split(sep).join('/'),
        mode: d.mode,
        mtimeNs: d.mtimeNs,
      })),
    ];
    if (state === 'full' && !opts.delete) {
      const conflicts = await findMergeConflicts(fs, root, target);
      if (conflicts.length > 0) throw new MergeConflictError(target, conflicts);
      // A disk or a bind mount inside the target (or the target one): one probe file moved
      // in and out of each directory the merge will move entries into, before the commit.
      const probe = join(tmp, probeName(tag));
      await fs.writeNewFile(probe, new Uint8Array(0));
      let mounts: string[];
      try {
        mounts = await findMountPoints(fs, root, target, probe);
      } finally {
        await fs.rm(probe);
      }
      if (mounts.includes(''))
        throw new UsageError(`restore target is a mount point: ${target}`, HINTS.targetMountPoint);
      if (mounts.length > 0) throw innerMounts(mounts, 'the snapshot would be moved into');
      // Moved into `old/` before the commit (put back if the restore fails before it, or by
      // the next restore if this one is killed before it: RESTORE_STALE), so that neither
      // `kept` nor a rolled-forward merge ever leaves them by the new database.
      const stale = await findStaleCompanions(files, root, target);
      if (stale.length > 0) {
        await fs.writeNewFile(
          join(tmp, RESTORE_STALE),
          new TextEncoder().encode(stale.map((rel) => JSON.stringify(rel) + '\n').join('')),
        );
        await fs.sync(tmp);
      }
      for (const rel of stale) {
        const from = join(target, ...rel.split('/'));
        const to = join(aside, ...rel.split('/'));
        await fs.mkdir(dirname(to), { recursive: true, mode: 0o700 });
        await fs.rename(from, to);
        staleAside.push({ from, to });
        staleMoved.push(rel);
      }
      kept = await listExtras(fs, root, target);
      const commit = join(tmp, RESTORE_COMMIT);
      await fs.writeNewFile(commit, new TextEncoder().encode(commitText(dirMeta)));
      await fs.sync(tmp);
      // From here on the restore is rolled forward by the next one if killed.
      committed = true;
      replaced = (await mergeInto(fs, root, target, aside)).replaced;
      await applyDirMeta(fs, target, dirMeta);
    } else if (state === 'full') {
      const mounts = await findMountsBelow(fs, target, (await fs.lstat(root)).dev);
      if (mounts.length > 0)
        throw innerMounts(mounts, 'that replacing the whole target would empty');
      deleted = await listExtras(fs, root, target);
      // Moving the old target to another parent needs write permission on it (its `..`).
      const was = await fs.lstat(target);
      if (ownerFull(was.mode) !== was.mode)
        await fs.setMeta(target, ownerFull(was.mode), was.mtimeNs);
      await fs.rename(target, aside);
      oldAside = true;
      try {
        await fs.rename(root, target);
      } catch (e) {
        await fs.rename(aside, target);
        oldAside = false;
        await fs.setMeta(target, was.mode, was.mtimeNs);
        throw e;
      }
      await applyDirMeta(fs, target, restricted(dirMeta));
    } else {
      try {
        await fs.rename(root, target);
      } catch (e) {
        // A mount point the device check missed (a bind mount of the same file system):
        // EBUSY over it, EXDEV into it. Nothing moved; the temporary directory goes below.
        const c = codeOf(e);
        if (state === 'empty' && (c === 'EBUSY' || c === 'EXDEV'))
          throw new UsageError(
            `restore target is a mount point: ${target}`,
            HINTS.targetMountPoint,
          );
        throw e;
      }
      await applyDirMeta(fs, target, restricted(dirMeta));
    }
    swapped = true;
    await fs.sync(parent);
  } catch (e) {
    // Never delete the old target unless the new one is in place: if putting it back
    // failed, it stays in `old/` and the next restore puts it back. A merge that started
    // stays too: the next restore finishes it.
    if (!committed) {
      try {
        for (const m of staleAside.reverse()) await fs.rename(m.to, m.from);
      } catch {
        oldAside = true; // what could not be put back stays in `old/`, named by the next restore
      }
    }
    if ((!oldAside || swapped) && !committed) await removeMarked(fs, tmp);
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', stopOnAbort);
    await pool.close();
  }
  await removeMarked(fs, tmp);
  return { run, kept, deleted, replaced, staleCompanions: staleMoved, workers: pool.size };
}
