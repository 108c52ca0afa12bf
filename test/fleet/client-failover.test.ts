/**
 * The SDK's multi-node failover policy (`VaultClient` `failoverUrls`, `onUncertainGuess`)
 * against a real vault process: a login start is resent without asking only when it
 * provably never reached a node; after an unknown outcome the app is asked, and at most one
 * extra guess is ever spent. Lost answers are injected in `fetch` (the request really
 * reaches the vault, and the answer is thrown away as a dying node would).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  VaultClient,
  requestDevToken,
  type FetchLike,
  type VaultClientOptions,
} from '../../src/client/vault-client.js';
import { hasCode } from '../../src/errors.js';
import { startVaultProcess, type VaultProcess } from '../vault/vault-process.js';

const PASSWORD = 'failover password for the test';
let vault: VaultProcess;
let dir: string;
let deadUrl: string;

/** A loopback URL nobody listens on (connection refused). */
async function deadPort(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(`http://127.0.0.1:${port}`));
    });
  });
}

/** Forwards to the vault; for `lossy` URLs the login-start answer is lost after it was served. */
function losing(lossy: readonly string[], target: string): FetchLike {
  return async (input, init) => {
    const base = lossy.find((u) => input.startsWith(u));
    if (base === undefined) return fetch(input, init);
    const res = await fetch(target + input.slice(base.length), init);
    if (input.endsWith('/v1/login/start')) {
      await res.arrayBuffer();
      throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
    }
    return res;
  };
}

async function clientFor(
  account: string,
  o: Partial<VaultClientOptions> & { baseUrl: string },
): Promise<VaultClient> {
  const token = await requestDevToken({ baseUrl: vault.url, account });
  return new VaultClient({
    token,
    pinnedServerPublicKey: vault.serverPublicKey,
    insecureTestingKeyStretching: true,
    ...o,
  });
}

async function enabled(account: string): Promise<Uint8Array> {
  const backupKey = randomBytes(32);
  await (
    await clientFor(account, { baseUrl: vault.url })
  ).enable({ password: PASSWORD, backupKey });
  return new Uint8Array(backupKey);
}

async function attemptsLeft(account: string): Promise<number> {
  return (await (await clientFor(account, { baseUrl: vault.url })).status()).attemptsLeft;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-failover-'));
  vault = await startVaultProcess([
    '--data',
    dir,
    '--dev-auth',
    '--workers',
    '1',
    '--max-attempts',
    '10',
    '--log-level',
    'warn',
  ]);
  deadUrl = await deadPort();
});

after(async () => {
  await vault?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('VaultClient failover over fleet nodes', () => {
  it('moves on without asking when the first node refuses the connection (nothing counted)', async () => {
    const key = await enabled('f-refused');
    let asked = 0;
    const c = await clientFor('f-refused', {
      baseUrl: deadUrl,
      failoverUrls: [vault.url],
      onUncertainGuess: () => (asked++, true),
    });
    assert.deepEqual(await c.recover({ password: PASSWORD }), key);
    assert.equal(asked, 0);
    assert.equal(c.baseUrl, vault.url, 'the client stays on the node that answered');
  });

  it('never resends a login start after an unknown outcome unless the app agrees', async () => {
    await enabled('f-silent');
    const ghost = 'http://ghost.invalid:1';
    const c = await clientFor('f-silent', {
      baseUrl: ghost,
      failoverUrls: [vault.url],
      fetch: losing([ghost], vault.url),
    });
    await assert.rejects(c.recover({ password: PASSWORD }), (e: unknown) =>
      hasCode(e, 'UNAVAILABLE'),
    );
    assert.equal(await attemptsLeft('f-silent'), 9, 'the lost start was a counted guess');
  });

  it('with consent, retries once on the next node: one extra guess at most', async () => {
    const key = await enabled('f-consent');
    const ghost = 'http://ghost.invalid:1';
    const seen: string[] = [];
    const c = await clientFor('f-consent', {
      baseUrl: ghost,
      failoverUrls: [vault.url],
      fetch: losing([ghost], vault.url),
      onUncertainGuess: (i) => (seen.push(`${i.failedUrl}->${i.nextUrl}`), true),
    });
    assert.deepEqual(await c.recover({ password: PASSWORD }), key);
    assert.deepEqual(seen, [`${ghost}->${vault.url}`]);
    assert.equal(await attemptsLeft('f-consent'), 10, 'success reset the counter');

    // Every node loses its answer: asked once, then the error; exactly two guesses spent.
    await enabled('f-twice');
    const ghost2 = 'http://ghost2.invalid:1';
    let asked = 0;
    const d = await clientFor('f-twice', {
      baseUrl: ghost,
      failoverUrls: [ghost2, vault.url],
      fetch: losing([ghost, ghost2], vault.url),
      onUncertainGuess: () => (asked++, true),
    });
    await assert.rejects(d.recover({ password: PASSWORD }), (e: unknown) =>
      hasCode(e, 'UNAVAILABLE'),
    );
    assert.equal(asked, 1);
    assert.equal(await attemptsLeft('f-twice'), 8);
  });
});
