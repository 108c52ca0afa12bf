/**
 * Child process of live-db.test.ts: a chat app writing its database. Commits small
 * transactions (3 messages each, numbered) as fast as it can until killed; prints
 * "ready" once the database exists. Journal mode from argv (wal or delete).
 *
 *   node live-db-writer.js DB_PATH wal|delete
 */
import Database from 'better-sqlite3';

const [path, mode] = process.argv.slice(2);
if (!path || (mode !== 'wal' && mode !== 'delete')) throw new Error('usage: DB_PATH wal|delete');
const db = new Database(path);
db.pragma(`journal_mode = ${mode}`);
db.pragma('busy_timeout = 10000');
db.exec(
  'CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, tx INTEGER, chat INTEGER, body TEXT)',
);
db.exec('CREATE INDEX IF NOT EXISTS by_chat ON messages(chat, tx)');
db.exec('CREATE TABLE IF NOT EXISTS progress (k INTEGER PRIMARY KEY, tx INTEGER)');
const ins = db.prepare('INSERT INTO messages (tx, chat, body) VALUES (?, ?, ?)');
const prog = db.prepare('INSERT OR REPLACE INTO progress (k, tx) VALUES (0, ?)');
const filler = 'x'.repeat(300);
let tx = (db.prepare('SELECT max(tx) m FROM messages').get() as { m: number | null }).m ?? 0;
const commit = db.transaction((n: number) => {
  for (let j = 0; j < 3; j++) ins.run(n, (n * 7 + j) % 50, `${filler} ${n}/${j}`);
  prog.run(n);
});
// A few thousand messages first, so the file spans many pages.
for (let i = 0; i < 1500; i++) commit(++tx);
process.stdout.write('ready\n');
// WAL: as fast as it can. Rollback journal: a commit every ~2 ms, as an app does (a writer
// that never pauses starves every reader there, SQLite's own readers included).
const pause = new Int32Array(new SharedArrayBuffer(4));
for (;;) {
  commit(++tx);
  if (mode === 'delete') Atomics.wait(pause, 0, 0, 2);
}
