/**
 * `backup`: walk a directory, cut files into chunks, seal them in worker threads, append new
 * ones to packs, write the index, then the snapshot (last), then the local state file.
 *
 * Commit order is the atomicity argument: a snapshot only names trees and chunks that are
 * in durable packs listed by a durable index, so a crash at any moment leaves the previous
 * snapshot intact and restorable; the leftovers of an interrupted backup (packs without an
 * index, an index without a snapshot) are valid objects that `prune` removes.
 *
 * Work split: this thread walks the tree and hands files (or, for large SQLite databases,
 * 8 MiB ranges) to the worker pool; workers read the data themselves, so file bytes never
 * cross threads, and build packs that this thread stores. Memory is bounded independently
 * of input size: two jobs per worker, one read buffer and two pack buffers per worker
 * (one filling, one being stored).
 */
import { hostname as osHostname } from 'node:os';
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import {
  EntryType,
  ObjectKind,
  PREFIX,
  encodeIndex,
  encodeSnapshot,
  encodeTree,
  fromHex,
  objectAd,
  packName,
  sortTreeEntries,
  type FileEntry,
  type IndexPack,
  type TreeEntry,
} from '../format/index.js';
import type { BackupOptions, BackupResult, Progress } from './api.js';
import { sqliteChunkSize } from './chunker.js';
import { seal, sha256Hex } from './crypto.js';
import { WorkerPool, defaultWorkers } from './pool.js';
import type { FileResult } from './worker-protocol.js';
import {
  initRepository,
  loadChain,
  loadIndex,
  openRepository,
  readTree,
  repositoryExists,
  type BlobIndex,
  type LoadedSnapshot,
  type Repo,
} from './repo.js';
import { recordSeenHead } from './state.js';

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

function guard<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

async function readHead(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const head = new Uint8Array(100);
    const { bytesRead } = await fh.read(head, 0, 100, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

class BackupRun {
  failure: unknown;
  files = 0;
  dirs = 0;
  bytesRead = 0;
  bytesNew = 0;
  chunksTotal = 0;
  chunksNew = 0;
  bytesDone = 0;
  private lastProgress = 0;

  constructor(
    readonly repo: Repo,
    readonly index: BlobIndex,
    readonly pool: WorkerPool,
    readonly parent: LoadedSnapshot | undefined,
    readonly onProgress: ((p: Progress) => void) | undefined,
  ) {}

  progress(force = false): void {
    if (!this.onProgress) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < 100) return;
    this.lastProgress = now;
    this.onProgress({ phase: 'backup', bytesDone: this.bytesDone, filesDone: this.files });
  }

  /** Hand one file to the workers; resolves once queued, `done` when its chunks are stored. */
  async file(path: string, name: string, st: BigIntStats): Promise<{ done: Promise<FileEntry> }> {
    const size = Number(st.size);
    const jobs: { offset: number; length: number; fixed: number }[] = [];
    const fixed = size >= SPLIT_MIN ? sqliteChunkSize(await readHead(path)) : undefined;
    if (fixed) {
      for (let off = 0; off < size; off += SPLIT_RANGE) {
        // The last range reads to the end, wherever the end is by then.
        jobs.push({ offset: off, length: off + SPLIT_RANGE >= size ? -1 : SPLIT_RANGE, fixed });
      }
    } else {
      jobs.push({ offset: 0, length: -1, fixed: 0 });
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
            this.chunksTotal += r.lengths.length;
            this.chunksNew += r.newChunks;
            this.bytesNew += r.newBytes;
            this.progress();
            return r;
          }),
        ),
      );
      parts[parts.length - 1]?.catch((e: unknown) => {
        this.failure ??= e;
      });
    }
    this.files += 1;
    const done = Promise.all(parts).then((rs): FileEntry => {
      const chunks: Uint8Array[] = [];
      let total = 0;
      for (const r of rs) {
        for (let i = 0; i < r.lengths.length; i++) chunks.push(r.ids.slice(i * 32, i * 32 + 32));
        for (const l of r.lengths) total += l;
      }
      return {
        type: EntryType.FILE,
        name,
        mode: Number(st.mode) & 0o7777,
        mtimeNs: st.mtimeNs,
        size: total,
        chunks,
      };
    });
    return { done: guard(done) };
  }

  /** A file unchanged since the parent snapshot, taken over without reading it. */
  private reuse(prev: TreeEntry | undefined, st: BigIntStats): FileEntry | undefined {
    if (!this.parent || !prev || prev.type !== EntryType.FILE) return undefined;
    if (BigInt(prev.size) !== st.size || prev.mtimeNs !== st.mtimeNs) return undefined;
    if (st.ctimeNs + CTIME_MARGIN_NS >= BigInt(this.parent.snap.timeMs) * 1_000_000n)
      return undefined;
    if (!prev.chunks.every((c) => this.index.blobs.has(c))) return undefined;
    return { ...prev, mode: Number(st.mode) & 0o7777 };
  }

  /** Back up a directory; resolves to its tree id. */
  async dir(path: string, parentTree: TreeEntry[] | undefined): Promise<Uint8Array> {
    const names = (await readdir(path)).sort();
    const prevByName = new Map((parentTree ?? []).map((e) => [e.name, e]));
    const entries: Promise<TreeEntry>[] = [];
    for (const name of names) {
      if (this.failure) throw this.failure;
      const child = join(path, name);
      const st = await lstat(child, { bigint: true });
      const prev = prevByName.get(name);
      const base = { name, mode: Number(st.mode) & 0o7777, mtimeNs: st.mtimeNs };
      if (st.isFile()) {
        const reused = this.reuse(prev, st);
        if (reused) {
          this.files += 1;
          this.chunksTotal += reused.chunks.length;
          this.bytesDone += reused.size;
          entries.push(Promise.resolve(reused));
        } else {
          entries.push((await this.file(child, name, st)).done);
        }
      } else if (st.isDirectory()) {
        const sub =
          prev?.type === EntryType.DIR
            ? await readTree(this.repo, this.index, prev.subtree)
            : undefined;
        const subtree = await this.dir(child, sub);
        this.dirs += 1;
        entries.push(Promise.resolve({ ...base, type: EntryType.DIR, subtree }));
      } else if (st.isSymbolicLink()) {
        const target = await readlink(child);
        entries.push(Promise.resolve({ ...base, type: EntryType.SYMLINK, target }));
      }
      // Sockets, FIFOs and devices are not chat data: skipped.
    }
    const resolved = await Promise.all(entries);
    const { id } = await this.pool.tree(encodeTree(sortTreeEntries(resolved)));
    return id;
  }
}

