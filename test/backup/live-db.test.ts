/**
 * A live chat database is backed up as one committed state: a writer process commits small
 * transactions (WAL mode, and rollback-journal mode) while backups run, 20 rounds each.
 * Every restored database opens without recovery, passes `PRAGMA integrity_check`, holds a
 * prefix of the writer's commits (every transaction up to its last complete, each whole),
 * and no -wal or -shm is restored.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { backup, listSnapshots, restore } from '#sdk/backup/index.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { removeDir, tempDir } from './helpers.js';

const WRITER = fileURLToPath(new URL('./live-db-writer.js', import.meta.url));
const ROUNDS = 20;

function startWriter(db: string, mode: 'wal' | 'delete'): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, db, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      if (s.includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`writer exited ${code}: ${err}`)));
  });
}

/** Integrity, and a whole prefix of transactions: 1..max, three messages each. */
function assertConsistent(path: string, what: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `${what}: integrity_check`);
    const r = db
      .prepare('SELECT count(*) n, count(DISTINCT tx) t, max(tx) m, min(tx) lo FROM messages')
      .get() as { n: number; t: number; m: number; lo: number };
    assert.equal(r.lo, 1, `${what}: the first transaction is missing`);
    assert.equal(r.t, r.m, `${what}: transactions 1..${r.m} are not all there (${r.t})`);
    assert.equal(r.n, 3 * r.m, `${what}: a transaction is only partly there`);
    const p = db.prepare('SELECT tx FROM progress WHERE k = 0').get() as { tx: number };
    assert.equal(p.tx, r.m, `${what}: the progress row disagrees with the messages`);
    return r.m;
  } finally {
    db.close();
  }
}

describe('a live SQLite database is captured as one committed state', () => {
  let dir: string;
  const writers: ChildProcess[] = [];
  before(async () => {
    dir = await tempDir('bv-live-');
  });
  after(async () => {
    for (const w of writers) w.kill('SIGKILL');
    await removeDir(dir);
  });

  for (const mode of ['wal', 'delete'] as const) {
    it(`${mode} mode: ${ROUNDS} backups while a writer commits, every restore consistent`, async (t) => {
      const src = join(dir, `chat-${mode}`);
      const { mkdir } = await import('node:fs/promises');
      await mkdir(join(src, 'databases'), { recursive: true });
      const dbPath = join(src, 'databases', 'msgstore.db');
      const writer = await startWriter(dbPath, mode);
      writers.push(writer);
      const storage = new MemoryStorage();
      const backupKey = generateBackupKey();
      let copies = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const r = await backup({
          rollbackProtection: false,
          storage,
          backupKey,
          source: src,
          workers: 2,
          init: true,
        });
        assert.equal(r.databases, 1);
        assert.deepEqual(r.warnings, []);
      }
      writer.kill('SIGKILL');
      const snaps = await listSnapshots({ rollbackProtection: false, storage, backupKey });
      assert.equal(snaps.length, ROUNDS);
      let last = 0;
      for (const s of snaps) {
        const target = join(dir, `out-${mode}-${s.seq}`);
        await restore({
          rollbackProtection: false,
          storage,
          backupKey,
          target,
          snapshotId: s.id,
          workers: 1,
        });
        const files = await readdir(join(target, 'databases'));
        assert.deepEqual(files, ['msgstore.db'], `snapshot ${s.seq}: ${files.join(', ')}`);
        const m = assertConsistent(join(target, 'databases', 'msgstore.db'), `snapshot ${s.seq}`);
        assert.ok(m >= last, `snapshot ${s.seq} holds fewer commits than the one before`);
        if (m > last) copies += 1;
        last = m;
        await rm(target, { recursive: true });
      }
      t.diagnostic(
        `${mode}: last snapshot holds ${last} transactions; ${copies} snapshots saw new commits`,
      );
      assert.ok(copies >= ROUNDS / 2, 'the writer did not write during most backups');
    });
  }

  it('two live databases and a hard link to one: one lock helper pins all three, every restore consistent', async () => {
    const src = join(dir, 'chat-two');
    const { link, mkdir } = await import('node:fs/promises');
    await mkdir(join(src, 'databases'), { recursive: true });
    await mkdir(join(src, 'linked'), { recursive: true });
    const wal = join(src, 'databases', 'msgstore.db');
    const journal = join(src, 'databases', 'wa.db');
    writers.push(await startWriter(wal, 'wal'), await startWriter(journal, 'delete'));
    // A second name for the rollback-journal database: the helper must not open a second
    // connection to the same file, whose close would drop the first one's locks.
    await link(journal, join(src, 'linked', 'wa-link.db'));
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const rounds = 8;
    for (let i = 0; i < rounds; i++) {
      const r = await backup({
        rollbackProtection: false,
        storage,
        backupKey,
        source: src,
        workers: 2,
        init: true,
      });
      assert.equal(r.databases, 3);
      assert.deepEqual(r.warnings, []);
    }
    const snaps = await listSnapshots({ rollbackProtection: false, storage, backupKey });
    for (const s of snaps) {
      const target = join(dir, `out-two-${s.seq}`);
      await restore({
        rollbackProtection: false,
        storage,
        backupKey,
        target,
        snapshotId: s.id,
        workers: 1,
      });
      for (const f of ['databases/msgstore.db', 'databases/wa.db', 'linked/wa-link.db'])
        assertConsistent(join(target, f), `snapshot ${s.seq} ${f}`);
      await rm(target, { recursive: true });
    }
  });
});
