/**
 * How the archiver asks for a consistent image of a live SQLite database (engine core; the
 * Node default, with better-sqlite3 and a lock helper process, is node/sqlite-capture.ts).
 */

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
  /**
   * Called once when the backup is done with this capture (after every image it gave has
   * been released), to free what it keeps between captures.
   */
  close?(): Promise<void>;
}

/** Names of the files next to a database that its image replaces: never backed up. */
export function isDatabaseCompanion(name: string): string | undefined {
  const m = /^(.*)-(wal|shm|journal)$/.exec(name);
  return m?.[1];
}
