// @ts-check
/**
 * In the browser: the vault client (OPAQUE runs in the page, so the password never leaves
 * it) from 'backvault/client', the 64-digit key format from 'backvault/format', the error
 * classes from 'backvault/errors'. All three are browser-safe: no `node:` modules. Bundled by build.mjs (esbuild).
 */
import { VaultClient } from 'backvault/client';
import { LockedError, WrongPasswordError } from 'backvault/errors';
import { formatBackupKey } from 'backvault/format';

const meta = (/** @type {string} */ name) =>
  document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') || undefined;

// The vault token comes from YOUR app's auth server, for the logged-in user (its session
// cookie goes along). See ../token-issuer: POST /backvault/token → { token, expiresAt }.
async function vaultToken() {
  const res = await fetch('/backvault/token', { method: 'POST', credentials: 'include' });
  if (!res.ok) throw new Error(`log in first (${res.status})`);
  return (await res.json()).token;
}

const pinned = meta('backvault-vault-key');
const vault = new VaultClient({
  baseUrl: meta('backvault-vault') ?? location.origin,
  token: vaultToken, // a function: called for every request, so it never goes stale
  ...(pinned ? { pinnedServerPublicKey: pinned } : {}),
});

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
$('recover').addEventListener('submit', async (event) => {
  event.preventDefault();
  const password = /** @type {HTMLInputElement} */ ($('password')).value;
  $('status').textContent = 'Checking…';
  try {
    const backupKey = await vault.recover({ password });
    // A real app would now restore the backup with it; here we show the 64-digit key.
    $('status').textContent = 'Recovered. Your 64-digit backup key:';
    $('key').textContent = formatBackupKey(backupKey);
  } catch (e) {
    if (e instanceof WrongPasswordError) {
      $('status').textContent = `Wrong password: ${e.attemptsLeft} attempts left.`;
    } else if (e instanceof LockedError) {
      $('status').textContent = 'Too many wrong passwords: the vault destroyed this key.';
    } else {
      // Every SDK error has a stable `code` (UNAUTHORIZED, UNAVAILABLE, VAULT_MISMATCH, …).
      $('status').textContent =
        `${/** @type {any} */ (e).code ?? 'ERROR'}: ${/** @type {Error} */ (e).message}`;
    }
  }
});
