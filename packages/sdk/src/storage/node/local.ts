/**
 * A Storage in a local directory: the embedded default, and also what a mounted cloud
 * drive (Dropbox, Google Drive, OneDrive, NFS/SMB) looks like. Object `data/3f/3f2a…` is
 * the file `<root>/data/3f/3f2a…`.
 *
 * Writes are atomic and durable by the classic recipe: write a fresh temp file in the
 * target directory, fsync it, rename it over the final name, fsync the directory (and
 * every directory the write had to create). Only plain files, `rename` and `fsync` are
 * used — no hard links, locks or extended attributes — so it works on the file systems
 * that sync clients and network mounts provide. Where a file system refuses to fsync a
 * directory (some FUSE and network mounts), that step is skipped and the rename is as
 * durable as that file system makes it.
 *
 * Temp files are named `~bvtmp-<random>`: `~` cannot appear in an object name, so they
 * are never listed, never read as objects and can never collide with one. A crash leaves
 * at most a stray temp file beside the object it was writing — harmless, invisible, and
 * removed by {@link LocalStorage.cleanupTemp}.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { BackvaultError, MissingObjectError, UnavailableError } from '../../errors.js';
import { makeDirectories } from '../../node/make-dirs.js';
import {
  assertListPrefix,
  assertObjectName,
  assertRange,
  isObjectName,
  signalView,
  type Storage,
} from '../storage.js';
import { classifyStoreFailure } from '../failure.js';

/** Start of every temp file name; `~` is outside the object-name alphabet. */
export const TEMP_PREFIX = '~bvtmp-';

/** errno codes that mean "this object is not there" when reading. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

/** errno codes of file systems that cannot fsync a directory; durability is theirs then. */
const NO_DIR_FSYNC = new Set([
  'EINVAL',
  'ENOTSUP',
  'EOPNOTSUPP',
  'ENOSYS',
  'EISDIR',
  'EPERM',
  'EBADF',
]);

/** Files stat'ed at once while listing: enough to hide latency on a network mount. */
const LIST_STAT_BATCH = 64;

/** Storage in a local (or mounted) directory. */
export class LocalStorage implements Storage {
  /** The absolute root directory. */
  readonly root: string;
  /** Same as {@link LocalStorage.root}. */
  readonly location: string;

  /**
   * @param rootDir - The repository directory (relative paths are resolved against the
   *   current directory). It need not exist: the first `put` creates it.
   */
  constructor(rootDir: string) {
    this.root = path.resolve(rootDir);
    this.location = this.root;
  }

  /**
   * Cancels whole-object reads (between chunks) of a view; set by signalView (see
   * {@link Storage.withSignal}).
   */
  private signal: AbortSignal | undefined;

  /** A view whose reads stop when `signal` aborts (see {@link Storage.withSignal}). */
  withSignal(signal: AbortSignal): Storage {
    return signalView(this, signal);
  }

  /**
   * Atomically and durably store `data` as `name` (see the module comment).
   * @throws DiskFullError (ENOSPC, EDQUOT), ReadOnlyError (EROFS), PermissionDeniedError
   *   (EACCES, EPERM); UnavailableError when the file system fails otherwise (EIO, …). The
   *   errno code is in the message and the system error is the `cause`.
   * @throws TypeError on an invalid object name.
   */
  async put(name: string, data: Uint8Array): Promise<void> {
    assertObjectName(name);
    const file = this.pathOf(name);
    const dir = path.dirname(file);
    try {
      const created = await makeDirectories(dir);
      if (created !== undefined) await syncNewDirectories(created, dir);
      const temp = path.join(dir, TEMP_PREFIX + randomBytes(12).toString('hex'));
      const handle = await open(temp, 'wx', 0o644);
      try {
        await handle.writeFile(data);
        await handle.sync();
        await handle.close();
        await rename(temp, file);
      } catch (error) {
        await handle.close().catch(() => undefined);
        await unlink(temp).catch(() => undefined);
        throw error;
      }
      await syncDirectory(dir);
    } catch (error) {
      throw this.failure('write', name, await explainMissing(error, dir));
    }
  }

