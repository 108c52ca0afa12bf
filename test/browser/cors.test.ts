/**
 * A web app on one origin and the vault on another, in a REAL browser: headless Chromium
 * (Debian `chromium-headless-shell`, driven by playwright-core) loads a page from
 * http://127.0.0.1:PORT_A carrying the compiled SDK; the vault listens on another port, so
 * every SDK call is a cross-origin request that Chromium itself checks against the vault's
 * CORS answers.
 *
 * - `vault serve --cors-origin <page origin>`: the page gets a token, enables a password
 *   for a fresh key, sees WRONG_PASSWORD for a wrong one (the error body is readable across
 *   origins) and recovers the key; each preflight is sent once (Access-Control-Max-Age).
 * - A vault listing only `http://localhost:PORT_A` (the same page under another name is
 *   another origin): every call fails with VAULT_CORS_BLOCKED naming the page's origin, the
 *   vault's, and the `--cors-origin` to add; never UNAVAILABLE. The guess never reaches the
 *   vault: its attempt counter is unchanged and it saw no login start.
 * - A vault that is down: UNAVAILABLE, saying not even a plain request was answered.
 *
 * Requests pass through a recording proxy (test/client/vault-process.ts) so the test sees
 * every preflight. Screenshots: `.tmp/browser-cors/*.png`. A missing browser is a FAILURE
 * naming the package, never a skip.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import {
  startRecordingProxy,
  startVaultProcess,
  type RecordingProxy,
  type VaultProcess,
} from '../client/vault-process.js';
import { launchBrowser } from '../ui/browser.js';
import { call, devToken, register } from '../vault/test-client.js';
import type { BlockedResult, StoryResult } from './cors-page.js';
import { startPageServer, type PageServer } from './page-server.js';

const SHOTS = fileURLToPath(new URL('../../../.tmp/browser-cors/', import.meta.url));
const MAX_ATTEMPTS = 7;

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('the SDK in headless Chromium, the vault on another origin', () => {
  let tmp: string;
  let site: PageServer;
  let browser: Browser;
  let page: Page;
  const pageLog: string[] = [];
  const vaults: VaultProcess[] = [];
  const proxies: RecordingProxy[] = [];
  /** The vaults of the first two tests, for the failover test. */
  let allowedNode: { vault: VaultProcess; proxy: RecordingProxy } | undefined;
  let blockedNode: { vault: VaultProcess; proxy: RecordingProxy } | undefined;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'backvault-cors-'));
    await mkdir(SHOTS, { recursive: true });
    site = await startPageServer(undefined, { autorun: false });
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1000, height: 420 } });
    page = await context.newPage();
    page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
    await page.goto(`${site.url}/`);
  });

  after(async () => {
    await browser?.close();
    await site?.close();
    for (const p of proxies) await p.close();
    for (const v of vaults) await v.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  async function vaultBehindProxy(
    name: string,
    extraArgs: string[],
  ): Promise<{ vault: VaultProcess; proxy: RecordingProxy }> {
    const vault = await startVaultProcess({
      dataDir: join(tmp, name),
      maxAttempts: MAX_ATTEMPTS,
      extraArgs: ['--workers', '1', ...extraArgs],
    });
    vaults.push(vault);
    const proxy = await startRecordingProxy(vault.url);
    proxies.push(proxy);
    return { vault, proxy };
  }

  /** Runs an export of cors-page.js in the page. */
  function inPage<T>(
    fn: 'enableAndRecover' | 'blockedCalls' | 'infoWithFailover',
    ...args: string[]
  ): Promise<T> {
    return page.evaluate(
      async ([f, a]) => {
        const path = '/test/browser/cors-page.js';
        const m = (await import(path)) as Record<string, (...x: string[]) => Promise<unknown>>;
        return m[f as string]!(...(a as string[]));
      },
      [fn, args] as const,
    ) as Promise<T>;
  }

  it('a page on a listed origin enables a password and recovers the key (OPAQUE in the page)', async () => {
    allowedNode = await vaultBehindProxy('allowed', ['--cors-origin', site.url]);
    const { vault, proxy } = allowedNode;
    const r = await inPage<StoryResult>('enableAndRecover', proxy.url);
    await page.screenshot({ path: join(SHOTS, 'allowed.png') });
    const ctx = `${JSON.stringify(r, null, 2)}\n${pageLog.join('\n')}`;
    assert.equal(r.pageOrigin, site.url, ctx);
    assert.equal(r.error, undefined, ctx);
    assert.equal(r.serverPublicKey, vault.serverPublicKey, ctx);
    assert.equal(r.enabledAttemptsLeft, MAX_ATTEMPTS, ctx);
    assert.equal(r.wrongPassword?.code, 'WRONG_PASSWORD', ctx);
    assert.equal(r.recoveredMatches, true, ctx);

    const seen = proxy.requests.map((q) => `${q.method} ${q.path}`);
    const count = (x: string): number => seen.filter((s) => s === x).length;
    // Chromium really asked first, and with the page's origin.
    const preflights = proxy.requests.filter((q) => q.method === 'OPTIONS');
    assert.ok(preflights.length > 0, seen.join('\n'));
    for (const q of preflights) {
      assert.equal((JSON.parse(q.headers) as { origin?: string }).origin, site.url);
    }
    // Each preflighted URL was asked about once although called several times: cached.
    assert.equal(count('POST /v1/login/start'), 2, seen.join('\n'));
    assert.ok(count('POST /v1/dev/token') >= 2, seen.join('\n'));
    for (const path of ['/v1/dev/token', '/v1/registration/start', '/v1/login/start']) {
      assert.equal(count(`OPTIONS ${path}`), 1, `${path}\n${seen.join('\n')}`);
    }
    // A plain GET needs no preflight.
    assert.equal(count('OPTIONS /v1/info'), 0, seen.join('\n'));
    assert.ok(count('GET /v1/info') >= 1, seen.join('\n'));
  });

  it('a page on an unlisted origin gets VAULT_CORS_BLOCKED naming both origins, never UNAVAILABLE, and spends no guess', async () => {
    const pagePort = new URL(site.url).port;
    blockedNode = await vaultBehindProxy('blocked', [
      '--cors-origin',
      `http://localhost:${pagePort}`,
    ]);
    const { vault, proxy } = blockedNode;
    // An account with a password at that vault (set up from Node, where CORS does not apply).
    const token = await devToken(vault.url, `blocked-${pagePort}`);
    const reg = await register(vault.url, token, 'the right password', new Uint8Array(32).fill(7));
    assert.equal(reg.status.status, 200);

    await page.evaluate(() => {
      document.getElementById('log')!.textContent = '';
    });
    const r = await inPage<BlockedResult>('blockedCalls', proxy.url, token);
    await page.screenshot({ path: join(SHOTS, 'blocked.png') });
    const ctx = `${JSON.stringify(r, null, 2)}\n${pageLog.join('\n')}`;
    const vaultOrigin = new URL(proxy.url).origin;
    for (const name of ['info', 'devToken', 'recover']) {
      const e = r.errors[name];
      assert.ok(e, `${name} succeeded\n${ctx}`);
      assert.equal(e.code, 'VAULT_CORS_BLOCKED', `${name}\n${ctx}`);
      assert.equal(e.isCorsBlocked, true, name);
      assert.equal(e.isUnavailable, false, `${name} must not be an UnavailableError`);
      assert.equal(e.pageOrigin, site.url, name);
      assert.equal(e.vaultOrigin, vaultOrigin, name);
      assert.ok(e.message.includes(`origin ${site.url}`), `${name}: ${e.message}`);
      assert.ok(e.message.includes(vaultOrigin), `${name}: ${e.message}`);
      assert.match(e.message, /CORS/, name);
      assert.doesNotMatch(e.message, /cannot reach/, name);
      assert.ok(e.hint?.includes(`--cors-origin ${site.url}`), `${name}: ${e.hint}`);
    }
    // The guess never reached the vault: refused at the preflight.
    const seen = proxy.requests.map((q) => `${q.method} ${q.path}`);
    assert.ok(seen.includes('OPTIONS /v1/login/start'), seen.join('\n'));
    assert.ok(!seen.includes('POST /v1/login/start'), seen.join('\n'));
    assert.ok(!seen.includes('POST /v1/dev/token'), seen.join('\n'));
    const status = await call(vault.url, 'GET', '/v1/record', undefined, token);
    assert.equal(status.body.attemptsLeft, MAX_ATTEMPTS, JSON.stringify(status.body));
    assert.match(
      vault.logs(),
      /"method":"OPTIONS","status":403,[^\n]*"code":"CORS_ORIGIN_NOT_ALLOWED"/,
    );
  });

  it('a node that blocks the page is failed over like an unavailable one', async () => {
    assert.ok(allowedNode && blockedNode, 'needs the vaults of the tests above');
    const r = await inPage<{ serverPublicKey?: string; baseUrl?: string }>(
      'infoWithFailover',
      blockedNode.proxy.url,
      allowedNode.proxy.url,
    );
    assert.equal(r.serverPublicKey, allowedNode.vault.serverPublicKey, JSON.stringify(r));
    assert.equal(r.baseUrl, allowedNode.proxy.url);
  });

  it('a vault that is down is UNAVAILABLE, and says so honestly', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    await page.evaluate(() => {
      document.getElementById('log')!.textContent = '';
    });
    const r = await inPage<BlockedResult>('blockedCalls', url, 'no-token-needed');
    await page.screenshot({ path: join(SHOTS, 'down.png') });
    const ctx = JSON.stringify(r, null, 2);
    for (const name of ['info', 'devToken', 'recover']) {
      const e = r.errors[name];
      assert.ok(e, ctx);
      assert.equal(e.code, 'UNAVAILABLE', `${name}\n${ctx}`);
      assert.equal(e.isUnavailable, true, name);
      assert.ok(e.message.includes(`origin ${site.url}`), e.message);
      assert.match(e.message, /not even a plain request got an answer/, e.message);
      assert.ok(e.message.includes(`--cors-origin ${site.url}`), e.message);
    }
  });
});
