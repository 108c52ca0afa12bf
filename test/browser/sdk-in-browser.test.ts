/**
 * The device SDK in a REAL browser: headless Chromium (Debian `chromium-headless-shell`)
 * loads the compiled `src/client`, `src/wire`, `src/format` and `src/errors` modules as they
 * are (import map, no bundler) and runs the password story against a real vault process —
 * with the browser's own `fetch` and WebCrypto and the real Argon2id stretching. Any Node-only
 * API in the SDK (a `node:` import, `Buffer`, `process`) breaks the page, and the page's
 * error is what this test reports.
 *
 * A missing browser is a FAILURE naming the package, never a skip.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startVaultProcess, type VaultProcess } from '../client/vault-process.js';
import { findChromium, launchChromium, type ChromiumProcess } from './chromium.js';
import { startPageServer, type PageServer } from './page-server.js';
import type { PageResult } from './sdk-page.js';

const MAX_ATTEMPTS = 5;
const RESULT_TIMEOUT_MS = 60_000;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The page's console messages (with `--enable-logging=stderr`); says why a module failed. */
function consoleLines(browser: ChromiumProcess): string {
  return browser
    .stderr()
    .split('\n')
    .filter((l) => l.includes(':CONSOLE') || l.includes('FATAL'))
    .join('\n')
    .slice(-4000);
}

/** Waits for the page's report; fails early if the browser dies, late after the timeout. */
async function waitForResult(page: PageServer, browser: ChromiumProcess): Promise<PageResult> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return (await Promise.race([
      page.nextResult(),
      browser.exited.then((how) => {
        throw new Error(`Chromium exited (${how}) before the page reported`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no result from the page within ${RESULT_TIMEOUT_MS / 1000} s`)),
          RESULT_TIMEOUT_MS,
        );
      }),
    ])) as PageResult;
  } finally {
    clearTimeout(timer);
  }
}

describe('the device SDK in headless Chromium against a real vault', () => {
  let tmp: string;
  let vault: VaultProcess | undefined;
  let page: PageServer | undefined;
  let browser: ChromiumProcess | undefined;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'backvault-browser-'));
    vault = await startVaultProcess({ dataDir: join(tmp, 'vault'), maxAttempts: MAX_ATTEMPTS });
    page = await startPageServer(vault.url);
  });

  after(async () => {
    await browser?.stop();
    await page?.close();
    await vault?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  test('enable, recover, one wrong password, recover again — all in the page', async () => {
    assert.ok(vault && page);
    const binary = findChromium();
    browser = launchChromium(binary, `${page.url}/`, join(tmp, 'chromium-profile'));
    const started = Date.now();
    let result: PageResult;
    try {
      result = await waitForResult(page, browser);
    } catch (e) {
      throw new Error(
        `${(e as Error).message}\nrefused paths: ${JSON.stringify(page.refused)}\n` +
          `Chromium console:\n${consoleLines(browser)}\nChromium stderr (tail):\n` +
          browser.stderr().slice(-2000),
        { cause: e },
      );
    }
    const elapsedMs = Date.now() - started;
    const context = (): string =>
      JSON.stringify(
        { ...result, secrets: undefined, refused: page?.refused, elapsedMs },
        null,
        2,
      ) + `\nChromium console:\n${browser ? consoleLines(browser) : ''}`;

    // The page ran to its end (not a load error or a stray window error).
    assert.equal(result.source, 'run', `the page failed before/outside its run:\n${context()}`);
    assert.equal(result.error, undefined, `the page's run threw:\n${context()}`);
    assert.equal(result.typeofProcess, 'undefined', 'not a browser: `process` exists');
    assert.equal(result.typeofBuffer, 'undefined', 'not a browser: `Buffer` exists');
    assert.match(result.userAgent, /HeadlessChrome\/\d+/, result.userAgent);
    for (const s of result.steps) assert.ok(s.ok, `step failed: ${s.name}\n${context()}`);
    assert.equal(result.steps.length, 8, context());
    assert.equal(result.ok, true, context());

    // Every step, checked again on this side from what the page saw.
    const d = result.details;
    const secrets = result.secrets;
    assert.ok(d && secrets, context());
    assert.equal(d.serverPublicKey, vault.serverPublicKey);
    assert.equal(d.maxAttempts, MAX_ATTEMPTS);
    assert.match(secrets.backupKeyHex, /^[0-9a-f]{64}$/);
    assert.notEqual(secrets.backupKeyHex, '0'.repeat(64));
    assert.deepEqual(d.recoveredHex, [secrets.backupKeyHex, secrets.backupKeyHex]);
    assert.equal(d.wrongPasswordCode, 'WRONG_PASSWORD');
    assert.equal(d.attemptsLeftAfterWrong, MAX_ATTEMPTS - 1);
    assert.equal(d.attemptsLeftAfterReset, MAX_ATTEMPTS);

    // The SDK really talked to the vault through the page's origin.
    const calls = page.proxied;
    const count = (c: string): number => calls.filter((x) => x === c).length;
    assert.ok(count('POST /v1/dev/token') >= 1, calls.join('\n'));
    assert.equal(count('POST /v1/registration/start'), 1, calls.join('\n'));
    assert.equal(count('POST /v1/registration/finish'), 1, calls.join('\n'));
    assert.equal(count('POST /v1/login/start'), 3, calls.join('\n'));
    assert.equal(count('POST /v1/login/finish'), 2, calls.join('\n'));

    // Nothing else was reported (no window error or rejection after the run).
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      page.results.filter((r) => (r as PageResult).source !== 'run'),
      [],
      'the page reported errors besides its run',
    );

    // Neither the password nor the key reached the vault's logs or data.
    const key = Buffer.from(secrets.backupKeyHex, 'hex');
    const logs = vault.logs();
    assert.ok(logs.length > 0, 'the vault wrote no logs');
    for (const needle of [
      secrets.password,
      secrets.backupKeyHex,
      key.toString('base64url'),
      key.toString('base64'),
    ]) {
      assert.ok(!logs.includes(needle), 'a secret appears in the vault log');
    }
    for (const file of await filesUnder(join(tmp, 'vault'))) {
      const bytes = await readFile(file);
      assert.equal(bytes.indexOf(key), -1, `the backup key appears in ${file}`);
      assert.equal(bytes.indexOf(Buffer.from(secrets.password)), -1, `the password in ${file}`);
      assert.equal(bytes.indexOf(Buffer.from(secrets.backupKeyHex)), -1, `key hex in ${file}`);
    }
    console.log(`# browser: ${result.userAgent}; page run ${elapsedMs} ms`);
  });
});
