/**
 * A chat database the app keeps open in WAL mode holds its newest messages in `-wal` until a
 * checkpoint, which SQLite runs only every 1000 pages: for days, on a quiet chat. Its main
 * file does not change meanwhile. A backup must still hold every committed message:
 * - an incremental backup may take the main file over from the previous snapshot unread only
 *   if its `-wal` and `-journal` did not change since either;
 * - a database that cannot be captured (an exclusive-mode writer) is backed up as plain
 *   files with its `-wal` and `-journal`, never as the main file alone;
 * - a database a crashed app left with a hot journal is backed up as of its last commit,
 *   rolled back in a private copy, the app's files untouched.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { backup, restore, sqliteCapture, verify } from '#sdk/backup/index.js';
import { removeDir, tempDir, freshAccess } from './helpers.js';

const require = createRequire(import.meta.url);
const WRITER = fileURLToPath(new URL('./edge-wal-writer.js', import.meta.url));

/** The app: `send()` commits 50 messages (or runs a checkpoint) and resolves to the count. */
function startApp(
  db: string,
  exclusive = false,
): {
  child: ChildProcessWithoutNullStreams;
  send: (line?: string) => Promise<number>;
} {
  const child = spawn(process.execPath, [WRITER, db, ...(exclusive ? ['exclusive'] : [])]);
  let buf = '';
  const waiting: ((n: number) => void)[] = [];
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const n = Number(buf.slice(0, i));
      buf = buf.slice(i + 1);
      waiting.shift()?.(n);
    }
  });
  return {
    child,
    send: (line = 'add') =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin.write(`${line}\n`);
      }),
  };
}

