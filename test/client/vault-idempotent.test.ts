/**
 * "A network failure never costs a guess", end to end: the SDK talks to a real vault
 * process through the loopback TCP proxy of test/fleet, which throws the vault's answer
 * away (the request is executed, the answer is lost) at one step of the login at a time.
 * The user's attempts left must come out as if nothing had been lost. Also: the SDK
 * reads the event log and summarises it, recovers the snapshot head, and a new device's
 * head check sees a lowered head as ROLLBACK.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  VaultClient,
  describeGuesses,
  requestDevToken,
  type FetchLike,
} from '#sdk/client/index.js';
import { hasCode } from '#sdk/errors.js';
import { startTcpProxy, type TcpProxy } from '../fleet/tcp-proxy.js';
import { startVaultProcess, type VaultProcess } from './vault-process.js';

const PASSWORD = 'a tunnel eats my answers';

describe('login through a proxy that loses answers', () => {
  let dataDir: string;
  let vault: VaultProcess;
  let proxy: TcpProxy;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'bv-idem-'));
    vault = await startVaultProcess({ dataDir, extraArgs: ['--pacing', 'off'] });
    proxy = await startTcpProxy(vault.url);
  });
  after(async () => {
    await proxy?.close();
    await vault?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A fetch that loses the answer of the first `times` requests to `path` (proxy drop). */
  function losingAt(path: string, times = 1): { fetch: FetchLike; sent: () => number } {
    let left = times;
    let sent = 0;
    return {
      sent: () => sent,
      fetch: async (input, init) => {
        if (!input.endsWith(path)) return fetch(input, init);
        sent++;
        if (left <= 0) return fetch(input, init);
        left--;
        proxy.mode = 'drop-responses';
        try {
          return await fetch(input, init);
        } finally {
          proxy.mode = 'pass';
          proxy.resetConnections();
        }
      },
    };
  }

  const clientFor = (account: string, f?: FetchLike): VaultClient =>
    new VaultClient({
      baseUrl: proxy.url,
      token: () => requestDevToken({ baseUrl: vault.url, account }),
      pinnedServerPublicKey: vault.serverPublicKey,
      insecureTestingKeyStretching: true,
      timeoutMs: 1500,
      ...(f ? { fetch: f } : {}),
    });

  const attemptsLeft = async (account: string): Promise<number> =>
    (await clientFor(account).status()).attemptsLeft;

  test('answer of login start lost, wrong password: one guess, not two', async () => {
    const backupKey = randomBytes(32);
    await clientFor('tunnel-wrong').enable({ password: PASSWORD, backupKey });
    const lose = losingAt('/v1/login/start');
    await assert.rejects(
      clientFor('tunnel-wrong', lose.fetch).recover({ password: 'wrong in the tunnel' }),
      (e: unknown) =>
        hasCode(e, 'WRONG_PASSWORD') &&
        (e as unknown as { attemptsLeft: number }).attemptsLeft === 9,
    );
    assert.equal(lose.sent(), 2, 'the start was resent after its answer was lost');
    assert.ok(proxy.droppedRequestBytes > 0, 'the proxy really swallowed an answer');
    assert.equal(await attemptsLeft('tunnel-wrong'), 9);
  });

  for (const step of ['/v1/login/start', '/v1/login/finish']) {
    test(`answer of ${step} lost, right password: the key comes back, attempts full`, async () => {
      const account = `tunnel-${step.split('/').at(-1)}`;
      const backupKey = new Uint8Array(randomBytes(32));
      await clientFor(account).enable({ password: PASSWORD, backupKey });
      // Two wrong guesses first, so "unchanged" is visible: a lost answer must not add one.
      for (const pw of ['nope one', 'nope two']) {
        await assert.rejects(clientFor(account).recover({ password: pw }));
      }
      assert.equal(await attemptsLeft(account), 8);
      const lose = losingAt(step);
      const c = clientFor(account, lose.fetch);
      const { backupKey: got } = await c.recoverWithHead({ password: PASSWORD });
      assert.deepEqual(got, backupKey);
      assert.ok(lose.sent() >= 2);
      assert.equal(await attemptsLeft(account), 10, 'success reset the count');
      // The event log: the two wrong guesses are what the user is told about.
      const ev = await c.events({ backupKey, justRestored: true });
      assert.equal(ev.guesses.wrong, 2);
      assert.match(
        describeGuesses(ev.guesses),
        /^2 wrong passwords were tried since your last restore, the last on \d{4}-\d\d-\d\d \d\d:\d\d UTC$/,
      );
      const starts = ev.log.events.filter((e) => e.kind === 'guess').length;
      assert.equal(starts, step === '/v1/login/start' ? 3 : 4, 'a lost start is not logged twice');
    });
  }

  test('a lost answer to the last guess is answered again: not a lockout, not a second count', async () => {
    // Drop while the record sits at its last guess: the resend is the same guess, not a
    // lock-out and not a second count.
    const backupKey = new Uint8Array(randomBytes(32));
    const c = clientFor('tunnel-last');
    await c.enable({ password: PASSWORD, backupKey, maxAttempts: 2 });
    await assert.rejects(c.recover({ password: 'first wrong' }));
    const lose = losingAt('/v1/login/start');
    await assert.rejects(
      clientFor('tunnel-last', lose.fetch).recover({ password: 'second wrong' }),
      (e: unknown) => hasCode(e, 'WRONG_PASSWORD'),
    );
    const st = await c.status();
    assert.deepEqual([st.state, st.attemptsLeft], ['active', 0]);
  });

  test('the snapshot head travels with the envelope; a lowered head is refused', async () => {
    const backupKey = new Uint8Array(randomBytes(32));
    const c = clientFor('tunnel-head');
    await c.enable({ password: PASSWORD, backupKey });
    assert.equal((await c.recoverWithHead({ password: PASSWORD })).head, null);
    const head = { seq: 7, snapshotId: 'c'.repeat(64) };
    assert.deepEqual(await c.recordHead({ backupKey, head }), head);
    await assert.rejects(
      c.recordHead({ backupKey, head: { seq: 6, snapshotId: 'd'.repeat(64) } }),
      (e: unknown) => hasCode(e, 'ROLLBACK') && /snapshot 7/.test((e as Error).message),
    );
    assert.deepEqual(
      (await clientFor('tunnel-head').recoverWithHead({ password: PASSWORD })).head,
      head,
    );
  });

  test('a device that saw entry N detects a log cut back before N', async () => {
    const backupKey = new Uint8Array(randomBytes(32));
    const c = clientFor('tunnel-seen');
    await c.enable({ password: PASSWORD, backupKey });
    const first = await c.events({ backupKey });
    await assert.rejects(c.recover({ password: 'wrong once' }));
    const second = await c.events({ backupKey, ...(first.latest ? { seen: first.latest } : {}) });
    assert.ok(second.latest && first.latest && second.latest.seq === first.latest.seq + 1);
    // What a device holding `second.latest` would say to a log replayed from before it.
    const { verifyEventLog } = await import('#sdk/client/events.js');
    await assert.rejects(verifyEventLog(first.log, second.latest), (e: unknown) =>
      hasCode(e, 'ROLLBACK'),
    );
    const edited = {
      ...second.log,
      events: second.log.events.map((e, i) => (i === 1 ? { ...e, at: e.at - 60_000 } : e)),
    };
    await assert.rejects(verifyEventLog(edited), (e: unknown) => hasCode(e, 'CORRUPT'));
  });
});

