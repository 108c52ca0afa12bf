/**
 * The settings screen (`backvault ui`) driven in Debian's headless Chromium by playwright-core,
 * against a real vault process (`--dev-auth`, 3 attempts) and local-directory repositories:
 *
 * - the server refuses requests without the token, with a wrong token, for another Host
 *   name, cross-origin API calls, and any bind address but 127.0.0.1;
 * - password: enable in the page (OPAQUE in the browser), back up, restore in a fresh
 *   browser context on a fresh device profile → files byte-exact, the new device in
 *   password mode;
 * - wrong passwords: attempts left shown before typing, the countdown, the lockout screen
 *   (also after a reload);
 * - 64-digit key: enable (confirm a group), back up, restore with sloppy input;
 * - a backup's progress bar survives a page reload;
 * - axe-core on every screen: no serious or critical violations. Screenshots of each
 *   screen go to `.tmp/ui-screens/`.
 *
 * Processes are stopped by PID. A missing browser is a failure naming the package.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { MAIN_JS, startVaultProcess, type VaultProcess } from '../client/vault-process.js';
import { makeTree, treeDigest } from '../cli/tree.js';
import { VaultClient, requestDevToken } from '#sdk/client/vault-client.js';
import { NotFoundError } from '#sdk/errors.js';
import {
  freshPage,
  go,
  launchBrowser,
  openUi,
  screenshot,
  seriousViolations,
  type PageLog,
} from './browser.js';
import { startUi, type UiProcess } from './ui-process.js';

const MAX_ATTEMPTS = 3;
const PASSWORD = 'lantern orchard velvet 42';
const NEW_PASSWORD = 'copper meadow quiet 17';
const BOB_PASSWORD = 'harbor pebble violin 58';

/** A raw request with any Host header (fetch would not let us set it). */
function rawGet(
  origin: string,
  path: string,
  headers: Record<string, string>,
  method = 'GET',
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const u = new URL(origin);
  return new Promise((resolve, reject) => {
    // The socket is 127.0.0.1 (localhost could resolve to ::1 first); Host is the header.
    const req = request({ host: '127.0.0.1', port: u.port, path, method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Fails with the page's console when axe finds serious or critical problems. */
async function assertAccessible(page: Page, screen: string, log: PageLog): Promise<void> {
  const v = await seriousViolations(page);
  assert.deepEqual(v, [], `${screen}: accessibility violations\n${log.lines.join('\n')}`);
}

/** Screenshot + axe for one screen. */
async function screen(page: Page, name: string, log: PageLog): Promise<void> {
  await screenshot(page, name);
  await assertAccessible(page, name, log);
}

async function profileOf(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'profile.json'), 'utf8')) as Record<string, unknown>;
}

describe('backvault ui in headless Chromium', () => {
  let tmp: string;
  let vault: VaultProcess | undefined;
  let browser: Browser | undefined;
  const uis: UiProcess[] = [];
  const ui = async (args: string[]): Promise<UiProcess> => {
    const u = await startUi(args, tmp);
    uis.push(u);
    return u;
  };

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'backvault-ui-'));
    vault = await startVaultProcess({
      dataDir: join(tmp, 'vault'),
      maxAttempts: MAX_ATTEMPTS,
      extraArgs: ['--pacing', 'off'],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    for (const u of uis) await u.stop();
    await vault?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  test('the server wants its token, its own Host name and same-origin calls; binds 127.0.0.1 only', async () => {
    const u = await ui(['--device', join(tmp, 'dev-sec')]);
    const host = `127.0.0.1:${u.port}`;
    const token = new URL(u.url).searchParams.get('token') ?? '';
    assert.ok(token.length >= 43, 'at least 256 bits, base64url');

    const noToken = await rawGet(u.origin, '/', { host });
    assert.equal(noToken.status, 403);
    assert.equal((await rawGet(u.origin, '/api/state', { host })).status, 403);
    const wrong = await rawGet(u.origin, `/?token=${token.slice(0, -2)}AA`, { host });
    assert.equal(wrong.status, 403);

    // The right token from a page on another name (DNS rebinding): refused by Host.
    const rebound = await rawGet(u.origin, `/?token=${token}`, { host: `evil.example:${u.port}` });
    assert.equal(rebound.status, 403);

    const ok = await rawGet(u.origin, `/?token=${token}`, { host });
    assert.equal(ok.status, 303);
    const setCookie = String(ok.headers['set-cookie']);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.ok(!setCookie.includes(token), 'the cookie is a session secret, not the URL token');
    const cookie = setCookie.split(';')[0] ?? '';
    const page = await rawGet(u.origin, '/', { host, cookie });
    assert.equal(page.status, 200);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval' 'sha256-/);
    assert.ok(!csp.includes('unsafe-inline'));
    assert.equal(page.headers['access-control-allow-origin'], undefined);
    // The cookie also works on localhost:PORT; a wrong Host still fails with it.
    assert.equal(
      (await rawGet(u.origin, '/api/state', { host: `localhost:${u.port}`, cookie })).status,
      200,
    );
    assert.equal(
      (await rawGet(u.origin, '/api/state', { host: 'example.com', cookie })).status,
      403,
    );
    // A cross-origin POST (with the cookie, were SameSite ignored) is refused.
    const cross = await rawGet(
      u.origin,
      '/api/backup',
      { host, cookie, origin: 'http://evil.example', 'content-type': 'application/json' },
      'POST',
      '{}',
    );
    assert.equal(cross.status, 403);
    // A form post (no JSON) is refused before anything runs.
    const form = await rawGet(
      u.origin,
      '/api/backup',
      { host, cookie, 'content-type': 'application/x-www-form-urlencoded' },
      'POST',
      'folder=/',
    );
    assert.equal(form.status, 400);
    assert.equal((JSON.parse(form.body) as { error: { code: string } }).error.code, 'BAD_REQUEST');

    // Any other bind address is refused (exit 2, USAGE), before listening.
    const r = spawnSync(
      process.execPath,
      [MAIN_JS, 'ui', '--device', join(tmp, 'x'), '--host', '0.0.0.0', '--no-open'],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: tmp }, timeout: 20_000 },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /USAGE: backvault ui listens on 127\.0\.0\.1 only/);

    // Ctrl-C stops it cleanly.
    assert.equal(await u.stop(), '0');
    assert.match(u.stdout(), /^backvault ui: open this link/);
    // With --json the link goes to stderr and stdout holds one JSON object, at the end.
    const j = await ui(['--device', join(tmp, 'dev-sec'), '--json']);
    assert.equal(j.stdout(), '');
    assert.equal(await j.stop(), '0');
    assert.deepEqual(JSON.parse(j.stdout()), { stopped: 'SIGINT', origin: j.origin });
  });

  test('password: enable in the page, back up, restore in a fresh browser on a new device', async () => {
    const v = vault as VaultProcess;
    const chat = join(tmp, 'chat-a');
    await makeTree(chat, 64 * 1024);
    const repo = join(tmp, 'repo-a');
    const devA = join(tmp, 'dev-a');
    const flags = ['--vault', v.url, '--account', 'alice', '--repo', repo];
    const a = await ui(['--device', devA, '--folder', chat, ...flags]);
    const { context, page, log } = await freshPage(browser as Browser);

    await openUi(page, a, '/');
    await screen(page, '01-backup-not-set-up', log);
    await go(page, a, '/protect');
    await screen(page, '02-protect-choose', log);
    await page.getByRole('button', { name: 'Use password' }).click();
    await page.getByLabel('New password').fill('password1');
    await page.getByLabel('Type it again').fill('password1');
    await page.getByRole('button', { name: 'Turn on backup with this password' }).click();
    // A very common password is refused in the page, with the CLI's code.
    await page.getByText('WEAK_PASSWORD').waitFor();
    await page.getByLabel('New password').fill(PASSWORD);
    await page.getByText(/Strength: (Good|Strong)/).waitFor();
    await screen(page, '03-protect-password', log);
    await page.getByLabel('Type it again').fill(PASSWORD);
    await page.getByRole('button', { name: 'Turn on backup with this password' }).click();
    await page.getByText('End-to-end encrypted backup is on').waitFor({ timeout: 60_000 });
    const pa = await profileOf(devA);
    assert.equal(pa.mode, 'password');
    assert.equal(pa.serverPublicKey, v.serverPublicKey);
    // The password went to the vault as OPAQUE messages only.
    assert.ok(!v.logs().includes(PASSWORD));

    await go(page, a, '/');
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByText(/Backed up: snapshot #1 saved/).waitFor({ timeout: 60_000 });
    await page.getByRole('cell', { name: /#1/ }).waitFor();
    // The chart shows what the store holds (backvault stats), not the chat's size.
    await page.getByRole('heading', { name: 'Stored in the cloud over time' }).waitFor();
    const chartLabel = await page.locator('svg.chart').getAttribute('aria-label');
    assert.match(chartLabel ?? '', /^Stored in the cloud after each snapshot, oldest first: #1 \d/);
    await screen(page, '04-backup-done', log);
    await go(page, a, '/protect');
    await page
      .locator('#vault-attempts')
      .getByText(/3 attempts of 3 left/)
      .waitFor();
    await screen(page, '05-protect-in-use', log);
    // Change the password (OPAQUE registration in the page, key proof from the device's key).
    await page.getByRole('button', { name: 'Change the password' }).click();
    await page.getByLabel('New password').fill(NEW_PASSWORD);
    await page.getByLabel('Type it again').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change the password' }).last().click();
    await page.getByText('Password changed').waitFor({ timeout: 60_000 });
    await context.close();
    await a.stop();

    // A new device: fresh profile directory, fresh browser context.
    const devB = join(tmp, 'dev-b');
    const target = join(tmp, 'restored-a');
    const b = await ui(['--device', devB, '--folder', target, ...flags]);
    const fresh = await freshPage(browser as Browser);
    await openUi(fresh.page, b, '/restore');
    await screen(fresh.page, '06-restore-choose', fresh.log);
    await fresh.page.getByRole('button', { name: 'Use my password' }).click();
    await fresh.page.getByText('3 attempts left.').waitFor();
    await screen(fresh.page, '07-restore-password', fresh.log);
    await fresh.page.getByLabel('Vault password for alice').fill(NEW_PASSWORD);
    await fresh.page.getByRole('button', { name: 'Restore with my password' }).click();
    await fresh.page.getByText('Your chats are back').waitFor({ timeout: 60_000 });
    await screen(fresh.page, '08-restore-done', fresh.log);
    assert.match(
      await fresh.page.locator('#restored-files').innerText(),
      /^\d+ files in \d+ folders$/,
    );
    assert.deepEqual(await treeDigest(target), await treeDigest(chat));
    // Nothing kept by the browser: no web storage, no IndexedDB.
    assert.deepEqual(
      await fresh.page.evaluate(async () => [
        localStorage.length,
        sessionStorage.length,
        (await indexedDB.databases()).length,
      ]),
      [0, 0, 0],
    );
    const pb = await profileOf(devB);
    assert.equal(pb.mode, 'password');
    assert.equal(pb.account, 'alice');
    assert.equal(pb.repo, repo);

    // Turn the password off on the new device: the key is shown and confirmed first.
    await go(fresh.page, b, '/protect');
    await fresh.page.getByRole('button', { name: 'Turn off password protection' }).click();
    const label = await fresh.page.getByText(/^Type group \d+ of the key$/).innerText();
    const n = Number(/group (\d+)/.exec(label)?.[1]);
    const groups = (await fresh.page.locator('ol.key-groups li').allInnerTexts()).map((t) =>
      t.replace(/^\d+\.\s*/, '').trim(),
    );
    await fresh.page.getByLabel(label).fill(groups[n - 1] ?? '');
    await fresh.page.getByRole('button', { name: 'Turn off password protection' }).last().click();
    await fresh.page
      .getByRole('button', { name: 'Change the password' })
      .waitFor({ state: 'detached', timeout: 30_000 });
    await fresh.page.getByRole('heading', { name: 'Protections in use' }).waitFor();
    assert.equal((await profileOf(devB)).mode, 'recovery-key');
    // The vault holds nothing for alice any more.
    const client = new VaultClient({
      baseUrl: v.url,
      token: () => requestDevToken({ baseUrl: v.url, account: 'alice' }),
    });
    await assert.rejects(client.status(), (e: unknown) => e instanceof NotFoundError);

    // Add a password again to the 64-digit-key device: same key, a new record at the vault.
    await fresh.page.getByRole('button', { name: 'Add password' }).click();
    await fresh.page.getByLabel('New password').fill(PASSWORD);
    await fresh.page.getByLabel('Type it again').fill(PASSWORD);
    await fresh.page.getByRole('button', { name: 'Turn on backup with this password' }).click();
    await fresh.page.getByText('End-to-end encrypted backup is on').waitFor({ timeout: 60_000 });
    assert.equal((await profileOf(devB)).mode, 'password');
    assert.equal((await client.status()).state, 'active');
    await fresh.context.close();
    await b.stop();
  });

  test('wrong passwords: attempts left before typing, the countdown, then the lockout screen', async () => {
    const v = vault as VaultProcess;
    // bob's record comes from the CLI (`enable --password`): the page's OPAQUE client must
    // log in to it exactly as the CLI's would.
    const cli = spawnSync(
      process.execPath,
      [
        MAIN_JS,
        'enable',
        '--device',
        join(tmp, 'dev-bob'),
        '--repo',
        join(tmp, 'repo-bob'),
        '--password',
        '--vault',
        v.url,
        '--account',
        'bob',
        '--json',
      ],
      {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: tmp, BACKVAULT_PASSWORD: BOB_PASSWORD },
        timeout: 60_000,
      },
    );
    assert.equal(cli.status, 0, cli.stderr);
    const c = await ui([
      '--device',
      join(tmp, 'dev-c'),
      '--folder',
      join(tmp, 'restored-c'),
      '--vault',
      v.url,
      '--account',
      'bob',
      '--repo',
      join(tmp, 'repo-bob'),
    ]);
    const { context, page, log } = await freshPage(browser as Browser);
    await openUi(page, c, '/restore');
    await page.getByRole('button', { name: 'Use my password' }).click();
    await page.getByText('3 attempts left.').waitFor();
    const guess = async (): Promise<void> => {
      await page.getByLabel('Vault password for bob').fill('not the password 1');
      await page.getByRole('button', { name: 'Restore with my password' }).click();
    };
    await guess();
    await page
      .getByText('wrong password. 2 attempts left; each try counts.')
      .waitFor({ timeout: 30_000 });
    await guess();
    await page.getByText(/1 attempt left\. This is the last one/).waitFor({ timeout: 30_000 });
    await screen(page, '09-restore-last-attempt', log);
    await guess();
    await page
      .getByRole('heading', { name: 'Password restore is locked' })
      .waitFor({ timeout: 30_000 });
    await screen(page, '10-restore-locked', log);
    // After a reload: the lockout screen before anything is typed.
    await go(page, c, '/restore');
    await page.getByRole('button', { name: 'Use my password' }).click();
    await page.getByRole('heading', { name: 'Password restore is locked' }).waitFor();
    assert.equal(await page.getByLabel('Vault password for bob').count(), 0);
    await context.close();
    await c.stop();
  });

  test('64-digit key: enable with a confirmed group, progress survives a reload, restore with sloppy input', async () => {
    const chat = join(tmp, 'chat-d');
    await makeTree(chat, 64 * 1024);
    // Many small files, so that the backup still runs after a reload (~3 s here: the engine
    // does ~150 MB/s on large files, far slower per small file).
    for (let d = 0; d < 24; d++) {
      const dir = join(chat, 'Media', 'Stickers', `pack-${d}`);
      await mkdir(dir, { recursive: true });
      for (let i = 0; i < 500; i++) await writeFile(join(dir, `s${i}.webp`), randomBytes(2048));
    }
    const repo = join(tmp, 'repo-d');
    const d = await ui(['--device', join(tmp, 'dev-d'), '--folder', chat, '--repo', repo]);
    const { context, page, log } = await freshPage(browser as Browser);
    await openUi(page, d, '/protect');
    // No vault configured: the password choice says why it is not offered.
    assert.ok(await page.getByRole('button', { name: 'Use password' }).isDisabled());
    await page.getByRole('button', { name: 'Use 64-digit key' }).click();
    await page.getByRole('button', { name: 'Create my 64-digit key' }).click();
    const groups = page.locator('ol.key-groups li');
    await groups.first().waitFor();
    assert.equal(await groups.count(), 16);
    const shown = (await groups.allInnerTexts()).map((t) => t.replace(/^\d+\.\s*/, '').trim());
    const label = await page.getByText(/^Type group \d+ of the key$/).innerText();
    const n = Number(/group (\d+)/.exec(label)?.[1]);
    await screen(page, '11-key-shown', log);
    // A wrong group is refused and nothing is written.
    const wrongGroup =
      shown[n === 1 ? 1 : 0] === shown[n - 1] ? 'zzzz' : (shown[n === 1 ? 1 : 0] ?? 'zzzz');
    await page.getByLabel(label).fill(wrongGroup);
    await page.getByRole('button', { name: 'Turn on backup' }).click();
    await page.getByText(`That is not group ${n}.`).waitFor();
    assert.equal(existsSync(join(tmp, 'dev-d', 'profile.json')), false, 'nothing written yet');
    await page.getByLabel(label).fill((shown[n - 1] ?? '').toUpperCase());
    await page.getByRole('button', { name: 'Turn on backup' }).click();
    await page.getByText('End-to-end encrypted backup is on').waitFor({ timeout: 30_000 });
    assert.equal((await profileOf(join(tmp, 'dev-d'))).mode, 'recovery-key');

    // A folder that does not exist: the CLI's code, sentence and exit code, nothing saved.
    await go(page, d, '/');
    await page.getByLabel('Chat folder to back up').fill(join(tmp, 'no-such-chat'));
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByText(/^NO_SOURCE$/).waitFor({ timeout: 30_000 });
    await page.getByText('The command line reports this as exit code 2.').waitFor();
    await page.getByText(/The folder to back up does not exist/).waitFor();
    await screen(page, '12-backup-error', log);

    // Back up, reload while the bar moves: the page finds the same job again.
    await page.getByLabel('Chat folder to back up').fill(chat);
    await page.getByRole('button', { name: 'Back up now' }).click();
    const bar = page.locator('#job-progress[value]');
    await bar.waitFor({ timeout: 30_000 });
    const jobId = await page.locator('[data-job-id]').getAttribute('data-job-id');
    await screen(page, '12-backup-progress', log);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    const again = page.locator(`[data-job-id="${jobId ?? ''}"] #job-progress`);
    await again.waitFor({ timeout: 10_000 });
    assert.ok(await page.getByRole('button', { name: 'Back up now' }).isDisabled());
    await page.getByText(/Backed up: snapshot #1 saved/).waitFor({ timeout: 90_000 });
    await context.close();
    await d.stop();

    // Restore on a new device with the key typed carelessly.
    const target = join(tmp, 'restored-d');
    const e = await ui(['--device', join(tmp, 'dev-e'), '--folder', target, '--repo', repo]);
    const fresh = await freshPage(browser as Browser);
    await openUi(fresh.page, e, '/restore');
    await fresh.page.getByRole('button', { name: 'Use my 64-digit key' }).click();
    const sloppy = `${shown.slice(0, 8).join('-').toUpperCase()}\n  ${shown.slice(8).join('')}`;
    await fresh.page.getByLabel('Your 64-digit backup key').fill(`${sloppy}x`);
    await fresh.page.getByRole('button', { name: 'Restore with this key' }).click();
    await fresh.page.getByText(/INVALID_KEY/).waitFor();
    await screen(fresh.page, '13-restore-key-invalid', fresh.log);
    // The second try by keyboard alone: Tab to the field, type, Tab to the button, Enter.
    // Focus must be visible on the way (an outline, never removed).
    await fresh.page.getByLabel('Your 64-digit backup key').fill('');
    await fresh.page.getByLabel('Restore the chats into').focus();
    const focused = async (): Promise<{ id: string; text: string; outline: string }> =>
      fresh.page.evaluate(() => {
        const el = document.activeElement as HTMLElement;
        const st = getComputedStyle(el);
        return {
          id: el.id,
          text: el.textContent ?? '',
          outline: `${st.outlineStyle} ${st.outlineWidth}`,
        };
      });
    for (let i = 0; i < 12 && (await focused()).id !== 'restore-key'; i++) {
      await fresh.page.keyboard.press('Tab');
    }
    assert.equal((await focused()).id, 'restore-key');
    await fresh.page.keyboard.type(sloppy);
    await fresh.page.keyboard.press('Tab');
    const onButton = await focused();
    assert.equal(onButton.text, 'Restore with this key');
    assert.match(onButton.outline, /^solid [1-9]/, 'visible focus on the button');
    await fresh.page.keyboard.press('Enter');
    await fresh.page.getByText('Your chats are back').waitFor({ timeout: 90_000 });
    assert.deepEqual(await treeDigest(target), await treeDigest(chat));
    assert.equal((await profileOf(join(tmp, 'dev-e'))).mode, 'recovery-key');
    await fresh.context.close();
    await e.stop();
  });
});