/** Messages in the database at `path` (read-write: an app's open rolls a hot journal back). */
function count(path: string, readonly = true): number {
  const db = new Database(path, { readonly, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS c FROM messages').get() as { c: number }).c;
  } finally {
    db.close();
  }
}

/** Longer than the archiver's ctime margin (2 s): files older than a snapshot are reused. */
const pastMargin = (): Promise<void> => new Promise((r) => setTimeout(r, 2300));

describe('a live WAL chat database whose newest messages are only in -wal', () => {
  let dir: string;
  const apps: ChildProcessWithoutNullStreams[] = [];
  before(async () => {
    dir = await tempDir('bv-edge-wal-');
  });
  after(async () => {
    for (const a of apps) a.kill('SIGKILL');
    await removeDir(dir);
  });

  it('an incremental backup holds the messages committed since the last one', async () => {
    const src = join(dir, 'inc');
    await mkdir(src);
    const app = startApp(join(src, 'msgstore.db'));
    apps.push(app.child);
    await app.send();
    await app.send('checkpoint'); // the main file holds everything, the WAL is empty
    assert.equal(await app.send(), 100);
    await pastMargin();
    const access = freshAccess();
    await backup({ ...access, source: src, init: true });
    await restore({ ...access, target: join(dir, 'inc-out1') });
    assert.equal(count(join(dir, 'inc-out1', 'msgstore.db')), 100);
    // New messages, in the WAL only: the main file keeps its size, times and inode.
    assert.equal(await app.send(), 150);
    await pastMargin();
    const r = await backup({ ...access, source: src });
    await restore({ ...access, target: join(dir, 'inc-out2') });
    assert.deepEqual(await readdir(join(dir, 'inc-out2')), ['msgstore.db']);
    assert.equal(count(join(dir, 'inc-out2', 'msgstore.db')), 150, JSON.stringify(r.warnings));
    // Nothing changed since: the database is taken over unread.
    await pastMargin();
    const r3 = await backup({ ...access, source: src });
    assert.equal(r3.bytesRead, 0);
    await restore({ ...access, target: join(dir, 'inc-out3') });
    assert.equal(count(join(dir, 'inc-out3', 'msgstore.db')), 150);
  });

  it('restore --force over the app folder: the stale -wal and -shm of the database it replaces go too', async () => {
    const src = join(dir, 'saved');
    await mkdir(src);
    const saved = new Database(join(src, 'msgstore.db'));
    saved.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)');
    const ins = saved.prepare('INSERT INTO messages (body) VALUES (?)');
    for (let i = 0; i < 300; i++) ins.run(`saved ${i}`);
    saved.close();
    await writeFile(join(src, 'notes-wal'), 'a file that only looks like a companion');
    const access = freshAccess();
    await backup({ ...access, source: src, init: true });
    // The app's folder now: its own database, killed with 100 messages in its -wal only.
    const target = join(dir, 'app');
    await mkdir(target);
    const app = startApp(join(target, 'msgstore.db'));
    await app.send();
    await app.send('checkpoint');
    assert.equal(await app.send(), 100);
    app.child.kill('SIGKILL');
    await once(app.child, 'exit');
    await writeFile(join(target, 'notes'), 'not a database');
    await writeFile(join(target, 'notes-journal'), 'mine, beside a file that is no database');
    const r = await restore({ ...access, target, force: true });
    assert.deepEqual(r.kept, ['notes', 'notes-journal']);
    assert.deepEqual((await readdir(target)).sort(), [
      'msgstore.db',
      'notes',
      'notes-journal',
      'notes-wal',
    ]);
    assert.equal(count(join(target, 'msgstore.db')), 300);
    assert.ok(
      r.warnings.some((w) => /msgstore\.db-wal/.test(w)),
      JSON.stringify(r.warnings),
    );
  });

  it('a database a crashed app left with a hot journal: backed up as of its last commit, without the journal, the source untouched', async () => {
    const src = join(dir, 'crashed');
    await mkdir(src);
    const db = join(src, 'msgstore.db');
    // Committed: 500 messages. Then a transaction too big for the page cache, so its pages
    // reach the main file before the commit, and a kill: the -journal holds the old pages.
    const crash = spawnSync(process.execPath, [
      '-e',
      `const D = require(${JSON.stringify(require.resolve('better-sqlite3'))});
       const db = new D(${JSON.stringify(db)});
       db.pragma('journal_mode = DELETE'); db.pragma('cache_size = 1');
       db.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)');
       const i = db.prepare('INSERT INTO messages (body) VALUES (?)');
       db.transaction(() => { for (let k = 0; k < 500; k++) i.run('committed ' + 'x'.repeat(200)); })();
       db.exec('BEGIN'); for (let k = 0; k < 3000; k++) i.run('never committed ' + 'y'.repeat(200));
       process.kill(process.pid, 'SIGKILL');`,
    ]);
    assert.equal(crash.signal, 'SIGKILL');
    assert.deepEqual((await readdir(src)).sort(), ['msgstore.db', 'msgstore.db-journal']);
    const sourceBytes = async () => Promise.all([readFile(db), readFile(`${db}-journal`)] as const);
    const before = await sourceBytes();
    // A read-only connection cannot roll a hot journal back, so it cannot read at all.
    assert.throws(() => count(db), /SQLITE_READONLY_ROLLBACK|readonly/i);
    const access = freshAccess();
    const r = await backup({ ...access, source: src, init: true });
    // The backup rolled back a private copy: one committed state, no warning, and the app's
    // files as they were (the app rolls them back itself when it next opens them).
    assert.deepEqual(r.warnings, []);
    assert.equal(r.databases, 1);
    assert.deepEqual(await sourceBytes(), before);
    const out = join(dir, 'crashed-out');
    await restore({ ...access, target: out });
    assert.deepEqual(await readdir(out), ['msgstore.db']);
    // Exactly the committed state, readable without recovery (read-only)...
    assert.equal(count(join(out, 'msgstore.db')), 500);
    // ...and byte for byte what the app's own next open makes of its files.
    const appSide = join(dir, 'crashed-app-side');
    await mkdir(appSide);
    await writeFile(join(appSide, 'msgstore.db'), before[0]);
    await writeFile(join(appSide, 'msgstore.db-journal'), before[1]);
    assert.equal(count(join(appSide, 'msgstore.db'), false), 500);
    assert.deepEqual(
      await readFile(join(out, 'msgstore.db')),
      await readFile(join(appSide, 'msgstore.db')),
    );
    // The restore drill agrees: its private copy may be opened read-write, as the app would.
    const v = await verify(access);
    assert.deepEqual(v.databases, [{ path: 'msgstore.db', integrity: 'ok' }]);
    assert.equal(v.ok, true);
  });

  it('a database an exclusive-mode writer holds: one wait for its lock, then backed up with its -wal, every message kept', async () => {
    const src = join(dir, 'excl');
    await mkdir(src);
    const app = startApp(join(src, 'msgstore.db'), true);
    apps.push(app.child);
    assert.equal(await app.send(), 50);
    const access = freshAccess();
    // The writer never lets go: the capture waits `busyTimeoutMs` once (the lock child), not
    // a second time in this process (which made it 60 s with the default 30 s).
    const busyTimeoutMs = 5000;
    const databases = sqliteCapture({ busyTimeoutMs });
    const t0 = performance.now();
    let r;
    try {
      r = await backup({ ...access, source: src, init: true, databases });
    } finally {
      await databases.close();
    }
    const ms = performance.now() - t0;
    assert.ok(ms >= busyTimeoutMs && ms < 2 * busyTimeoutMs - 500, `waited ${ms} ms`);
    assert.ok(
      r.warnings.some((w) => /could not open the SQLite database/.test(w)),
      JSON.stringify(r.warnings),
    );
    const out = join(dir, 'excl-out');
    await restore({ ...access, target: out });
    assert.deepEqual((await readdir(out)).sort(), ['msgstore.db', 'msgstore.db-wal']);
    assert.equal(count(join(out, 'msgstore.db')), 50);
    const v = await verify(access);
    assert.deepEqual(v.databases, [{ path: 'msgstore.db', integrity: 'ok' }]);
  });

  it('sqliteCapture refuses a wait that is not a whole number of ms', () => {
    for (const busyTimeoutMs of [-1, 1.5, Number.NaN, 2 ** 31]) {
      assert.throws(() => sqliteCapture({ busyTimeoutMs }), { code: 'USAGE' });
    }
  });
});
