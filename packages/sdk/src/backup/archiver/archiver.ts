/**
 * The archiver: walks a directory, cuts files into chunks (content-defined; SQLite
 * databases captured consistently and cut at page boundaries), and hands them to the
 * worker pool, which hashes, compresses, seals and packs them; builds the tree blobs bottom
 * up. What it produces (packs, trees, counts) is committed by commands/backup.ts.
 *
 * Work split: this thread walks the tree and hands files (or, for large SQLite databases,
 * 8 MiB ranges) to the worker pool; workers read the data themselves, so file bytes never
 * cross threads, and build packs that the command stores. Memory is bounded independently
 * of input size: up to 8 queued file jobs per worker (a path and a range each), one read
 * buffer and two pack buffers per worker (one filling, one being stored).
 *
 * The source may change under a backup: files that vanish or change while being read are
 * skipped or read again (SPEC.md section 14).
 */

import { BackvaultError, MissingObjectError, UsageError } from '../../errors.js';
import {
  EntryType,
  ObjectKind,
  encodeTree,
  sortTreeEntries,
  type FileEntry,
  type TreeEntry,
} from '../../format/index.js';
import type { Progress } from '../api.js';
import { type BlobIndex } from '../repository/indexes.js';
import { readTree } from '../repository/packs.js';
import { type Repo } from '../repository/repository.js';
import { type LoadedSnapshot } from '../repository/snapshots.js';
import type { EntryInfo, SourceFiles } from '../platform/types.js';
import { SourceReadError, type EnginePool, type FileResult } from '../workers/pool-types.js';
import { sqliteChunkSize } from './chunker.js';
import { isDatabaseCompanion, type CapturedDatabase, type DatabaseCapture } from './databases.js';
import { ExcludeSet } from './exclude.js';

/**
 * Files at least this large are read by several workers at once when they are SQLite
 * databases (fixed chunks split cleanly); smaller files are one job each.
 */
const SPLIT_MIN = 16 * 1024 * 1024;

/** Range of a split SQLite file per job (a multiple of every possible chunk size). */
const SPLIT_RANGE = 8 * 1024 * 1024;

/**
 * A file is taken over from the parent snapshot unread only if its status changed (ctime)
 * this long before the parent snapshot started: file systems stamp times with a coarse
 * clock, and the margin also absorbs small clock steps.
 */
const CTIME_MARGIN_NS = 2_000_000_000n;

/** The earliest and latest mtimes a snapshot holds: i64 nanoseconds (SPEC.md §10). */
// Literals: `2n ** 63n` is lowered to Math.pow for older engines (Hermes), which throws.
const MTIME_MIN_NS = -9223372036854775808n;
const MTIME_MAX_NS = 9223372036854775807n;

/**
 * `ns` within what a snapshot holds (1677-09-21 to 2262-04-11): ext4, XFS and Btrfs keep
 * times beyond, which the tree's i64 would otherwise wrap around (2300 restored as 1716).
 */
export function storableMtime(ns: bigint): bigint {
  return ns < MTIME_MIN_NS ? MTIME_MIN_NS : ns > MTIME_MAX_NS ? MTIME_MAX_NS : ns;
}

function guard<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** Warnings kept in a result; more are counted in one last line. */
const MAX_WARNINGS = 1000;

/** Reads of a file that keeps changing while it is read, before taking what was read. */
const READ_ATTEMPTS = 3;

/**
 * The walk gives the event loop a turn at least this often (ms). Its awaits may all be of
 * promises that are already settled (Node's lstat is synchronous, node/files.ts; a reused
 * file reads nothing), and microtasks alone would starve timers, worker replies, progress
 * and an abort for as long as the walk runs (~1 s per 200,000 unchanged files).
 */
const WALK_TURN_MS = 20;

const nextTurn: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((r) => setImmediate(r))
    : () => new Promise((r) => setTimeout(r, 0));

