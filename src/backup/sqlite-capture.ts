/**
 * Capturing a live SQLite database as one committed state while other processes keep
 * writing it (a chat app does, all the time).
 *
 * Reading the main file and its `-wal` at different moments gives a torn database ("row N
 * missing from index"). So for every file with the SQLite header the backup asks a
 * {@link DatabaseCapture} for a consistent image. The default one, {@link sqliteCapture},
 * opens its own read-only connection (better-sqlite3), starts a read transaction (which
 * pins one committed state: WAL readers see their snapshot, rollback-journal writers wait
 * for our SHARED lock) and copies that state with SQLite's online backup API, page for
 * page and in one step, into a private temporary file (in a fresh 0700 directory) that is
 * read instead and deleted afterwards. Page for page, so unchanged pages still deduplicate
 * in page-aligned chunks. Cost: one read of the database by SQLite and one write of the
 * copy, which the backup then reads from the page cache.
 *
 * Why never the database file itself, even when it is stable: SQLite's locks are POSIX
 * record locks, which a process loses on a file as soon as it closes ANY descriptor of that
 * file — and the backup's workers open and close the files they read. Reading the database
 * file (or its -shm) in this process would silently drop the read transaction's locks, and
 * a writer or checkpointer would then change it under the reader (measured: torn copies in
 * both WAL and rollback-journal modes). Only SQLite's own descriptors touch it here.
 *
 * The image never needs its `-wal` or `-journal` (their committed content is in it), and
 * `-shm` is a memory map: the backup leaves all three out.
 *
 * Node-only. A failure to open the database (corrupt, not really SQLite, locked by an
 * exclusive-mode writer) returns `undefined`: the file is then read as an ordinary file,
 * and the caller warns that it may not be consistent.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A consistent image of one database, to read while it is held. */
export interface CapturedDatabase {
  /** The file to read (a private copy, or the database itself if the capture knows it is safe). */
  readonly path: string;
  /** True when `path` is a copy. */
  readonly copied: boolean;
  /** End the read transaction and delete the copy. Idempotent. */
  release(): Promise<void>;
}

/**
 * How the backup gets a consistent image of a SQLite database. An app that holds its
 * database open can give its own (for example by pausing its writer, or with its own
 * SQLite binding's backup API); the default opens a read-only connection of its own.
 */
export interface DatabaseCapture {
  /**
   * A consistent image of the database at `path`, or `undefined` to read the file as it is
   * (the backup then warns). Must not return before the image is pinned.
   */
  capture(path: string): Promise<CapturedDatabase | undefined>;
}

/** Names of the files next to a database that its image replaces: never backed up. */
export function isDatabaseCompanion(name: string): string | undefined {
  const m = /^(.*)-(wal|shm|journal)$/.exec(name);
  return m?.[1];
}

interface BetterSqlite3Db {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(source: string): unknown;
  prepare(source: string): { get(): unknown };
  backup(destination: string, options?: { progress?: () => number }): Promise<unknown>;
  close(): void;
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
 * The default capture: better-sqlite3, loaded on first use (it is a native module; apps
 * that give their own capture never load it).
 */
export function sqliteCapture(opts: { tempDir?: string } = {}): DatabaseCapture {
  let Database: (new (path: string, o: object) => BetterSqlite3Db) | undefined;
  return {
    async capture(path) {
      if (!Database) {
        const mod = (await import('better-sqlite3')) as unknown as {
          default: new (path: string, o: object) => BetterSqlite3Db;
        };
        Database = mod.default;
      }
      let db: BetterSqlite3Db;
      try {
        // A writer in rollback-journal mode holds its lock while it commits: wait for a gap.
        db = new Database(path, { readonly: true, fileMustExist: true, timeout: 30_000 });
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
      } catch {
        await release();
        return undefined;
      }
    },
  };
}
