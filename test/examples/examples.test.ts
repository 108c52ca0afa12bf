/**
 * The examples an app developer copies (examples/), each put into a fresh app directory
 * with its packages installed by {@link installPackages} and run through its own entry:
 *
 * - node-backup: backs up a chat folder (SQLite database + media) with a 64-digit key and
 *   restores it; checked here independently, entry by entry, and the store holds no
 *   plaintext.
 * - node-password: in node-password.test.ts (it installs the vault package).
 * - every example's `// @ts-check` JavaScript type-checks, strict, against the shipped types.
 * - web: bundled by its build.mjs (esbuild), served, and driven in headless Chromium: a
 *   wrong password shows the attempts left, the right one shows the enabled key.
 */
import { VaultClient } from '#sdk/client/index.js';
import { formatBackupKey, generateBackupKey } from '#sdk/format/key-encoding.js';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertSameTree, makeSampleTree } from '../backup/helpers.js';
import { startTestBrowser, type TestBrowser } from '../browser/virtual-authenticator.js';
import { forward } from '../client/vault-process.js';
import { type VaultProcess } from '../vault/vault-process.js';
import { exampleApp, runNode, typeCheck } from './install.js';
import { startIssuerVault, type IssuerVault } from './issuer-vault.js';

const PASSWORD = 'velvet-orbit-canyon-1987-plum';

/** Every file's bytes under `dir`, concatenated (to look for plaintext in a store). */
async function allBytes(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) parts.push(await readFile(join(e.parentPath, e.name)));
  }
  return Buffer.concat(parts);
}

describe('every example type-checks (strict) against the types the packages ship', () => {
  // node-password (which installs the vault, native modules and all) is in node-password.test.ts.
  for (const name of ['node-backup', 'web', 'token-issuer']) {
    it(name, async () => {
      const appDir = await exampleApp(name);
      try {
        const files = (await readdir(appDir)).filter((f) => f.endsWith('.mjs'));
        assert.ok(files.length > 0);
        const r = await typeCheck(appDir, files);
        assert.equal(r.code, 0, r.stdout + r.stderr);
      } finally {
        await rm(appDir, { recursive: true, force: true });
      }
    });
  }
});

describe('examples/node-backup', () => {
  let appDir: string;
  let work: string;
  before(async () => {
    appDir = await exampleApp('node-backup');
    work = await mkdtemp(join(tmpdir(), 'bv-example-backup-'));
    await makeSampleTree(join(work, 'chat'), 1024 * 1024);
  });
  after(async () => {
    await rm(appDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('backs up a chat folder with a 64-digit key and restores it byte-exact', async () => {
    const [chat, store, restored] = ['chat', 'store', 'restored'].map((d) => join(work, d));
    const r = await runNode(appDir, 'index.mjs', [chat!, store!, restored!]);
    assert.equal(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.match(r.stdout, /backup: snapshot 1, \d+ files, 1 SQLite database\(s\)/);
    assert.match(r.stdout, /restored byte-exact: \d+ files/);
    // Not the example's word for it: the trees are compared here, entry by entry.
    await assertSameTree(chat!, restored!);
    const stored = await allBytes(store!);
    assert.ok(stored.length > 0);
    assert.equal(stored.indexOf('ünïcødé content'), -1, 'no plaintext file content in the store');
    assert.equal(stored.indexOf('IMG_0001'), -1, 'no file names in the store');
    // The key is printed only as a prefix (an example must not teach logging keys).
    assert.doesNotMatch(r.stdout, /([0-9a-f]{4} ){15}[0-9a-f]{4}/);
  });

  it('a usage error names the arguments (exit 2)', async () => {
    const r = await runNode(appDir, 'index.mjs', []);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: node index\.mjs CHAT_DIR STORE_DIR RESTORE_DIR/);
  });
});

describe('examples/web against a vault trusting the sample issuer', () => {
  let setup: IssuerVault;
  let vault: VaultProcess;
  const issue = (user: string): Promise<{ token: string }> => setup.issue(user);

  before(async () => {
    setup = await startIssuerVault();
    vault = setup.vault;
  });
  after(async () => setup?.stop());

  describe('examples/web (esbuild bundle in headless Chromium)', () => {
    let appDir: string;
    let page: Server;
    let pageUrl: string;
    let browser: TestBrowser;
    const backupKey = generateBackupKey();

    before(async () => {
      appDir = await exampleApp('web');
      const built = await runNode(appDir, 'build.mjs');
      assert.equal(built.code, 0, built.stderr);
      // The account the page recovers: enabled from Node, with the same issuer.
      const enabler = new VaultClient({
        baseUrl: vault.url,
        token: async () => (await issue('dana')).token,
      });
      await enabler.enable({ password: PASSWORD, backupKey });
      // The app's origin: the built page (pinned to this vault's key), the app's token route
      // (the session is "dana"), and the vault under /v1 (same origin: no CORS needed).
      const html = (await readFile(join(appDir, 'dist/index.html'), 'utf8')).replace(
        '<meta name="backvault-vault-key" content="" />',
        `<meta name="backvault-vault-key" content="${vault.serverPublicKey}" />`,
      );
      const target = new URL(vault.url);
      page = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const url = req.url ?? '/';
          if (url.startsWith('/v1/')) return forward(target, req, res, Buffer.concat(chunks));
          if (url === '/backvault/token' && req.method === 'POST') {
            void issue('dana').then(({ token }) => {
              res.writeHead(200, { 'content-type': 'application/json' });
              res.end(JSON.stringify({ token }));
            });
            return;
          }
          if (url === '/' || url === '/index.html') {
            res.writeHead(200, { 'content-type': 'text/html' });
            return res.end(html);
          }
          if (url === '/app.js' || url === '/app.js.map') {
            const type = extname(url) === '.js' ? 'text/javascript' : 'application/json';
            void readFile(join(appDir, 'dist', url)).then((b) => {
              res.writeHead(200, { 'content-type': type });
              res.end(b);
            });
            return;
          }
          res.writeHead(404);
          res.end();
        });
      });
      await new Promise<void>((r) => page.listen(0, '127.0.0.1', r));
      pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
      browser = await startTestBrowser();
    });
    after(async () => {
      await browser?.stop();
      page?.close();
      await rm(appDir, { recursive: true, force: true });
    });

    it('the bundle holds the SDK and no node: import', async () => {
      const js = await readFile(join(appDir, 'dist/app.js'), 'utf8');
      assert.doesNotMatch(js, /["']node:/);
      assert.ok(js.length > 10_000, 'the SDK is in the bundle');
    });

    it('a wrong password shows the attempts left; the right one shows the 64-digit key', async () => {
      const tab = await browser.browser.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (e) => errors.push(e.message));
      await tab.goto(pageUrl);
      await tab.fill('#password', 'not the password');
      await tab.click('button[type=submit]');
      await tab.waitForFunction(
        () => document.getElementById('status')?.textContent?.startsWith('Wrong') ?? false,
        undefined,
        { timeout: 60_000 },
      );
      assert.equal(await tab.textContent('#status'), 'Wrong password: 9 attempts left.');
      await tab.fill('#password', PASSWORD);
      await tab.click('button[type=submit]');
      await tab.waitForFunction(
        () => (document.getElementById('key')?.textContent ?? '') !== '',
        undefined,
        { timeout: 60_000 },
      );
      assert.equal(await tab.textContent('#key'), formatBackupKey(backupKey));
      assert.deepEqual(errors, []);
    });
  });
});
