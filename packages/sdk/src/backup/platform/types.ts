/**
 * The small interfaces the engine runs on (docs/ARCHITECTURE.md, "The engine everywhere").
 * The engine core (repository, archiver, restorer, checker, commands, the in-thread job
 * runner) imports no `node:` module: it reads a tree through {@link SourceFiles}, writes a
 * restore through {@link TargetFiles}, seals through {@link EngineCrypto}, asks
 * {@link EngineHost} who and where it is, and may hand work to a {@link PoolFactory}.
 *
 * Implementations:
 * - Node (the defaults, `src/backup/node/`): node:fs, node:crypto + node:zlib, worker threads.
 * - `MemoryFiles` (a tree in memory: tests, and phones where the app hands over bytes) and
 *   `nobleCrypto()` (pure JS: @noble/hashes, @noble/ciphers), in this folder.
 *
 * Paths are strings in the implementation's own syntax; the engine joins and splits them
 * only through {@link PathOps}.
 */
import type { CompressionValue, FormatCrypto } from '../../format/index.js';
import type { DatabaseCapture } from '../archiver/databases.js';
import type { EnginePool, PoolOptions } from '../workers/pool-types.js';
import type { RepoKeys } from '../repository/keys.js';

/**
 * The hash, MAC, KDF, AEAD and randomness of the format (SPEC.md), plus compression.
 * Synchronous; also a {@link FormatCrypto}, so the format's key slots run on it (Hermes has
 * no WebCrypto).
 */