  /**
   * Read a whole object.
   * @throws MissingObjectError when there is no such file.
   * @throws UnavailableError when the file system fails.
   * @throws TypeError on an invalid object name.
   */
  async get(name: string): Promise<Uint8Array> {
    assertObjectName(name);
    try {
      const buffer = await readFile(this.pathOf(name), this.signal ? { signal: this.signal } : {});
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if (this.signal?.aborted) throw this.signal.reason;
      if (ABSENT.has(errnoCode(error) ?? '')) throw new MissingObjectError(name);
      throw this.failure('read', name, error);
    }
  }

  /**
   * Read up to `length` bytes at `offset`, reading only that part of the file.
   * @throws MissingObjectError when there is no such file.
   * @throws UnavailableError when the file system fails.
   * @throws TypeError on an invalid object name; RangeError on a bad offset or length.
   */
  async getRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    assertObjectName(name);
    assertRange(offset, length);
    let handle;
    try {
      handle = await open(this.pathOf(name), 'r');
    } catch (error) {
      if (ABSENT.has(errnoCode(error) ?? '')) throw new MissingObjectError(name);
      throw this.failure('read', name, error);
    }
    try {
      const { size } = await handle.stat();
      const end = Math.min(size, offset + length);
      // Not zero-filled (restore reads ~1 GB through here) and not from Node's shared pool,
      // so callers may transfer `out.buffer` to a worker thread.
      const out = new Uint8Array(Buffer.allocUnsafeSlow(Math.max(0, end - offset)).buffer);
      let done = 0;
      while (done < out.length) {
        const { bytesRead } = await handle.read(out, done, out.length - done, offset + done);
        if (bytesRead === 0) break; // truncated meanwhile: return what exists
        done += bytesRead;
      }
      // A file truncated meanwhile: copy, so no uninitialised bytes travel with the result.
      return done === out.length ? out : out.slice(0, done);
    } catch (error) {
      throw this.failure('read', name, error);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /**
   * Size of an object, or `undefined` when there is no such file.
   * @throws UnavailableError when the file system fails.
   * @throws TypeError on an invalid object name.
   */
  async stat(name: string): Promise<{ size: number } | undefined> {
    assertObjectName(name);
    try {
      const info = await stat(this.pathOf(name));
      return info.isFile() ? { size: info.size } : undefined;
    } catch (error) {
      if (ABSENT.has(errnoCode(error) ?? '')) return undefined;
      throw this.failure('stat', name, error);
    }
  }

  /**
   * Files under the root whose object name starts with `prefix`. Only directories that
   * can hold matching names are read. Files that are not valid object names (temp files,
   * `.DS_Store`, a sync client's `config (1)`) are skipped.
   * @throws UnavailableError when the file system fails.
   * @throws TypeError on an invalid prefix.
   */
  async *list(prefix: string): AsyncIterable<{ name: string; size: number }> {
    assertListPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    yield* this.walk(slash >= 0 ? prefix.slice(0, slash) : '', prefix);
  }

  /**
   * Delete an object; a missing file is not an error.
   * @throws UnavailableError when the file system fails.
   * @throws TypeError on an invalid object name.
   */
  async delete(name: string): Promise<void> {
    assertObjectName(name);
    const file = this.pathOf(name);
    try {
      await unlink(file);
    } catch (error) {
      if (ABSENT.has(errnoCode(error) ?? '')) return;
      throw this.failure('delete', name, error);
    }
    try {
      await syncDirectory(path.dirname(file));
    } catch (error) {
      throw this.failure('delete', name, error);
    }
  }

  /** Nothing to release: every call opens and closes its own files. */
  async close(): Promise<void> {}

  /**
   * Remove temp files left by interrupted writes (a crash, a kill -9). Only files older
   * than `olderThanMs` are removed, so writes in progress in other processes are safe.
   * @returns how many temp files were removed.
   * @throws UnavailableError when the file system fails.
   */
  async cleanupTemp(olderThanMs = 60 * 60 * 1000): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    const visit = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if (ABSENT.has(errnoCode(error) ?? '')) return;
        throw error;
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          await visit(full);
        } else if (entry.isFile() && entry.name.startsWith(TEMP_PREFIX)) {
          try {
            if ((await stat(full)).mtimeMs <= cutoff) {
              await unlink(full);
              removed += 1;
            }
          } catch (error) {
            if (!ABSENT.has(errnoCode(error) ?? '')) throw error;
          }
        }
      }
    };
    try {
      await visit(this.root);
    } catch (error) {
      throw this.failure('clean temp files in', '/', error);
    }
    return removed;
  }

  /**
   * The file that holds object `name` (see {@link Storage.localPath}).
   * @throws TypeError on an invalid object name.
   */
  localPath(name: string): string {
    assertObjectName(name);
    return this.pathOf(name);
  }

  private pathOf(name: string): string {
    return path.join(this.root, ...name.split('/'));
  }

  private async *walk(
    relDir: string,
    prefix: string,
  ): AsyncGenerator<{ name: string; size: number }> {
    const dir = relDir === '' ? this.root : this.pathOf(relDir);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (ABSENT.has(errnoCode(error) ?? '')) return;
      throw this.failure('list', relDir === '' ? '/' : relDir, error);
    }
    const files: string[] = [];
    const subdirs: string[] = [];
    for (const entry of entries) {
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (`${rel}/`.startsWith(prefix) || prefix.startsWith(`${rel}/`)) subdirs.push(rel);
      } else if (entry.isFile() && rel.startsWith(prefix) && isObjectName(rel)) {
        files.push(rel);
      }
    }
    for (let i = 0; i < files.length; i += LIST_STAT_BATCH) {
      const batch = files.slice(i, i + LIST_STAT_BATCH);
      const sizes = await Promise.all(batch.map((name) => this.stat(name)));
      for (const [j, name] of batch.entries()) {
        const info = sizes[j];
        if (info !== undefined) yield { name, size: info.size }; // undefined: deleted meanwhile
      }
    }
    for (const sub of subdirs) yield* this.walk(sub, prefix);
  }

  private failure(action: string, name: string, error: unknown): Error {
    if (error instanceof BackvaultError) return error;
    const code = errnoCode(error);
    // Only system errors mean "the store failed"; anything else is a bug to surface as is.
    if (code === undefined) return error instanceof Error ? error : new Error(String(error));
    const failed = new UnavailableError(`cannot ${action} ${name} in ${this.location}: ${code}`, {
      cause: error,
    });
    // A full, read-only or refused disk says so here already, not only under the retry
    // wrapper: an SDK call without network options uses this store as given, and its
    // caller must not read "unavailable, try later" for a disk that is full.
    const verdict = classifyStoreFailure(failed, this.location);
    return verdict.retry ? failed : (verdict.error as Error);
  }
}

