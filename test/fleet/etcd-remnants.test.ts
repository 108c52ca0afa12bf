/**
 * Issue 16, "destroyed means gone" on etcd: after a record delete (`disable`) and a
 * password change, the old revision holding the envelope and sealed record is unreadable
 * through etcd (`etcdctl get --rev` answers "compacted"), and after the scheduled
 * defragmentation (`--etcd-defrag-interval`) no member's bbolt file holds those bytes.
 * Before the destroying write the same reads and scans DO find them, so the checks can
 * fail. (etcd's raft WAL keeps them until it rotates: see docs/THREAT_MODEL.md.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decodeRecordValue } from '#vault/vault/etcd-store.js';
import { startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { call, devToken, keyProofOf, register } from '../vault/test-client.js';
import { NO_RATE_LIMITS, startVaultProcess, type VaultProcess } from '../vault/vault-process.js';

const MEMBERS = 3;
const key = (account: string) => `/backvault/v1/accounts/${account}`;

describe('etcd remnants: destroyed values leave etcd history and its files', () => {
  let cluster: EtcdCluster;
  let dir: string;
  let vault: VaultProcess;

  before(async () => {
    cluster = await startEtcdCluster({ members: MEMBERS });
    dir = await mkdtemp(join(tmpdir(), 'bv-etcd-remnants-'));
    vault = await startVaultProcess([
      '--data',
      join(dir, 'data'),
      '--dev-auth',
      '--workers',
      '1',
      '--store',
      'etcd',
      '--etcd',
      cluster.clientUrls.join(','),
      '--etcd-defrag-interval',
      '2',
      ...NO_RATE_LIMITS,
    ]);
  });
  after(async () => {
    await vault?.stop();
    await cluster?.stopAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The current value and mod revision of `account`'s key, via etcdctl. */
  async function current(account: string): Promise<{ value: Buffer; rev: number }> {
    const out = JSON.parse(await cluster.etcdctl(['get', key(account), '-w', 'json'])) as {
      kvs?: { value: string; mod_revision: number }[];
    };
    const kv = out.kvs?.[0];
    assert.ok(kv, `${account} is stored`);
    return { value: Buffer.from(kv.value, 'base64'), rev: kv.mod_revision };
  }

  /** Members whose bbolt file (member/snap/db) holds `needle`. */
  async function membersHolding(needle: Buffer): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < MEMBERS; i++) {
      const db = await readFile(join(cluster.dir, `m${i}.etcd`, 'member', 'snap', 'db'));
      if (db.includes(needle)) out.push(i);
    }
    return out;
  }

  /** Registers `account` and returns the byte strings a destroying write must remove. */
  async function setUp(account: string, backupKey: Buffer) {
    const t = await devToken(vault.url, account);
    const r = await register(vault.url, t, `${account}-password-1`, backupKey);
    assert.equal(r.status.status, 200);
    const { value, rev } = await current(account);
    const decoded = decodeRecordValue(value);
    assert.equal(decoded.kind, 'record');
    const secrets = {
      envelope: Buffer.from(r.finishBody.keyEnvelope as string, 'base64url'),
      sealed: Buffer.from(decoded.kind === 'record' ? (decoded.data.sealedRecord ?? []) : []),
    };
    assert.ok(secrets.sealed.length > 0);
    return { token: t, rev, secrets };
  }

  async function assertHistoryGone(account: string, rev: number): Promise<void> {
    await assert.rejects(
      cluster.etcdctl(['get', key(account), `--rev=${rev}`, '-w', 'json']),
      /compacted/,
      `the revision ${rev} of ${account} is still readable`,
    );
  }

  it('the old revision is unreadable after a delete and after a password change', async () => {
    const bkDel = randomBytes(32);
    const del = await setUp('del', bkDel);
    const chg = await setUp('chg', randomBytes(32));
    // Before: history serves the current revisions (the check can fail).
    for (const [a, s] of [
      ['del', del],
      ['chg', chg],
    ] as const) {
      const old = await cluster.etcdctl(['get', key(a), `--rev=${s.rev}`, '-w', 'json']);
      assert.ok(old.includes('"kvs"'), `${a} revision ${s.rev} is readable before`);
    }
    const d = await call(
      vault.url,
      'POST',
      '/v1/record/delete',
      { keyProof: keyProofOf(bkDel) },
      del.token,
    );
    assert.equal(d.status, 200);
    await assertHistoryGone('del', del.rev);

    const bkChg = randomBytes(32);
    const chg2 = await setUp('chg2', bkChg);
    const r = await register(vault.url, chg2.token, 'chg2-password-2', randomBytes(32), {
      currentBackupKey: bkChg,
    });
    assert.equal(r.status.status, 200);
    await assertHistoryGone('chg2', chg2.rev);

    // ... and after the scheduled defragmentation, no member's bbolt file holds any of it.
    const destroyed = [...Object.values(del.secrets), ...Object.values(chg2.secrets)];
    const end = Date.now() + 20_000;
    let left: number[][] = [];
    while (Date.now() < end) {
      left = await Promise.all(destroyed.map((b) => membersHolding(b)));
      if (left.every((m) => m.length === 0)) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.deepEqual(
      left,
      destroyed.map(() => []),
      'destroyed bytes left in bbolt files',
    );
    // The live record of 'chg' is still on every member (the scan can find things).
    for (const b of Object.values(chg.secrets)) {
      assert.deepEqual(await membersHolding(b), [0, 1, 2], 'live bytes are found');
    }
  });
});