/**
 * Back up `opts.source` as a new snapshot, creating the repository on first use.
 * @throws UsageError when the source is not a directory.
 * @throws WrongKeyError when the key does not open the existing repository.
 * @throws RollbackError / CorruptBackupError / MissingObjectError when the repository's
 *   snapshot chain or index fails verification (nothing is written then).
 * @throws UnavailableError from the store.
 */
export async function backup(opts: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const startMs = Date.now();
  const source = resolve(opts.source);
  let rootStat: BigIntStats;
  try {
    rootStat = await stat(source, { bigint: true });
  } catch {
    throw new UsageError(`cannot read the source directory: ${source}`);
  }
  if (!rootStat.isDirectory()) throw new UsageError(`not a directory: ${source}`);

  let created = false;
  if (!(await repositoryExists(opts.storage))) {
    await initRepository(opts);
    created = true;
  }
  const repo = await openRepository(opts);
  const chain = await loadChain(repo);
  const index = await loadIndex(repo);
  const host = opts.hostname ?? osHostname();
  const head = chain[chain.length - 1];
  // Only a snapshot of this host can vouch for files by their times.
  const parent = head && head.snap.hostname === host ? head : undefined;

  const packs: IndexPack[] = [];
  let bytesStoredNew = 0;
  const pool = new WorkerPool(Math.max(1, opts.workers ?? defaultWorkers()), repo.keys, {
    known: index.blobs.sharedIds(),
    onPack: async (p) => {
      await repo.storage.put(packName(p.packId), p.bytes.subarray(0, p.length));
      bytesStoredNew += p.length;
      // Only a durable pack goes into the index.
      packs.push({ packId: fromHex(p.packId), blobs: p.entries });
    },
  });
  try {
    const run = new BackupRun(repo, index, pool, parent, opts.onProgress);
    const parentRoot = parent ? await readTree(repo, index, parent.snap.rootTree) : undefined;
    const rootTree = await run.dir(source, parentRoot);
    await pool.flush();

    if (packs.length > 0) {
      const sealedIndex = seal(
        repo.keys.meta,
        objectAd(ObjectKind.INDEX, repo.keys.repoId),
        encodeIndex(packs),
      );
      await repo.storage.put(PREFIX.index + sha256Hex(sealedIndex), sealedIndex);
      bytesStoredNew += sealedIndex.length;
    }

    const seq = head ? head.snap.seq + 1 : 1;
    const snapPlain = encodeSnapshot({
      seq,
      prev: head ? Uint8Array.from(Buffer.from(head.id, 'hex')) : null,
      timeMs: startMs,
      hostname: host,
      rootTree,
      rootMode: Number(rootStat.mode) & 0o7777,
      rootMtimeNs: rootStat.mtimeNs,
      files: run.files,
      dirs: run.dirs,
      bytes: run.bytesDone,
    });
    const sealedSnap = seal(
      repo.keys.meta,
      objectAd(ObjectKind.SNAPSHOT, repo.keys.repoId),
      snapPlain,
    );
    const snapshotId = sha256Hex(sealedSnap);
    // The commit point: from here on the new snapshot exists.
    await repo.storage.put(PREFIX.snapshots + snapshotId, sealedSnap);
    bytesStoredNew += sealedSnap.length;
    if (repo.statePath)
      await recordSeenHead(repo.statePath, repo.repoIdHex, { seq, snapshot: snapshotId });
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
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await pool.close();
  }
}