export interface EngineCrypto extends FormatCrypto {
  /** For messages and the README's table ("node", "noble", …). */
  readonly name: string;
  sha256(data: Uint8Array): Uint8Array;
  /** HMAC-SHA256 (blob ids, key check value, the chunker's gear table). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-SHA256 (subkeys). */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /**
   * AES-256-GCM encryption of `plain` under `nonce` and `ad`, written as ciphertext ||
   * 16-byte tag into `out` at `at` (`out` has room: plain.length + 16 bytes).
   */
  aesGcmSealInto(
    key: Uint8Array,
    nonce: Uint8Array,
    ad: Uint8Array,
    plain: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void;
  /**
   * AES-256-GCM decryption of ciphertext || tag; `undefined` when it does not authenticate.
   */
  aesGcmOpen(
    key: Uint8Array,
    nonce: Uint8Array,
    ad: Uint8Array,
    sealed: Uint8Array,
  ): Uint8Array | undefined;
  /** Cryptographically secure random bytes. */
  randomBytes(n: number): Uint8Array;
  /** Constant-time comparison (false for different lengths). */
  equal(a: Uint8Array, b: Uint8Array): boolean;
  /**
   * Compression for blobs. Absent: blobs are stored uncompressed and a compressed blob
   * cannot be read (UNSUPPORTED names the method).
   */
  readonly compression?: BlobCompression;
}

/** Compressing and decompressing blob bodies (format/constants.ts: Compression). */
export interface BlobCompression {
  /** The method the writer uses (never NONE). */
  readonly write: CompressionValue;
  compress(method: CompressionValue, data: Uint8Array): Uint8Array;
  /** @throws anything when `body` is not a valid stream or inflates beyond `maxLength`. */
  decompress(method: CompressionValue, body: Uint8Array, maxLength: number): Uint8Array;
  /** Methods this implementation can decompress. */
  readonly reads: readonly CompressionValue[];
}

/** The type of an entry, as lstat sees it (symlinks are never followed). */
export type EntryKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block' | 'other';

/** What the engine needs of an entry's status. */
export interface EntryInfo {
  kind: EntryKind;
  /** Permission bits (0o7777). */
  mode: number;
  size: bigint;
  mtimeNs: bigint;
  /** Change time; equal to mtimeNs where the system has none. */
  ctimeNs: bigint;
  /** Inode (or any id that changes when the entry is replaced); 0n where unknown. */
  ino: bigint;
  /** Owner; undefined where the system has none. */
  uid?: number;
  /**
   * The file system holding the entry (st_dev); undefined where unknown. A restore refuses a
   * target on another file system than its parent (a mount point): it is written beside
   * the target and moved in by rename.
   */
  dev?: bigint;
}

/** A name in a directory listing. */
export interface DirName {
  /** The name (UTF-8). */
  name: string;
  /** The raw bytes, only when the name is not valid UTF-8 (it is skipped and named). */
  raw?: Uint8Array;
}

/** Joining and splitting paths in an implementation's syntax. */
export interface PathOps {
  readonly sep: string;
  join(...parts: string[]): string;
  dirname(p: string): string;
  basename(p: string): string;
  /** `to` relative to `from` (both absolute in this syntax). */
  relative(from: string, to: string): string;
  /** An absolute path for `p`. */
  resolve(p: string): string;
}

/** An error of a file operation, with its errno-style code (`ENOENT`, `EACCES`, …). */
export interface FileError extends Error {
  code?: string;
}

/**
 * Files in: the engine reads a tree through this. Errors carry errno codes (`ENOENT`,
 * `ENOTDIR`, `EACCES`, `EIO`, …) so a vanished or unreadable entry is told from a failure.
 */
export interface SourceFiles {
  readonly path: PathOps;
  /** Names in a directory (unsorted). */
  readdir(path: string): Promise<DirName[]>;
  /** Status of an entry; a symlink is described, never followed. */
  lstat(path: string): Promise<EntryInfo>;
  /**
   * A symlink's target. Rejects with code `EILSEQ` (and the target's bytes as `raw`) when
   * it is not valid UTF-8: a tree cannot hold it, and the link is skipped and named.
   */
  readlink(path: string): Promise<string>;
  /** Up to `length` bytes at `position` (fewer at the end of the file). */
  read(path: string, position: number, length: number): Promise<Uint8Array>;
  /**
   * Open a file for the job runner's reads (see workers/jobs.ts): `readInto` fills `buf`
   * at `at` with up to `length` bytes from `position`, returning how many (0 at the end).
   */
  openRead(path: string): Promise<SourceReader> | SourceReader;
}

/** An open file being read by a job. */
export interface SourceReader {
  readInto(buf: Uint8Array, at: number, length: number, position: number): number | Promise<number>;
  close(): void | Promise<void>;
}

/** An open file being written by a restore. */
export interface TargetWriter {
  /** Write all of `data` at `position`. */
  writeAt(data: Uint8Array, position: number): void | Promise<void>;
}

/**
 * Files out: the engine writes a restore (beside the target, then renamed into place), its
 * merge journal and the local state file through this. Errors carry errno codes (`ENOENT`,
 * `EEXIST`, `ENOTEMPTY`, …) as POSIX gives them.
 */
export interface TargetFiles {
  readonly path: PathOps;
  readdir(path: string): Promise<string[]>;
  lstat(path: string): Promise<EntryInfo>;
  readFile(path: string): Promise<Uint8Array>;
  mkdir(path: string, opts: { mode: number; recursive?: boolean }): Promise<void>;
  /**
   * Create `path` (which must not exist) holding `data`, mode 0600, and make it durable.
   */
  writeNewFile(path: string, data: Uint8Array): Promise<void>;
  /** Replace `path` atomically with `data` (mode 0600; temporary file, sync, rename). */
  writeFileAtomic(path: string, data: Uint8Array): Promise<void>;
  /** Create `path` (which must not exist, mode 0600) for a restore's file. */
  create(path: string): Promise<TargetFile>;
  symlink(target: string, path: string, mtimeNs: bigint): Promise<void>;
  /** Set a directory's (or file's) mode and mtime. */
  setMeta(path: string, mode: number, mtimeNs: bigint): Promise<void>;
  /** Make a directory's entries (or a file's bytes) durable. */
  sync(path: string): Promise<void>;
  /**
   * Make every write so far on the file system holding `path` durable in one call (Linux:
   * syncfs), where that is as strong as syncing each file and directory. Optional: absent
   * or resolving false, a restore syncs each file and directory it writes.
   * @throws when the file system reports a write error.
   */
  syncFileSystem?(path: string): Promise<boolean>;
  rename(from: string, to: string): Promise<void>;
  /** Remove an empty directory. */
  rmdir(path: string): Promise<void>;
  /** Remove a file or a whole tree; absent is fine. */
  rm(path: string): Promise<void>;
}

/** A created file: written by the job runner, finished (mode, mtime, sync) by the restorer. */
export interface TargetFile {
  /** What the job runner writes through; a Node descriptor number for worker threads. */
  readonly handle: number;
  /**
   * Mode, mtime, sync and close.
   * @param mode - the file's mode bits.
   * @param mtimeNs - the file's mtime, nanoseconds since the epoch.
   * @param sync - false: skip the sync (the restorer makes the whole tree durable at once
   *   with `syncFileSystem`); an implementation may sync anyway.
   */
  finish(mode: number, mtimeNs: bigint, sync?: boolean): Promise<void>;
  /** Close without finishing (a spoiled file is removed after). */
  close(): Promise<void>;
}

/** Files in and out, as one object (MemoryFiles and the Node files are both). */
export interface EngineFiles extends SourceFiles {
  readonly out: TargetFiles;
  /** The writer of a created file's handle (in-thread job runner). */
  writer(handle: number): TargetWriter;
}

/** Who and where the engine runs (locks, restore markers, snapshots' hostname). */
export interface EngineHost {
  hostname(): string;
  pid: number;
  /** This user's id, where the system has users (restore leftovers must be ours). */
  uid?: number;
  /** Whether process `pid` on this host is alive (unknown: true, the safe answer). */
  isProcessAlive(pid: number): boolean;
  /**
   * Names the space in which {@link EngineHost.pid} and `isProcessAlive` are meaningful
   * (Linux: the boot id and the PID namespace), where the system can tell. Host names are
   * not unique (two machines, or a container sharing the host's network and name), so a
   * repository lock is judged dead by its pid only when it was written in this same space
   * (SPEC.md §14). Absent: the host name alone decides, as before.
   */
  pidSpace?: string;
  /** Called with bytes processed, so a host can collect garbage early (Node: gc.ts). */
  accountGarbage?(bytes: number): void;
}

/** Starts worker pools; absent: everything runs in the calling thread. */
export interface PoolFactory {
  /** A suggested number of workers (one per core). */
  defaultWorkers(): number;
  /**
   * Start `size` workers. Resolves once every worker is running; rejects when they cannot
   * start (a bundled app without the worker entry, `node -e` …), having started nothing.
   */
  start(size: number, keys: RepoKeys, options: PoolOptions): Promise<EnginePool>;
}

/** Everything the engine runs on. */
export interface EnginePlatform {
  crypto: EngineCrypto;
  files: EngineFiles;
  host: EngineHost;
  workers?: PoolFactory;
  /** The default way to capture live SQLite databases (Node: better-sqlite3). */
  databases?: () => DatabaseCapture;
  /** Called once per process when worker threads could not start and the engine fell back. */
  onFallback?: (message: string) => void;
}