/** The errno code of a file-system error (never of a backvault error, whose codes differ). */
function errnoOf(e: unknown): string | undefined {
  if (e instanceof SourceReadError) return e.code;
  if (e instanceof BackvaultError || !(e instanceof Error)) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Words for an mtime outside what a snapshot holds: its year, when a Date can show it. */
function outOfRangeYear(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const year =
    ms > -8_000_000_000_000_000n && ms < 8_000_000_000_000_000n
      ? new Date(Number(ms)).getUTCFullYear()
      : undefined;
  return year === undefined ? `${ns} ns from 1970` : `in the year ${year}`;
}

/** A file name for messages: printable ASCII as is, every other byte (and `\`) as \xNN. */
function escapeName(b: Uint8Array): string {
  let out = '';
  for (const c of b) {
    const printable = c >= 0x20 && c < 0x7f && c !== 0x5c;
    out += printable ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The path (or a part of it) no longer exists: the file vanished while we looked. */
function vanished(e: unknown): boolean {
  const c = errnoOf(e);
  return c === 'ENOENT' || c === 'ENOTDIR';
}

/**
 * Why a source entry cannot be read, when that should skip it (the snapshot is then saved,
 * marked partial) rather than stop the backup: permission denied, an I/O error of that one
 * file, a file that cannot be opened for reading (a socket). Anything else (the store, a
 * full memory, a bug) still fails the backup.
 */
function unreadableReason(e: unknown): string | undefined {
  const c = errnoOf(e);
  if (c === 'EACCES' || c === 'EPERM') return 'permission denied';
  if (c === 'EIO') return 'input/output error';
  if (c === 'ENXIO' || c === 'EOPNOTSUPP' || c === 'ENODEV') return 'cannot be opened for reading';
  if (c === 'ELOOP' || c === 'ENAMETOOLONG') return 'cannot be opened';
  return undefined;
}

/** Stat fields that change whenever a file's content may have changed. */
function sameFile(a: EntryInfo, b: EntryInfo): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

/** What one read of a file gave. */
interface FileRead {
  ids: Uint8Array[];
  lengths: number[];
  total: number;
  /** A range ended early: the file shrank while being read (split reads only). */
  short: boolean;
}

export class BackupRun {
  failure: unknown;
  files = 0;
  dirs = 0;
  bytesRead = 0;
  bytesNew = 0;
  chunksTotal = 0;
  chunksNew = 0;
  bytesDone = 0;
  /** Plaintext bytes of the files in the snapshot (re-reads not counted twice). */
  bytesInSnapshot = 0;
  filesSkipped = 0;
  /** Entries left out by --exclude (deliberately: they do not make the snapshot partial). */
  excluded = 0;
  /** Some source entry could not be backed up (unreadable, a special file, a bad name). */
  partial = false;
  /** SQLite databases captured as one committed state. */
  databasesCaptured = 0;
  readonly warnings: string[] = [];
  private warningsDropped = 0;
  /**
   * For each database read in this backup (by path): whether its `-wal` and `-journal` must
   * be backed up beside it, because it was read as a plain file (no capture, or the capture
   * failed) and its committed content may be in them.
   */
  private readonly companionsNeeded = new Map<string, Promise<boolean>>();
  /** A directory never backed up: the repository itself, when it lies inside the source. */
  omitDir: string | undefined;
  private parentLost = false;
  private lastProgress = 0;
  private lastTurn = Date.now();

  constructor(
    readonly repo: Repo,
    readonly index: BlobIndex,
    readonly pool: EnginePool,
    readonly parent: LoadedSnapshot | undefined,
    readonly onProgress: ((p: Progress) => void) | undefined,
    readonly source: string = '',
    readonly exclude: ExcludeSet = new ExcludeSet([]),
    readonly databases: DatabaseCapture | undefined = undefined,
    readonly fs: SourceFiles | undefined = undefined,
  ) {}

  private get src(): SourceFiles {
    if (!this.fs) throw new Error('the archiver was given no files');
    return this.fs;
  }

  /**
   * `st` with an mtime a snapshot can hold; one outside it (see {@link storableMtime}) is
   * recorded as the nearest it can, with a warning naming `path`.
   */
  storable(path: string, st: EntryInfo): EntryInfo {
    const mtimeNs = storableMtime(st.mtimeNs);
    if (mtimeNs === st.mtimeNs) return st;
    this.warn(
      `modification time ${outOfRangeYear(st.mtimeNs)} is outside what a snapshot holds, recorded as ${mtimeNs < 0n ? '1677-09-21' : '2262-04-11'}: ${path}`,
    );
    return { ...st, mtimeNs };
  }

  /** The source's lstat, with the mtime a snapshot can hold (see {@link storableMtime}). */
  private async lstat(path: string): Promise<EntryInfo> {
    const st = await this.src.lstat(path);
    const mtimeNs = storableMtime(st.mtimeNs);
    return mtimeNs === st.mtimeNs ? st : { ...st, mtimeNs };
  }

  private async readHead(path: string): Promise<Uint8Array> {
    return this.src.read(path, 0, 100);
  }

  progress(force = false): void {
    if (!this.onProgress) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < 100) return;
    this.lastProgress = now;
    this.onProgress({ phase: 'backup', bytesDone: this.bytesDone, filesDone: this.files });
  }

  warn(message: string): void {
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(message);
    else this.warningsDropped += 1;
  }

  /** The warnings, with a count of those left out. */
  allWarnings(): string[] {
    return this.warningsDropped > 0
      ? [...this.warnings, `... and ${this.warningsDropped} more warnings`]
      : [...this.warnings];
  }

  private skip(path: string, why: string): undefined {
    this.filesSkipped += 1;
    this.warn(`${why}, skipped: ${path}`);
    return undefined;
  }

  /** Skip an entry that exists but cannot be backed up: the snapshot becomes partial. */
  private skipPartial(path: string, why: string): undefined {
    this.partial = true;
    return this.skip(path, why);
  }

  /**
   * Skip an entry that could not be read when the error says it is unreadable (partial);
   * otherwise rethrow. Vanished entries are skipped without making the snapshot partial.
   */
  private unreadable(e: unknown, path: string): undefined {
    if (vanished(e)) return this.skip(path, 'vanished during backup');
    const why = unreadableReason(e);
    if (why === undefined) throw e;
    return this.skipPartial(path, why);
  }

  /**
   * A tree of the parent snapshot, or undefined when its pack is lost (then the directory
   * is read from the source like a new one). Corruption still fails the backup.
   */
  async parentTree(id: Uint8Array): Promise<TreeEntry[] | undefined> {
    try {
      return await readTree(this.repo, this.index, id);
    } catch (e) {
      if (!(e instanceof MissingObjectError)) throw e;
      if (!this.parentLost) {
        this.parentLost = true;
        this.warn(
          'parts of the previous snapshot are missing from the store: the files below them were read again',
        );
      }
      return undefined;
    }
  }

  /**
   * Read a file once: queue its jobs (resolves once queued); `done` gives the chunks, or
   * rejects with the worker's error.
   */
  private async readOnce(
    path: string,
    size: number,
    split: boolean,
  ): Promise<{ done: Promise<FileRead> }> {
    const jobs: { offset: number; length: number; fixed: number }[] = [];
    const fixed = size >= SPLIT_MIN ? sqliteChunkSize(await this.readHead(path)) : undefined;
    if (fixed && split) {
      for (let off = 0; off < size; off += SPLIT_RANGE) {
        // The last range reads to the end, wherever the end is by then.
        jobs.push({ offset: off, length: off + SPLIT_RANGE >= size ? -1 : SPLIT_RANGE, fixed });
      }
    } else {
      jobs.push({ offset: 0, length: -1, fixed: fixed ?? 0 });
    }
    const parts: Promise<FileResult>[] = [];
    for (const j of jobs) {
      if (this.failure) throw this.failure;
      const { done } = await this.pool.submitFile({ path, ...j });
      parts.push(
        guard(
          done.then((r) => {
            this.bytesRead += r.bytesRead;
            this.bytesDone += r.bytesRead;
            this.chunksNew += r.newChunks;
            this.bytesNew += r.newBytes;
            this.progress();
            return r;
          }),
        ),
      );
    }
    const done = Promise.all(parts).then((rs): FileRead => {
      const ids: Uint8Array[] = [];
      const lengths: number[] = [];
      let total = 0;
      let short = false;
      rs.forEach((r, k) => {
        for (let i = 0; i < r.lengths.length; i++) ids.push(r.ids.slice(i * 32, i * 32 + 32));
        for (const l of r.lengths) total += l;
        lengths.push(...r.lengths);
        if (k < rs.length - 1 && r.bytesRead !== SPLIT_RANGE) short = true;
      });
      return { ids, lengths, total, short };
    });
    return { done: guard(done) };
  }

  /**
   * Hand one file to the workers; resolves once queued, `done` when its chunks are stored:
   * its entry, or undefined when it vanished. A file that changed while being read (its
   * size, times or inode differ afterwards) is read again, up to READ_ATTEMPTS times; then
   * what was read is recorded, with a warning. The recorded size is always the sum of the
   * chunks, and the recorded mtime the one seen before the read, so a later backup sees a
   * change and reads the file again.
   */
  async file(
    path: string,
    name: string,
    st: EntryInfo,
  ): Promise<{ done: Promise<FileEntry | undefined> }> {
    // A SQLite database is read as one committed state (sqlite-capture.ts), from the
    // database itself under a read transaction or from a private copy. Pinning it takes a
    // child process (~0.1 s): the walk goes on meanwhile.
    if (!this.databases || st.size < 512n || st.size % 512n !== 0n) {
      this.companionsNeeded.set(path, Promise.resolve(true));
      return this.fileAt(path, path, name, st);
    }
    const capturing = this.captureDatabase(path, st);
    this.companionsNeeded.set(
      path,
      capturing.then(
        (c) => c === undefined,
        () => true,
      ),
    );
    const done = (async (): Promise<FileEntry | undefined> => {
      const cap = await capturing;
      if (!cap) return (await this.fileAt(path, path, name, st)).done;
      try {
        // Stat again once pinned: a commit between the listing and the pin is not a
        // change during the read.
        const readSt = await this.lstat(cap.path);
        const entry = await (await this.fileAt(cap.path, path, name, readSt)).done;
        // The original's metadata: a copy has its own mode and times.
        return entry && { ...entry, mode: st.mode, mtimeNs: st.mtimeNs };
      } finally {
        await cap.release();
      }
    })();
    done.catch((e: unknown) => {
      this.failure ??= e;
    });
    return { done: guard(done) };
  }

  /** A consistent image of the SQLite database at `path`, or undefined (not SQLite, or no capture). */
  private async captureDatabase(
    path: string,
    st: EntryInfo,
  ): Promise<CapturedDatabase | undefined> {
    // A database is whole pages of 512 bytes or more: other files are not even opened here
    // (an extra open per file of a large media folder cost 0.8 s on the bench corpus).
    if (!this.databases || st.size < 512n || st.size % 512n !== 0n) return undefined;
    let head: Uint8Array;
    try {
      head = await this.readHead(path);
    } catch {
      return undefined; // read as a file: vanished/unreadable is reported there
    }
    if (sqliteChunkSize(head) === undefined) return undefined;
    const cap = await this.databases.capture(path);
    if (!cap)
      this.warn(
        `could not open the SQLite database for a consistent copy; backed up as a plain file, which may be torn if it was being written: ${path}`,
      );
    else this.databasesCaptured += 1;
    return cap;
  }

  /** Read the file at `path` (`name` in the tree; `shown` in messages). */
  private async fileAt(
    path: string,
    shown: string,
    name: string,
    st: EntryInfo,
  ): Promise<{ done: Promise<FileEntry | undefined> }> {
    const attempt = async (
      before: EntryInfo,
      n: number,
    ): Promise<{ done: Promise<FileEntry | undefined> }> => {
      let queued: { done: Promise<FileRead> };
      try {
        // The last attempt reads the file as one stream, so it is contiguous whatever happens.
        queued = await this.readOnce(path, Number(before.size), n < READ_ATTEMPTS);
      } catch (e) {
        return { done: Promise.resolve(this.unreadable(e, shown)) };
      }
      const done = queued.done.then(
        async (read): Promise<FileEntry | undefined> => {
          let after: EntryInfo;
          try {
            after = await this.lstat(path);
          } catch (e) {
            return this.unreadable(e, shown);
          }
          const changed = read.short || !sameFile(before, after) || after.kind !== 'file';
          if (changed && n < READ_ATTEMPTS && after.kind === 'file') {
            return (await attempt(after, n + 1)).done;
          }
          if (after.kind !== 'file') return this.skip(shown, 'replaced during backup');
          if (changed) {
            this.warn(
              `changed while being read ${READ_ATTEMPTS} times; the snapshot holds the bytes read last: ${shown}`,
            );
          }
          this.files += 1;
          this.chunksTotal += read.ids.length;
          this.bytesInSnapshot += read.total;
          return {
            type: EntryType.FILE,
            name,
            mode: after.mode,
            mtimeNs: before.mtimeNs,
            size: read.total,
            chunks: read.ids,
          };
        },
        (e: unknown) => this.unreadable(e, shown),
      );
      return { done: guard(done) };
    };
    const { done } = await attempt(st, 1);
    done.catch((e: unknown) => {
      this.failure ??= e;
    });
    return { done };
  }

  /**
   * Whether the `-wal` and `-journal` beside database `dbPath` (those in `present`) are
   * unchanged since before the parent snapshot started. A database that an app keeps open
   * in WAL mode holds its newest commits in `-wal` until a checkpoint (every 1000 pages):
   * its main file keeps its size and times meanwhile, and taking it over from the parent
   * snapshot left every message since out (found by test/backup/edge-live-db.test.ts).
   */
  private async companionsUnchanged(dbPath: string, present: Set<string>): Promise<boolean> {
    if (!this.parent) return false;
    const { basename, dirname, join } = this.src.path;
    const startNs = BigInt(this.parent.snap.timeMs) * 1_000_000n;
    for (const suffix of ['-wal', '-journal']) {
      const name = basename(dbPath) + suffix;
      if (!present.has(name)) continue;
      let st: EntryInfo;
      try {
        st = await this.src.lstat(join(dirname(dbPath), name));
      } catch {
        return false;
      }
      // mtime, not ctime: SQLite writes these only through write(), which sets both, and
      // as root it fchowns them on every open (the capture's own included), which sets
      // ctime alone: every backup read the database again.
      if (st.mtimeNs + CTIME_MARGIN_NS >= startNs) return false;
    }
    return true;
  }

  /** A file unchanged since the parent snapshot, taken over without reading it. */
  private reuse(prev: TreeEntry | undefined, st: EntryInfo): FileEntry | undefined {
    if (!this.parent || !prev || prev.type !== EntryType.FILE) return undefined;
    if (BigInt(prev.size) !== st.size || prev.mtimeNs !== st.mtimeNs) return undefined;
    if (st.ctimeNs + CTIME_MARGIN_NS >= BigInt(this.parent.snap.timeMs) * 1_000_000n)
      return undefined;
    // Only chunks in packs that are still stored (the index was loaded with the listing).
    if (!prev.chunks.every((c) => this.index.blobs.has(c, ObjectKind.DATA_BLOB))) return undefined;
    return { ...prev, mode: st.mode };
  }

  /**
   * Back up a directory; resolves to its tree id, or undefined when it vanished or cannot
   * be read (then it is left out and reported; the source root itself must be readable).
   */
  async dir(path: string, parentTree: TreeEntry[] | undefined): Promise<Uint8Array | undefined> {
    const { join, relative, sep } = this.src.path;
    let raw: { name: string; raw?: Uint8Array }[];
    try {
      raw = await this.src.readdir(path);
    } catch (e) {
      if (vanished(e)) return this.skip(path, 'directory vanished during backup');
      const why = unreadableReason(e);
      if (why === undefined || path === this.source) {
        if (why === 'permission denied')
          throw new UsageError(
            `cannot read the source directory ${path}: permission denied`,
            'Make it readable by this user. Nothing was committed.',
          );
        throw e;
      }
      return this.skipPartial(path, `directory ${why}`);
    }
    // Tree names are UTF-8 (SPEC.md §10). A name that is not (possible on Linux) cannot be
    // recorded or even opened through a string path: say so, instead of reporting it as
    // vanished when its decoded form is not found.
    const names: string[] = [];
    for (const b of raw) {
      if (b.raw === undefined) names.push(b.name);
      else
        this.skipPartial(
          join(path, escapeName(b.raw)),
          'name is not valid UTF-8, not backed up (rename it)',
        );
    }
    names.sort();
    const prevByName = new Map((parentTree ?? []).map((e) => [e.name, e]));
    const entries: Promise<TreeEntry | undefined>[] = [];
    const present = new Set(names);
    // Which files with a -wal/-shm/-journal beside them are databases: decided before any
    // capture in this folder starts, because reading a database's header while this
    // process holds a read transaction on it (the copy fallback) would drop its locks.
    const isDb = new Map<string, boolean>();
    if (this.databases) {
      for (const name of names) {
        const dbName = isDatabaseCompanion(name);
        if (dbName === undefined || !present.has(dbName) || isDb.has(dbName)) continue;
        const head = await this.readHead(join(path, dbName)).catch(() => new Uint8Array(0));
        isDb.set(dbName, sqliteChunkSize(head) !== undefined);
      }
    }
    for (const name of names) {
      if (Date.now() - this.lastTurn >= WALK_TURN_MS) {
        await nextTurn();
        this.lastTurn = Date.now();
      }
      if (this.failure) throw this.failure;
      // `-wal`, `-journal` and `-shm` of a database we capture: its image holds their
      // committed content, and a restored `-shm` or stale `-wal` would only do harm. A
      // database read as a plain file (not captured) keeps its `-wal` and `-journal`.
      const dbName = this.databases ? isDatabaseCompanion(name) : undefined;
      const companionOf = dbName !== undefined && isDb.get(dbName) ? dbName : undefined;
      if (companionOf !== undefined && name.endsWith('-shm')) continue;
      const child = join(path, name);
      if (child === this.omitDir) {
        this.warn(
          `the repository is inside the source folder; it is not backed up into itself: ${child}`,
        );
        continue;
      }
      const needed =
        companionOf === undefined ? undefined : this.companionsNeeded.get(join(path, companionOf));
      // Not read in this backup (taken over from the parent, or excluded): kept only if the
      // parent snapshot kept it.
      if (companionOf !== undefined && needed === undefined && !prevByName.has(name)) continue;
      if (
        !this.exclude.empty &&
        this.exclude.matches(relative(this.source, child).split(sep).join('/'))
      ) {
        this.excluded += 1;
        continue;
      }
      if (needed !== undefined) {
        // Looked at only once the database's capture has failed: a `-journal` comes and goes
        // with every commit, and one that vanished meanwhile is no news when it is not needed.
        entries.push(
          needed.then(async (yes) => {
            if (!yes) return undefined;
            let cst: EntryInfo;
            try {
              cst = this.storable(child, await this.src.lstat(child));
            } catch (e) {
              return this.unreadable(e, child);
            }
            if (cst.kind !== 'file') return undefined;
            return (await this.fileAt(child, child, name, cst)).done;
          }),
        );
        continue;
      }
      let st: EntryInfo;
      try {
        st = await this.src.lstat(child);
      } catch (e) {
        this.unreadable(e, child);
        continue;
      }
      st = this.storable(child, st);
      const prev = prevByName.get(name);
      const base = { name, mode: st.mode, mtimeNs: st.mtimeNs };
      if (st.kind === 'file') {
        const reused =
          isDb.get(name) && !(await this.companionsUnchanged(child, present))
            ? undefined
            : this.reuse(prev, st);
        if (reused) {
          this.files += 1;
          this.chunksTotal += reused.chunks.length;
          this.bytesDone += reused.size;
          this.bytesInSnapshot += reused.size;
          entries.push(Promise.resolve(reused));
        } else {
          entries.push((await this.file(child, name, st)).done);
        }
      } else if (st.kind === 'dir') {
        const sub = prev?.type === EntryType.DIR ? await this.parentTree(prev.subtree) : undefined;
        const subtree = await this.dir(child, sub);
        if (subtree === undefined) continue;
        this.dirs += 1;
        entries.push(Promise.resolve({ ...base, type: EntryType.DIR, subtree }));
      } else if (st.kind === 'symlink') {
        let target: string;
        try {
          target = await this.src.readlink(child);
        } catch (e) {
          // EINVAL: no longer a link.
          if (errnoOf(e) === 'EINVAL') this.skip(child, 'vanished during backup');
          else if (errnoOf(e) === 'EILSEQ') {
            const raw = (e as { raw?: unknown }).raw;
            const shown = raw instanceof Uint8Array ? ` (${escapeName(raw)})` : '';
            this.skipPartial(
              child,
              `symlink target${shown} is not valid UTF-8, not backed up (point it elsewhere)`,
            );
          } else this.unreadable(e, child);
          continue;
        }
        entries.push(Promise.resolve({ ...base, type: EntryType.SYMLINK, target }));
      } else {
        // Sockets, FIFOs and devices hold no data a restore could bring back: skipped, and
        // said, so a snapshot never silently lacks something that was there.
        const kind =
          st.kind === 'fifo'
            ? 'a FIFO'
            : st.kind === 'socket'
              ? 'a socket'
              : st.kind === 'char'
                ? 'a character device'
                : st.kind === 'block'
                  ? 'a block device'
                  : 'a special file';
        this.skipPartial(child, `${kind}, not backed up`);
      }
    }
    const resolved = (await Promise.all(entries)).filter((e): e is TreeEntry => e !== undefined);
    const { id } = await this.pool.tree(encodeTree(sortTreeEntries(resolved)));
    return id;
  }
}
