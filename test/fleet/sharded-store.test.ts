/**
 * ShardedVaultStore over two independent etcd clusters (one member each, to spare the
 * CPU): accounts land on the cluster the rendezvous hash names, per-shard CAS semantics
 * hold, the mapping moves few accounts when the shard set changes, and a vault node keeps
 * one rollback tripwire per shard.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnavailableError, UsageError } from '#sdk/errors.js';
import { EtcdVaultStore, parseEtcdEndpoints } from '#vault/vault/etcd-store.js';
import {
  ShardedVaultStore,
  openShardedEtcdStore,
  parseEtcdShardSpec,
  shardIdFor,
} from '#vault/vault/sharded-store.js';
import { ABSENT } from '#vault/vault/store.js';
import { runVaultStoreConformance, sampleRecord } from '../vault/store-conformance.js';
import { call, devToken, login, register } from '../vault/test-client.js';
import { startVaultProcess } from '../vault/vault-process.js';
import { startEtcdCluster } from './etcd-cluster.js';

const [clusterA, clusterB] = await Promise.all([
  startEtcdCluster({ members: 1 }),
  startEtcdCluster({ members: 1 }),
]);
const closers: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.allSettled(closers.map((c) => c()));
  await Promise.allSettled([clusterA.stopAll(), clusterB.stopAll()]);
});

function openPair(prefix: string): { a: EtcdVaultStore; b: EtcdVaultStore } {
  const a = new EtcdVaultStore({ endpoints: clusterA.clientUrls, prefix });
  const b = new EtcdVaultStore({ endpoints: clusterB.clientUrls, prefix });
  closers.push(
    () => a.close(),
    () => b.close(),
  );
  return { a, b };
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `account-${i}`);

describe('rendezvous mapping (pure)', () => {
  const accounts = ids(6000);

  it('does not depend on the order of shard ids and spreads evenly', () => {
    const counts = new Map<string, number>();
    for (const acc of accounts) {
      const s = shardIdFor(acc, ['s1', 's2', 's3']);
      assert.equal(shardIdFor(acc, ['s3', 's1', 's2']), s);
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    for (const [, n] of counts) assert.ok(n > 1800 && n < 2200, `uneven: ${[...counts]}`);
  });

  it('adding a shard moves about 1/n accounts, all of them to the new shard', () => {
    let moved = 0;
    for (const acc of accounts) {
      const before = shardIdFor(acc, ['s1', 's2', 's3']);
      const after = shardIdFor(acc, ['s1', 's2', 's3', 's4']);
      if (before !== after) {
        moved++;
        assert.equal(after, 's4');
      }
    }
    assert.ok(moved > 1350 && moved < 1650, `moved ${moved} of 6000`);
  });

  it('removing a shard moves only that shard’s accounts', () => {
    for (const acc of accounts) {
      const before = shardIdFor(acc, ['s1', 's2', 's3']);
      const after = shardIdFor(acc, ['s1', 's3']);
      if (before !== 's2') assert.equal(after, before);
    }
  });

  it('refuses empty and repeated shard ids', () => {
    assert.throws(() => new ShardedVaultStore([]), /at least one shard/);
    const s = new EtcdVaultStore({ endpoints: ['http://127.0.0.1:1'] });
    closers.push(() => s.close());
    assert.throws(
      () =>
        new ShardedVaultStore([
          { id: 'x', store: s },
          { id: 'x', store: s },
        ]),
      /used twice/,
    );
    assert.throws(() => shardIdFor('a', []), /no vault shards/);
  });
});

runVaultStoreConformance('sharded over two etcd clusters', async () => {
  const prefix = `/bv-test/${randomBytes(6).toString('hex')}/`;
  const make = (): ShardedVaultStore => {
    const { a, b } = openPair(prefix);
    return new ShardedVaultStore([
      { id: 'shard-a', store: a },
      { id: 'shard-b', store: b },
    ]);
  };
  return { store: make(), reopen: async () => make(), cleanup: async () => undefined };
});

describe('ShardedVaultStore on two etcd clusters', () => {
  it('puts each account on the cluster its hash names, and only there', async () => {
    const prefix = `/bv-test/${randomBytes(6).toString('hex')}/`;
    const { a, b } = openPair(prefix);
    const sharded = new ShardedVaultStore([
      { id: 'shard-b', store: b },
      { id: 'shard-a', store: a },
    ]);
    const accounts = ids(40);
    await Promise.all(accounts.map((acc) => sharded.compareAndSwap(acc, ABSENT, sampleRecord())));
    let onA = 0;
    for (const acc of accounts) {
      const home = shardIdFor(acc, ['shard-a', 'shard-b']);
      assert.equal(sharded.shardOf(acc), home);
      const [ra, rb] = await Promise.all([a.get(acc), b.get(acc)]);
      if (home === 'shard-a') {
        onA++;
        assert.ok(ra && !rb, `${acc} should be on A only`);
      } else {
        assert.ok(rb && !ra, `${acc} should be on B only`);
      }
      assert.equal((await sharded.get(acc))?.version, (ra ?? rb)!.version);
    }
    assert.ok(onA > 5 && onA < 35, `both clusters used (A has ${onA})`);
  });

  it('CAS semantics hold per shard: stale versions fail, one winner per round', async () => {
    const prefix = `/bv-test/${randomBytes(6).toString('hex')}/`;
    const { a, b } = openPair(prefix);
    const sharded = new ShardedVaultStore([
      { id: 'shard-a', store: a },
      { id: 'shard-b', store: b },
    ]);
    // One hot account per shard.
    const hotA = ids(100).find((x) => sharded.shardOf(x) === 'shard-a')!;
    const hotB = ids(100).find((x) => sharded.shardOf(x) === 'shard-b')!;
    for (const hot of [hotA, hotB]) {
      await sharded.compareAndSwap(hot, ABSENT, sampleRecord());
      for (let r = 0; r < 6; r++) {
        const cur = (await sharded.get(hot))!;
        const wins = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            sharded.compareAndSwap(
              hot,
              cur.version,
              sampleRecord({ failures: cur.failures + 1, credentialId: `c${i}` }),
            ),
          ),
        );
        assert.equal(wins.filter(Boolean).length, 1);
        assert.equal(await sharded.compareAndSwap(hot, cur.version, sampleRecord()), false);
      }
      assert.equal((await sharded.get(hot))!.failures, 6);
    }
    // Versions come from different clusters' revision counters; each is still strictly
    // increasing for its own account, which is all the contract asks.
    await sharded.scrubHistory();
  });
});

describe('--etcd and --etcd-shard values', () => {
  it('parses endpoint lists and shard specs', () => {
    assert.deepEqual(parseEtcdEndpoints('http://h1:2379, http://h2:2379,'), [
      'http://h1:2379',
      'http://h2:2379',
    ]);
    assert.deepEqual(parseEtcdEndpoints('https://h1:2379,https://h2:2379'), [
      'https://h1:2379',
      'https://h2:2379',
    ]);
    assert.deepEqual(parseEtcdShardSpec('eu-1=http://a:2379,http://b:2379'), {
      id: 'eu-1',
      endpoints: ['http://a:2379', 'http://b:2379'],
    });
  });

  it('refuses malformed values with a usage error', () => {
    for (const bad of [
      '',
      ',',
      'h1:2379',
      'http://h1',
      'http://h1:2379/x',
      'ftp://h:1',
      'https://h:2379,http://h2:2379',
    ]) {
      assert.throws(() => parseEtcdEndpoints(bad), UsageError, bad);
    }
    for (const bad of ['http://a:2379', '=http://a:2379', 'a b=http://a:2379', 'eu-1=']) {
      assert.throws(() => parseEtcdShardSpec(bad), UsageError, bad);
    }
  });

  it('openShardedEtcdStore opens every shard, or none when one does not answer', async () => {
    const prefix = `/bv-test/${randomBytes(6).toString('hex')}/`;
    const store = await openShardedEtcdStore(
      [
        { id: 'a', endpoints: clusterA.clientUrls },
        { id: 'b', endpoints: clusterB.clientUrls },
      ],
      { prefix, deadlineMs: 2000 },
    );
    try {
      assert.deepEqual(store.shardIds, ['a', 'b']);
      assert.equal(await store.compareAndSwap('x', ABSENT, sampleRecord()), true);
      assert.equal((await store.get('x'))?.failures, 0);
    } finally {
      await store.close();
    }
    await assert.rejects(
      openShardedEtcdStore(
        [
          { id: 'a', endpoints: clusterA.clientUrls },
          { id: 'dead', endpoints: ['http://127.0.0.1:9'] },
        ],
        { prefix, deadlineMs: 600 },
      ),
      UnavailableError,
    );
  });
});

describe('a sharded vault node keeps one rollback tripwire per cluster (real process)', () => {
  it('an old snapshot restored on one shard fails that shard closed, and only that shard', async () => {
    const data = await mkdtemp(join(tmpdir(), 'bv-shard-trip-'));
    const scratch = await mkdtemp(join(tmpdir(), 'bv-shard-snap-'));
    const prefix = `/bv-trip/${randomBytes(6).toString('hex')}/`;
    const args = (extra: readonly string[] = []): string[] => [
      ...['--data', data, '--dev-auth', '--workers', '1', '--store', 'etcd'],
      ...['--etcd-shard', `a=${clusterA.clientUrls.join(',')}`],
      ...['--etcd-shard', `b=${clusterB.clientUrls.join(',')}`],
      ...['--etcd-prefix', prefix],
      ...['--etcd-deadline-ms', '1500'],
      ...extra,
    ];
    const onShard = (id: string): string =>
      ids(200).find((acc) => shardIdFor(acc, ['a', 'b']) === id) as string;
    const [userA, userB] = [onShard('a'), onShard('b')];
    let v = await startVaultProcess(args());
    try {
      const tokenA = await devToken(v.url, userA);
      const tokenB = await devToken(v.url, userB);
      const key = randomBytes(32);
      assert.equal((await register(v.url, tokenA, 'pw-shard-a1', key)).status.status, 200);
      assert.equal((await register(v.url, tokenB, 'pw-shard-b1', key)).status.status, 200);
      const snap = join(scratch, 'a.db');
      await clusterA.snapshot(snap);
      for (let i = 0; i < 3; i++) assert.equal((await login(v.url, tokenA, 'nope')).ok, false);
      const left = await call(v.url, 'GET', '/v1/record', undefined, tokenA);
      assert.equal(left.body.attemptsLeft, 7);
      await new Promise((r) => setTimeout(r, 1200)); // the node persists its marks every second
      assert.ok((await readdir(data)).includes('etcd-revision.a.json'));

      await clusterA.restoreSnapshot(snap);
      // Shard a went back in time: the running node fails closed there…
      let a = await call(v.url, 'GET', '/v1/record', undefined, tokenA);
      for (let i = 0; i < 30 && a.status !== 503; i++) {
        await new Promise((r) => setTimeout(r, 200));
        a = await call(v.url, 'GET', '/v1/record', undefined, tokenA);
      }
      assert.equal(a.status, 503, JSON.stringify(a.body));
      assert.match(a.body.error?.message ?? '', /went back in time/);
      const guess = await login(v.url, tokenA, 'nope');
      assert.deepEqual(guess.ok ? 'answered' : guess.code, 'UNAVAILABLE');
      // …and shard b, another cluster, serves on.
      const b = await login(v.url, tokenB, 'pw-shard-b1');
      assert.ok(b.ok);
      await v.stop();

      // A restarted node refuses to start, naming the problem.
      await assert.rejects(startVaultProcess(args()), /went back in time/);
      // The operator's explicit override starts it, and the rewound counter is believed.
      v = await startVaultProcess(args(['--accept-etcd-rollback']));
      // (Dev tokens die with the process that issued them.)
      const after = await call(v.url, 'GET', '/v1/record', undefined, await devToken(v.url, userA));
      assert.equal(after.body.attemptsLeft, 10, JSON.stringify(after));
    } finally {
      await v.stop();
      await rm(data, { recursive: true, force: true });
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
