/**
 * An AbortSignal on every vault call, against a real vault process behind a loopback TCP
 * proxy: an aborted login rejects within a second with the abort reason (never
 * UNAVAILABLE), never resends its login start (to this node or another), and the attempt
 * counter is exactly what the protocol promises: one guess for a start the vault received,
 * none for one it never saw. Also: `enable()` on an account that is already enabled is
 * ALREADY_ENABLED and points to `changePassword()`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AlreadyEnabledError,
  VaultClient,
  hasCode,
  requestDevToken,
  type FetchLike,
} from '#sdk/client/index.js';
import { startTcpProxy, type ProxyMode, type TcpProxy } from '../fleet/tcp-proxy.js';
import { startVaultProcess, type VaultProcess } from './vault-process.js';

const PASSWORD = 'an abort is not a guess';
const WITHIN_MS = 1000;

describe('vault calls take an AbortSignal (real vault, loopback proxy)', () => {
  let dataDir: string;
  let vault: VaultProcess;
  let proxy: TcpProxy;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'bv-vault-abort-'));
    vault = await startVaultProcess({ dataDir, extraArgs: ['--pacing', 'off'] });
    proxy = await startTcpProxy(vault.url);
  });
  after(async () => {
    await proxy?.close();
    await vault?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const clientFor = (
    account: string,
    f?: FetchLike,
    via = proxy.url,
    failover = true,
  ): VaultClient =>
    new VaultClient({
      baseUrl: via,
      // A second "node" (the same vault, directly): an aborted start must not go there either.
      ...(failover ? { failoverUrls: [vault.url] } : {}),
      token: () => requestDevToken({ baseUrl: vault.url, account }),
      pinnedServerPublicKey: vault.serverPublicKey,
      insecureTestingKeyStretching: true,
      // Far beyond the promise: only the abort can end a silent request in time.
      timeoutMs: 15_000,
      ...(f ? { fetch: f } : {}),
    });

  const attemptsLeft = async (account: string): Promise<number> =>
    (await clientFor(account, undefined, vault.url).status()).attemptsLeft;

  /** Await `op`: rejects with exactly the abort reason, within a second of the abort. */
  async function abortedPromptly(
    what: string,
    op: Promise<unknown>,
    ac: AbortController,
    abortedAt: () => number,
  ): Promise<void> {
    const outcome = await op.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    const took = performance.now() - abortedAt();
    assert.equal(outcome, ac.signal.reason, `${what}: rejects with the abort reason`);
    assert.ok(took < WITHIN_MS, `${what}: stopped ${took.toFixed(0)} ms after abort()`);
    console.log(`# ${what}: rejected ${took.toFixed(0)} ms after abort()`);
  }

  const cases: { mode: ProxyMode; guesses: number; why: string }[] = [
    // The vault received and counted the start; its answer never comes back.
    { mode: 'drop-responses', guesses: 1, why: 'the vault counted the start it received' },
    // The start never reached the vault.
    { mode: 'blackhole', guesses: 0, why: 'the vault never saw a start' },
  ];
  for (const { mode, guesses, why } of cases) {
    test(`abort during a login whose start is in flight (${mode}): prompt, no resend, ${guesses} guess spent`, async () => {
      const account = `abort-${mode}`;
      const backupKey = new Uint8Array(randomBytes(32));
      await clientFor(account, undefined, vault.url).enable({ password: PASSWORD, backupKey });
      assert.equal(await attemptsLeft(account), 10);

      const ac = new AbortController();
      let abortedAt = 0;
      let sent = 0;
      // The start goes out into silence (answer dropped, or nothing forwarded); abort 300 ms later.
      const f: FetchLike = (input, init) => {
        if (input.endsWith('/v1/login/start')) {
          sent++;
          proxy.mode = mode;
          setTimeout(() => {
            abortedAt = performance.now();
            ac.abort();
          }, 300);
        }
        return fetch(input, init);
      };
      const starts = { sent: () => sent };
      const login = clientFor(account, f).recover({ password: PASSWORD, signal: ac.signal });
      try {
        await abortedPromptly(`login (${mode})`, login, ac, () => abortedAt);
        // Long enough for any resend round (250 ms, then 1 s) to have gone out.
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(starts.sent(), 1, 'the start was sent once: never resent after the abort');
      } finally {
        proxy.mode = 'pass';
        proxy.resetConnections();
      }
      assert.equal(await attemptsLeft(account), 10 - guesses, why);
      // Nothing is lost: the right password still works and resets the count.
      const c = clientFor(account, undefined, vault.url);
      assert.deepEqual(await c.recover({ password: PASSWORD }), backupKey);
      assert.equal(await attemptsLeft(account), 10);
    });
  }

  test('a wrong guess being resent after a lost answer: an abort in the pause stops the resend', async () => {
    const account = 'abort-resend';
    const backupKey = new Uint8Array(randomBytes(32));
    await clientFor(account, undefined, vault.url).enable({ password: PASSWORD, backupKey });
    const ac = new AbortController();
    let abortedAt = 0;
    let sent = 0;
    // The first start's answer is lost (the connection dies after the vault counted it);
    // the client would resend the same start (same request id) after a pause: abort then.
    const f: FetchLike = async (input, init) => {
      if (!input.endsWith('/v1/login/start')) return fetch(input, init);
      sent++;
      proxy.mode = 'drop-responses';
      setTimeout(() => proxy.resetConnections(), 300);
      try {
        return await fetch(input, init);
      } finally {
        proxy.mode = 'pass';
        // The client now pauses before resending: abort during the pause.
        setTimeout(() => {
          abortedAt = performance.now();
          ac.abort();
        }, 50);
      }
    };
    await abortedPromptly(
      'login (abort before the resend)',
      // One node: the resend would come after the pause (with two, at once to the other).
      clientFor(account, f, proxy.url, false).recover({
        password: 'not the password',
        signal: ac.signal,
      }),
      ac,
      () => abortedAt,
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(sent, 1, 'no resend after the abort');
    assert.equal(await attemptsLeft(account), 9, 'the start the vault received is the one guess');
  });

  test('every call refuses an aborted signal before sending anything', async () => {
    const account = 'abort-before';
    const backupKey = new Uint8Array(randomBytes(32));
    await clientFor(account, undefined, vault.url).enable({ password: PASSWORD, backupKey });
    let requests = 0;
    const f: FetchLike = (input, init) => {
      requests++;
      return fetch(input, init);
    };
    const c = clientFor(account, f);
    const ac = new AbortController();
    ac.abort(new Error('the user left the screen'));
    const signal = ac.signal;
    for (const op of [
      () => c.info({ signal }),
      () => c.status({ signal }),
      () => c.recover({ password: PASSWORD, signal }),
      () => c.recoverWithHead({ password: PASSWORD, signal }),
      () => c.enable({ password: PASSWORD, backupKey, signal }),
      () => c.changePassword({ newPassword: `${PASSWORD}!`, backupKey, signal }),
      () => c.events({ backupKey, signal }),
      () => c.recordHead({ backupKey, head: { seq: 1, snapshotId: '0'.repeat(64) }, signal }),
      () => c.disable({ backupKey, signal }),
      () => requestDevToken({ baseUrl: vault.url, account, fetch: f, signal }),
    ]) {
      await assert.rejects(op(), (e: unknown) => e === signal.reason);
    }
    assert.equal(requests, 0);
    assert.equal(await attemptsLeft(account), 10);
  });

  test('enable() twice is ALREADY_ENABLED, points to changePassword(), and changes nothing', async () => {
    const account = 'enable-twice';
    const backupKey = new Uint8Array(randomBytes(32));
    const c = clientFor(account, undefined, vault.url);
    await c.enable({ password: PASSWORD, backupKey });
    await assert.rejects(
      c.enable({ password: 'another password entirely', backupKey }),
      (e: unknown) =>
        e instanceof AlreadyEnabledError &&
        hasCode(e, 'ALREADY_ENABLED') &&
        /`changePassword\(\)`/.test(e.hint) &&
        !/currentKeyProof/.test(`${e.message} ${e.hint}`),
    );
    assert.deepEqual(await c.recover({ password: PASSWORD }), backupKey);
  });
});
