/**
 * Capturing a live SQLite database as one committed state while other processes keep
 * writing it (a chat app does, all the time).
 *
 * Reading the main file and its `-wal` at different moments gives a torn database ("row N
 * missing from index"). So for every file with the SQLite header the backup asks a
 * {@link DatabaseCapture} for a consistent image. The default one, {@link sqliteCapture},
 * pins one committed state with a read transaction (WAL readers see their snapshot,
 * rollback-journal writers wait for the SHARED lock):
 *
 * - first in a small child process (sqlite-lock-child.ts). When the main file is exactly
 *   the pinned state — a rollback-journal database, or a WAL database whose every committed
 *   frame is already checkpointed into it — the backup reads the file itself while the
 *   child holds the transaction: no extra read at all (the backup's change check on the
 *   file's size, times and inode still guards the read);
 * - otherwise (committed pages still only in the WAL) its own read-only connection copies
 *   that state with SQLite's online backup API, page for page and in one step, into a
 *   private temporary file (in a fresh 0700 directory) that is read instead and deleted
 *   afterwards: one extra read of the database by SQLite and one write of the copy. Page
 *   for page, so unchanged pages still deduplicate in page-aligned chunks.
 *
 * Why the lock lives in another process: SQLite's locks are POSIX record locks, which a
 * process loses on a file as soon as it closes ANY descriptor of that file — and the
 * backup's workers open and close the files they read. A read transaction held in this
 * process while its workers read the database file (or while it peeks at the -shm) is
 * silently dropped, and a writer or checkpointer then changes the file under the reader
 * (measured: torn copies in both WAL and rollback-journal modes).
 *
 * The image never needs its `-wal` or `-journal` (their committed content is in it), and
 * `-shm` is a memory map: the backup leaves all three out.
 *
 * Node-only. A failure to open the database (corrupt, not really SQLite, locked by an
 * exclusive-mode writer) returns `undefined`: the file is then read as an ordinary file,
 * and the caller warns that it may not be consistent.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, lstat, mkdtemp, open, rm } from 'node:fs/promises';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { UsageError } from '../../errors.js';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import type { CapturedDatabase, DatabaseCapture } from '../archiver/databases.js';

export type { CapturedDatabase, DatabaseCapture } from '../archiver/databases.js';
export { isDatabaseCompanion } from '../archiver/databases.js';

/** The default capture, with its lock helper process under the caller's control. */
export interface SqliteCapture extends DatabaseCapture {
  /** Start the lock helper process now (it otherwise starts on the first capture). */
  warm(): void;
  /** End the lock helper process (every image must have been released). Idempotent. */
  close(): Promise<void>;
}

interface BetterSqlite3Db {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(source: string): unknown;
  prepare(source: string): { get(): unknown };
  backup(destination: string, options?: { progress?: () => number }): Promise<unknown>;
  close(): void;
}

/**
 * The lock-holding child process (sqlite-lock-child.ts), one per capture object: started
 * on first use, serving every database of the backup, ended by {@link LockHelper.close}
 * (or by this process's exit: its stdin closes).
 */
class LockHelper {
  private child: ChildProcessWithoutNullStreams | undefined;
  private exited: Promise<void> | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, (answer: ChildAnswer | undefined) => void>();

