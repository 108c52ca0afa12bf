/**
 * The scrubbing wrapper (issue 16): a scrub after exactly the writes that destroy a stored
 * byte string (delete, password change, lockout, or a CAS on a version it did not read),
 * none on the login hot path (a counted guess keeps the same bytes), coalesced under
 * concurrency, awaited before the write returns, and the store contract unchanged
 * (the conformance suite runs through it on the real SQLite store).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scrubbingStore } from '#vault/vault/scrubbing-store.js';
import { openSqliteStore } from '#vault/vault/sqlite-store.js';
import { ABSENT, type VaultStore } from '#vault/vault/store.js';
import { runVaultStoreConformance, sampleRecord } from './store-conformance.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function sqlite(): Promise<VaultStore> {
  const d = await mkdtemp(join(tmpdir(), 'bv-scrub-'));
  dirs.push(d);
  return openSqliteStore(join(d, 'vault.sqlite'));
}

function counting(inner: VaultStore, delayMs = 0) {
  const c = { scrubs: 0, inFlight: 0, maxInFlight: 0 };
  const store = scrubbingStore(inner, async () => {
    c.inFlight++;
    c.maxInFlight = Math.max(c.maxInFlight, c.inFlight);
    await new Promise((r) => setTimeout(r, delayMs));
    c.scrubs++;
    c.inFlight--;
  });
  return { store, c };
}

describe('scrubbing store wrapper', () => {
  it('scrubs after delete, password change and lockout — not after a counted guess', async () => {
    const { store, c } = counting(await sqlite());
    const env = new Uint8Array(40).fill(7);
    assert.ok(await store.compareAndSwap('a', ABSENT, sampleRecord({ keyEnvelope: env })));
    assert.equal(c.scrubs, 0, 'creating destroys nothing');
    let r = (await store.get('a'))!;
    // A counted guess: same sealed record and envelope (copies, not the same arrays).
    const guess = { ...r, failures: r.failures + 1, keyEnvelope: new Uint8Array(env) };
    assert.ok(await store.compareAndSwap('a', r.version, guess));
    assert.equal(c.scrubs, 0, 'a counted guess is not scrubbed');
    r = (await store.get('a'))!;
    const changed = { ...r, keyEnvelope: new Uint8Array(40).fill(8) };
    assert.ok(await store.compareAndSwap('a', r.version, changed));
    assert.equal(c.scrubs, 1, 'a password change is scrubbed');
    r = (await store.get('a'))!;
    assert.ok(
      await store.compareAndSwap('a', r.version, {
        ...r,
        state: 'locked',
        sealedRecord: null,
        keyEnvelope: null,
      }),
    );
    assert.equal(c.scrubs, 2, 'a lockout is scrubbed');
    r = (await store.get('a'))!;
    assert.ok(await store.compareAndDelete('a', r.version));
    assert.equal(c.scrubs, 3, 'a delete is scrubbed');
    assert.equal(await store.compareAndDelete('a', r.version), false);
    assert.equal(c.scrubs, 3, 'a failed write is not');
    await store.close();
  });

  it('scrubs on the safe side when it did not see the version written over', async () => {
    const inner = await sqlite();
    const { store, c } = counting(inner);
    assert.ok(await inner.compareAndSwap('b', ABSENT, sampleRecord()));
    const r = (await inner.get('b'))!; // read past the wrapper
    assert.ok(await store.compareAndSwap('b', r.version, { ...r, failures: 1 }));
    assert.equal(c.scrubs, 1);
    await store.close();
  });

  it('coalesces concurrent scrubs; each destroying write waits for one that started after it', async () => {
    const inner = await sqlite();
    const { store, c } = counting(inner, 30);
    for (let i = 0; i < 8; i++) await inner.compareAndSwap(`c${i}`, ABSENT, sampleRecord());
    const versions = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => (await store.get(`c${i}`))!.version),
    );
    const t0 = Date.now();
    const done = await Promise.all(
      versions.map((v, i) => store.compareAndDelete(`c${i}`, v).then(() => c.scrubs)),
    );
    assert.ok(
      done.every((n) => n >= 1),
      'no delete returned before a scrub completed',
    );
    assert.ok(c.scrubs <= 3, `8 concurrent deletes ran ${c.scrubs} scrubs`);
    assert.equal(c.maxInFlight, 1, 'scrubs never overlap');
    assert.ok(Date.now() - t0 >= 30);
    await store.close();
  });
});

runVaultStoreConformance('scrubbing wrapper over SQLite', async () => {
  const { store } = counting(await sqlite());
  return { store, cleanup: async () => undefined };
});
