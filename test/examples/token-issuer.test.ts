/**
 * examples/token-issuer, for real: its keygen writes the key pair, a real vault process is
 * started with the JWKS it wrote (`--issuer --audience --jwks`), its HTTP token endpoint
 * runs as its own process, and the SDK enables and recovers a key with tokens fetched from
 * it. Then every token the vault must refuse (expired, too long-lived, no expiry, wrong
 * audience or issuer, `none`, HS256 keyed with the public key, another key) is refused
 * with UNAUTHORIZED, through the SDK.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SignJWT, importPKCS8, type JWTPayload } from 'jose';
import { VaultClient } from '#sdk/client/index.js';
import { UnauthorizedError } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/key-encoding.js';
import { startVaultProcess, type VaultProcess } from '../vault/vault-process.js';
import { exampleApp, runNode } from './install.js';

const ISS = 'https://app.example';
const AUD = 'backvault';
const SESSION = 'demo-session-0123456789abcdef';
const now = (): number => Math.floor(Date.now() / 1000);

interface Issuer {
  alg: string;
  kid: string;
  jwks: { keys: object[] };
  issue(user: string): Promise<{ token: string; expiresAt: Date }>;
}
type CreateIssuer = (o: {
  privateKeyPem: string;
  issuer: string;
  audience: string;
  lifetimeSeconds?: number;
}) => Promise<Issuer>;

/** Starts examples/token-issuer/server.mjs and waits for its "listening on URL" line. */
function startTokenServer(appDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['server.mjs'], {
    cwd: appDir,
    env: {
      ...process.env,
      ISSUER_KEY_FILE: join(appDir, 'issuer-key.pem'),
      ISSUER: ISS,
      AUDIENCE: AUD,
      DEMO_SESSION: SESSION,
      DEMO_USER: 'alice',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve({ url: m[1], child });
    });
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`token server exited ${code}: ${out}`)));
  });
}

