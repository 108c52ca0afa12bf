// @ts-check
/**
 * Password protection: the backup key is escrowed in a vault that speaks OPAQUE, so the
 * password never leaves the device, and the vault destroys the key after too many wrong
 * guesses (10 by default). A new device gets the key back with the password alone.
 *
 *   node index.mjs                                   # starts a throwaway dev vault in-process
 *   VAULT_URL=https://vault.example VAULT_TOKEN=… node index.mjs
 *
 * VAULT_TOKEN is a JWT from YOUR app's auth server for the logged-in user (see
 * ../token-issuer). In an app, give the client a token FUNCTION that fetches a fresh one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  VaultClient,
  WrongPasswordError,
  formatBackupKey,
  generateBackupKey,
  requestDevToken,
} from 'backvault';

let vaultUrl = process.env.VAULT_URL;
/** @type {() => Promise<string>} */
let getToken = async () => process.env.VAULT_TOKEN ?? '';
/** @type {(() => Promise<void>) | undefined} */
let stopVault;

if (!vaultUrl) {
  // A local vault for trying things out: `--dev-auth` hands out tokens to anyone, so it
  // only ever listens on loopback. Production: `backvault vault serve` with your issuer.
  const { startVault } = await import('@backvault/vault');
  const dataDir = await mkdtemp(join(tmpdir(), 'backvault-dev-vault-'));
  const vault = await startVault({
    dataDir, // the vault's database and (software) HSM keys; 0700
    port: 0, // any free port on 127.0.0.1
    workers: 1,
    auth: { kind: 'dev' },
    logLevel: 'warn',
    metricsListen: null,
  });
  vaultUrl = vault.url;
  const url = vault.url;
  getToken = () => requestDevToken({ baseUrl: url, account: 'alice' });
  stopVault = async () => {
    await vault.close();
    await rm(dataDir, { recursive: true, force: true });
  };
}

const password = 'velvet-orbit-canyon-1987-plum';

// --- Device A: make the key, protect it with the password. -----------------------------
const backupKey = generateBackupKey();
const deviceA = new VaultClient({ baseUrl: vaultUrl, token: getToken });
const enabled = await deviceA.enable({ password, backupKey });
// The vault's OPAQUE key, authenticated by the registration. Keep it with the account (or
// ship it in the app) and pass it as `pinnedServerPublicKey` from now on: a client then
// refuses any other vault (VAULT_MISMATCH) before it spends a guess.
const pinned = enabled.serverPublicKey;
console.log(`enabled: ${enabled.record.attemptsLeft} attempts, vault key ${pinned.slice(0, 12)}…`);

// --- Device B (new phone): only the account and the password. ---------------------------
const deviceB = new VaultClient({
  baseUrl: vaultUrl,
  token: getToken,
  pinnedServerPublicKey: pinned,
});
try {
  await deviceB.recover({ password: 'not the password' });
} catch (e) {
  // Every wrong guess counts; tell the user how many are left.
  if (!(e instanceof WrongPasswordError)) throw e;
  console.log(`wrong password: ${e.code}, ${e.attemptsLeft} attempts left`);
}
const recovered = await deviceB.recover({ password }); // a success resets the count
const same = formatBackupKey(recovered) === formatBackupKey(backupKey);
console.log(same ? 'recovered the same backup key' : 'recovered a DIFFERENT key');
// With the key, restore as in ../node-backup: restore({ storage, backupKey: recovered, … }).

await stopVault?.();
process.exit(same ? 0 : 1);
