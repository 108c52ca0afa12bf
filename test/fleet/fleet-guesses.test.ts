/**
 * Issue 15 on a real fleet: etcd (3 members), two vault nodes (one PKCS#11 on SoftHSM2,
 * one software HSM) holding the same fleet keys. A login start resent to either node —
 * concurrently, through etcd's serializable reads and compare-and-swap — is one guess;
 * a start whose answer a proxy in front of one node threw away costs nothing when the SDK
 * fails over; pacing set by one node holds on the other.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import { VaultClient, type FetchLike } from '#sdk/client/vault-client.js';
import { hasCode } from '#sdk/errors.js';
import { call } from '../vault/test-client.js';
import { startFleet, type Fleet } from './fleet.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const PASSWORD = 'fleet guesses password 1';
const DELAY_S = 4;
let fleet: Fleet;
let proxy: TcpProxy;

before(async () => {
  await opaque.ready;
  fleet = await startFleet({
    hsms: ['pkcs11', 'software'],
    maxAttempts: 10,
    extraArgs: ['--pacing', `3:${DELAY_S}`],
  });
  proxy = await startTcpProxy(fleet.nodes[0]!.url);
});
after(async () => {
  await proxy?.close();
  await fleet?.stopAll();
});

const client = (account: string, o: { fetch?: FetchLike; first?: string } = {}) =>
  new VaultClient({
    baseUrl: o.first ?? fleet.nodes[0]!.url,
    failoverUrls: [fleet.nodes[1]!.url],
    token: () => fleet.token(account),
    pinnedServerPublicKey: fleet.fleetKey,
    insecureTestingKeyStretching: true,
    timeoutMs: 2000,
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });

async function enabled(account: string): Promise<Uint8Array> {
  const backupKey = new Uint8Array(randomBytes(32));
  await client(account).enable({ password: PASSWORD, backupKey });
  return backupKey;
}
const attemptsLeft = async (account: string): Promise<number> =>
  (await client(account).status()).attemptsLeft;

describe('guesses on a fleet', () => {
  it('one request id, sent 16 times at once to both nodes: one guess, one answer', async () => {
    await enabled('storm');
    const token = await fleet.token('storm');
    const { startLoginRequest } = opaque.client.startLogin({ password: 'storm guess' });
    const body = { startLoginRequest, requestId: randomBytes(16).toString('base64url') };
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        call(fleet.nodes[i % 2]!.url, 'POST', '/v1/login/start', body, token),
      ),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(16).fill(200),
    );
    assert.equal(new Set(answers.map((a) => a.body.loginResponse)).size, 1);
    assert.equal(await attemptsLeft('storm'), 9);
    const other = opaque.client.startLogin({ password: 'another' }).startLoginRequest;
    const conflict = await call(
      fleet.nodes[1]!.url,
      'POST',
      '/v1/login/start',
      { ...body, startLoginRequest: other },
      token,
    );
    assert.deepEqual([conflict.status, conflict.body.error?.code], [409, 'CONFLICT']);
    assert.equal(await attemptsLeft('storm'), 9);
  });

  it('the answer lost in front of node 0: the SDK resends to node 1, no guess lost', async () => {
    const key = await enabled('lost');
    let dropped = 0;
    const losing: FetchLike = async (input, init) => {
      if (!(input.startsWith(proxy.url) && input.endsWith('/v1/login/start')) || dropped > 0) {
        return fetch(input, init);
      }
      dropped++;
      proxy.mode = 'drop-responses';
      try {
        return await fetch(input, init);
      } finally {
        proxy.mode = 'pass';
        proxy.resetConnections();
      }
    };
    await assert.rejects(
      client('lost', { fetch: losing, first: proxy.url }).recover({ password: 'wrong' }),
      (e: unknown) => hasCode(e, 'WRONG_PASSWORD'),
    );
    assert.equal(dropped, 1);
    assert.equal(await attemptsLeft('lost'), 9);
    dropped = 0;
    assert.deepEqual(
      await client('lost', { fetch: losing, first: proxy.url }).recover({ password: PASSWORD }),
      key,
    );
    assert.equal(await attemptsLeft('lost'), 10);
  });

  it('pacing set through node 0 holds on node 1, and lifts after the delay', async () => {
    await enabled('paced');
    const token = await fleet.token('paced');
    for (let i = 0; i < 3; i++) {
      const { startLoginRequest } = opaque.client.startLogin({ password: `w${i}` });
      const r = await call(
        fleet.nodes[0]!.url,
        'POST',
        '/v1/login/start',
        { startLoginRequest },
        token,
      );
      assert.equal(r.status, 200);
    }
    const { startLoginRequest } = opaque.client.startLogin({ password: 'w3' });
    const refused = await call(
      fleet.nodes[1]!.url,
      'POST',
      '/v1/login/start',
      { startLoginRequest },
      token,
    );
    assert.deepEqual([refused.status, refused.body.error?.code], [429, 'RATE_LIMITED']);
    await new Promise((r) => setTimeout(r, DELAY_S * 1000 + 300));
    const later = await call(
      fleet.nodes[1]!.url,
      'POST',
      '/v1/login/start',
      { startLoginRequest },
      token,
    );
    assert.equal(later.status, 200);
    assert.equal(later.body.attemptsLeft, 6);
  });
});
