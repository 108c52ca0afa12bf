/**
 * `restore`: verify and write a snapshot into a temporary directory beside the target,
 * then move it into place. The target is never half-written: it is either untouched (on
 * any failure the temporary directory is removed) or replaced as a whole by rename.
 *
 * Every blob is verified before its bytes are used: AEAD (binding kind, repo, compression
 * and id), decompressed length, HMAC id recomputed over the plaintext, and each file's
 * chunk sizes against its recorded size. Tree entry names that could escape the target
 * ("", ".", "..", "/", NUL) are rejected by the tree decoder as CORRUPT.
 */
import { randomBytes } from 'node:crypto';
import { close as fsClose, fchmod, fsync, futimes, open as fsOpen } from 'node:fs';
import { promisify } from 'node:util';
import {
  lutimes,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  stat,
  symlink,
  chmod,
  utimes,
} from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  CorruptBackupError,
  MissingObjectError,
  NotFoundError,
  TargetNotEmptyError,
  UsageError,
} from '../errors.js';
import { EntryType, packName, toHex, type FileEntry } from '../format/index.js';
import type { RestoreOptions, RestoreResult } from './api.js';
import { accountGarbage } from './gc.js';
import { ByteSemaphore, WorkerPool, defaultWorkers } from './pool.js';
import {
  loadChain,
  loadIndex,
  openRepository,
  readTree,
  type BlobIndex,
  type IndexedBlob,
  type LoadedSnapshot,
  type Repo,
} from './repo.js';

/** Sealed bytes fetched and not yet written. */
const RESTORE_IN_FLIGHT = 16 * 1024 * 1024;
/** Range reads in flight (also bounds the files open at once). */
const MAX_BATCHES = 8;
/** Largest single range read from a pack. */
const READ_BATCH = 2 * 1024 * 1024;
/** Files being finished (chmod, utimes, fsync, close) concurrently. */
const FINISHING = 16;

const openFd = promisify(fsOpen);
const closeFd = promisify(fsClose);
const fchmodFd = promisify(fchmod);
const futimesFd = promisify(futimes);
const fsyncFd = promisify(fsync);

interface PlannedFile {
  path: string;
  entry: FileEntry;
}
interface PlannedDir {
  path: string;
  mode: number;
  mtimeNs: bigint;
}

function nsToSeconds(ns: bigint): number {
  return Number(ns) / 1e9;
}

/** Choose a snapshot by id or unique prefix (default: the head). */
export function pickSnapshot(
  chain: readonly LoadedSnapshot[],
  wanted: string | undefined,
): LoadedSnapshot {
  if (chain.length === 0)
    throw new NotFoundError('the repository has no snapshots yet', 'Run `backvault backup` first.');
  if (wanted === undefined) return chain[chain.length - 1] as LoadedSnapshot;
  const w = wanted.toLowerCase();
  if (!/^[0-9a-f]{1,64}$/.test(w)) throw new UsageError(`not a snapshot id: ${wanted}`);
  const found = chain.filter((s) => s.id.startsWith(w));
  if (found.length === 0)
    throw new NotFoundError(`no snapshot ${wanted}`, 'Run `backvault snapshots` to list them.');
  if (found.length > 1) throw new UsageError(`snapshot prefix ${wanted} is ambiguous`);
  return found[0] as LoadedSnapshot;
}

