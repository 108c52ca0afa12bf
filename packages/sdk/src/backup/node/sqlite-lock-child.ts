/**
 * Child process of sqlite-capture.ts: holds read transactions on SQLite databases so that
 * the backup may read a database file itself, when that file is exactly the pinned state.
 * A separate process, because SQLite's locks are POSIX record locks, which a process drops
 * on a file whenever it closes any descriptor of it — and the backup's workers open and
 * close the files they read. This process never closes a descriptor of a pinned database
 * or its -shm while it holds that database.
 *
 *   node sqlite-lock-child.js
 *
 * One child serves a whole backup (starting Node and better-sqlite3 costs ~0.1 s, once).
 * Requests are JSON lines on stdin, answers JSON lines on stdout, in request order:
 *
 *   {"op":"pin","id":N,"path":P,"busyMs":T}
 *                                 -> {"id":N,"mode":"wal"|"delete"|…,"stable":bool}
 *                                  or {"id":N,"error":"…","busy"?:true}
 *   {"op":"release","id":N}        -> {"id":N,"released":true}
 *
 * `busyMs`: how long to wait for a writer's lock (default 30 s); `busy`: the database stayed
 * locked that long (an exclusive-mode writer, a long write transaction).
 *
 * `stable`: the main file is the pinned state — a rollback-journal database, whose writers
 * wait for our SHARED lock, or a WAL database whose every committed frame is already in the
 * main file, nBackfill == mxFrame in the wal-index (sqlite.org/walformat.html). A database
 * that is not stable is released at once (the caller copies it instead). When stdin closes
 * (the backup ended, or died) every transaction ends and the child exits.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';

interface Held {
  db: Database.Database;
  shm: number | undefined;
  /** The file's device and inode: one connection per file, shared by its requests. */
  file: string;
  refs: number;
}

/** By request id. */
const held = new Map<number, Held>();
/** By file: a second path to a held file (a hard link) must not open a second connection,
 * whose close would drop the first one's locks. */
const byFile = new Map<string, Held>();

function walFullyCheckpointed(shmFd: number): boolean {
  const b = Buffer.alloc(136);
  if (readSync(shmFd, b, 0, 136, 0) < 136) return false;
  if (!b.subarray(0, 48).equals(b.subarray(48, 96))) return false;
  const le = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1;
  const mxFrame = le ? b.readUInt32LE(16) : b.readUInt32BE(16);
  const nBackfill = le ? b.readUInt32LE(96) : b.readUInt32BE(96);
  return mxFrame === nBackfill;
}

function end(h: Held): void {
  try {
    h.db.exec('COMMIT');
  } catch {
    // not in a transaction any more
  }
  try {
    h.db.close();
  } catch {
    // already closed
  }
  if (h.shm !== undefined) closeSync(h.shm);
}

function release(id: number): void {
  const h = held.get(id);
  held.delete(id);
  if (!h || --h.refs > 0) return;
  byFile.delete(h.file);
  end(h);
}

/** The default wait for a writer's lock: a rollback-journal writer holds it while it commits. */
const DEFAULT_BUSY_MS = 30_000;

function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

function pin(id: number, path: string, busyMs: number): object {
  const st = statSync(path);
  const file = `${st.dev}:${st.ino}`;
  const same = byFile.get(file);
  if (same) {
    same.refs += 1;
    held.set(id, same);
    return { id, mode: 'shared', stable: true };
  }
  // A writer in rollback-journal mode holds its lock while it commits: wait for a gap.
  const db = new Database(path, { readonly: true, fileMustExist: true, timeout: busyMs });
  const h: Held = { db, shm: undefined, file, refs: 1 };
  try {
    const mode = String(db.pragma('journal_mode', { simple: true })).toLowerCase();
    db.exec('BEGIN');
    // The first read starts the read transaction: from here on the state is pinned.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    let stable = mode !== 'wal';
    if (mode === 'wal') {
      // Opened after the connection, and closed only after the transaction ends (see above).
      try {
        h.shm = openSync(`${path}-shm`, 'r');
      } catch {
        h.shm = undefined;
      }
      stable = h.shm !== undefined && walFullyCheckpointed(h.shm);
    }
    if (stable) {
      held.set(id, h);
      byFile.set(file, h);
    } else end(h);
    return { id, mode, stable };
  } catch (e) {
    end(h);
    throw e;
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  let id = -1;
  try {
    const req = JSON.parse(line) as { op?: string; id?: number; path?: string; busyMs?: number };
    id = typeof req.id === 'number' ? req.id : -1;
    let answer: object;
    if (req.op === 'pin' && typeof req.path === 'string') {
      answer = pin(id, req.path, req.busyMs ?? DEFAULT_BUSY_MS);
    } else if (req.op === 'release') {
      release(id);
      answer = { id, released: true };
    } else answer = { id, error: 'bad request' };
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  } catch (e) {
    const busy = isBusy(e) ? { busy: true } : {};
    process.stdout.write(`${JSON.stringify({ id, error: (e as Error).message, ...busy })}\n`);
  }
});
lines.on('close', () => {
  for (const h of byFile.values()) end(h);
  process.exit(0);
});
