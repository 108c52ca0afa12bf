/**
 * etcd full (its `NOSPACE` alarm): a real vault process on a real etcd member whose backend
 * quota is reached. Every login writes two revisions that etcd keeps until it compacts
 * them, so a cluster run without compaction (or one filled by anything else) ends here;
 * etcd then refuses every write. The vault must fail closed — no OPAQUE response without
 * a counted guess — tell the operator why in its log, lose no counted guess, and serve
 * again after the runbook of docs/OPERATIONS.md ("When etcd is full"), run here with the
 * real etcdctl.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { call, devToken, login, register } from '../vault/test-client.js';
import { startVaultProcess } from '../vault/vault-process.js';
import { startEtcdCluster } from './etcd-cluster.js';

/** Small enough to fill in a second; etcd counts its whole bbolt file against it. */
const QUOTA = 8 * 1024 * 1024;

describe('etcd out of space (NOSPACE alarm)', { timeout: 120_000 }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('fails closed at once, loses no counted guess, and serves again after compact + defrag + disarm', async () => {
    const cluster = await startEtcdCluster({
      members: 1,
      extraArgs: ['--quota-backend-bytes', String(QUOTA)],
    });
    cleanups.push(() => cluster.stopAll());
    const data = await mkdtemp(join(tmpdir(), 'bv-quota-'));
    cleanups.push(() => rm(data, { recursive: true, force: true }));
    const v = await startVaultProcess([
      ...['--data', data, '--dev-auth', '--workers', '1'],
      ...['--store', 'etcd', '--etcd', cluster.clientUrls.join(',')],
      ...['--etcd-deadline-ms', '1500', '--log-level', 'info'],
    ]);
    cleanups.push(() => v.stop());

    const token = await devToken(v.url, 'quota-user');
    const key = randomBytes(32);
    assert.equal((await register(v.url, token, 'pw-right', key)).status.status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await login(v.url, token, 'pw-wrong')).ok, false);
    const before = await call(v.url, 'GET', '/v1/record', undefined, token);
    assert.equal(before.body.attemptsLeft, 8);

    // Something else fills the cluster (here: junk outside the vault's prefix) until etcd
    // raises its NOSPACE alarm and refuses writes.
    const other = new Etcd3({ hosts: [...cluster.clientUrls] });
    cleanups.push(async () => other.close());
    const junk = Buffer.alloc(512 * 1024, 0x6a);
    let full: Error | undefined;
    for (let i = 0; i < 64 && !full; i++) {
      try {
        await other.put(`/junk/${i}`).value(junk);
      } catch (e) {
        full = e as Error;
      }
    }
    assert.ok(full, 'etcd accepted 32 MiB under an 8 MiB quota');
    assert.match(full.message, /database space exceeded/);
    assert.match(await cluster.etcdctl(['alarm', 'list']), /NOSPACE/);

    // Fail closed: a login start whose guess cannot be counted gets no OPAQUE response —
    // wrong or right password alike — and a registration changes nothing.
    for (const pw of ['pw-wrong', 'pw-right']) {
      const t0 = Date.now();
      const r = await login(v.url, token, pw);
      assert.equal(r.ok, false);
      assert.deepEqual(r.ok ? 'answered' : [r.status, r.code], [503, 'UNAVAILABLE']);
      assert.ok(Date.now() - t0 < 1000, 'a refused write is final: no resending to the deadline');
    }
    const reg = await register(v.url, token, 'pw-new', randomBytes(32), { currentBackupKey: key });
    assert.equal(reg.status.status, 503, JSON.stringify(reg.status.body));
    // Reads still work, at once (the member is not written off as failed), and the counter
    // is exactly what it was.
    const t1 = Date.now();
    const during = await call(v.url, 'GET', '/v1/record', undefined, token);
    assert.equal(during.status, 200);
    assert.ok(Date.now() - t1 < 500, 'a full etcd is not a failed member');
    assert.equal(during.body.attemptsLeft, 8);
    // The operator learns why from the vault's log.
    assert.match(v.output(), /out of space \(NOSPACE alarm\)/);
    assert.match(v.output(), /database space exceeded/);

    // The runbook: free space, compact to now, defragment, disarm.
    await cluster.etcdctl(['del', '--prefix', '/junk/']);
    const status = JSON.parse(await cluster.etcdctl(['endpoint', 'status', '-w', 'json'])) as {
      Status: { header: { revision: number } };
    }[];
    const revision = status[0]?.Status.header.revision;
    assert.ok(revision && revision > 0);
    await cluster.etcdctl(['compact', String(revision), '--physical']);
    await cluster.etcdctl(['defrag', '--cluster']);
    await cluster.etcdctl(['alarm', 'disarm']);
    assert.doesNotMatch(await cluster.etcdctl(['alarm', 'list']), /NOSPACE/);

    // Service resumes with the counter exact: the refused attempts were not counted, the
    // earlier ones were not lost, and the right password still opens the envelope.
    const back = await call(v.url, 'GET', '/v1/record', undefined, token);
    assert.equal(back.body.attemptsLeft, 8);
    const ok = await login(v.url, token, 'pw-right');
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.deepEqual(ok.backupKey, key);
  });
});