async function isEmptyOrAbsent(target: string): Promise<'absent' | 'empty' | 'full'> {
  try {
    const st = await stat(target);
    if (!st.isDirectory()) return 'full';
    return (await readdir(target)).length === 0 ? 'empty' : 'full';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw e;
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

class RestoreRun {
  files: PlannedFile[] = [];
  dirs: PlannedDir[] = [];
  bytes = 0;
  bytesDone = 0;
  filesDone = 0;
  private lastProgress = 0;

  constructor(
    readonly repo: Repo,
    readonly index: BlobIndex,
    readonly pool: WorkerPool,
    readonly opts: RestoreOptions,
  ) {}

  progress(force = false): void {
    const cb = this.opts.onProgress;
    if (!cb) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < 100) return;
    this.lastProgress = now;
    cb({
      phase: 'restore',
      bytesDone: this.bytesDone,
      bytesTotal: this.bytes,
      filesDone: this.filesDone,
      filesTotal: this.files.length,
    });
  }

  /** Walk the trees: create directories and symlinks, plan files. */
  async plan(treeId: Uint8Array, path: string, depth: number): Promise<void> {
    if (depth > 4096) throw new CorruptBackupError('tree nesting too deep');
    const entries = await readTree(this.repo, this.index, treeId);
    const treeObject = packName((this.index.blobs.get(toHex(treeId)) as { packId: string }).packId);
    for (const e of entries) {
      const p = join(path, e.name);
      if (e.type === EntryType.DIR) {
        await mkdir(p, { mode: 0o700 });
        this.dirs.push({ path: p, mode: e.mode, mtimeNs: e.mtimeNs });
        await this.plan(e.subtree, p, depth + 1);
      } else if (e.type === EntryType.SYMLINK) {
        await symlink(e.target, p);
        await lutimes(p, nsToSeconds(e.mtimeNs), nsToSeconds(e.mtimeNs));
      } else {
        let sum = 0;
        for (const c of e.chunks) {
          const at = this.index.blobs.get(toHex(c));
          if (!at) throw new MissingObjectError(`blob/${toHex(c)}`);
          sum += at.entry.rawLength;
        }
        if (sum !== e.size)
          throw new CorruptBackupError('file size does not match its chunks', treeObject);
        this.files.push({ path: p, entry: e });
        this.bytes += e.size;
      }
    }
  }

  /**
   * Fetch, verify and write every file. Chunks that sit next to each other in a pack are
   * read with one range request (up to READ_BATCH bytes); workers verify each blob and
   * write it straight into its file at its position, so plaintext never crosses threads.
   * Bytes in flight are bounded by a semaphore.
   */
  async writeFiles(): Promise<void> {
    interface Seg {
      file: number;
      position: number;
      at: IndexedBlob;
    }
    interface Batch {
      packId: string;
      offset: number;
      length: number;
      segs: Seg[];
    }
    const batches: Batch[] = [];
    const lastBatch = new Array<number>(this.files.length).fill(-1);
    let cur: Batch | undefined;
    this.files.forEach((f, file) => {
      let position = 0;
      for (const c of f.entry.chunks) {
        const at = this.index.blobs.get(toHex(c));
        if (!at) throw new MissingObjectError(`blob/${toHex(c)}`);
        const e = at.entry;
        if (
          cur &&
          cur.packId === at.packId &&
          cur.offset + cur.length === e.offset &&
          cur.length + e.length <= READ_BATCH
        ) {
          cur.length += e.length;
          cur.segs.push({ file, position, at });
        } else {
          cur = {
            packId: at.packId,
            offset: e.offset,
            length: e.length,
            segs: [{ file, position, at }],
          };
          batches.push(cur);
        }
        lastBatch[file] = batches.length - 1;
        position += e.rawLength;
      }
    });

    // Raw descriptors: workers write into them and finally close them (see finish jobs).
    const handles = new Map<number, number>();
    const sem = new ByteSemaphore(RESTORE_IN_FLIGHT);
    const running = new Set<Promise<void>>();
    const finishing = new Set<Promise<void>>();
    let failure: unknown;
    const track = (set: Set<Promise<void>>, p: Promise<void>): void => {
      const t = p.catch((e: unknown) => {
        failure ??= e;
      });
      const tt = t.finally(() => set.delete(tt));
      set.add(tt);
    };
    // Remaining batches per file: when it drops to zero the file is complete.
    const remaining = new Array<number>(this.files.length).fill(0);
    for (const b of batches)
      for (const f of new Set(b.segs.map((s) => s.file)))
        remaining[f] = (remaining[f] as number) + 1;

    // Mode, times, fsync and close run on libuv's thread pool, overlapping the writes.
    // (Measured: doing them in the worker threads instead halved restore speed, as each
    // fsync then blocks a thread that should be decrypting.)
    const finishFile = async (file: number, fd: number): Promise<void> => {
      const f = this.files[file] as PlannedFile;
      const t = nsToSeconds(f.entry.mtimeNs);
      try {
        await fchmodFd(fd, f.entry.mode);
        await futimesFd(fd, t, t);
        await fsyncFd(fd);
      } finally {
        await closeFd(fd);
      }
      this.filesDone += 1;
    };

    try {
      let nextFile = 0;
      const openUpTo = async (file: number): Promise<void> => {
        for (; nextFile <= file; nextFile++) {
          const f = this.files[nextFile] as PlannedFile;
          if (f.entry.chunks.length === 0) {
            while (finishing.size >= FINISHING) await Promise.race(finishing);
            track(finishing, finishFile(nextFile, await openFd(f.path, 'wx', 0o600)));
          } else {
            handles.set(nextFile, await openFd(f.path, 'wx', 0o600));
          }
        }
      };
      for (const b of batches) {
        if (failure) break;
        await openUpTo(Math.max(...b.segs.map((s) => s.file)));
        while (running.size >= MAX_BATCHES) await Promise.race(running);
        await sem.acquire(b.length);
        if (failure) break;
        const job = (async () => {
          try {
            const name = packName(b.packId);
            const sealed = await this.repo.storage.getRange(name, b.offset, b.length);
            if (sealed.length !== b.length) throw new CorruptBackupError('pack is truncated', name);
            const items = b.segs.map((s) => ({
              ref: s.at.entry,
              offset: s.at.entry.offset - b.offset,
              length: s.at.entry.length,
              fd: handles.get(s.file) as number,
              position: s.position,
            }));
            const bytes = await this.pool.write(sealed, name, items);
            this.bytesDone += bytes;
            accountGarbage(b.length);
            this.progress();
          } finally {
            sem.release(b.length);
          }
          for (const file of new Set(b.segs.map((s) => s.file))) {
            remaining[file] = (remaining[file] as number) - 1;
            if (remaining[file] === 0) {
              const fd = handles.get(file) as number;
              handles.delete(file);
              track(finishing, finishFile(file, fd));
            }
          }
        })();
        track(running, job);
      }
      if (!failure) await openUpTo(this.files.length - 1);
      while (running.size > 0) await Promise.race(running);
      while (finishing.size > 0) await Promise.race(finishing);
    } finally {
      await Promise.allSettled([...running, ...finishing]);
      for (const fd of handles.values()) await closeFd(fd).catch(() => {});
    }
    if (failure) throw failure;
  }

  /** Directory modes and times, deepest first (writing inside a dir changes its mtime). */
  async finishDirs(root: string, rootMode: number, rootMtimeNs: bigint): Promise<void> {
    const all = [...this.dirs].sort((a, b) => b.path.length - a.path.length);
    for (const d of all) {
      await fsyncPath(d.path);
      await chmod(d.path, d.mode);
      await utimes(d.path, nsToSeconds(d.mtimeNs), nsToSeconds(d.mtimeNs));
    }
    await fsyncPath(root);
    await chmod(root, rootMode);
    await utimes(root, nsToSeconds(rootMtimeNs), nsToSeconds(rootMtimeNs));
  }
}

/**
 * Restore a snapshot into `opts.target`.
 * @throws TargetNotEmptyError when the target holds anything and `force` is not set.
 * @throws NotFoundError when the snapshot id matches nothing; UsageError when ambiguous.
 * @throws WrongKeyError, CorruptBackupError, MissingObjectError, RollbackError,
 *   UnavailableError, NoRepositoryError — in every case the target is left untouched.
 */
export async function restore(opts: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const target = resolve(opts.target);
  const repo = await openRepository(opts);
  const chain = await loadChain(repo);
  const snap = pickSnapshot(chain, opts.snapshotId);
  const state = await isEmptyOrAbsent(target);
  if (state === 'full' && !opts.force) throw new TargetNotEmptyError(target);
  const index = await loadIndex(repo);

  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const tag = randomBytes(6).toString('hex');
  const tmp = join(parent, `.${basename(target)}.backvault-restore-${tag}`);
  await mkdir(tmp, { mode: 0o700 });
  const pool = new WorkerPool(Math.max(1, opts.workers ?? defaultWorkers()), repo.keys);
  let run: RestoreRun;
  try {
    run = new RestoreRun(repo, index, pool, opts);
    await run.plan(snap.snap.rootTree, tmp, 0);
    await run.writeFiles();
    await run.finishDirs(tmp, snap.snap.rootMode, snap.snap.rootMtimeNs);
    run.progress(true);

    // Move into place. An empty directory or no directory: one rename (rename over an
    // empty directory is atomic on POSIX). A full one (force): move it aside first.
    if (state === 'full') {
      const aside = join(parent, `.${basename(target)}.backvault-old-${tag}`);
      await rename(target, aside);
      try {
        await rename(tmp, target);
      } catch (e) {
        await rename(aside, target);
        throw e;
      }
      await fsyncPath(parent);
      await rm(aside, { recursive: true, force: true });
    } else {
      await rename(tmp, target);
    }
    await fsyncPath(parent);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    await pool.close();
  }
  return {
    snapshotId: snap.id,
    seq: snap.snap.seq,
    files: run.files.length,
    dirs: run.dirs.length,
    bytes: run.bytes,
    seconds: (performance.now() - started) / 1000,
  };
}
