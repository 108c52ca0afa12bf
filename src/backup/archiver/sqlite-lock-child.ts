/**
 * Child process of sqlite-capture.ts: holds a read transaction on one SQLite database so
 * that the backup may read the database file itself, when that file is exactly the pinned
 * state. A separate process, because SQLite's locks are POSIX record locks, which a process
 * drops on a file whenever it closes any descriptor of it — and the backup's workers open
 * and close the files they read. This process never closes a descriptor of the database or
 * its -shm before it exits.
 *
 *   node sqlite-lock-child.js DB_PATH
 *
 * Prints one JSON line `{"mode":"wal"|"delete"|…,"stable":bool}` once the state is pinned
 * (`stable`: the main file is that state — a rollback-journal database, whose writers wait
 * for our SHARED lock, or a WAL database whose every committed frame is already in the main
 * file, nBackfill == mxFrame in the wal-index, sqlite.org/walformat.html), then waits for
 * its stdin to close, ends the transaction and exits. On any error it prints
 * `{"error":"…"}` and exits 1.
 */
import { openSync, readSync } from 'node:fs';
import Database from 'better-sqlite3';

const [path] = process.argv.slice(2);

function walFullyCheckpointed(shmFd: number): boolean {
  const b = Buffer.alloc(136);
  if (readSync(shmFd, b, 0, 136, 0) < 136) return false;
  if (!b.subarray(0, 48).equals(b.subarray(48, 96))) return false;
  const le = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1;
  const mxFrame = le ? b.readUInt32LE(16) : b.readUInt32BE(16);
  const nBackfill = le ? b.readUInt32LE(96) : b.readUInt32BE(96);
  return mxFrame === nBackfill;
}

try {
  if (!path) throw new Error('usage: sqlite-lock-child.js DB_PATH');
  // A writer in rollback-journal mode holds its lock while it commits: wait for a gap.
  const db = new Database(path, { readonly: true, fileMustExist: true, timeout: 30_000 });
  const mode = String(db.pragma('journal_mode', { simple: true })).toLowerCase();
  db.exec('BEGIN');
  // The first read starts the read transaction: from here on the state is pinned.
  db.prepare('SELECT count(*) FROM sqlite_master').get();
  let stable = mode !== 'wal';
  if (mode === 'wal') {
    // Opened after the connection, and never closed before exit (see above).
    let shm: number | undefined;
    try {
      shm = openSync(`${path}-shm`, 'r');
    } catch {
      shm = undefined;
    }
    stable = shm !== undefined && walFullyCheckpointed(shm);
  }
  process.stdout.write(`${JSON.stringify({ mode, stable })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    try {
      db.exec('COMMIT');
    } finally {
      process.exit(0);
    }
  });
} catch (e) {
  process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`);
  process.exit(1);
}
