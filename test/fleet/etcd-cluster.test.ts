/**
 * The etcd harness itself: a clear failure when etcd is missing, restart on the same data
 * dir, and the operator's snapshot restore — which rolls the vault's counters back. That
 * last fact is what the fleet's attack test and the threat model build on.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdVaultStore } from '#vault/vault/etcd-store.js';
import { ABSENT } from '#vault/vault/store.js';
import { sampleRecord } from '../vault/store-conformance.js';
import { startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';

describe('etcd test harness', () => {
  const clusters: EtcdCluster[] = [];
  after(async () => {
    await Promise.allSettled(clusters.map((c) => c.stopAll()));
  });

  it('names the Debian packages when etcd is missing (never a silent skip)', async () => {
    await assert.rejects(
      startEtcdCluster({ members: 1, etcdBin: '/nonexistent/etcd' }),
      /apt-get install -y etcd-server etcd-client/,
    );
  });

  it('restart keeps data; a restored snapshot rolls the counter back', async (t) => {
    const t0 = Date.now();
    const cluster = await startEtcdCluster({ members: 1 });
    clusters.push(cluster);
    t.diagnostic(`1-member cluster healthy in ${Date.now() - t0} ms`);
    const prefix = `/bv-test/${randomBytes(6).toString('hex')}/`;
    let store = new EtcdVaultStore({ endpoints: cluster.clientUrls, prefix });
    try {
      await store.compareAndSwap('victim', ABSENT, sampleRecord({ failures: 1 }));
      const old = (await store.get('victim'))!;
      const snap = join(cluster.dir, 'old.snapshot.db');
      await cluster.snapshot(snap);
      assert.ok(existsSync(snap));

      // The attacker spends guesses after the snapshot...
      let cur = old;
      for (let i = 0; i < 5; i++) {
        assert.ok(
          await store.compareAndSwap('victim', cur.version, { ...cur, failures: cur.failures + 1 }),
        );
        cur = (await store.get('victim'))!;
      }
      assert.equal(cur.failures, 6);

      // ...a crash-restart on the same data dir keeps them...
      const pid = cluster.pid(0);
      await cluster.kill(0);
      assert.equal(cluster.pid(0), undefined);
      await cluster.restart(0);
      assert.notEqual(cluster.pid(0), pid);
      await store.close();
      store = new EtcdVaultStore({ endpoints: cluster.clientUrls, prefix });
      assert.equal((await store.get('victim'))!.failures, 6);

      // ...but restoring the old snapshot hands them back: same URLs, old counter, and
      // the old version is current again (revisions restart from the snapshot's).
      await cluster.restoreSnapshot(snap);
      await store.close();
      store = new EtcdVaultStore({ endpoints: cluster.clientUrls, prefix });
      const rolledBack = (await store.get('victim'))!;
      assert.equal(rolledBack.failures, 1);
      assert.equal(rolledBack.version, old.version);
    } finally {
      await store.close();
    }
  });
});