/**
 * A recursive mkdir on a read-only or forbidden disk can fail as ENOENT: then the nearest
 * existing folder's refusal (EROFS, EACCES) is the real error, and one that no retry fixes.
 */
async function explainMissing(error: unknown, dir: string): Promise<unknown> {
  if (errnoCode(error) !== 'ENOENT') return error;
  let at = dir;
  for (;;) {
    try {
      await access(at, constants.F_OK);
      break;
    } catch {
      if (path.dirname(at) === at) return error;
      at = path.dirname(at);
    }
  }
  try {
    await access(at, constants.W_OK);
    return error;
  } catch (refusal) {
    const code = errnoCode(refusal);
    return code === 'EROFS' || code === 'EACCES' || code === 'EPERM' ? refusal : error;
  }
}

function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** fsync a directory so the names created or renamed in it survive a power cut. */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    if (!NO_DIR_FSYNC.has(errnoCode(error) ?? '')) throw error;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * After `mkdir -p` created `first` … `deepest`, fsync each of them and the parent of
 * `first`, so that the new directory entries are durable too, not only the file.
 */
async function syncNewDirectories(first: string, deepest: string): Promise<void> {
  const stop = path.dirname(first);
  for (let dir = deepest; ; dir = path.dirname(dir)) {
    await syncDirectory(dir);
    if (dir === stop || dir === path.dirname(dir)) break;
  }
}
