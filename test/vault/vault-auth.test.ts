import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { runVaultExpectingFailure, startVaultProcess, type VaultProcess } from './vault-process.js';
import { call, login, register } from './test-client.js';

describe('vault auth: JWT issuer keys (real process)', () => {
  let dir: string;
  let vault: VaultProcess;
  let key: CryptoKey;
  let other: CryptoKey;
  let esKey: CryptoKey;

  const mint = (
    sub: string,
    k: CryptoKey = key,
    o: { exp?: number; aud?: string; iss?: string; alg?: string } = {},
  ) =>
    new SignJWT({})
      .setProtectedHeader({ alg: o.alg ?? 'EdDSA' })
      .setSubject(sub)
      .setIssuer(o.iss ?? 'https://app.example')
      .setAudience(o.aud ?? 'backvault')
      .setIssuedAt()
      .setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 300)
      .sign(k);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-auth-'));
    const ed = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const es = await generateKeyPair('ES256');
    key = ed.privateKey;
    esKey = es.privateKey;
    other = (await generateKeyPair('EdDSA', { crv: 'Ed25519' })).privateKey;
    const jwks = { keys: [await exportJWK(ed.publicKey), await exportJWK(es.publicKey)] };
    await writeFile(join(dir, 'jwks.json'), JSON.stringify(jwks));
    vault = await startVaultProcess([
      '--data',
      join(dir, 'data'),
      '--jwks',
      join(dir, 'jwks.json'),
      '--issuer',
      'https://app.example',
      '--audience',
      'backvault',
    ]);
  });
  after(async () => {
    await vault?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts valid EdDSA and ES256 tokens; the account is the subject', async () => {
    const t = await mint('zoe');
    assert.equal(
      (await call(vault.url, 'GET', '/v1/record', undefined, t)).body.error?.code,
      'NOT_FOUND',
    );
    const pw = 'zoe-password-1';
    const bk = randomBytes(32);
    assert.equal((await register(vault.url, t, pw, bk)).status.status, 200);
    const t2 = await mint('zoe', esKey, { alg: 'ES256' });
    const l = await login(vault.url, t2, pw);
    assert.ok(l.ok);
    assert.deepEqual(l.backupKey, bk);
  });

  it('refuses missing, forged, expired, wrong-audience and wrong-issuer tokens with 401', async () => {
    const cases = {
      missing: undefined,
      garbage: 'not.a.token',
      forged: await mint('zoe', other),
      expired: await mint('zoe', key, { exp: Math.floor(Date.now() / 1000) - 120 }),
      audience: await mint('zoe', key, { aud: 'someone-else' }),
      issuer: await mint('zoe', key, { iss: 'https://evil.example' }),
      badSubject: await mint('zoe/../x', key),
    };
    for (const [name, t] of Object.entries(cases)) {
      const a = await call(vault.url, 'GET', '/v1/record', undefined, t);
      assert.equal(a.status, 401, name);
      assert.equal(a.body.error?.code, 'UNAUTHORIZED', name);
    }
    const fin = await call(
      vault.url,
      'POST',
      '/v1/login/start',
      { startLoginRequest: 'A'.repeat(128) },
      cases.forged,
    );
    assert.equal(fin.status, 401);
  });

  it('a verified token vouches only for its exact bytes: same claims under another key are refused', async () => {
    // The vault caches verified tokens (auth.ts, cachingAuthenticator) keyed by the whole
    // token: a token whose signature does not verify must never ride on a cached one.
    const exp = Math.floor(Date.now() / 1000) + 300;
    const good = await mint('cache-zoe', key, { exp });
    for (let i = 0; i < 2; i++) {
      const a = await call(vault.url, 'GET', '/v1/record', undefined, good);
      assert.equal(a.body.error?.code, 'NOT_FOUND', 'the good token authenticates (and is cached)');
    }
    const [h, p] = good.split('.');
    const sameClaimsOtherKey = await mint('cache-zoe', other, { exp });
    assert.equal(sameClaimsOtherKey.split('.')[1], p, 'the same claims');
    const otherSig = sameClaimsOtherKey.split('.')[2]!;
    const flipped = good.slice(0, -2) + (good.at(-2) === 'A' ? 'B' : 'A') + good.at(-1);
    for (const [name, t] of Object.entries({
      sameClaimsOtherKey,
      graftedSignature: `${h}.${p}.${otherSig}`,
      flippedSignature: flipped,
    })) {
      const a = await call(vault.url, 'GET', '/v1/record', undefined, t);
      assert.equal(a.status, 401, name);
    }
    // The cached good token still works afterwards.
    const again = await call(vault.url, 'GET', '/v1/record', undefined, good);
    assert.equal(again.body.error?.code, 'NOT_FOUND');
  });

  it('has no dev token endpoint', async () => {
    const a = await call(vault.url, 'POST', '/v1/dev/token', { account: 'zoe' });
    assert.equal(a.status, 404);
  });

  it('refuses --dev-auth on a non-loopback address, loudly', async () => {
    const r = await runVaultExpectingFailure([
      '--data',
      join(dir, 'dev'),
      '--dev-auth',
      '--host',
      '0.0.0.0',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.output, /REFUSING TO START: --dev-auth/);
  });

  it('fails fast on a bad config', async () => {
    const r = await runVaultExpectingFailure([
      '--data',
      join(dir, 'x'),
      '--dev-auth',
      '--max-attempts',
      '0',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.output, /--max-attempts/);
    const r2 = await runVaultExpectingFailure(['--data', join(dir, 'y')]);
    assert.equal(r2.code, 2);
  });
});
