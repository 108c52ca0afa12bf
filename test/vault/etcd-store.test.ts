/**
 * EtcdVaultStore against a real 3-member etcd cluster on loopback (one cluster for the
 * whole file): the shared conformance suite, then what only a replicated store can get
 * wrong — clients on different members, a member killed mid-load, quorum lost and
 * regained, a committed write whose answer is lost on the wire.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Etcd3 } from 'etcd3';
import { CorruptBackupError, UnavailableError, hasCode } from '#sdk/errors.js';
import {
  EtcdVaultStore,
  decodeRecordValue,
  encodeRecordValue,
  encodeTombstoneValue,
  openEtcdStore,
} from '#vault/vault/etcd-store.js';
import { ABSENT, type VaultRecordData, type VaultStore } from '#vault/vault/store.js';
import { startEtcdCluster } from '../fleet/etcd-cluster.js';
import { startTcpProxy } from '../fleet/tcp-proxy.js';
import { runVaultStoreConformance, sampleRecord } from './store-conformance.js';

const cluster = await startEtcdCluster({ members: 3 });
const stores: VaultStore[] = [];
after(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await cluster.stopAll();
});

const freshPrefix = (): string => `/bv-test/${randomBytes(6).toString('hex')}/`;
function open(
  endpoints: readonly string[] = cluster.clientUrls,
  extra: { prefix?: string; deadlineMs?: number; attemptTimeoutMs?: number } = {},
): EtcdVaultStore {
  const s = new EtcdVaultStore({ endpoints, prefix: extra.prefix ?? freshPrefix(), ...extra });
  stores.push(s);
  return s;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Read-increment-CAS until it lands; UnavailableError counts as "unknown", then retry. */
async function increment(
  store: VaultStore,
  account: string,
  until: number,
): Promise<{ acked: boolean; unknown: number }> {
  let unknown = 0;
  while (Date.now() < until) {
    try {
      const cur = await store.get(account);
      assert.ok(cur);
      if (
        await store.compareAndSwap(account, cur.version, { ...cur, failures: cur.failures + 1 })
      ) {
        return { acked: true, unknown };
      }
    } catch (e) {
      if (!hasCode(e, 'UNAVAILABLE')) throw e;
      unknown++;
      await sleep(20);
    }
  }
  return { acked: false, unknown };
}

runVaultStoreConformance('etcd (3 members)', async () => {
  const prefix = freshPrefix();
  return {
    store: new EtcdVaultStore({ endpoints: cluster.clientUrls, prefix }),
    reopen: async () => new EtcdVaultStore({ endpoints: cluster.clientUrls, prefix }),
    cleanup: async () => undefined,
  };
});

describe('etcd record value format', () => {
  const arbRecord: fc.Arbitrary<VaultRecordData> = fc.record({
    state: fc.constantFrom('active' as const, 'locked' as const),
    failures: fc.nat(0xffff_ffff),
    limit: fc.nat(0xffff_ffff),
    loginEpoch: fc.maxSafeNat(),
    credentialId: fc.string({ unit: 'grapheme', maxLength: 40 }),
    sealedRecord: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
    keyEnvelope: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
    keyProofVerifier: fc.uint8Array({ maxLength: 64 }),
    lastStartAt: fc.option(fc.maxSafeNat(), { nil: null }),
    updatedAt: fc.maxSafeNat(),
    sealedJournal: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
  });

  it('round-trips every record exactly, with the write id', () => {
    fc.assert(
      fc.property(arbRecord, fc.uint8Array({ minLength: 16, maxLength: 16 }), (rec, id) => {
        const d = decodeRecordValue(encodeRecordValue(rec, id));
        assert.equal(d.kind, 'record');
        assert.deepEqual([...d.writeId], [...id]);
        // fast-check builds null-prototype objects; compare the fields.
        if (d.kind === 'record') assert.deepEqual(d.data, { ...rec });
      }),
      { numRuns: 300 },
    );
  });

  it('rejects every truncation, any trailing byte and unknown kinds as corrupt', () => {
    fc.assert(
      fc.property(arbRecord, (rec) => {
        const v = encodeRecordValue(rec, randomBytes(16));
        for (let n = 0; n < v.length; n++) {
          assert.throws(() => decodeRecordValue(v.subarray(0, n)), CorruptBackupError);
        }
        assert.throws(
          () => decodeRecordValue(Buffer.concat([v, Buffer.from([0])])),
          CorruptBackupError,
        );
        const k = Buffer.from(v);
        k[0] = 0x02;
        assert.throws(() => decodeRecordValue(k), CorruptBackupError);
      }),
      { numRuns: 40 },
    );
  });

  it('tombstones decode as such and sort below every record (the "live" compare)', () => {
    const t = encodeTombstoneValue(Buffer.alloc(16, 0xff));
    assert.equal(decodeRecordValue(t).kind, 'tombstone');
    assert.throws(
      () => decodeRecordValue(Buffer.concat([t, Buffer.from([1])])),
      CorruptBackupError,
    );
    const r = encodeRecordValue(sampleRecord(), Buffer.alloc(16, 0));
    assert.ok(Buffer.compare(t, r) < 0);
  });

  it('refuses to encode out-of-range fields', () => {
    assert.throws(
      () => encodeRecordValue(sampleRecord({ failures: -1 }), Buffer.alloc(16)),
      /failures/,
    );
    assert.throws(
      () => encodeRecordValue(sampleRecord({ limit: 2 ** 32 }), Buffer.alloc(16)),
      /limit/,
    );
    assert.throws(
      () => encodeRecordValue(sampleRecord({ updatedAt: 1.5 }), Buffer.alloc(16)),
      /updatedAt/,
    );
  });
});

