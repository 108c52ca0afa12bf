import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVaultStoreConformance } from './store-conformance.js';
import { openSqliteStore } from '#vault/vault/sqlite-store.js';

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
