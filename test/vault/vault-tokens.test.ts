/**
 * Issue 16, tokens: expiry required, bounded lifetime, no tokens from the future, every
 * configured issuer key accepted (several PEM files, a JWKS file, both), JWKS reload on
 * change and on SIGHUP with thumbprints logged, and a case-insensitive Bearer scheme.
 * Every case runs against the real vault process.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type CryptoKey,
  type JWK,
} from 'jose';
import { launchVault, startVaultProcess, type VaultProcess } from './vault-process.js';
import { bearerToken } from '#vault/vault/auth.js';

const MAIN_JS = fileURLToPath(new URL('../../../packages/cli/dist/cli/main.js', import.meta.url));
const ISS = 'https://app.example';
const AUD = 'backvault';
const now = (): number => Math.floor(Date.now() / 1000);

interface Claims {
  exp?: number | null;
  iat?: number | null;
  nbf?: number;
  kid?: string;
}

function mint(key: CryptoKey, sub: string, c: Claims = {}): Promise<string> {
  const j = new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', ...(c.kid ? { kid: c.kid } : {}) })
    .setSubject(sub)
    .setIssuer(ISS)
    .setAudience(AUD);
  if (c.iat !== null) j.setIssuedAt(c.iat ?? now());
  if (c.exp !== null) j.setExpirationTime(c.exp ?? now() + 300);
  if (c.nbf !== undefined) j.setNotBefore(c.nbf);
  return j.sign(key);
}

/** Status of GET /v1/record with `authorization` as given (404 = authenticated, no record). */
async function statusWith(url: string, authorization: string): Promise<number> {
  const res = await fetch(`${url}/v1/record`, { headers: { authorization } });
  await res.arrayBuffer();
  return res.status;
}

const keyPair = () => generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });

async function until(what: string, ok: () => Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

describe('vault tokens: lifetime rules, several issuer keys, reload (real process)', () => {
  let dir: string;
  let vault: VaultProcess;
  let pemA: CryptoKey;
  let pemB: CryptoKey;
  let jwksKey: CryptoKey;
  let jwks: JWK[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-tokens-'));
    const a = await keyPair();
    const b = await keyPair();
    const j = await keyPair();
    pemA = a.privateKey;
    pemB = b.privateKey;
    jwksKey = j.privateKey;
    await writeFile(join(dir, 'a.pem'), await exportSPKI(a.publicKey));
    await writeFile(join(dir, 'b.pem'), await exportSPKI(b.publicKey));
    jwks = [{ ...(await exportJWK(j.publicKey)), kid: 'j1' }];
    // An issuer's JWKS may hold keys of other types: left aside (and said so), not fatal.
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'r1' };
    await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [...jwks, rsaJwk] }));
    vault = await startVaultProcess([
      '--data',
      join(dir, 'data'),
      '--workers',
      '1',
      '--issuer',
      ISS,
      '--audience',
      AUD,
      '--jwt-public-key',
      join(dir, 'a.pem'),
      '--jwt-public-key',
      join(dir, 'b.pem'),
      '--jwks',
      join(dir, 'jwks.json'),
    ]);
  });
  after(async () => {
    await vault?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts tokens of every configured key: both PEM files and the JWKS key', async () => {
    assert.equal(await statusWith(vault.url, `Bearer ${await mint(pemA, 'ann')}`), 404);
    assert.equal(await statusWith(vault.url, `Bearer ${await mint(pemB, 'ann')}`), 404);
    const t = await mint(jwksKey, 'ann', { kid: 'j1' });
    assert.equal(await statusWith(vault.url, `Bearer ${t}`), 404);
  });

  it('logs the thumbprint of every key at start, never the key', async () => {
    const line = vault
      .output()
      .split('\n')
      .find((l) => l.includes('jwt issuer keys loaded'));
    assert.ok(line, 'a start line names the keys');
    const { keys: logged, skipped } = JSON.parse(line) as { keys: string[]; skipped: string[] };
    assert.equal(logged.length, 3);
    assert.equal(skipped.length, 1);
    assert.match(skipped[0] ?? '', /jwks\.json#1 \(RSA/);
    assert.ok(logged.includes(await calculateJwkThumbprint(jwks[0] as JWK)));
    assert.ok(!line.includes(String(jwks[0]?.x)), 'the key itself is not logged');
  });

  it('refuses a token without exp, with exp in 9999, and a lifetime over the maximum', async () => {
    const cases = {
      noExp: await mint(pemA, 'ann', { exp: null }),
      noExpNoIat: await mint(pemA, 'ann', { exp: null, iat: null }),
      year9999: await mint(pemA, 'ann', { exp: 253402300799 }),
      year9999NoIat: await mint(pemA, 'ann', { exp: 253402300799, iat: null }),
      twoHours: await mint(pemA, 'ann', { exp: now() + 7200 }),
      oldIatLongLife: await mint(pemA, 'ann', { iat: now() - 7000, exp: now() + 300 }),
    };
    for (const [name, t] of Object.entries(cases)) {
      assert.equal(await statusWith(vault.url, `Bearer ${t}`), 401, name);
    }
    // At the limit (1 h) it is fine.
    assert.equal(
      await statusWith(vault.url, `Bearer ${await mint(pemA, 'ann', { exp: now() + 3590 })}`),
      404,
    );
  });

  it('refuses iat or nbf beyond the clock skew, accepts them within it', async () => {
    const future = await mint(pemA, 'ann', { iat: now() + 365 * 86400, exp: now() + 300 });
    assert.equal(await statusWith(vault.url, `Bearer ${future}`), 401, 'iat a year ahead');
    const iat5min = await mint(pemA, 'ann', { iat: now() + 300, exp: now() + 600 });
    assert.equal(await statusWith(vault.url, `Bearer ${iat5min}`), 401, 'iat 5 min ahead');
    const nbf = await mint(pemA, 'ann', { nbf: now() + 300 });
    assert.equal(await statusWith(vault.url, `Bearer ${nbf}`), 401, 'nbf 5 min ahead');
    const skewed = await mint(pemA, 'ann', { iat: now() + 20, nbf: now() + 20 });
    assert.equal(await statusWith(vault.url, `Bearer ${skewed}`), 404, 'within skew');
  });

  it('takes the Bearer scheme in any case', async () => {
    const t = await mint(pemA, 'ann');
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      assert.equal(await statusWith(vault.url, `${scheme} ${t}`), 404, scheme);
    }
    assert.equal(await statusWith(vault.url, `Basic ${t}`), 401);
    assert.equal(bearerToken('bearer  abc.def-_~+/=='), 'abc.def-_~+/==');
    assert.equal(bearerToken('Bearerabc'), undefined);
  });

  it('re-reads the JWKS file when it changes: a new key works, a removed one stops', async () => {
    const fresh = await keyPair();
    const freshJwk = { ...(await exportJWK(fresh.publicKey)), kid: 'j2' };
    const before = await mint(jwksKey, 'ann', { kid: 'j1' });
    assert.equal(await statusWith(vault.url, `Bearer ${before}`), 404);
    // Replaced by rename, as deployment tools do.
    await writeFile(join(dir, 'jwks.next'), JSON.stringify({ keys: [freshJwk] }));
    await rename(join(dir, 'jwks.next'), join(dir, 'jwks.json'));
    const t2 = await mint(fresh.privateKey, 'ann', { kid: 'j2' });
    await until(
      'the new key is accepted',
      async () => (await statusWith(vault.url, `Bearer ${t2}`)) === 404,
    );
    // The old token was verified (and cached) before: the cache must not keep it alive.
    assert.equal(await statusWith(vault.url, `Bearer ${before}`), 401);
    assert.match(vault.output(), /jwt issuer keys reloaded/);
  });

  it('keeps the keys in force when the new JWKS file is broken, and says so', async () => {
    const t = await mint(pemA, 'ann');
    await writeFile(join(dir, 'jwks.next'), '{ not json');
    await rename(join(dir, 'jwks.next'), join(dir, 'jwks.json'));
    await until('the failed reload is logged', async () =>
      vault.output().includes('jwt issuer keys NOT reloaded'),
    );
    assert.equal(await statusWith(vault.url, `Bearer ${t}`), 404);
  });

  it('re-reads the key files on SIGHUP and keeps running', async () => {
    const fresh = await keyPair();
    await writeFile(
      join(dir, 'jwks.json'),
      JSON.stringify({ keys: [{ ...(await exportJWK(fresh.publicKey)), kid: 'j3' }] }),
    );
    const count = () => vault.output().split('jwt issuer keys reloaded').length;
    const n = count();
    process.kill(vault.pid, 'SIGHUP');
    await until('SIGHUP reloads', async () => count() > n);
    const t = await mint(fresh.privateKey, 'ann', { kid: 'j3' });
    assert.equal(await statusWith(vault.url, `Bearer ${t}`), 404);
  });
});

