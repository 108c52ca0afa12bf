/**
 * The Node files (platform/types.ts: EngineFiles): node:fs and node:path, what the engine
 * has always used. Descriptors are plain numbers, so a worker thread writes a restore's
 * file by its handle (`writeSync`), and reads sources itself (`readSync`). Node-only.
 */
import type { BigIntStats } from 'node:fs';
import {
  closeSync,
  fchmodSync,
  lstatSync,
  open as fsOpen,
  fsync,
  futimesSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import {
  chmod,
  lstat,
  lutimes,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  rmdir,
  symlink,
  utimes,
} from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { makeDirectories } from '../../node/make-dirs.js';
import { writePrivateFile } from '../../node/private-file.js';
import { syncFileSystem } from './syncfs.js';
import type {
  DirName,
  EngineFiles,
  EntryInfo,
  EntryKind,
  PathOps,
  SourceReader,
  TargetFile,
  TargetFiles,
  TargetWriter,
} from '../platform/types.js';

const openFd = promisify(fsOpen);
const fsyncFd = promisify(fsync);

/**
 * The time argument for utimes/futimes/lutimes that sets `ns` (nanoseconds since the epoch)
 * to the microsecond, truncated toward the past (what the file system then reports is
 * `floor(ns / 1000) * 1000`).
 *
 * Node takes seconds as a double and libuv keeps whole microseconds of the fraction,
 * truncating. `Number(ns) / 1e9` lands up to ~0.24 µs below the wanted microsecond about
 * half the time (a double near 1.7e9 s resolves ~0.24 µs), so one microsecond was lost.
 * Aiming at the middle of the microsecond leaves room for that error: exact up to the
 * year 2106 (where the resolution reaches 0.5 µs). Node turns a negative number into
 * "now", so times before 1970 go through a Date: to the millisecond (within 1 µs).
 */
export function fsTime(ns: bigint): number | Date {
  if (ns < 0n) {
    const ms = ns / 1_000_000n - (ns % 1_000_000n < 0n ? 1n : 0n);
    return new Date(Number(ms));
  }
  const us = ns / 1000n;
  return Number(us / 1_000_000n) + (Number(us % 1_000_000n) + 0.5) / 1e6;
}

function kindOf(st: BigIntStats): EntryKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'other';
}

function entryInfo(st: BigIntStats): EntryInfo {
  return {
    kind: kindOf(st),
    mode: Number(st.mode) & 0o7777,
    size: st.size,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    uid: Number(st.uid),
    dev: st.dev,
  };
}

/** A synchronous lstat slower than this counts as slow (see {@link adaptiveLstat}). */
export const SLOW_LSTAT_MS = 10;

/**
 * Slow synchronous lstats before the rest go through libuv's pool: more than one, so that a
 * thread preempted once on a busy machine does not send a long-lived app's every later
 * backup the slow way.
 */
export const SLOW_LSTATS = 3;

/**
 * An lstat that makes the system call on this thread until SLOW_LSTATS of them have taken
 * longer than `slowMs`, then goes through libuv's pool for good (see {@link nodeLstat}).
 */
export function adaptiveLstat(
  sync: (path: string) => BigIntStats,
  pooled: (path: string) => Promise<BigIntStats>,
  now: () => number = Date.now,
  slowMs = SLOW_LSTAT_MS,
): { lstat: (path: string) => Promise<EntryInfo>; pooled: () => boolean } {
  let slow = 0;
  let usePool = false;
  return {
    async lstat(path) {
      if (usePool) return entryInfo(await pooled(path));
      const t0 = now();
      try {
        return entryInfo(sync(path));
      } finally {
        if (now() - t0 > slowMs && ++slow >= SLOW_LSTATS) usePool = true;
      }
    },
    pooled: () => usePool,
  };
}

/**
 * An entry's status as the engine sees it.
 *
 * The system call is made on this thread (`lstatSync`): a backup makes two per file (before
 * reading it, and after, to see whether it changed), and through libuv's pool each cost
 * ~60 µs of wall and ~55 µs of CPU here (thread hand-off and wake-up), against ~4 µs
 * direct — measured on 20,000 small files, 1.26 s against 0.08 s; the walk awaits them
 * one by one, so they were a quarter of that backup's main thread. On a file system where
 * they take longer than SLOW_LSTAT_MS (a network or FUSE mount), the rest go through the
 * pool, so this thread keeps serving timers, progress and aborts while they wait. The walk
 * yields to the event loop regularly (archiver.ts), as these no longer do.
 */
export const nodeLstat = adaptiveLstat(
  (path) => lstatSync(path, { bigint: true }),
  (path) => lstat(path, { bigint: true }),
).lstat;

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const nodePath: PathOps = { sep, join, dirname, basename, relative, resolve };

