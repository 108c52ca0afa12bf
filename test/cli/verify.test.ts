/**
 * The restore drill: `backvault verify` proves a snapshot restores (every blob read,
 * every file rebuilt, every SQLite database integrity-checked) without touching the app,
 * records it in the device profile (`status` shows it); `backup --verify` runs it after the
 * backup. A damaged database is exit 4 with its path named.
 */
import assert from 'node:assert/strict';
import { mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CliHarness, parseJsonOutput } from './cli-harness.js';

describe('backvault verify (restore drill)', () => {
  let h: CliHarness;
  let env: Record<string, string>;
  before(async () => {
    h = await CliHarness.create('backvault-verify-');
    await mkdir(h.path('chat', 'media'), { recursive: true });
    const db = new Database(h.path('chat', 'msgstore.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE m (id INTEGER PRIMARY KEY, body TEXT)');
    const ins = db.prepare('INSERT INTO m (body) VALUES (?)');
    for (let i = 0; i < 2000; i++) ins.run(`message ${i} `.repeat(10));
    db.close();
    await writeFile(h.path('chat', 'media', 'a.jpg'), 'photo');
    env = { TZ: 'UTC' };
    const r = await h.run(
      ['enable', '--device', h.path('dev'), '--repo', h.path('cloud'), '--recovery-key', '--json'],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => h.dispose());

  it('backup --verify, then verify, record the drill; status shows it', async () => {
    const before = (await readdir(tmpdir())).filter((n) => n.startsWith('backvault-verify-'));
    const b = await h.run(['backup', 'chat', '--device', h.path('dev'), '--verify', '--json'], {
      env,
    });
    assert.equal(b.code, 0, b.stderr);
    const out = parseJsonOutput(b) as {
      verified: { ok: boolean; databases: { path: string; integrity: string }[] };
    };
    assert.equal(out.verified.ok, true);
    assert.deepEqual(out.verified.databases, [{ path: 'msgstore.db', integrity: 'ok' }]);
    const v = await h.run(['verify', '--device', h.path('dev')], { env });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^snapshot [0-9a-f]{8} \(seq 1\) restores: 2 files in 1 folder/m);
    assert.match(v.stdout, /1 SQLite database: integrity_check ok/);
    const s = await h.run(['status', '--device', h.path('dev')], { env });
    assert.match(
      s.stdout,
      /last verified: snapshot [0-9a-f]{8} \(seq 1\) at .*: restores, databases sound/,
    );
    const after = (await readdir(tmpdir())).filter((n) => n.startsWith('backvault-verify-'));
    assert.deepEqual(after, before, 'the drill left its temporary folder behind');
  });

  it('a damaged database is exit 4, named, and recorded as failed', async () => {
    // Garbage in the middle of the database file (the header stays valid): SQLite cannot
    // copy it consistently, the backup keeps its bytes, the drill catches it.
    const fh = await open(h.path('chat', 'msgstore.db'), 'r+');
    await fh.write(Buffer.alloc(4096, 0xa5), 0, 4096, 8192);
    await fh.close();
    await h.run(['backup', 'chat', '--device', h.path('dev')], { env });
    const v = await h.run(['verify', '--device', h.path('dev'), '--snapshot', 'latest'], { env });
    assert.equal(v.code, 4, v.stdout + v.stderr);
    assert.match(v.stdout, /1 FAILED/);
    assert.match(v.stdout, /msgstore\.db: /);
    assert.match(
      v.stderr,
      /^CORRUPT: 1 database of snapshot [0-9a-f]{8} failed its integrity check/m,
    );
    const s = await h.run(['status', '--device', h.path('dev'), '--json'], { env });
    assert.equal((parseJsonOutput(s).lastVerified as { ok: boolean }).ok, false);
  });
});