describe('resends stay inside the vault login TTL', () => {
  let dataDir: string;
  let vault: VaultProcess;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'bv-idem-ttl-'));
    vault = await startVaultProcess({ dataDir, extraArgs: ['--login-ttl', '5'] });
  });
  after(async () => {
    await vault?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('a vault whose answers live 5 s: the SDK does not resend (a resend could be a new guess)', async () => {
    const c = (f?: FetchLike): VaultClient =>
      new VaultClient({
        baseUrl: vault.url,
        token: () => requestDevToken({ baseUrl: vault.url, account: 'short-ttl' }),
        pinnedServerPublicKey: vault.serverPublicKey,
        insecureTestingKeyStretching: true,
        ...(f ? { fetch: f } : {}),
      });
    await c().enable({ password: PASSWORD, backupKey: randomBytes(32) });
    let starts = 0;
    const losing: FetchLike = async (input, init) => {
      const res = await fetch(input, init);
      if (!input.endsWith('/v1/login/start')) return res;
      starts++;
      await res.arrayBuffer();
      throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
    };
    await assert.rejects(c(losing).recover({ password: PASSWORD }), (e: unknown) =>
      hasCode(e, 'UNAVAILABLE'),
    );
    assert.equal(starts, 1, 'window = TTL 5 s - 5 s margin = 0: no resend');
    assert.equal((await c().status()).attemptsLeft, 9);
  });
});