const nodeOut: TargetFiles = {
  path: nodePath,
  readdir: (path) => readdir(path),
  lstat: nodeLstat,
  readFile: async (path) => new Uint8Array(await readFile(path)),
  async mkdir(path, opts) {
    // Not Node's recursive mkdir, which can spin forever (node/make-dirs.ts).
    if (opts?.recursive) await makeDirectories(path, opts.mode);
    else await mkdir(path, opts);
  },
  async writeNewFile(path, data) {
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  async writeFileAtomic(path, data) {
    await writePrivateFile(path, data);
  },
  async create(path): Promise<TargetFile> {
    const fd = await openFd(path, 'wx', 0o600);
    return {
      handle: fd,
      // The fsync runs on libuv's thread pool, overlapping the writes. (Measured: doing it in
      // the worker threads instead halved restore speed, as each fsync then blocks a thread
      // that should be decrypting.) Mode, times and close are in-memory inode updates of a
      // few microseconds, done here: on the pool (4 threads, first in first out) each queued
      // behind other files' fsyncs, and so did the creates the next batches waited for
      // (session 13: batches of the 1 GB bench chat spent 2.3-4 s, summed, waiting for
      // their files to be created). Now a file costs the pool two jobs, not five.
      async finish(mode, mtimeNs, sync = true) {
        const t = fsTime(mtimeNs);
        try {
          fchmodSync(fd, mode);
          futimesSync(fd, t, t);
          if (sync) await fsyncFd(fd);
        } finally {
          closeSync(fd);
        }
      },
      close: async () => closeSync(fd),
    };
  },
  async symlink(target, path, mtimeNs) {
    await symlink(target, path);
    await lutimes(path, fsTime(mtimeNs), fsTime(mtimeNs));
  },
  async setMeta(path, mode, mtimeNs) {
    await chmod(path, mode);
    await utimes(path, fsTime(mtimeNs), fsTime(mtimeNs));
  },
  sync: fsyncPath,
  syncFileSystem,
  rename: (from, to) => rename(from, to),
  rmdir: (path) => rmdir(path),
  rm: removeTree,
};

/**
 * Remove a file or a whole tree; absent is fine. A folder without write or search
 * permission for its owner (a restored read-only folder: `chmod a-w`) cannot be emptied by
 * a user whom permissions bind: on EACCES/EPERM every folder below is given u+rwx (never
 * following symlinks) and the removal tried again.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
    return;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw e;
  }
  const open = async (dir: string): Promise<void> => {
    const st = await lstat(dir).catch(() => undefined);
    if (!st?.isDirectory()) return;
    if ((st.mode & 0o700) !== 0o700) await chmod(dir, (st.mode & 0o7777) | 0o700);
    for (const name of await readdir(dir)) await open(join(dir, name));
  };
  await open(path);
  await rm(path, { recursive: true, force: true });
}

/** Reads a source file with readSync (the worker threads' and the in-thread runner's way). */
function openReader(path: string): SourceReader {
  const fd = openSync(path, 'r');
  return {
    readInto: (buf, at, length, position) => readSync(fd, buf, at, length, position),
    close: () => closeSync(fd),
  };
}

/** Writes by descriptor (a restore's created file). */
export function fdWriter(fd: number): TargetWriter {
  return {
    writeAt(data, position) {
      let done = 0;
      while (done < data.length)
        done += writeSync(fd, data, done, data.length - done, position + done);
    },
  };
}

/** The Node file system. */
export const nodeFiles: EngineFiles = {
  path: nodePath,
  async readdir(path): Promise<DirName[]> {
    const raw = await readdir(path, { encoding: 'buffer' });
    return raw.map((b) => {
      const name = b.toString('utf8');
      return Buffer.from(name, 'utf8').equals(b) ? { name } : { name, raw: new Uint8Array(b) };
    });
  },
  lstat: nodeLstat,
  async readlink(path) {
    // As bytes: a string readlink replaces bytes that are not UTF-8 with U+FFFD, and the
    // link was restored pointing elsewhere without a word.
    const raw = await readlink(path, { encoding: 'buffer' });
    const target = raw.toString('utf8');
    if (Buffer.from(target, 'utf8').equals(raw)) return target;
    throw Object.assign(
      new Error(`EILSEQ: symlink target is not valid UTF-8, readlink '${path}'`),
      {
        code: 'EILSEQ',
        raw: new Uint8Array(raw),
      },
    );
  },
  async read(path, position, length) {
    const fh = await open(path, 'r');
    try {
      const buf = new Uint8Array(length);
      const { bytesRead } = await fh.read(buf, 0, length, position);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  },
  openRead: openReader,
  out: nodeOut,
  writer: fdWriter,
};
