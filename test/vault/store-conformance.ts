/**
 * The conformance suite every {@link VaultStore} must pass (SQLite, etcd).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ABSENT, type VaultRecordData, type VaultStore } from '#vault/vault/store.js';

/** A valid record with overrides. */
export function sampleRecord(over: Partial<VaultRecordData> = {}): VaultRecordData {
  return {
    state: 'active',
    failures: 0,
    limit: 10,
    loginEpoch: 1,
    credentialId: 'cred-1',
    sealedRecord: new Uint8Array([1, 2, 3, 4]),
    keyEnvelope: new Uint8Array(60).fill(7),
    keyProofVerifier: new Uint8Array(32).fill(9),
    lastStartAt: null,
    updatedAt: 1_700_000_000_000,
    sealedJournal: null,
    ...over,
  };
}

/**
 * Registers the suite under `describe(name)`. `makeStore` returns a fresh, empty store;
 * `reopen` (optional) reopens the same data to check persistence.
 */
export function runVaultStoreConformance(
  name: string,
  makeStore: () => Promise<{
    store: VaultStore;
    reopen?: () => Promise<VaultStore>;
    cleanup(): Promise<void>;
  }>,
): void {
  describe(`VaultStore conformance: ${name}`, () => {
    let store: VaultStore;
    let reopen: (() => Promise<VaultStore>) | undefined;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, reopen, cleanup } = await makeStore());
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('get of an unknown account is undefined', async () => {
      assert.equal(await store.get('nobody'), undefined);
    });

    it('creates with ABSENT, round-trips every field, versions ≥ 1', async () => {
      const rec = sampleRecord({ lastStartAt: 123, failures: 3 });
      assert.equal(await store.compareAndSwap('a1', ABSENT, rec), true);
      const got = await store.get('a1');
      assert.ok(got);
      assert.ok(got.version >= 1);
      const { version: _v, ...data } = got;
      assert.deepEqual(
        {
          ...data,
          sealedRecord: [...data.sealedRecord!],
          keyEnvelope: [...data.keyEnvelope!],
          keyProofVerifier: [...data.keyProofVerifier],
        },
        {
          ...rec,
          sealedRecord: [...rec.sealedRecord!],
          keyEnvelope: [...rec.keyEnvelope!],
          keyProofVerifier: [...rec.keyProofVerifier],
        },
      );
      assert.equal(
        await store.compareAndSwap('a1', ABSENT, rec),
        false,
        'create over existing must fail',
      );
    });

    it('stores nulls (locked tombstone)', async () => {
      await store.compareAndSwap(
        't1',
        ABSENT,
        sampleRecord({ state: 'locked', sealedRecord: null, keyEnvelope: null }),
      );
      const got = await store.get('t1');
      assert.equal(got?.state, 'locked');
      assert.equal(got?.sealedRecord, null);
      assert.equal(got?.keyEnvelope, null);
    });

    it('round-trips the sealed journal, replaces and clears it, and keeps it on reopen', async () => {
      const j1 = new Uint8Array(5000).map((_, i) => i % 251);
      assert.equal(
        await store.compareAndSwap('j1', ABSENT, sampleRecord({ sealedJournal: j1 })),
        true,
      );
      let got = await store.get('j1');
      assert.deepEqual([...got!.sealedJournal!], [...j1]);
      j1.fill(0); // not aliased
      assert.notEqual((await store.get('j1'))!.sealedJournal![1], 0);
      const j2 = new Uint8Array([42, 43]);
      assert.equal(
        await store.compareAndSwap(
          'j1',
          got!.version,
          sampleRecord({
            state: 'locked',
            sealedRecord: null,
            keyEnvelope: null,
            sealedJournal: j2,
          }),
        ),
        true,
      );
      got = await store.get('j1');
      assert.deepEqual([...got!.sealedJournal!], [42, 43]);
      assert.equal(got!.state, 'locked');
      assert.equal(await store.compareAndSwap('j1', got!.version, sampleRecord()), true);
      assert.equal((await store.get('j1'))!.sealedJournal, null);
    });

    it('CAS succeeds only on the current version and versions strictly increase', async () => {
      await store.compareAndSwap('a2', ABSENT, sampleRecord());
      const v1 = (await store.get('a2'))!.version;
      assert.equal(
        await store.compareAndSwap('a2', v1 + 1000, sampleRecord({ failures: 9 })),
        false,
      );
      assert.equal(await store.compareAndSwap('a2', v1, sampleRecord({ failures: 1 })), true);
      const r2 = (await store.get('a2'))!;
      assert.ok(r2.version > v1);
      assert.equal(r2.failures, 1);
      assert.equal(
        await store.compareAndSwap('a2', v1, sampleRecord({ failures: 2 })),
        false,
        'stale version',
      );
      assert.equal((await store.get('a2'))!.failures, 1);
    });

    it('delete by CAS; no ABA after delete and re-create', async () => {
      await store.compareAndSwap('a3', ABSENT, sampleRecord());
      const v1 = (await store.get('a3'))!.version;
      assert.equal(await store.compareAndDelete('a3', v1 + 1), false);
      assert.equal(await store.compareAndDelete('nobody', 1), false);
      assert.equal(await store.compareAndDelete('a3', v1), true);
      assert.equal(await store.get('a3'), undefined);
      await store.compareAndSwap('a3', ABSENT, sampleRecord());
      const v2 = (await store.get('a3'))!.version;
      assert.ok(v2 > v1, 'a re-created record must not reuse an old version');
      assert.equal(await store.compareAndSwap('a3', v1, sampleRecord({ failures: 5 })), false);
    });

    it('no ABA when a record updated many times is deleted and re-created', async () => {
      // Whatever numbering a store uses (a global sequence, etcd revisions, or versions
      // counted per record), a re-created record must start above every version the
      // deleted one reached, also when other accounts were created meanwhile.
      await store.compareAndSwap('a5', ABSENT, sampleRecord());
      let v = (await store.get('a5'))!.version;
      const seen = [v];
      for (let i = 1; i <= 5; i++) {
        assert.equal(await store.compareAndSwap('a5', v, sampleRecord({ failures: i })), true);
        v = (await store.get('a5'))!.version;
        seen.push(v);
      }
      await store.compareAndSwap('a5-other', ABSENT, sampleRecord());
      assert.equal(await store.compareAndDelete('a5', v), true);
      await store.compareAndSwap('a5', ABSENT, sampleRecord());
      const again = (await store.get('a5'))!.version;
      assert.ok(
        seen.every((old) => again > old),
        `re-created version ${again} must exceed ${seen.join(', ')}`,
      );
      for (const old of seen) {
        assert.equal(await store.compareAndSwap('a5', old, sampleRecord({ failures: 9 })), false);
      }
    });

    it('returned bytes are not aliased to caller buffers', async () => {
      const env = new Uint8Array(40).fill(1);
      await store.compareAndSwap('a4', ABSENT, sampleRecord({ keyEnvelope: env }));
      env.fill(2);
      const got = (await store.get('a4'))!;
      assert.equal(got.keyEnvelope![0], 1);
      got.keyEnvelope!.fill(3);
      assert.equal((await store.get('a4'))!.keyEnvelope![0], 1);
    });

    it('concurrent CAS on one account: exactly one winner per version', async () => {
      await store.compareAndSwap('hot', ABSENT, sampleRecord());
      const rounds = 20;
      const contenders = 25;
      for (let r = 0; r < rounds; r++) {
        const cur = (await store.get('hot'))!;
        const wins = await Promise.all(
          Array.from({ length: contenders }, (_, i) =>
            store.compareAndSwap(
              'hot',
              cur.version,
              sampleRecord({ failures: cur.failures + 1, credentialId: `w${i}` }),
            ),
          ),
        );
        assert.equal(wins.filter(Boolean).length, 1, `round ${r}`);
      }
      assert.equal((await store.get('hot'))!.failures, rounds);
    });

    it('concurrent increment loops lose no update', async () => {
      await store.compareAndSwap('ctr', ABSENT, sampleRecord());
      const workers = 10;
      const each = 10;
      await Promise.all(
        Array.from({ length: workers }, async () => {
          for (let n = 0; n < each;) {
            const cur = (await store.get('ctr'))!;
            if (
              await store.compareAndSwap(
                'ctr',
                cur.version,
                sampleRecord({ failures: cur.failures + 1 }),
              )
            )
              n++;
          }
        }),
      );
      assert.equal((await store.get('ctr'))!.failures, workers * each);
    });

    it('a possibly stale read (linearizable: false) can never make a stale version win', async () => {
      await store.compareAndSwap('fast1', ABSENT, sampleRecord());
      const v1 = (await store.get('fast1'))!.version;
      assert.equal(await store.compareAndSwap('fast1', v1, sampleRecord({ failures: 1 })), true);
      const v2 = (await store.get('fast1'))!.version;
      // The read may lag, but only behind real writes: it shows a version the record had
      // (or none, if it lags behind the create); never one that was not written.
      const seen = await store.get('fast1', { linearizable: false });
      assert.ok(seen === undefined || seen.version === v1 || seen.version === v2);
      if (seen && seen.version !== v2) {
        assert.equal(seen.failures, 0);
        assert.equal(
          await store.compareAndSwap('fast1', seen.version, sampleRecord({ failures: 7 })),
          false,
          'a CAS on a stale version must fail',
        );
      }
      // What a stale read at any time before the last write could have returned:
      assert.equal(await store.compareAndSwap('fast1', v1, sampleRecord({ failures: 7 })), false);
      const cur = (await store.get('fast1'))!;
      assert.equal(cur.failures, 1);
      assert.equal(cur.version, v2);
    });

    it('stale-read-then-CAS increment loops (the login pattern) lose no update', async () => {
      await store.compareAndSwap('fastctr', ABSENT, sampleRecord());
      const workers = 8;
      const each = 10;
      let wins = 0;
      await Promise.all(
        Array.from({ length: workers }, async () => {
          for (let n = 0, tries = 0; n < each; tries++) {
            // First a possibly stale read; after a failed CAS a linearizable one.
            const cur = await store.get('fastctr', { linearizable: tries > 0 });
            if (!cur) continue; // lagging behind the create; the next read is linearizable
            if (
              await store.compareAndSwap(
                'fastctr',
                cur.version,
                sampleRecord({ failures: cur.failures + 1 }),
              )
            ) {
              n++;
              wins++;
              tries = -1;
            }
          }
        }),
      );
      assert.equal(wins, workers * each);
      assert.equal((await store.get('fastctr'))!.failures, workers * each);
    });

    it('survives reopening', async (t) => {
      if (!reopen) return t.skip('store is not persistent');
      await store.compareAndSwap('p1', ABSENT, sampleRecord({ failures: 4 }));
      const v = (await store.get('p1'))!.version;
      await store.close();
      store = await reopen();
      const got = await store.get('p1');
      assert.equal(got?.failures, 4);
      assert.equal(got?.version, v);
      assert.equal(await store.compareAndSwap('p1', v, sampleRecord({ failures: 5 })), true);
      assert.ok((await store.get('p1'))!.version > v);
    });
  });
}
