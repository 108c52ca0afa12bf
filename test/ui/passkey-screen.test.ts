/**
 * The passkey protection of the settings screen (`backvault ui`) in Debian's headless
 * Chromium, with the DevTools virtual authenticator standing in for the user's passkey
 * (test/browser/virtual-authenticator.ts), against local-directory repositories and, for the
 * password, a real vault process:
 *
 * - the printed link names localhost (WebAuthn refuses an IP address as relying-party id)
 *   and the session cookie works there;
 * - turn on passkey protection in the page, back up, restore as a NEW device (fresh device
 *   profile, the old origin's site data cleared, another origin, the SAME authenticator as
 *   a synced passkey) → files byte-exact;
 * - an authenticator without PRF: the PRF_UNSUPPORTED sentence, and the 64-digit key offered
 *   from it still turns backup on (for the repository the failed try created);
 * - a dismissed prompt: PASSKEY_CANCELLED, nothing written, the page still usable;
 * - password + passkey (+ a key added with `backvault key add`, removed in the page) on one
 *   device, the passkey removed: it no longer opens the backup
 *   (NO_KEY_SLOT on a new device), the password still restores it byte-exact;
 * - axe-core on every passkey screen: no serious or critical violations; screenshots in
 *   `.tmp/ui-screens/`.
 *
 * Processes are stopped by PID.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { MAIN_JS, startVaultProcess, type VaultProcess } from '../client/vault-process.js';
import { makeTree, treeDigest } from '../cli/tree.js';
import { formatBackupKey, generateBackupKey } from '#sdk/format/key-encoding.js';
import {
  addVirtualAuthenticator,
  authenticatorCredentials,
  type AuthenticatorPage,
} from '../browser/virtual-authenticator.js';
import { freshPage, go, launchBrowser, openUi, screenshot, seriousViolations } from './browser.js';
import { startUi, type UiProcess } from './ui-process.js';

const PASSWORD = 'lantern orchard velvet 42';

async function profileOf(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'profile.json'), 'utf8')) as Record<string, unknown>;
}

/** `backvault key list --device DIR --json`: the CLI's view of the slots the page made. */
function cliSlots(home: string, dir: string): { kind: string; rpId?: string; status: string }[] {
  const r = spawnSync(process.execPath, [MAIN_JS, 'key', 'list', '--device', dir, '--json'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: home },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { slots: { kind: string; rpId?: string; status: string }[] })
    .slots;
}

/** Screenshot + axe (serious/critical) for one screen. */
async function screen(page: Page, name: string, lines: string[]): Promise<void> {
  await screenshot(page, name);
  assert.deepEqual(await seriousViolations(page), [], `${name}\n${lines.join('\n')}`);
}

/** Clears everything `origin` stored in this browser (cookies, storage): a new device. */
async function clearSiteData(a: AuthenticatorPage, origin: string): Promise<void> {
  await a.cdp.send('Storage.clearDataForOrigin', { origin, storageTypes: 'all' });
}