describe('examples/token-issuer: a vault trusts the sample issuer (real processes)', () => {
  let appDir: string;
  let dataDir: string;
  let vault: VaultProcess;
  let server: { url: string; child: ChildProcess };
  let createTokenIssuer: CreateIssuer;
  let privateKeyPem: string;
  let ecPem: string;

  before(async () => {
    appDir = await exampleApp('token-issuer');
    dataDir = await mkdtemp(join(tmpdir(), 'bv-issuer-vault-'));
    const keygen = await runNode(appDir, 'keygen.mjs');
    assert.equal(keygen.code, 0, keygen.stderr);
    assert.match(keygen.stdout, /issuer-key\.pem \(private\).*jwks\.json \(kid /);
    privateKeyPem = await readFile(join(appDir, 'issuer-key.pem'), 'utf8');
    ({ createTokenIssuer } = (await import(pathToFileURL(join(appDir, 'issuer.mjs')).href)) as {
      createTokenIssuer: CreateIssuer;
    });
    // A second issuer key, P-256 (ES256), given to the vault as a PEM: both algorithms work.
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    ecPem = ec.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    await writeFile(
      join(dataDir, 'ec.pem'),
      ec.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    );
    vault = await startVaultProcess([
      '--data',
      join(dataDir, 'data'),
      '--workers',
      '1',
      '--issuer',
      ISS,
      '--audience',
      AUD,
      '--jwks',
      join(appDir, 'jwks.json'),
      '--jwt-public-key',
      join(dataDir, 'ec.pem'),
    ]);
    server = await startTokenServer(appDir);
  });
  after(async () => {
    server?.child.kill('SIGTERM');
    await vault?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(appDir, { recursive: true, force: true });
  });

  it('keygen keeps the private key private (0600) and publishes only public key material', async () => {
    assert.equal((await stat(join(appDir, 'issuer-key.pem'))).mode & 0o777, 0o600);
    const jwks = JSON.parse(await readFile(join(appDir, 'jwks.json'), 'utf8')) as {
      keys: Record<string, string>[];
    };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]?.kty, 'OKP');
    assert.equal(jwks.keys[0]?.crv, 'Ed25519');
    assert.equal(jwks.keys[0]?.d, undefined, 'no private part in the JWKS');
  });

  it('enables and recovers a key with tokens from the token endpoint', async () => {
    let calls = 0;
    const token = async (): Promise<string> => {
      calls++;
      const res = await fetch(`${server.url}/backvault/token`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SESSION}` },
      });
      assert.equal(res.status, 200);
      return ((await res.json()) as { token: string }).token;
    };
    const backupKey = generateBackupKey();
    const deviceA = new VaultClient({ baseUrl: vault.url, token });
    const enabled = await deviceA.enable({ password: 'velvet-orbit-canyon-1987', backupKey });
    assert.equal(enabled.serverPublicKey, vault.serverPublicKey);
    const deviceB = new VaultClient({
      baseUrl: vault.url,
      token,
      pinnedServerPublicKey: enabled.serverPublicKey,
    });
    const recovered = await deviceB.recover({ password: 'velvet-orbit-canyon-1987' });
    assert.deepEqual(recovered, backupKey);
    assert.ok(calls >= 4, 'a fresh token per request');
  });

  it('the token endpoint refuses a caller without a session', async () => {
    const res = await fetch(`${server.url}/backvault/token`, { method: 'POST' });
    assert.equal(res.status, 401);
    const wrong = await fetch(`${server.url}/backvault/token`, {
      method: 'POST',
      headers: { authorization: 'Bearer another-session' },
    });
    assert.equal(wrong.status, 401);
  });

  it('an ES256 (P-256) issuer key works too', async () => {
    const es = await createTokenIssuer({ privateKeyPem: ecPem, issuer: ISS, audience: AUD });
    assert.equal(es.alg, 'ES256');
    const { token } = await es.issue('bob');
    // 404 = authenticated, no record for bob.
    await assert.rejects(new VaultClient({ baseUrl: vault.url, token }).status(), {
      code: 'NOT_FOUND',
    });
  });

  it('the issuer refuses a lifetime the vault would refuse, an RSA key and a bad account id', async () => {
    await assert.rejects(
      createTokenIssuer({ privateKeyPem, issuer: ISS, audience: AUD, lifetimeSeconds: 7200 }),
      /lifetimeSeconds must be 1\.\.3600/,
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await assert.rejects(
      createTokenIssuer({
        privateKeyPem: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
        issuer: ISS,
        audience: AUD,
      }),
      /Ed25519 or P-256/,
    );
    const ok = await createTokenIssuer({ privateKeyPem, issuer: ISS, audience: AUD });
    await assert.rejects(ok.issue('alice smith'), /not a valid vault account id/);
  });

  describe('tokens the vault refuses (UNAUTHORIZED through the SDK)', () => {
    const sign = async (claims: JWTPayload, header: Record<string, unknown> = {}) =>
      new SignJWT({ iss: ISS, aud: AUD, sub: 'alice', iat: now(), exp: now() + 300, ...claims })
        .setProtectedHeader({ alg: 'EdDSA', ...header })
        .sign(await importPKCS8(privateKeyPem, 'EdDSA'));
    const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const refused = async (token: string): Promise<void> => {
      await assert.rejects(
        new VaultClient({ baseUrl: vault.url, token }).status(),
        (e: unknown) => e instanceof UnauthorizedError && e.code === 'UNAUTHORIZED',
      );
    };

    it('control: a token signed the same way but valid is accepted', async () => {
      const client = new VaultClient({ baseUrl: vault.url, token: await sign({}) });
      assert.equal((await client.status()).state, 'active');
    });
    it('expired (beyond the 60 s clock skew)', async () => {
      await refused(await sign({ iat: now() - 600, exp: now() - 120 }));
    });
    it('lifetime beyond --max-token-lifetime (3600 s)', async () => {
      await refused(await sign({ exp: now() + 7200 }));
    });
    it('no expiry', async () => {
      const t = await new SignJWT({ iss: ISS, aud: AUD, sub: 'alice', iat: now() })
        .setProtectedHeader({ alg: 'EdDSA' })
        .sign(await importPKCS8(privateKeyPem, 'EdDSA'));
      await refused(t);
    });
    it('issued in the future', async () => {
      await refused(await sign({ iat: now() + 600, exp: now() + 900 }));
    });
    it('wrong audience', async () => {
      await refused(await sign({ aud: 'another-service' }));
    });
    it('wrong issuer', async () => {
      await refused(await sign({ iss: 'https://evil.example' }));
    });
    it('alg none (unsigned)', async () => {
      const body = { iss: ISS, aud: AUD, sub: 'alice', iat: now(), exp: now() + 300 };
      await refused(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(body)}.`);
    });
    it('HS256 keyed with the public JWKS (algorithm confusion)', async () => {
      const jwks = await readFile(join(appDir, 'jwks.json'));
      const t = await new SignJWT({ iss: ISS, aud: AUD, sub: 'alice', exp: now() + 300 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new Uint8Array(jwks));
      await refused(t);
    });
    it('signed by a key the vault does not know', async () => {
      const other = generateKeyPairSync('ed25519').privateKey;
      const t = await new SignJWT({ iss: ISS, aud: AUD, sub: 'alice', exp: now() + 300 })
        .setProtectedHeader({ alg: 'EdDSA' })
        .sign(other);
      await refused(t);
    });
  });
});
