/**
 * Debian's headless Chromium driven by playwright-core, with the DevTools virtual
 * authenticator (CDP `WebAuthn.*`) standing in for a real passkey: reusable by every browser
 * test that needs a passkey (the SDK's passkey test, the settings screen's tests).
 *
 * Facts measured with Debian's `chromium-headless-shell` 156 (Dec 2026), which the tests
 * rely on and which the passkey test checks:
 * - `hasPrf: true` gives a working PRF extension: `prf.enabled` and a 32-byte output at
 *   `create()` already, the same output for the same salt at `get()`.
 * - An authenticator belongs to its page (CDP target) and survives reloads and clearing the
 *   origin's site data: it is how a test plays a synced passkey on a "new device".
 * - A credential copied into another authenticator (`getCredentials` → `addCredential`)
 *   loses its PRF secret: `get()` returns no PRF output. So it cannot stand in for a synced
 *   passkey.
 * - `isUserVerified: false` makes `create()` and `get()` fail with NotAllowedError, what a
 *   user dismissing the prompt produces. Once it refused, an authenticator keeps refusing
 *   even after `setUserVerified(true)`: give the refusing case its own authenticator.
 */
import {
  chromium,
  type Browser,
  type BrowserServer,
  type CDPSession,
  type Page,
} from 'playwright-core';
import { findChromium } from './chromium.js';

/** Options of `WebAuthn.addVirtualAuthenticator` (the subset the tests use). */
export interface VirtualAuthenticatorOptions {
  protocol?: 'ctap2' | 'u2f';
  transport?: 'internal' | 'usb' | 'nfc' | 'ble' | 'hybrid';
  hasResidentKey?: boolean;
  hasUserVerification?: boolean;
  isUserVerified?: boolean;
  hasPrf?: boolean;
}

/** A platform passkey with PRF, verified user: what a phone or a laptop offers. */
export const PRF_PASSKEY: Readonly<Required<VirtualAuthenticatorOptions>> = {
  protocol: 'ctap2',
  transport: 'internal',
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  hasPrf: true,
};

/** A browser started by a test, stopped by its PID. */
export interface TestBrowser {
  readonly browser: Browser;
  readonly pid: number;
  /** Close the connection, then SIGKILL the browser's process group by PID. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Start Debian's headless Chromium (see chromium.ts for the binary) as a playwright server
 * in its own process group, and connect to it.
 * @throws Error naming the Debian package when the browser is not installed.
 */
export async function startTestBrowser(): Promise<TestBrowser> {
  const server: BrowserServer = await chromium.launchServer({
    executablePath: findChromium(),
    // Runs as root in CI, hence --no-sandbox (as chromium.ts).
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    headless: true,
  });
  const pid = server.process().pid;
  if (pid === undefined) throw new Error('Chromium did not start');
  const browser = await chromium.connect(server.wsEndpoint());
  let stopping: Promise<void> | undefined;
  return {
    browser,
    pid,
    stop() {
      stopping ??= (async () => {
        await browser.close().catch(() => undefined);
        await server.close().catch(() => undefined);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      })();
      return stopping;
    },
  };
}

/** A page with its CDP session and one virtual authenticator. */
export interface AuthenticatorPage {
  readonly page: Page;
  readonly cdp: CDPSession;
  readonly authenticatorId: string;
}

/**
 * Enable the virtual authenticator environment on `page` and add one authenticator
 * (default {@link PRF_PASSKEY}). Chromium then answers WebAuthn calls of that page itself,
 * with no UI.
 */
export async function addVirtualAuthenticator(
  page: Page,
  options: VirtualAuthenticatorOptions = PRF_PASSKEY,
): Promise<AuthenticatorPage> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { ...PRF_PASSKEY, ...options },
  });
  return { page, cdp, authenticatorId };
}

/** A credential as CDP `WebAuthn.getCredentials` gives it (binary fields base64). */
export interface VirtualCredential {
  credentialId: string;
  isResidentCredential: boolean;
  rpId?: string;
  privateKey: string;
  userHandle?: string;
  signCount: number;
  backupEligibility?: boolean;
  backupState?: boolean;
  userName?: string;
  userDisplayName?: string;
}

/** The credentials an authenticator holds (ids base64, as CDP gives them). */
export async function authenticatorCredentials(a: AuthenticatorPage): Promise<VirtualCredential[]> {
  const r = await a.cdp.send('WebAuthn.getCredentials', { authenticatorId: a.authenticatorId });
  return r.credentials;
}

/**
 * Copy every credential of `from` into `to` — NOT a synced passkey: the copy has no PRF
 * secret (see the module comment); tests use it to prove that.
 */
export async function copyCredentials(
  from: AuthenticatorPage,
  to: AuthenticatorPage,
): Promise<void> {
  for (const credential of await authenticatorCredentials(from)) {
    await to.cdp.send('WebAuthn.addCredential', {
      authenticatorId: to.authenticatorId,
      credential,
    });
  }
}

/**
 * Make the authenticator refuse (or grant) user verification: WebAuthn calls fail as if
 * dismissed. Chromium 156: after one refusal it keeps refusing even when set back to true.
 */
export async function setUserVerified(a: AuthenticatorPage, verified: boolean): Promise<void> {
  await a.cdp.send('WebAuthn.setUserVerified', {
    authenticatorId: a.authenticatorId,
    isUserVerified: verified,
  });
}

/**
 * Clear everything the origin of `page` stored in the browser (cookies, storage, caches,
 * IndexedDB) and reload: what a new device has of a site. The authenticator stays.
 */
export async function clearSiteDataAndReload(a: AuthenticatorPage): Promise<void> {
  const origin = new URL(a.page.url()).origin;
  await a.cdp.send('Storage.clearDataForOrigin', { origin, storageTypes: 'all' });
  await a.page.reload();
}
