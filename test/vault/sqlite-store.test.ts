import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVaultStoreConformance } from './store-conformance.js';
import { openSqliteStore } from '#vault/vault/sqlite-store.js';
import { ABSENT } from '#vault/vault/store.js';

runVaultStoreConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bv-store-'));
  const path = join(dir, 'vault.sqlite');
  return {
    store: await openSqliteStore(path),
    reopen: () => openSqliteStore(path),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('sqlite store: a database from before the journal', () => {
  it('gains the sealed_journal column; old rows read as null, new writes keep it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-store-old-'));
    const path = join(dir, 'vault.sqlite');
    try {
      const db = new Database(path);
      db.exec(`
        CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) STRICT;
        INSERT INTO meta (k, v) VALUES ('seq', 1);
        CREATE TABLE records (
          account TEXT PRIMARY KEY, version INTEGER NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('active', 'locked')),
          failures INTEGER NOT NULL, limit_ INTEGER NOT NULL, login_epoch INTEGER NOT NULL,
          credential_id TEXT NOT NULL, sealed_record BLOB, key_envelope BLOB,
          key_proof_verifier BLOB NOT NULL, last_start_at INTEGER, updated_at INTEGER NOT NULL
        ) STRICT;
        INSERT INTO records VALUES ('old', 1, 'active', 2, 10, 1, 'c', x'01', x'02', x'03', NULL, 5);
      `);
      db.close();
      const store = await openSqliteStore(path);
      try {
        const got = await store.get('old');
        assert.equal(got?.failures, 2);
        assert.equal(got?.sealedJournal, null);
        assert.equal(
          await store.compareAndSwap('old', got!.version, {
            ...got!,
            sealedJournal: new Uint8Array([7]),
          }),
          true,
        );
        assert.deepEqual([...(await store.get('old'))!.sealedJournal!], [7]);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite store: writes that fail are answered UNAVAILABLE and change nothing', () => {
  const record = (failures: number, state = 'active') => ({
    state: state as 'active',
    failures,
    limit: 10,
    loginEpoch: 1,
    credentialId: 'c',
    sealedRecord: new Uint8Array([1, 2, 3]),
    keyEnvelope: new Uint8Array([4, 5]),
    keyProofVerifier: new Uint8Array(32).fill(9),
    lastStartAt: null,
    updatedAt: 1,
    sealedJournal: null,
  });
  // Read from the error itself: the vault's errors come from its own copy of the SDK.
  const unavailable = (message: RegExp) => (e: unknown) =>
    (e as { code?: unknown }).code === 'UNAVAILABLE' && message.test((e as Error).message);

  it('another process holding the write lock past the busy timeout: UNAVAILABLE, then the retry works', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-store-busy-'));
    const path = join(dir, 'vault.sqlite');
    const store = await openSqliteStore(path);
    const other = new Database(path);
    try {
      assert.equal(await store.compareAndSwap('a', ABSENT, record(0)), true);
      const v = (await store.get('a'))!.version;
      other.exec('BEGIN IMMEDIATE');
      await assert.rejects(
        store.compareAndSwap('a', v, record(1)),
        unavailable(/locked by another process/),
      );
      other.exec('ROLLBACK');
      assert.equal((await store.get('a'))!.failures, 0);
      assert.equal(await store.compareAndSwap('a', v, record(1)), true);
      assert.equal((await store.get('a'))!.failures, 1);
    } finally {
      other.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a write lock held briefly by another process is taken soon after it is released', async () => {
    // SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … ms between attempts: a
    // lock held 60 ms would be retried at 53 and then 78 ms. The writer retries every
    // ≤ 2 ms itself, so the write lands right after the release (plus one commit).
    const dir = await mkdtemp(join(tmpdir(), 'bv-store-brief-'));
    const path = join(dir, 'vault.sqlite');
    const store = await openSqliteStore(path);
    const other = new Database(path);
    try {
      assert.equal(await store.compareAndSwap('a', ABSENT, record(0)), true);
      const took: number[] = [];
      for (let i = 0; i < 3; i++) {
        const v = (await store.get('a'))!.version;
        other.exec('BEGIN IMMEDIATE');
        const t0 = performance.now();
        setTimeout(() => other.exec('ROLLBACK'), 60);
        assert.equal(await store.compareAndSwap('a', v, record(i + 1)), true);
        took.push(performance.now() - t0);
      }
      assert.ok(Math.min(...took) < 75, `took ${took.map((t) => t.toFixed(1)).join(', ')} ms`);
      assert.equal((await store.get('a'))!.failures, 3);
    } finally {
      other.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a write SQLite refuses fails its whole batch and leaves the record as it was', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-store-failed-'));
    const path = join(dir, 'vault.sqlite');
    const store = await openSqliteStore(path);
    try {
      assert.equal(await store.compareAndSwap('a', ABSENT, record(0)), true);
      const v = (await store.get('a'))!.version;
      // Issued in the same turn: one batch, one transaction; the CHECK on `state` fails it.
      const [good, bad] = await Promise.allSettled([
        store.compareAndSwap('a', v, record(1)),
        store.compareAndSwap('b', ABSENT, record(0, 'bogus')),
      ]);
      for (const r of [good, bad]) {
        assert.equal(r.status, 'rejected');
        assert.ok(unavailable(/write failed/)((r as PromiseRejectedResult).reason));
      }
      assert.equal((await store.get('a'))!.version, v);
      assert.equal((await store.get('a'))!.failures, 0);
      assert.equal(await store.get('b'), undefined);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