describe('vault tokens: the CLI passes every --jwt-public-key', () => {
  it('`backvault vault serve` with two keys accepts tokens of both', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-tokens-cli-'));
    const a = await keyPair();
    const b = await keyPair();
    await writeFile(join(dir, 'a.pem'), await exportSPKI(a.publicKey));
    await writeFile(join(dir, 'b.pem'), await exportSPKI(b.publicKey));
    const v = await launchVault(
      [
        MAIN_JS,
        'vault',
        'serve',
        '--data',
        join(dir, 'data'),
        '--port',
        '0',
        '--workers',
        '1',
        '--issuer',
        ISS,
        '--audience',
        AUD,
        '--jwt-public-key',
        join(dir, 'a.pem'),
        '--jwt-public-key',
        join(dir, 'b.pem'),
        '--max-token-lifetime',
        '600',
      ],
      { ...process.env },
    );
    try {
      assert.equal(await statusWith(v.url, `Bearer ${await mint(a.privateKey, 'ann')}`), 404);
      assert.equal(await statusWith(v.url, `Bearer ${await mint(b.privateKey, 'ann')}`), 404);
      // --max-token-lifetime reached the server: 20 min is now too long.
      const long = await mint(a.privateKey, 'ann', { exp: now() + 1200 });
      assert.equal(await statusWith(v.url, `Bearer ${long}`), 401);
    } finally {
      await v.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('vault tokens: SIGHUP to a cluster primary', () => {
  it('reaches every worker, and the primary keeps running', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-tokens-hup-'));
    const a = await keyPair();
    await writeFile(join(dir, 'a.pem'), await exportSPKI(a.publicKey));
    const v = await startVaultProcess([
      '--data',
      join(dir, 'data'),
      '--workers',
      '2',
      '--issuer',
      ISS,
      '--audience',
      AUD,
      '--jwt-public-key',
      join(dir, 'a.pem'),
    ]);
    try {
      const count = () => v.output().split('jwt issuer keys reloaded').length - 1;
      assert.equal(count(), 0);
      process.kill(v.pid, 'SIGHUP');
      await until('both workers reload', async () => count() === 2).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}: ${count()}\n${v.output().slice(-1500)}`);
      });
      assert.equal(await statusWith(v.url, `Bearer ${await mint(a.privateKey, 'ann')}`), 404);
    } finally {
      await v.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