  private start(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const script = fileURLToPath(new URL('./sqlite-lock-child.js', import.meta.url));
    const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.child = child as unknown as ChildProcessWithoutNullStreams;
    this.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const failAll = (): void => {
      for (const done of this.waiting.values()) done(undefined);
      this.waiting.clear();
      this.child = undefined;
    };
    child.once('error', failAll);
    child.once('exit', failAll);
    // Idle, the child must not keep this process alive (an app that made a capture and
    // never closed it still exits); `request` refs it while answers are awaited.
    this.idle(true);
    // A broken pipe (the child died) surfaces as failed requests, never as a crash.
    child.stdin.on('error', () => {});
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let answer: ChildAnswer | undefined;
        try {
          answer = JSON.parse(line) as ChildAnswer;
        } catch {
          answer = undefined;
        }
        const done = answer && this.waiting.get(answer.id);
        if (answer && done) {
          this.waiting.delete(answer.id);
          done(answer);
        }
      }
    });
    return this.child;
  }

  /** Let this process exit while nothing is awaited from the child (or not). */
  private idle(yes: boolean): void {
    const c = this.child;
    if (!c) return;
    const handles = [c, c.stdin, c.stdout] as unknown as { ref(): void; unref(): void }[];
    for (const h of handles) {
      if (yes) h.unref();
      else h.ref();
    }
  }

  /** Start the child now, so that its start-up overlaps other work. */
  warm(): void {
    this.start();
  }

  private request(
    req: { op: 'pin'; path: string; busyMs: number } | { op: 'release'; id: number },
  ): Promise<ChildAnswer | undefined> {
    const child = this.start();
    const id = req.op === 'release' ? req.id : this.nextId++;
    this.idle(false);
    return new Promise((resolve) => {
      this.waiting.set(id, (answer) => {
        if (this.waiting.size === 0) this.idle(true);
        resolve(answer);
      });
      child.stdin.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  /**
   * Pin the database's state in the child and, when the main file is exactly that state,
   * hand it over to be read directly while the child holds it: no copy at all. Returns
   * undefined when the file is not that state (committed frames still only in the WAL) or
   * the child cannot pin it; the caller then copies. `'busy'`: a writer held its lock for
   * all of `busyMs` (the caller must not wait as long again).
   */
  async hold(path: string, busyMs: number): Promise<CapturedDatabase | 'busy' | undefined> {
    const answer = await this.request({ op: 'pin', path, busyMs });
    if (answer?.busy) return 'busy';
    if (!answer?.stable) return undefined;
    let released = false;
    return {
      path,
      copied: false,
      release: async () => {
        if (released) return;
        released = true;
        if (this.child) await this.request({ op: 'release', id: answer.id });
      },
    };
  }

  /** End every transaction and the child. Idempotent. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.idle(false);
    child.stdin.end();
    await this.exited;
  }
}

/** One answer line of the child. */
interface ChildAnswer {
  id: number;
  mode?: string;
  stable?: boolean;
  released?: boolean;
  error?: string;
  /** The pin waited its whole `busyMs` for a writer's lock. */
  busy?: boolean;
}

/**
 * Copy the header fields the backup API bumps in its destination — file change counter
 * (bytes 24-27), schema cookie (40-43), version-valid-for (92-95) — from `from` to `to`.
 */
async function copyChangeCounter(from: string, to: string): Promise<void> {
  const src = await open(from, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(100);
    if ((await src.read(head, 0, 100, 0)).bytesRead < 100) return;
  } finally {
    await src.close();
  }
  const dst = await open(to, 'r+');
  try {
    await dst.write(head, 24, 4, 24);
    await dst.write(head, 40, 4, 40);
    await dst.write(head, 92, 4, 92);
  } finally {
    await dst.close();
  }
}

/**
 * better-sqlite3, an optional peer dependency of the device SDK (a native module the SDK
 * does not force on every app). Without it a live database cannot be read as one committed
 * state, and the backup says so instead of copying a file that may be torn.
 */
async function loadBetterSqlite3(
  path: string,
): Promise<new (path: string, o: object) => BetterSqlite3Db> {
  try {
    const mod = (await import('better-sqlite3')) as unknown as {
      default: new (path: string, o: object) => BetterSqlite3Db;
    };
    return mod.default;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
    throw new UsageError(
      `a SQLite database is in the source (${path}) and better-sqlite3 is not installed, so it cannot be read as one committed state`,
      'Install better-sqlite3 in the app (an optional dependency of backvault), give the backup your own `databases` capture, or pass `databases: false` if nothing writes the databases during a backup.',
    );
  }
}

/** Options of {@link sqliteCapture}. */
export interface SqliteCaptureOptions {
  /** Where the private copies of WAL databases go (a fresh 0700 folder). Default: the OS's. */
  readonly tempDir?: string;
  /**
   * How long (ms) to wait for a writer's lock before backing the database up as plain files
   * with its `-wal` / `-journal` (and a warning). A rollback-journal writer holds the lock
   * while it commits; an exclusive-mode writer holds it for good. Default 30 000; an app
   * with a short background window may want less. The wait is paid once per database.
   */
  readonly busyTimeoutMs?: number;
}

/** The default of {@link SqliteCaptureOptions.busyTimeoutMs}. */
const DEFAULT_BUSY_TIMEOUT_MS = 30_000;

/**
 * The default capture: better-sqlite3, loaded on first use (it is a native module; apps
 * that give their own capture never load it).
 * @throws UsageError if `busyTimeoutMs` is not a whole number of ms from 0 to 2^31 - 1.
 */
export function sqliteCapture(opts: SqliteCaptureOptions = {}): SqliteCapture {
  const busyMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isSafeInteger(busyMs) || busyMs < 0 || busyMs > 0x7fffffff) {
    throw new UsageError(
      `busyTimeoutMs must be a whole number of milliseconds from 0 to 2147483647, not ${String(busyMs)}`,
    );
  }
  let Database: (new (path: string, o: object) => BetterSqlite3Db) | undefined;
  const helper = new LockHelper();
  return {
    warm: () => helper.warm(),
    close: () => helper.close(),
    async capture(path) {
      // The free way first: a lock-holding child, when the main file is the pinned state.
      const held = await helper.hold(path, busyMs);
      // A writer kept its lock for the whole wait: waiting again here would only double it.
      if (held === 'busy') return undefined;
      if (held) return held;
      if (!Database) Database = await loadBetterSqlite3(path);
      let db: BetterSqlite3Db;
      try {
        // A writer in rollback-journal mode holds its lock while it commits: wait for a gap.
        db = new Database(path, { readonly: true, fileMustExist: true, timeout: busyMs });
      } catch {
        return undefined;
      }
      let tmp: string | undefined;
      const release = async (): Promise<void> => {
        try {
          db.exec('COMMIT');
        } catch {
          // Not in a transaction any more.
        }
        try {
          db.close();
        } catch {
          // Already closed.
        }
        if (tmp) await rm(tmp, { recursive: true, force: true });
        tmp = undefined;
      };
      try {
        db.exec('BEGIN');
        // The first read starts the read transaction: from here on the state is pinned.
        db.prepare('SELECT count(*) FROM sqlite_master').get();
        tmp = await mkdtemp(join(opts.tempDir ?? tmpdir(), 'backvault-db-'));
        const copy = join(tmp, `db-${randomBytes(6).toString('hex')}`);
        // The online backup API, page for page, inside our read transaction.
        // One step for every page: the copy is read in one read transaction, whatever the
        // writers do (a backup in steps restarts, or tears, when the source changes).
        await db.backup(copy, { progress: () => 0x7fffffff });
        // The copy is complete: end the read transaction before touching the database
        // file (see above), then give the copy the source's change counter, schema cookie
        // and version-valid-for number (the only bytes the backup API writes differently),
        // so that a database nobody wrote restores byte-identical. The values come from
        // the file as it is now: for a database being written they may be a commit newer
        // than the pages, which SQLite tolerates (they are cache-validation counters).
        db.exec('COMMIT');
        db.close();
        await copyChangeCounter(path, copy);
        return { path: copy, copied: true, release };
      } catch (error) {
        await release();
        // A writer that stopped mid-transaction left a hot journal, which only a
        // connection that may write can roll back: roll back a private copy instead.
        if ((error as { code?: unknown }).code === 'SQLITE_READONLY_ROLLBACK') {
          return rolledBackCopy(path, Database, opts.tempDir);
        }
        return undefined;
      }
    },
  };
}

/** What identifies one version of a file: undefined when it is absent. */
async function fileVersion(path: string): Promise<string | undefined> {
  try {
    const st = await lstat(path, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The last committed state of a database whose writer stopped in the middle of a
 * transaction (the app crashed, or was killed, after it had written changed pages into the
 * main file): the `-journal` beside it is hot, holding the pages to put back. The next
 * connection that may write rolls it back; a read-only one cannot, and SQLite refuses it
 * every read (SQLITE_READONLY_ROLLBACK). The backup never writes the app's files, so it
 * copies the database and its journal into a private 0700 folder and lets SQLite roll the
 * copy back there: the state the app itself will find when it next opens the database,
 * which then restores without a journal and opens without recovery.
 *
 * Nobody may hold a lock on a database with a hot journal, so nothing should write the
 * pair while it is copied; if either file changed all the same (the app came back and
 * rolled back itself), it returns undefined and the caller copies them as plain files, with
 * a warning, as before.
 */
async function rolledBackCopy(
  path: string,
  Database: new (path: string, o: object) => BetterSqlite3Db,
  tempDir: string | undefined,
): Promise<CapturedDatabase | undefined> {
  const journal = `${path}-journal`;
  const tmp = await mkdtemp(join(tempDir ?? tmpdir(), 'backvault-db-'));
  const release = async (): Promise<void> => {
    await rm(tmp, { recursive: true, force: true });
  };
  try {
    const before = [await fileVersion(path), await fileVersion(journal)];
    if (before[1] === undefined) {
      await release();
      return undefined;
    }
    const copy = join(tmp, `db-${randomBytes(6).toString('hex')}`);
    await copyFile(path, copy);
    await copyFile(journal, `${copy}-journal`);
    const after = [await fileVersion(path), await fileVersion(journal)];
    if (before[0] !== after[0] || before[1] !== after[1]) {
      await release();
      return undefined;
    }
    const db = new Database(copy, { fileMustExist: true });
    try {
      // The first read finds the hot journal and rolls the copy back.
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    } finally {
      db.close();
    }
    return { path: copy, copied: true, release };
  } catch {
    await release();
    return undefined;
  }
}
