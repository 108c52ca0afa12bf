/**
 * Child process of edge-live-db.test.ts: a chat app that keeps its WAL database open, never
 * checkpointing on its own (SQLite's automatic checkpoint waits for 1000 pages; a chat adding
 * a few messages an hour stays below for days). Adds 50 messages per line on stdin and
 * answers each line with the count.
 *
 *   node edge-wal-writer.js DB_PATH [exclusive]
 */
import Database from 'better-sqlite3';
import { createInterface } from 'node:readline';

const [path, locking] = process.argv.slice(2);
if (!path) throw new Error('usage: DB_PATH [exclusive]');
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('wal_autocheckpoint = 0');
if (locking === 'exclusive') db.pragma('locking_mode = EXCLUSIVE');
db.exec('CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, body TEXT)');
const ins = db.prepare('INSERT INTO messages (body) VALUES (?)');
let n = 0;
const add = db.transaction((k: number) => {
  for (let i = 0; i < k; i++) ins.run(`message ${n++}`);
});
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'checkpoint') db.pragma('wal_checkpoint(TRUNCATE)');
  else add(50);
  process.stdout.write(`${n}\n`);
}
db.close();
