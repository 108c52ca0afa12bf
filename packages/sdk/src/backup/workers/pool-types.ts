/**
 * What the engine asks of a pool (engine core; no `node:`): the worker threads of Node
 * (node/worker-pool.ts) and the calling thread (in-thread.ts) both run the same jobs
 * (jobs.ts), so `workers: 0`, a bundle without the worker entry and a phone all take the
 * code path the threads take.
 */
import type { BlobRef } from '../../format/index.js';
import type { PackMessage } from '../repository/pack-builder.js';

export type { PackMessage } from '../repository/pack-builder.js';

/** Sorted 32-byte ids of stored blobs of one kind (shared memory where threads exist). */
export interface KnownIds {
  buf: ArrayBufferLike;
  count: number;
}

/** Options of a pool used for backups. */
export interface PoolOptions {
  /**
   * Sorted ids of blobs already stored, per kind (jobs skip those): a chunk is deduplicated
   * against data blobs only, a tree against tree blobs only.
   */
  known?: { data: KnownIds; tree: KnownIds };
  /** Target pack size in bytes (default PACK_TARGET, 12 MiB). */
  packSize?: number;
  /** Store a finished pack durably; the pool waits for these in {@link EnginePool.flush}. */
  onPack?: (pack: PackMessage) => Promise<void>;
}

/** Read a range of a file, chunk it, and store the new chunks in the job runner's pack. */
export interface FileJob {
  path: string;
  offset: number;
  /** Bytes to read, or -1 for "to the end of the file". */
  length: number;
  /** Fixed chunk size (SQLite ranges), or 0 to decide from the file's first bytes. */
  fixed: number;
}

/** Result of a file job. */
export interface FileResult {
  /** Chunk ids in file order, 32 bytes each. */
  ids: Uint8Array;
  lengths: number[];
  bytesRead: number;
  newChunks: number;
  newBytes: number;
}

/** One blob of a range read from a pack, and where its plaintext goes. */
export interface WriteItem {
  ref: BlobRef;
  /** Offset and length of the sealed blob within the range. */
  offset: number;
  length: number;
  /** The created file's handle (TargetFile.handle). */
  handle: number;
  position: number;
  /**
   * False when a later blob of the same file follows: an all-zero blob is then not written
   * but left as a hole (the file was created empty). The file's last blob is always
   * written, so the file ends at its size; anything but `false` writes the blob.
   */
  last: boolean;
}

/** A range of a local pack file that the job runner reads itself (Storage.localPath). */
export interface PackFileRange {
  path: string;
  offset: number;
  length: number;
}

/** Worker threads or the calling thread. Always `close()` it (in a finally). */
export interface EnginePool {
  /** Number of worker threads (0: the calling thread). */
  readonly size: number;
  /**
   * Queue a file job once the pool has room; `done` settles with its result. A file that
   * cannot be read rejects `done` with a {@link SourceReadError} and leaves the pool usable.
   */
  submitFile(job: FileJob): Promise<{ done: Promise<FileResult> }>;
  /** Store a tree blob (sealed into a pack unless known). */
  tree(plain: Uint8Array): Promise<{ id: Uint8Array; isNew: boolean }>;
  /** Finish every pack and wait until every pack is stored. @throws the first failure. */
  flush(): Promise<void>;
  /** Open and fully verify a sealed blob (its buffer may be transferred). */
  open(ref: BlobRef, sealed: Uint8Array, object: string): Promise<Uint8Array>;
  /**
   * Verify and write the blobs of one pack range into their files; the range is given, or
   * read from a local pack file by the runner.
   * @returns plaintext bytes written.
   */
  write(source: Uint8Array | PackFileRange, object: string, items: WriteItem[]): Promise<number>;
  close(): Promise<void>;
}

/**
 * A source file could not be opened or read by a job (it vanished, is unreadable, ...).
 * The backup decides what that means; the pool stays usable.
 */
export class SourceReadError extends Error {
  constructor(
    message: string,
    /** The errno code, e.g. `ENOENT`. */
    readonly code: string,
  ) {
    super(message);
    Object.setPrototypeOf(this, new.target.prototype); // see BackvaultError (src/errors.ts)
    this.name = 'SourceReadError';
  }
}

/**
 * Bounds the bytes in flight (fetched but not yet written), which is what keeps peak
 * memory independent of input size.
 */
export class ByteSemaphore {
  private used = 0;
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  constructor(private readonly limit: number) {}

  /** Wait until `n` more bytes fit (a single request larger than the limit waits for empty). */
  async acquire(n: number): Promise<void> {
    if (this.waiters.length === 0 && (this.used + n <= this.limit || this.used === 0)) {
      this.used += n;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
  }

  /** Give back `n` bytes. */
  release(n: number): void {
    this.used -= n;
    while (this.waiters.length > 0) {
      const w = this.waiters[0] as { n: number; resolve: () => void };
      if (this.used + w.n > this.limit && this.used !== 0) break;
      this.waiters.shift();
      this.used += w.n;
      w.resolve();
    }
  }
}