describe('EtcdVaultStore on a 3-member cluster', () => {
  before(() => cluster.waitHealthy());

  it('keeps records under <prefix>accounts/<encoded id>, tombstones deletes', async () => {
    const prefix = freshPrefix();
    const store = open(cluster.clientUrls, { prefix });
    const raw = new Etcd3({
      hosts: [...cluster.clientUrls],
      defaultCallOptions: () => ({ deadline: Date.now() + 3000 }),
    });
    try {
      const id = 'user/ü 1';
      assert.equal(await store.compareAndSwap(id, ABSENT, sampleRecord()), true);
      const key = `${prefix}accounts/${encodeURIComponent(id)}`;
      const v = (await store.get(id))!.version;
      const kv = (await raw.kv.range({ key: Buffer.from(key) })).kvs[0];
      assert.ok(kv);
      assert.equal(Number(kv.mod_revision), v, 'version is the mod revision');
      assert.equal(await store.compareAndDelete(id, v), true);
      const tomb = (await raw.kv.range({ key: Buffer.from(key) })).kvs[0];
      assert.ok(tomb, 'delete leaves a tombstone');
      assert.equal(decodeRecordValue(tomb.value).kind, 'tombstone');
      const tombRev = Number(tomb.mod_revision);
      // A CAS naming the tombstone's revision must not resurrect the record.
      assert.equal(await store.compareAndSwap(id, tombRev, sampleRecord()), false);
      assert.equal(await store.compareAndDelete(id, tombRev), false);
      assert.equal(await store.get(id), undefined);
      assert.equal(await store.compareAndSwap(id, ABSENT, sampleRecord({ failures: 2 })), true);
      const again = (await store.get(id))!;
      assert.ok(again.version > tombRev);
      assert.equal(again.failures, 2);
      await assert.rejects(store.get('\ud800'), (e) => hasCode(e, 'BAD_REQUEST'));
    } finally {
      raw.close();
    }
  });

  it('scrubHistory makes superseded values unreadable through etcd', async () => {
    const prefix = freshPrefix();
    const store = open(cluster.clientUrls, { prefix });
    const raw = new Etcd3({
      hosts: [...cluster.clientUrls],
      defaultCallOptions: () => ({ deadline: Date.now() + 3000 }),
    });
    try {
      await store.compareAndSwap(
        'gone',
        ABSENT,
        sampleRecord({ keyEnvelope: new Uint8Array(8).fill(5) }),
      );
      const v1 = (await store.get('gone'))!.version;
      const locked = sampleRecord({ state: 'locked', sealedRecord: null, keyEnvelope: null });
      assert.equal(await store.compareAndSwap('gone', v1, locked), true);
      const key = Buffer.from(`${prefix}accounts/gone`);
      const old = (await raw.kv.range({ key, revision: v1 })).kvs[0];
      assert.ok(old, 'before the scrub, history still holds the envelope');
      await store.scrubHistory();
      await assert.rejects(raw.kv.range({ key, revision: v1 }), /compacted/);
      assert.equal((await store.get('gone'))!.state, 'locked');
      await store.scrubHistory(); // idempotent, also when already compacted
    } finally {
      raw.close();
    }
  });

  it('clients on different members: exactly one CAS winner per version, no lost update', async () => {
    const prefix = freshPrefix();
    const perMember = cluster.clientUrls.map((u) => open([u], { prefix }));
    const [first] = perMember;
    assert.ok(first);
    await first.compareAndSwap('hot', ABSENT, sampleRecord());
    const rounds = 12;
    for (let r = 0; r < rounds; r++) {
      // Each member's client reads for itself: the read must already see the last winner.
      const reads = await Promise.all(perMember.map((s) => s.get('hot')));
      const versions = new Set(reads.map((x) => x!.version));
      assert.equal(versions.size, 1, 'linearizable reads agree across members');
      const cur = reads[0]!;
      const wins = await Promise.all(
        perMember.flatMap((s, m) =>
          [0, 1, 2, 3].map((k) =>
            s.compareAndSwap(
              'hot',
              cur.version,
              sampleRecord({ failures: cur.failures + 1, credentialId: `m${m}k${k}` }),
            ),
          ),
        ),
      );
      assert.equal(wins.filter(Boolean).length, 1, `round ${r}`);
    }
    assert.equal((await first.get('hot'))!.failures, rounds);

    await first.compareAndSwap('ctr', ABSENT, sampleRecord());
    let acked = 0;
    await Promise.all(
      perMember.flatMap((s) =>
        [0, 1, 2].map(async () => {
          for (let n = 0; n < 8; n++) {
            if ((await increment(s, 'ctr', Date.now() + 20_000)).acked) acked++;
          }
        }),
      ),
    );
    assert.equal(acked, 72);
    assert.equal((await perMember[2]!.get('ctr'))!.failures, 72);
  });

  it('serializable reads on different members: stale versions lose their CAS, no lost update', async (t) => {
    const prefix = freshPrefix();
    // One store per member, as in the fleet (node i talks to member i).
    const perMember = cluster.clientUrls.map((u) => open([u], { prefix }));
    const [first] = perMember;
    assert.ok(first);
    await first.compareAndSwap('fast', ABSENT, sampleRecord());
    let wins = 0;
    let lost = 0;
    await Promise.all(
      perMember.flatMap((s) =>
        [0, 1, 2].map(async () => {
          for (let n = 0, fast = true; n < 8;) {
            // The login pattern: a serializable read confirmed by the CAS on its version;
            // after a failed CAS, a linearizable read.
            const cur = await s.get('fast', { linearizable: !fast });
            assert.ok(cur);
            const ok = await s.compareAndSwap('fast', cur.version, {
              ...cur,
              failures: cur.failures + 1,
            });
            if (ok) {
              n++;
              wins++;
            } else {
              lost++;
            }
            fast = ok;
          }
        }),
      ),
    );
    t.diagnostic(`72 increments, ${lost} CAS lost to a concurrent or stale read`);
    assert.equal(wins, 72);
    const final = await perMember[2]!.get('fast');
    assert.equal(final!.failures, 72, 'every acknowledged increment is there, none twice');

    // A member's serializable answer may lag other members' writes, but a store never
    // reads behind its own: an answer below a revision it saw is repeated linearizably.
    for (let r = 0; r < 20; r++) {
      const w = perMember[r % 3]!;
      const cur = (await w.get('fast'))!;
      assert.equal(await w.compareAndSwap('fast', cur.version, { ...cur, failures: 0 }), true);
      const mine = await w.get('fast', { linearizable: false });
      const truth = await w.get('fast');
      assert.ok(mine && mine.version > cur.version, 'a store reads its own writes');
      assert.equal(mine.version, truth!.version, 'the version remembered is the put’s revision');
    }

    // A remembered record that another node overtook: the CAS on it fails, nothing is
    // written, and the linearizable re-read sees the other node's write.
    const [a, b] = perMember;
    const base = (await a!.get('fast'))!;
    assert.equal(await a!.compareAndSwap('fast', base.version, { ...base, failures: 1 }), true);
    const seenByB = (await b!.get('fast'))!;
    assert.equal(
      await b!.compareAndSwap('fast', seenByB.version, { ...seenByB, failures: 2 }),
      true,
    );
    const stale = (await a!.get('fast', { linearizable: false }))!;
    if (stale.failures === 1) {
      assert.equal(
        await a!.compareAndSwap('fast', stale.version, { ...stale, failures: 9 }),
        false,
      );
    }
    const fresh = (await a!.get('fast'))!;
    assert.equal(fresh.failures, 2);
    assert.equal(await a!.compareAndSwap('fast', fresh.version, { ...fresh, failures: 3 }), true);
    assert.equal((await b!.get('fast'))!.failures, 3);
  });

  it('the rollback tripwire also guards serializable reads', async () => {
    const prefix = freshPrefix();
    const probe = open(cluster.clientUrls, { prefix });
    await probe.compareAndSwap('tw', ABSENT, sampleRecord());
    const now = probe.highestRevision;
    // A node that has seen a far higher revision: the cluster looks restored from an old
    // snapshot. A serializable answer must not slip past the check.
    const store = new EtcdVaultStore({
      endpoints: cluster.clientUrls,
      prefix,
      revisionFloor: now + 1_000_000,
    });
    stores.push(store);
    await assert.rejects(store.get('tw', { linearizable: false }), (e) =>
      hasCode(e, 'UNAVAILABLE'),
    );
    assert.equal(store.stats.rollbacks, 1);
    await assert.rejects(store.get('tw', { linearizable: false }), (e) =>
      hasCode(e, 'UNAVAILABLE'),
    );
  });

  it('measures CAS rates (read + CAS per increment)', async (t) => {
    const store = open();
    const ms = 1500;
    await store.compareAndSwap('one', ABSENT, sampleRecord());
    let one = 0;
    let until = Date.now() + ms;
    while (Date.now() < until) if ((await increment(store, 'one', until)).acked) one++;
    const workers = 16;
    await Promise.all(
      Array.from({ length: workers }, (_, w) =>
        store.compareAndSwap(`k${w}`, ABSENT, sampleRecord()),
      ),
    );
    const lat: number[] = [];
    until = Date.now() + ms;
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        while (Date.now() < until) {
          const t0 = performance.now();
          if ((await increment(store, `k${w}`, until)).acked) lat.push(performance.now() - t0);
        }
      }),
    );
    lat.sort((a, b) => a - b);
    const p = (q: number): string => (lat[Math.floor(q * (lat.length - 1))] ?? NaN).toFixed(1);
    t.diagnostic(
      `one client, one key: ${Math.round(one / (ms / 1000))} increments/s; ` +
        `${workers} clients, separate keys: ${Math.round(lat.length / (ms / 1000))}/s ` +
        `(p50 ${p(0.5)} ms, p99 ${p(0.99)} ms)`,
    );
    assert.ok(one > 20 && lat.length > 20, 'the cluster serves CAS at all');
  });

  it('a committed write whose answer is lost is reported true (resolved by write id)', async (t) => {
    // Client -> proxy -> member 0, plus member 1 directly. The proxy lets the request
    // through and drops etcd's answer: the txn commits, the client times out, the store
    // resends elsewhere and finds its own write id.
    const proxy = await startTcpProxy(cluster.clientUrls[0]!);
    try {
      const prefix = freshPrefix();
      const direct = open([cluster.clientUrls[1]!], { prefix });
      await direct.compareAndSwap('lost', ABSENT, sampleRecord());
      let resolvedOnce = false;
      for (let attempt = 0; attempt < 12 && !resolvedOnce; attempt++) {
        const store = open([proxy.url, cluster.clientUrls[1]!], {
          prefix,
          deadlineMs: 4000,
          attemptTimeoutMs: 300,
        });
        // Warm the proxied connection so the HTTP/2 handshake is done before arming.
        for (let i = 0; i < 6; i++) await store.get('lost');
        const cur = (await store.get('lost'))!;
        const before = proxy.droppedRequestBytes;
        proxy.mode = 'drop-responses';
        const ok = await store.compareAndSwap('lost', cur.version, {
          ...cur,
          failures: cur.failures + 1,
        });
        proxy.mode = 'pass';
        proxy.resetConnections();
        assert.equal(ok, true, 'the write committed, so the answer must be true');
        const now = (await direct.get('lost'))!;
        assert.equal(now.failures, cur.failures + 1, 'applied exactly once');
        if (proxy.droppedRequestBytes > before) {
          resolvedOnce = store.stats.resolved > 0;
          t.diagnostic(`attempt ${attempt}: stats ${JSON.stringify(store.stats)}`);
        }
        await store.close();
      }
      assert.ok(resolvedOnce, 'the CAS went through the lossy proxy at least once');
    } finally {
      await proxy.close();
    }
  });

  it('openEtcdStore fails closed with UNAVAILABLE when nothing answers', async () => {
    const proxy = await startTcpProxy(cluster.clientUrls[0]!);
    proxy.mode = 'blackhole';
    try {
      const t0 = Date.now();
      await assert.rejects(
        openEtcdStore({ endpoints: [proxy.url], deadlineMs: 800 }),
        (e) => e instanceof UnavailableError,
      );
      assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
    } finally {
      await proxy.close();
    }
  });

  it('kill the leader mid-load: work continues, no acknowledged increment is lost', async (t) => {
    const store = open();
    const workers = 8;
    await Promise.all(
      Array.from({ length: workers }, (_, w) =>
        store.compareAndSwap(`w${w}`, ABSENT, sampleRecord()),
      ),
    );
    const acked = new Array<number>(workers).fill(0);
    const unknown = new Array<number>(workers).fill(0);
    const until = Date.now() + 3000;
    const load = Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        while (Date.now() < until) {
          const r = await increment(store, `w${w}`, until + 5000);
          if (r.acked) acked[w]!++;
          unknown[w]! += r.unknown;
        }
      }),
    );
    await sleep(800);
    const leader = (await cluster.leader()) ?? 0;
    const beforeKill = acked.reduce((a, b) => a + b, 0);
    await cluster.kill(leader);
    await load;
    const total = acked.reduce((a, b) => a + b, 0);
    t.diagnostic(
      `killed member ${leader} (leader); acked ${beforeKill} before, ${total - beforeKill} after; ` +
        `unknown outcomes ${unknown.reduce((a, b) => a + b, 0)}; stats ${JSON.stringify(store.stats)}`,
    );
    assert.ok(total - beforeKill > 20, 'writes kept succeeding after the kill');
    for (let w = 0; w < workers; w++) {
      const rec = (await store.get(`w${w}`))!;
      assert.ok(rec.failures >= acked[w]!, `w${w}: an acknowledged increment was lost`);
      assert.ok(rec.failures <= acked[w]! + unknown[w]!, `w${w}: more increments than attempts`);
    }
    await cluster.restart(leader);
  });

  it('two of three killed: CAS and get fail closed within the deadline; restart resumes exactly', async (t) => {
    const deadlineMs = 1500;
    const store = open(cluster.clientUrls, { deadlineMs });
    await store.compareAndSwap('steady', ABSENT, sampleRecord());
    await store.compareAndSwap('doomed', ABSENT, sampleRecord());
    let acked = 0;
    for (let i = 0; i < 10; i++)
      if ((await increment(store, 'steady', Date.now() + 10_000)).acked) acked++;
    const doomed = (await store.get('doomed'))!;

    await cluster.kill(1);
    await cluster.kill(2);
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      await assert.rejects(
        store.compareAndSwap('doomed', doomed.version, {
          ...doomed,
          failures: doomed.failures + 1,
        }),
        (e) => e instanceof UnavailableError,
      );
      const took = Date.now() - t0;
      assert.ok(took <= deadlineMs + 400, `CAS took ${took} ms`);
    }
    const t0 = Date.now();
    await assert.rejects(store.get('steady'), (e) => e instanceof UnavailableError);
    assert.ok(Date.now() - t0 <= deadlineMs + 400);

    await Promise.all([cluster.restart(1), cluster.restart(2)]);
    await cluster.waitHealthy();
    // The client may need a moment to trust the restarted members again (circuit breaker).
    const healthyAt = Date.now();
    const resumeBy = healthyAt + 15_000;
    let steady;
    for (;;) {
      try {
        steady = await store.get('steady');
        break;
      } catch (e) {
        if (!hasCode(e, 'UNAVAILABLE') || Date.now() > resumeBy) throw e;
        await sleep(100);
      }
    }
    t.diagnostic(`store served again ${Date.now() - healthyAt} ms after the cluster was healthy`);
    assert.equal(steady?.failures, acked, 'every acknowledged increment survived');
    const after = (await store.get('doomed'))!;
    // The refused CAS calls may have reached a raft log before quorum went: either
    // outcome is allowed, nothing else.
    assert.ok(
      after.failures === doomed.failures || after.failures === doomed.failures + 1,
      `doomed record has ${after.failures} failures`,
    );
    assert.ok((await increment(store, 'steady', Date.now() + 10_000)).acked);
    assert.equal((await store.get('steady'))!.failures, acked + 1);
  });
});
