/**
 * The app side of the cross-origin browser test (test/browser/cors.test.ts): runs INSIDE
 * headless Chromium, on a page whose origin is NOT the vault's. It uses the device SDK as a
 * web app would — `VaultClient` with the browser's own `fetch`, WebCrypto and real Argon2id —
 * against a vault URL on another port (another origin), so every call is a CORS request.
 *
 * No `node:` import and no Node global: compiled by tsc and loaded as a plain ES module.
 */
import { VaultClient, requestDevToken, type FetchLike } from '#sdk/client/index.js';
import {
  BackvaultError,
  UnavailableError,
  VaultCorsBlockedError,
  WrongPasswordError,
} from '#sdk/errors.js';

/** A thrown error as the page reports it. */
export interface CaughtError {
  readonly name: string;
  readonly code?: string;
  readonly message: string;
  readonly hint?: string;
  /** `instanceof UnavailableError` (must be false for a CORS block). */
  readonly isUnavailable: boolean;
  readonly isCorsBlocked: boolean;
  readonly pageOrigin?: string;
  readonly vaultOrigin?: string;
}

/** What {@link enableAndRecover} reports. */
export interface StoryResult {
  readonly pageOrigin: string;
  readonly serverPublicKey?: string;
  readonly enabledAttemptsLeft?: number;
  readonly recoveredMatches?: boolean;
  readonly wrongPassword?: CaughtError;
  readonly error?: CaughtError;
}

function caught(e: unknown): CaughtError {
  if (!(e instanceof Error)) {
    return { name: typeof e, message: String(e), isUnavailable: false, isCorsBlocked: false };
  }
  return {
    name: e.name,
    message: e.message,
    ...(e instanceof BackvaultError ? { code: e.code, hint: e.hint } : {}),
    isUnavailable: e instanceof UnavailableError,
    isCorsBlocked: e instanceof VaultCorsBlockedError,
    ...(e instanceof VaultCorsBlockedError
      ? { pageOrigin: e.pageOrigin, vaultOrigin: e.vaultOrigin }
      : {}),
  };
}

/** Appends a line to the visible page (for the screenshot). */
function show(line: string): void {
  const log = document.getElementById('log');
  if (log) log.textContent += `${line}\n`;
}

const browserFetch: FetchLike = (input, init) => window.fetch(input, init);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return d === 0;
}

/**
 * The whole password story from this page against `vaultUrl` on another origin: a dev token,
 * enable with a password for a fresh key, one wrong password (the vault's error body is
 * readable across origins), recover with the right one. Never throws.
 */
export async function enableAndRecover(vaultUrl: string): Promise<StoryResult> {
  const pageOrigin = location.origin;
  show(`page ${pageOrigin} → vault ${vaultUrl}`);
  try {
    const hex = (b: Uint8Array): string =>
      Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    const account = `web-${hex(crypto.getRandomValues(new Uint8Array(8)))}`;
    const token = (): Promise<string> =>
      requestDevToken({ baseUrl: vaultUrl, account, fetch: browserFetch });
    const info = await new VaultClient({ baseUrl: vaultUrl, fetch: browserFetch }).info();
    show(`info: server key ${info.serverPublicKey.slice(0, 12)}…`);
    const vault = new VaultClient({
      baseUrl: vaultUrl,
      fetch: browserFetch,
      token,
      pinnedServerPublicKey: info.serverPublicKey,
    });
    const backupKey = crypto.getRandomValues(new Uint8Array(32));
    const password = `harbor ${hex(crypto.getRandomValues(new Uint8Array(5)))} lantern`;
    const enabled = await vault.enable({ password, backupKey });
    show(`enable: ${enabled.record.attemptsLeft} attempts`);
    let wrongPassword: CaughtError | undefined;
    try {
      await vault.recover({ password: `${password}?` });
    } catch (e) {
      wrongPassword = caught(e);
      show(`wrong password: ${wrongPassword.code ?? wrongPassword.name}`);
      if (!(e instanceof WrongPasswordError)) throw e;
    }
    const recovered = await vault.recover({ password });
    const recoveredMatches = sameBytes(recovered, backupKey);
    show(`recover: ${recoveredMatches ? 'the same 32-byte key' : 'A DIFFERENT KEY'}`);
    return {
      pageOrigin,
      serverPublicKey: info.serverPublicKey,
      enabledAttemptsLeft: enabled.record.attemptsLeft,
      recoveredMatches,
      ...(wrongPassword ? { wrongPassword } : {}),
    };
  } catch (e) {
    const error = caught(e);
    show(`FAILED: ${error.code ?? error.name}: ${error.message}`);
    return { pageOrigin, error };
  }
}

/** What {@link blockedCalls} reports: the error of each call, by name. */
export interface BlockedResult {
  readonly pageOrigin: string;
  readonly errors: Readonly<Record<string, CaughtError | null>>;
}

/**
 * Calls against a vault that should NOT let this page in (or is down): `info`, a dev token,
 * and a recovery with a token minted outside the page. Each error is reported (null if the
 * call unexpectedly succeeded). Never throws.
 */
export async function blockedCalls(vaultUrl: string, token: string): Promise<BlockedResult> {
  const pageOrigin = location.origin;
  show(`page ${pageOrigin} → vault ${vaultUrl}`);
  const errors: Record<string, CaughtError | null> = {};
  const attempt = async (name: string, f: () => Promise<unknown>): Promise<void> => {
    try {
      await f();
      errors[name] = null;
      show(`${name}: succeeded`);
    } catch (e) {
      errors[name] = caught(e);
      show(`${name}: ${errors[name]?.code ?? ''} ${errors[name]?.message ?? ''}`);
    }
  };
  const vault = new VaultClient({ baseUrl: vaultUrl, fetch: browserFetch, token });
  await attempt('info', () => vault.info());
  await attempt('devToken', () =>
    requestDevToken({ baseUrl: vaultUrl, account: 'nobody', fetch: browserFetch }),
  );
  await attempt('recover', () => vault.recover({ password: 'a wrong password' }));
  return { pageOrigin, errors };
}

/**
 * `info()` through a client whose first node blocks this page and whose failover node lets
 * it in: a CORS block is failed over like UNAVAILABLE. Never throws.
 */
export async function infoWithFailover(
  primary: string,
  secondary: string,
): Promise<{
  readonly serverPublicKey?: string;
  readonly baseUrl?: string;
  readonly error?: CaughtError;
}> {
  try {
    const vault = new VaultClient({
      baseUrl: primary,
      failoverUrls: [secondary],
      fetch: browserFetch,
    });
    const info = await vault.info();
    show(`failover: answered by ${vault.baseUrl}`);
    return { serverPublicKey: info.serverPublicKey, baseUrl: vault.baseUrl };
  } catch (e) {
    return { error: caught(e) };
  }
}
