/**
 * The SDK's multi-node failover policy (`VaultClient` `failoverUrls`) against a real vault
 * process: a login start carries a request id, so after an unknown outcome the SAME start
 * is resent (same node, then the others) and the vault answers it from its stored answer:
 * no lost answer ever costs a guess, and `onUncertainGuess` is no longer asked. Lost
 * answers are injected in `fetch` (the request really reaches the vault, and the answer is
 * thrown away as a dying node would).
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
} from '#sdk/client/vault-client.js';
import { hasCode } from '#sdk/errors.js';
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

  it('resends a login start whose answer was lost to the next node: the stored answer, no second guess', async () => {
    const key = await enabled('f-resend');
    const ghost = 'http://ghost.invalid:1';
    let asked = 0;
    let starts = 0;
    const lossy = losing([ghost], vault.url);
    const c = await clientFor('f-resend', {
      baseUrl: ghost,
      failoverUrls: [vault.url],
      fetch: (input, init) => {
        if (input.endsWith('/v1/login/start')) starts++;
        return lossy(input, init);
      },
      onUncertainGuess: () => (asked++, true),
    });
    // A wrong password first: the lost start and its resend are ONE counted guess.
    await assert.rejects(c.recover({ password: 'not it at all' }), (e: unknown) =>
      hasCode(e, 'WRONG_PASSWORD'),
    );
    assert.equal(starts, 2, 'the start was sent twice');
    assert.equal(await attemptsLeft('f-resend'), 9, 'and counted once');
    assert.deepEqual(await c.recover({ password: PASSWORD }), key);
    assert.equal(asked, 0, 'nothing to ask: a resend costs nothing');
    assert.equal(await attemptsLeft('f-resend'), 10, 'success reset the counter');
  });

  it('every node loses its answer: resent within the window, then UNAVAILABLE, one guess spent', async () => {
    await enabled('f-twice');
    const ghost = 'http://ghost.invalid:1';
    const ghost2 = 'http://ghost2.invalid:1';
    let starts = 0;
    const lossy = losing([ghost, ghost2], vault.url);
    const d = await clientFor('f-twice', {
      baseUrl: ghost,
      failoverUrls: [ghost2],
      fetch: (input, init) => {
        if (input.endsWith('/v1/login/start')) starts++;
        return lossy(input, init);
      },
    });
    await assert.rejects(d.recover({ password: PASSWORD }), (e: unknown) =>
      hasCode(e, 'UNAVAILABLE'),
    );
    assert.equal(starts, 6, 'three rounds over two nodes');
    assert.equal(await attemptsLeft('f-twice'), 9, 'six sends, one guess');
  });
});