describe('backvault ui: passkey protection in headless Chromium', () => {
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
    tmp = await mkdtemp(join(tmpdir(), 'backvault-ui-passkey-'));
    vault = await startVaultProcess({
      dataDir: join(tmp, 'vault'),
      maxAttempts: 3,
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

  test('turn on with a passkey, back up, restore as a new device with the same (synced) passkey', async () => {
    const chat = join(tmp, 'chat-p');
    await makeTree(chat, 64 * 1024);
    const repo = join(tmp, 'repo-p');
    const devA = join(tmp, 'dev-pa');
    const a = await ui(['--device', devA, '--folder', chat, '--repo', repo]);
    assert.match(a.url, /^http:\/\/localhost:\d+\/\?token=/);
    const { context, page, log } = await freshPage(browser as Browser);
    const passkey = await addVirtualAuthenticator(page);
    await openUi(page, a, '/protect');
    // The session cookie lives on localhost (host-only, HttpOnly).
    const cookies = await context.cookies(a.origin);
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0]?.domain, 'localhost');
    assert.equal(cookies[0]?.httpOnly, true);

    await page.getByRole('button', { name: 'Use passkey' }).click();
    await page.getByRole('button', { name: 'Create a passkey and turn on backup' }).waitFor();
    await screen(page, 'p01-protect-passkey', log.lines);
    await page.getByRole('button', { name: 'Create a passkey and turn on backup' }).click();
    await page.getByText('End-to-end encrypted backup is on').waitFor({ timeout: 60_000 });
    assert.equal((await profileOf(devA)).mode, 'recovery-key');
    const creds = await authenticatorCredentials(passkey);
    assert.equal(creds.length, 1);
    assert.equal(creds[0]?.rpId, 'localhost');
    const slots = cliSlots(tmp, devA);
    assert.deepEqual(
      slots.map((s) => [s.kind, s.rpId, s.status]),
      [['passkey', 'localhost', 'ok']],
    );

    await go(page, a, '/');
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByText(/Backed up: snapshot #1 saved/).waitFor({ timeout: 60_000 });
    await go(page, a, '/protect');
    await page
      .locator('li[data-slot]')
      .getByText(/Passkey/)
      .waitFor();
    assert.match(
      await page.locator('li[data-slot]').innerText(),
      /Passkey [A-Za-z0-9_-]{8}… for localhost, added /,
    );
    await screen(page, 'p02-protect-passkey-in-use', log.lines);
    await a.stop();

    // A new device: a fresh profile directory, another origin (port), the old origin's site
    // data cleared — and the same authenticator, as a synced passkey would be.
    await clearSiteData(passkey, a.origin);
    const devB = join(tmp, 'dev-pb');
    const target = join(tmp, 'restored-p');
    const b = await ui(['--device', devB, '--folder', target, '--repo', repo]);
    await openUi(page, b, '/restore');
    // The server checks the slot against the store too: a key it does not unwrap is refused
    // before any restore starts.
    const refused = await page.evaluate(
      async ({ repo, key }) => {
        const post = async (path: string, body: unknown): Promise<Record<string, unknown>> =>
          (await (
            await fetch(path, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(body),
            })
          ).json()) as Record<string, unknown>;
        const r = (await post('/api/repository/passkey-slots', { repo })) as { slots: string[] };
        const bad = await post('/api/restore', {
          repo,
          folder: 'never',
          protection: 'passkey',
          backupKey: key,
          slot: r.slots[0],
        });
        return { slots: r.slots.length, error: bad.error as { code: string } | undefined };
      },
      { repo, key: formatBackupKey(generateBackupKey()) },
    );
    assert.equal(refused.slots, 1);
    assert.match(refused.error?.code ?? 'none', /^(KEY_SLOT_CORRUPT|WRONG_KEY)$/);
    assert.equal(existsSync(join(devB, 'profile.json')), false);
    await page.getByRole('button', { name: 'Use my passkey' }).click();
    await page.getByRole('button', { name: 'Restore with my passkey' }).waitFor();
    await screen(page, 'p03-restore-passkey', log.lines);
    await page.getByRole('button', { name: 'Restore with my passkey' }).click();
    await page.getByText('Your chats are back').waitFor({ timeout: 90_000 });
    await screen(page, 'p04-restore-passkey-done', log.lines);
    assert.deepEqual(await treeDigest(target), await treeDigest(chat));
    assert.equal((await profileOf(devB)).mode, 'recovery-key');
    // The new device lists the passkey that restored it.
    await go(page, b, '/protect');
    await page
      .locator('li[data-slot]')
      .getByText(/for localhost/)
      .waitFor();
    assert.deepEqual(
      await page.evaluate(() => [localStorage.length, sessionStorage.length]),
      [0, 0],
    );
    await context.close();
    await b.stop();
  });

  test('no PRF: the PRF_UNSUPPORTED sentence offers the other choices; a cancelled prompt keeps the page usable', async () => {
    const repo = join(tmp, 'repo-n');
    const dev = join(tmp, 'dev-n');
    const n = await ui(['--device', dev, '--folder', join(tmp, 'chat-n'), '--repo', repo]);
    const { context, page, log } = await freshPage(browser as Browser);
    await addVirtualAuthenticator(page, { hasPrf: false });
    await openUi(page, n, '/protect');
    await page.getByRole('button', { name: 'Use passkey' }).click();
    const create = page.getByRole('button', { name: 'Create a passkey and turn on backup' });
    // The browser may say up front that it has no PRF; else the authenticator says so.
    await Promise.race([create.waitFor(), page.locator('#no-prf').waitFor()]);
    if (await create.isVisible()) await create.click();
    await page.locator('#no-prf').getByText('PRF_UNSUPPORTED').waitFor({ timeout: 30_000 });
    assert.match(
      await page.locator('#no-prf').innerText(),
      /cannot protect a backup: passkey protection needs the WebAuthn PRF extension/,
    );
    assert.equal(await create.count(), 0, 'no button that cannot work');
    await screen(page, 'p05-passkey-no-prf', log.lines);
    assert.equal(existsSync(join(dev, 'profile.json')), false, 'no device written');
    // Chromium 156 says the browser has PRF, so the authenticator's answer decided: the
    // repository was created for the slot before — the next choice must reuse it.
    assert.ok(existsSync(join(repo, 'config')), 'the failed try created the repository');
    // The 64-digit key from the sentence turns backup on (for the repository made for it).
    await page.getByRole('button', { name: 'Use the 64-digit key' }).click();
    await page.getByRole('button', { name: 'Create my 64-digit key' }).click();
    const groups = page.locator('ol.key-groups li');
    await groups.first().waitFor();
    const shown = (await groups.allInnerTexts()).map((t) => t.replace(/^\d+\.\s*/, '').trim());
    const label = await page.getByText(/^Type group \d+ of the key$/).innerText();
    const g = Number(/group (\d+)/.exec(label)?.[1]);
    await page.getByLabel(label).fill(shown[g - 1] ?? '');
    await page.getByRole('button', { name: 'Turn on backup' }).click();
    await page.getByText('End-to-end encrypted backup is on').waitFor({ timeout: 30_000 });
    assert.equal((await profileOf(dev)).mode, 'recovery-key');
    await context.close();
    await n.stop();

    // A dismissed prompt (the authenticator refuses user verification).
    const devC = join(tmp, 'dev-c');
    const c = await ui(['--device', devC, '--repo', join(tmp, 'repo-c')]);
    const refusing = await freshPage(browser as Browser);
    await addVirtualAuthenticator(refusing.page, { isUserVerified: false });
    await openUi(refusing.page, c, '/protect');
    await refusing.page.getByRole('button', { name: 'Use passkey' }).click();
    const again = refusing.page.getByRole('button', {
      name: 'Create a passkey and turn on backup',
    });
    await again.click();
    await refusing.page.getByText('PASSKEY_CANCELLED').waitFor({ timeout: 60_000 });
    await refusing.page.getByText(/cancelled or timed out/).waitFor();
    await screen(refusing.page, 'p06-passkey-cancelled', refusing.log.lines);
    assert.ok(await again.isEnabled(), 'the button works again');
    assert.equal(existsSync(join(devC, 'profile.json')), false, 'no device written');
    await refusing.context.close();
    await c.stop();
  });

  test('password + passkey on one device; the passkey removed, the password still restores', async () => {
    const v = vault as VaultProcess;
    const chat = join(tmp, 'chat-w');
    await makeTree(chat, 32 * 1024);
    const repo = join(tmp, 'repo-w');
    const dev = join(tmp, 'dev-w');
    const flags = ['--vault', v.url, '--account', 'carol', '--repo', repo];
    const w = await ui(['--device', dev, '--folder', chat, ...flags]);
    const { context, page, log } = await freshPage(browser as Browser);
    const passkey = await addVirtualAuthenticator(page);
    await openUi(page, w, '/protect');
    await page.getByRole('button', { name: 'Use password' }).click();
    await page.getByLabel('New password').fill(PASSWORD);
    await page.getByLabel('Type it again').fill(PASSWORD);
    await page.getByRole('button', { name: 'Turn on backup with this password' }).click();
    await page.getByText('End-to-end encrypted backup is on').waitFor({ timeout: 60_000 });
    await go(page, w, '/');
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByText(/Backed up: snapshot #1 saved/).waitFor({ timeout: 60_000 });

    // Add a passkey to the password device: both are listed, with the 64-digit key.
    await go(page, w, '/protect');
    await page.getByRole('button', { name: 'Add passkey' }).click();
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.getByText(/^Passkey added: it opens your backups/).waitFor({ timeout: 60_000 });
    const items = page.locator('#protections > li');
    await page.locator('li[data-slot]').waitFor();
    const texts = await items.allInnerTexts();
    assert.equal(texts.length, 3, texts.join('\n'));
    assert.match(texts[0] ?? '', /^Password at /);
    assert.match(texts[1] ?? '', /^64-digit key/);
    assert.match(texts[2] ?? '', /^Passkey [A-Za-z0-9_-]{8}… for localhost/);
    assert.equal((await profileOf(dev)).mode, 'password');
    await screen(page, 'p07-protect-password-and-passkey', log.lines);

    // A second written-down key added with the CLI is listed too, and removed in the page.
    const added = spawnSync(process.execPath, [MAIN_JS, 'key', 'add', '--device', dev, '--json'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: tmp },
      timeout: 60_000,
    });
    assert.equal(added.status, 0, added.stderr);
    await go(page, w, '/protect');
    await page.locator('li[data-slot]').nth(1).waitFor();
    const withKey = await items.allInnerTexts();
    assert.equal(withKey.length, 4, withKey.join('\n'));
    assert.ok(
      withKey.some((t) => /^Added 64-digit key — slot [0-9a-f]{8}/.test(t)),
      withKey.join('\n'),
    );
    await page.getByRole('button', { name: /^Remove added 64-digit key / }).click();
    await page.getByText(/This key will no longer open your backups from now on/).waitFor();
    await page.getByRole('button', { name: 'Remove this key' }).click();
    await page.getByText(/^Added 64-digit key [0-9a-f]{8} removed/).waitFor({ timeout: 30_000 });
    await page.getByText('Looking for passkeys…').waitFor({ state: 'detached' });
    assert.deepEqual(
      cliSlots(tmp, dev).map((s) => s.kind),
      ['passkey'],
    );

    // Remove it: a confirmation naming what still opens the backup, then gone.
    await page.getByRole('button', { name: /^Remove passkey / }).click();
    await page.getByText(/They stay readable with your password and the 64-digit key/).waitFor();
    await screen(page, 'p08-remove-passkey', log.lines);
    await page.getByRole('button', { name: 'Remove this passkey' }).click();
    await page.getByText(/removed: it no longer opens your backups/).waitFor({ timeout: 30_000 });
    await page.getByText('Looking for passkeys…').waitFor({ state: 'detached' });
    assert.equal(await page.locator('li[data-slot]').count(), 0);
    assert.deepEqual(cliSlots(tmp, dev), []);
    await w.stop();

    // A new device: the passkey no longer opens the backup; the password does.
    await clearSiteData(passkey, w.origin);
    const target = join(tmp, 'restored-w');
    const x = await ui(['--device', join(tmp, 'dev-x'), '--folder', target, ...flags]);
    await openUi(page, x, '/restore');
    await page.getByRole('button', { name: 'Use my passkey' }).click();
    await page.getByRole('button', { name: 'Restore with my passkey' }).click();
    await page.getByText('NO_KEY_SLOT').waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Use my password' }).click();
    await page.getByText('3 attempts left.').waitFor();
    await page.getByLabel('Vault password for carol').fill(PASSWORD);
    await page.getByRole('button', { name: 'Restore with my password' }).click();
    await page.getByText('Your chats are back').waitFor({ timeout: 90_000 });
    assert.deepEqual(await treeDigest(target), await treeDigest(chat));
    await context.close();
    await x.stop();
  });
});
