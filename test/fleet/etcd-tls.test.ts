/**
 * TLS between the vault and etcd, against a real 3-member cluster on loopback whose
 * members speak mutual TLS to clients and to each other (certificates from a throwaway
 * PKI made by `openssl`). Across data centres this link carries the attempt counter: a
 * man in the middle who could forge etcd's answers could acknowledge a counter write
 * that never happened. So: the conformance suite over mTLS, then every way of reaching
 * the cluster without the right credentials fails closed, then a vault process serves a
 * login through it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError, hasCode } from '#sdk/errors.js';
import { EtcdVaultStore, openEtcdStore, type EtcdTlsOptions } from '#vault/vault/etcd-store.js';
import { parseVaultArgs } from '#vault/vault/config.js';
import { ABSENT } from '#vault/vault/store.js';
import { runVaultStoreConformance, sampleRecord } from '../vault/store-conformance.js';
import { devToken, login, register } from '../vault/test-client.js';
import { runVaultExpectingFailure, startVaultProcess } from '../vault/vault-process.js';
import { startEtcdCluster } from './etcd-cluster.js';
import { makeTestPki } from './test-pki.js';

const root = await mkdtemp(join(tmpdir(), 'bv-etcd-tls-'));
const pki = await makeTestPki(join(root, 'pki'));
const cluster = await startEtcdCluster({ members: 3, tls: pki });
const urls = cluster.clientUrls;
const mtls: EtcdTlsOptions = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
const stores: EtcdVaultStore[] = [];
after(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await cluster.stopAll();
  await rm(root, { recursive: true, force: true });
});

const freshPrefix = (): string => `/bv-tls/${randomBytes(6).toString('hex')}/`;
function open(tls: EtcdTlsOptions | undefined, endpoints: readonly string[] = urls) {
  const s = new EtcdVaultStore({
    endpoints,
    prefix: freshPrefix(),
    deadlineMs: 1500,
    ...(tls ? { tls } : {}),
  });
  stores.push(s);
  return s;
}

describe('etcd over mutual TLS', () => {
  it('the members really speak TLS and nothing else', () => {
    assert.ok(urls.every((u) => u.startsWith('https://127.0.0.1:')));
  });
});

runVaultStoreConformance('etcd over mutual TLS (3 members)', async () => {
  const prefix = freshPrefix();
  const make = () => new EtcdVaultStore({ endpoints: urls, prefix, tls: mtls });
  return { store: make(), reopen: async () => make(), cleanup: async () => undefined };
});

describe('etcd TLS fails closed without the right credentials', () => {
  const refused = async (store: EtcdVaultStore): Promise<void> => {
    const t0 = Date.now();
    await assert.rejects(store.compareAndSwap('acct', ABSENT, sampleRecord()), (e: unknown) =>
      hasCode(e, 'UNAVAILABLE'),
    );
    // Within its deadline, not after gRPC's own minutes-long backoff.
    assert.ok(Date.now() - t0 < 5000, `refused after ${Date.now() - t0} ms`);
  };

  it('a CA that did not sign the members: the member is not trusted', async () => {
    await refused(open({ ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey }));
  });

  it('no client certificate: the members refuse the node', async () => {
    await refused(open({ ca: pki.ca }));
  });

  it('clear text to a TLS member gets nothing', async () => {
    await refused(
      open(
        undefined,
        urls.map((u) => u.replace('https://', 'http://')),
      ),
    );
  });

  it('the same store with the right credentials writes, and the write is there', async () => {
    const s = open(mtls);
    assert.equal(await s.compareAndSwap('acct', ABSENT, sampleRecord({ failures: 3 })), true);
    assert.equal((await s.get('acct'))?.failures, 3);
  });

  it('openEtcdStore with a wrong CA rejects at once, so `vault serve` fails fast', async () => {
    await assert.rejects(
      openEtcdStore({ endpoints: urls, deadlineMs: 1000, tls: { ...mtls, ca: pki.otherCa } }),
      (e: unknown) => hasCode(e, 'UNAVAILABLE'),
    );
  });
});

describe('etcd TLS settings are checked before anything connects', () => {
  const usage = (f: () => unknown, re: RegExp): void =>
    assert.throws(f, (e: unknown) => e instanceof UsageError && re.test(e.message));

  it('TLS material with http:// endpoints, mixed schemes, a certificate without its key', () => {
    usage(() => new EtcdVaultStore({ endpoints: ['http://127.0.0.1:2379'], tls: mtls }), /https/);
    usage(
      () =>
        new EtcdVaultStore({
          endpoints: ['https://127.0.0.1:2379', 'http://127.0.0.1:2380'],
          tls: mtls,
        }),
      /every member or for none/,
    );
    usage(
      () => new EtcdVaultStore({ endpoints: urls, tls: { ca: pki.ca, cert: pki.clientCert } }),
      /key/,
    );
  });

  it('serve flags: --etcd-ca needs https:// and --store etcd; --etcd-cert needs --etcd-key', () => {
    const base = ['--data', '/tmp/x', '--dev-auth', '--store', 'etcd'];
    usage(
      () => parseVaultArgs([...base, '--etcd', 'http://127.0.0.1:2379', '--etcd-ca', 'ca.pem']),
      /https/,
    );
    usage(
      () => parseVaultArgs([...base, '--etcd', urls.join(','), '--etcd-cert', 'c.pem']),
      /together/,
    );
    usage(
      () => parseVaultArgs(['--data', '/tmp/x', '--dev-auth', '--etcd-ca', 'ca.pem']),
      /--store etcd/,
    );
    const ok = parseVaultArgs([...base, '--etcd', urls.join(','), '--etcd-ca', 'ca.pem']);
    assert.deepEqual(ok.etcdTls, { caFile: 'ca.pem' });
  });
});

describe('a vault node on etcd over mutual TLS (real process)', () => {
  let dataDir = '';
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'bv-tls-vault-'));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });
  const flags = (extra: readonly string[]): string[] => [
    ...['--data', dataDir, '--dev-auth', '--workers', '1', '--store', 'etcd'],
    ...['--etcd', urls.join(','), '--etcd-prefix', freshPrefix(), '--etcd-deadline-ms', '1500'],
    ...extra,
  ];

  it('registers and logs in; counts a wrong guess', async () => {
    const v = await startVaultProcess(
      flags([
        ...['--etcd-ca', pki.caFile, '--etcd-cert', pki.clientCertFile],
        ...['--etcd-key', pki.clientKeyFile],
      ]),
    );
    try {
      const token = await devToken(v.url, 'tls-user');
      const key = randomBytes(32);
      const reg = await register(v.url, token, 'correct horse 1', key);
      assert.equal(reg.status.status, 200);
      const wrong = await login(v.url, token, 'wrong horse 1');
      assert.deepEqual(wrong.ok ? 'ok' : [wrong.code, wrong.attemptsLeft], ['WRONG_PASSWORD', 9]);
      const right = await login(v.url, token, 'correct horse 1');
      assert.ok(right.ok);
      assert.deepEqual(right.backupKey, key);
    } finally {
      await v.stop();
    }
  });

  it('refuses to start with a CA that did not sign the members, and says why', async () => {
    const r = await runVaultExpectingFailure(
      flags([
        ...['--etcd-ca', pki.otherCaFile, '--etcd-cert', pki.clientCertFile],
        ...['--etcd-key', pki.clientKeyFile],
      ]),
    );
    assert.notEqual(r.code, 0);
    assert.match(r.output, /UNAVAILABLE|etcd/i);
    // The key file's bytes never reach the log.
    assert.ok(!r.output.includes(pki.clientKey.toString('utf8').split('\n')[1] ?? '\u0000'));
  });

  it('names an unreadable certificate file', async () => {
    const r = await runVaultExpectingFailure(flags(['--etcd-ca', join(root, 'missing.pem')]));
    assert.notEqual(r.code, 0);
    assert.match(r.output, /--etcd-ca .*missing\.pem.*ENOENT/);
  });
});
