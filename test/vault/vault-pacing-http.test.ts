/**
 * Issue 15 over HTTP on the real vault process: `--rate-limit-account` on every
 * authenticated route (keyed on the token subject), the default wrong-guess pacing
 * (RATE_LIMITED, retryAfterSeconds, retry-after, nextTryAt), the event log route with the
 * key-proof header, the head route, and the OpenAPI document carrying them.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import { KEY_PROOF_HEADER } from '#sdk/wire/index.js';
import { startVaultProcess, type VaultProcess } from './vault-process.js';
import { call, devToken, keyProofOf, login, register } from './test-client.js';

describe('per-account rate limit and pacing (real process)', () => {
  let dir: string;
  let vault: VaultProcess;
  const args = (): string[] => [
    '--data',
    dir,
    '--dev-auth',
    '--workers',
    '1',
    '--rate-limit-ip',
    '1000000',
    '--rate-limit-account',
    '20',
  ];
  before(async () => {
    await opaque.ready;
    dir = await mkdtemp(join(tmpdir(), 'bv-pacing-'));
    vault = await startVaultProcess(args());
  });
  after(async () => {
    await vault?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('--rate-limit-account N serves N requests per minute per token subject, on every authenticated route', async () => {
    const token = await devToken(vault.url, 'rl-one');
    const other = await devToken(vault.url, 'rl-two');
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push((await call(vault.url, 'GET', '/v1/record', undefined, token)).status);
      const ke1 = opaque.client.startLogin({ password: 'x' }).startLoginRequest;
      statuses.push(
        (await call(vault.url, 'POST', '/v1/login/start', { startLoginRequest: ke1 }, token))
          .status,
      );
    }
    assert.deepEqual(statuses, Array(20).fill(404));
    for (const [method, path, body] of [
      ['GET', '/v1/record', undefined],
      ['POST', '/v1/login/start', { startLoginRequest: 'A'.repeat(128) }],
      ['POST', '/v1/registration/start', { registrationRequest: 'A'.repeat(43) }],
      ['GET', '/v1/record/events', undefined],
    ] as const) {
      const r = await call(vault.url, method, path, body, token);
      assert.equal(r.status, 429, path);
      assert.equal(r.body.error?.code, 'RATE_LIMITED');
    }
    // Another subject from the same address is not affected.
    assert.equal((await call(vault.url, 'GET', '/v1/record', undefined, other)).status, 404);
    // Unauthenticated routes are not counted against any account.
    assert.equal((await call(vault.url, 'GET', '/v1/info')).status, 200);
  });

  it('default pacing: the 4th wrong guess in a row waits a minute, visibly', async () => {
    let token = await devToken(vault.url, 'pace-http');
    const key = randomBytes(32);
    assert.equal((await register(vault.url, token, 'pace http pw', key)).status.status, 200);
    for (let i = 0; i < 3; i++) {
      const r = await login(vault.url, token, `wrong ${i}`);
      assert.equal(r.ok ? 'ok' : r.code, 'WRONG_PASSWORD');
    }
    const ke1 = opaque.client.startLogin({ password: 'pace http pw' }).startLoginRequest;
    const res = await fetch(`${vault.url}/v1/login/start`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ startLoginRequest: ke1 }),
    });
    assert.equal(res.status, 429);
    const body = (await res.json()) as { error: { code: string; retryAfterSeconds: number } };
    assert.equal(body.error.code, 'RATE_LIMITED');
    assert.ok(body.error.retryAfterSeconds > 50 && body.error.retryAfterSeconds <= 60);
    assert.equal(res.headers.get('retry-after'), String(body.error.retryAfterSeconds));
    const metrics = await (await fetch(vault.metricsUrl as string)).text();
    assert.match(metrics, /backvault_vault_logins_failed_total\{reason="paced"\} 1/);
    // A restart of the vault process does not shorten it: the pacing is in the record.
    await vault.stop();
    vault = await startVaultProcess(args());
    const again = await fetch(`${vault.url}/v1/login/start`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await devToken(vault.url, 'pace-http')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ startLoginRequest: ke1 }),
    });
    assert.equal(again.status, 429, 'still paced after a restart');
    const againBody = (await again.json()) as { error: { retryAfterSeconds: number } };
    assert.ok(againBody.error.retryAfterSeconds > 40);
    token = await devToken(vault.url, 'pace-http');
    const st = await call(vault.url, 'GET', '/v1/record', undefined, token);
    assert.equal(st.body.attemptsLeft, 7, 'the refused start spent nothing');
    const next = Date.parse(st.body.nextTryAt as string);
    assert.ok(next > Date.now() + 50_000 && next <= Date.now() + 61_000);
    // The log shows the three guesses, read with the key proof only.
    const noProof = await call(vault.url, 'GET', '/v1/record/events', undefined, token);
    assert.equal(noProof.status, 403);
    const ev = await fetch(`${vault.url}/v1/record/events`, {
      headers: { authorization: `Bearer ${token}`, [KEY_PROOF_HEADER]: keyProofOf(key) },
    });
    assert.equal(ev.status, 200);
    const log = (await ev.json()) as { events: { kind: string }[]; nextTryAt?: string };
    assert.deepEqual(
      log.events.map((e) => e.kind),
      ['enabled', 'guess', 'guess', 'guess'],
    );
    assert.equal(log.nextTryAt, st.body.nextTryAt);
    const wrongProof = await fetch(`${vault.url}/v1/record/events`, {
      headers: {
        authorization: `Bearer ${token}`,
        [KEY_PROOF_HEADER]: keyProofOf(randomBytes(32)),
      },
    });
    assert.equal(wrongProof.status, 403);
  });

  it('POST /v1/record/head: needs the key proof, refuses an older head with ROLLBACK', async () => {
    const token = await devToken(vault.url, 'head-http');
    const key = randomBytes(32);
    await register(vault.url, token, 'head http pw', key);
    const h = (seq: number) => ({ seq, snapshotId: 'ab'.repeat(32) });
    const ok = await call(
      vault.url,
      'POST',
      '/v1/record/head',
      { keyProof: keyProofOf(key), head: h(3) },
      token,
    );
    assert.deepEqual([ok.status, ok.body.head], [200, h(3)]);
    const lower = await call(
      vault.url,
      'POST',
      '/v1/record/head',
      { keyProof: keyProofOf(key), head: h(2) },
      token,
    );
    assert.deepEqual([lower.status, lower.body.error?.code], [409, 'ROLLBACK']);
    const thief = await call(
      vault.url,
      'POST',
      '/v1/record/head',
      { keyProof: keyProofOf(randomBytes(32)), head: h(9) },
      token,
    );
    assert.deepEqual([thief.status, thief.body.error?.code], [403, 'FORBIDDEN']);
    const ev = await fetch(`${vault.url}/v1/record/events`, {
      headers: { authorization: `Bearer ${token}`, [KEY_PROOF_HEADER]: keyProofOf(key) },
    });
    assert.equal(ev.status, 200);
    // The key proof (header or body) never reaches the logs.
    const logs = vault.output();
    assert.ok(logs.includes('/v1/record/events'), 'requests are logged');
    assert.ok(!logs.includes(keyProofOf(key)), 'the key proof is never logged');
    const api = await call(vault.url, 'GET', '/v1/openapi.json');
    const paths = api.body.paths as Record<string, unknown>;
    assert.ok(paths['/v1/record/events'] && paths['/v1/record/head']);
    assert.match(JSON.stringify(paths['/v1/login/start']), /requestId/);
    assert.match(JSON.stringify(paths['/v1/login/finish']), /releasedHead/);
    assert.match(
      JSON.stringify(paths['/v1/record/events']),
      /"in":"header","name":"x-backvault-key-proof"/,
    );
  });
});
