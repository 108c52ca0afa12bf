/**
 * The app side of the browser test: runs INSIDE headless Chromium, never in Node. It uses the
 * device SDK exactly as a web app would — `VaultClient` with the browser's own `fetch` and
 * WebCrypto, the real Argon2id key stretching — against the vault behind the page's origin.
 *
 * Loaded by the page as a plain ES module (compiled by tsc, served next to the compiled SDK,
 * bare specifiers mapped by an import map). No `node:` import and no Node global may appear
 * here: the point is to prove the SDK needs none.
 */
import { VaultClient, requestDevToken, type FetchLike } from '#sdk/client/index.js';
import { BackvaultError, WrongPasswordError } from '#sdk/errors.js';

/** One step of the page's run, as reported to the test. */
export interface PageStep {
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: unknown;
}

/** An error as the page reports it (the test prints it). */
export interface PageError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly stack?: string;
}

/** What the page POSTs to `/result`. */
export interface PageResult {
  /** True when every in-page check passed. */
  readonly ok: boolean;
  /** Where the report came from: the run itself, or a window error/rejection handler. */
  readonly source: 'run' | 'window-error' | 'unhandled-rejection' | 'module-load';
  readonly userAgent: string;
  /** `typeof process` seen by the page ('undefined' in a real browser). */
  readonly typeofProcess: string;
  readonly typeofBuffer: string;
  readonly steps: readonly PageStep[];
  readonly error?: PageError;
  /** Test material, reported only so the Node side can scan the vault's logs and data. */
  readonly secrets?: { readonly password: string; readonly backupKeyHex: string };
  readonly details?: {
    readonly serverPublicKey?: string;
    readonly maxAttempts?: number;
    readonly attemptsLeftAfterWrong?: number;
    readonly attemptsLeftAfterReset?: number;
    readonly wrongPasswordCode?: string;
    readonly recoveredHex?: readonly string[];
  };
}

/** Reads a thrown value as a {@link PageError}. */
export function describeError(e: unknown): PageError {
  if (e instanceof Error) {
    const code = e instanceof BackvaultError ? e.code : undefined;
    return {
      name: e.name,
      message: e.message,
      ...(code !== undefined ? { code } : {}),
      ...(e.stack !== undefined ? { stack: e.stack } : {}),
    };
  }
  return { name: typeof e, message: String(e) };
}

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Byte comparison without early exit (the values are test keys, but keep the habit). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return d === 0;
}

/**
 * The whole story in the browser: enable with a password for a fresh key, recover it, one
 * wrong password (WRONG_PASSWORD with attempts left), the right one again (count reset).
 * Never throws: failures are reported in the result.
 */
export async function runSdkInBrowser(): Promise<PageResult> {
  const steps: PageStep[] = [];
  const env = {
    userAgent: navigator.userAgent,
    typeofProcess: typeof (globalThis as { process?: unknown }).process,
    typeofBuffer: typeof (globalThis as { Buffer?: unknown }).Buffer,
  };
  const step = (name: string, ok: boolean, detail?: unknown): boolean => {
    steps.push({ name, ok, ...(detail !== undefined ? { detail } : {}) });
    return ok;
  };
  const details: {
    serverPublicKey?: string;
    maxAttempts?: number;
    attemptsLeftAfterWrong?: number;
    attemptsLeftAfterReset?: number;
    wrongPasswordCode?: string;
    recoveredHex: string[];
  } = { recoveredHex: [] };
  let secrets: PageResult['secrets'];
  try {
    step('really a browser: typeof process === "undefined"', env.typeofProcess === 'undefined');
    step('no Buffer global', env.typeofBuffer === 'undefined');
    step('WebCrypto present', typeof globalThis.crypto?.subtle?.importKey === 'function');

    // The browser's own fetch, injected as an app would (bound: an unbound window.fetch throws).
    const browserFetch: FetchLike = (input, init) => window.fetch(input, init);
    const baseUrl = location.origin;
    const account = `browser-${hex(crypto.getRandomValues(new Uint8Array(8)))}`;
    const token = (): Promise<string> => requestDevToken({ baseUrl, account, fetch: browserFetch });

    const backupKey = crypto.getRandomValues(new Uint8Array(32));
    const password = `tulip ${hex(crypto.getRandomValues(new Uint8Array(6)))} river`;
    secrets = { password, backupKeyHex: hex(backupKey) };

    // First contact: read the vault's key to pin (as at enable time).
    const info = await new VaultClient({ baseUrl, fetch: browserFetch }).info();
    details.serverPublicKey = info.serverPublicKey;
    details.maxAttempts = info.maxAttempts;
    const vault = new VaultClient({
      baseUrl,
      fetch: browserFetch,
      token,
      pinnedServerPublicKey: info.serverPublicKey,
    });

    const enabled = await vault.enable({ password, backupKey });
    step('enable', enabled.serverPublicKey === info.serverPublicKey, enabled.record);

    const first = await vault.recover({ password });
    details.recoveredHex.push(hex(first));
    step('recover with the right password returns the same 32 bytes', sameBytes(first, backupKey));

    try {
      await vault.recover({ password: `${password}!` });
      step('wrong password is refused', false, 'recover succeeded');
    } catch (e) {
      const isWrong = e instanceof WrongPasswordError;
      details.wrongPasswordCode = e instanceof BackvaultError ? e.code : String(e);
      if (isWrong) details.attemptsLeftAfterWrong = e.attemptsLeft;
      step(
        'wrong password → WrongPasswordError (WRONG_PASSWORD) with attempts left',
        isWrong && e.code === 'WRONG_PASSWORD' && e.attemptsLeft === info.maxAttempts - 1,
        describeError(e),
      );
    }

    const second = await vault.recover({ password });
    details.recoveredHex.push(hex(second));
    step('right password after a miss still works', sameBytes(second, backupKey));
    const status = await vault.status();
    details.attemptsLeftAfterReset = status.attemptsLeft;
    step(
      'success resets the count',
      status.state === 'active' && status.attemptsLeft === info.maxAttempts,
      status,
    );
    return {
      ok: steps.every((s) => s.ok),
      source: 'run',
      ...env,
      steps,
      secrets,
      details,
    };
  } catch (e) {
    return {
      ok: false,
      source: 'run',
      ...env,
      steps,
      error: describeError(e),
      ...(secrets ? { secrets } : {}),
      details,
    };
  }
}
