/**
 * The SDK against a real vault process (serve.js, loopback, --dev-auth), with an injected
 * `fetch` that records every request — as a browser app would inject its own. Most tests use
 * the testing-only light key stretching (many logins); one runs the real Argon2id default.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VaultClient, requestDevToken, toBase64url, type FetchLike } from '#sdk/client/index.js';
import { BackvaultError, WrongPasswordError } from '#sdk/errors.js';
import { formatBackupKey } from '#sdk/format/key-encoding.js';
import { startVaultProcess, type VaultProcess } from './vault-process.js';

interface Seen {
  url: string;
  body: string;
}

/** A fetch that records request bodies and can rewrite JSON responses. */
function recordingFetch(
  seen: Seen[],
  rewrite?: (url: string, body: Record<string, unknown>) => Record<string, unknown>,
): FetchLike {
  return async (input, init) => {
    seen.push({ url: input, body: typeof init.body === 'string' ? init.body : '' });
    const res = await fetch(input, init);
    if (!rewrite || !res.ok) return res;
    const body = rewrite(input, (await res.json()) as Record<string, unknown>);
    return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
  };
}

const key = (): Uint8Array => new Uint8Array(randomBytes(32));

describe('VaultClient against a real vault', () => {
  let dataDir: string;
  let vault: VaultProcess;
  const seen: Seen[] = [];
  const secrets: { password: string; backupKey: Uint8Array }[] = [];

  const client = (
    account: string,
    opts: { pinned?: string | null; fetch?: FetchLike; light?: boolean } = {},
  ): VaultClient =>
    new VaultClient({
      baseUrl: vault.url,
      fetch: opts.fetch ?? recordingFetch(seen),
      token: () => requestDevToken({ baseUrl: vault.url, account }),
      ...(opts.pinned === null
        ? {}
        : { pinnedServerPublicKey: opts.pinned ?? vault.serverPublicKey }),
      insecureTestingKeyStretching: opts.light ?? true,
    });

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'backvault-sdk-'));
    vault = await startVaultProcess({ dataDir: join(dataDir, 'vault'), maxAttempts: 5 });
  });
  after(async () => {
    await vault?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('info needs no token and names the pinned key', async () => {
    const info = await new VaultClient({ baseUrl: `${vault.url}/` }).info();
    assert.equal(info.protocol, 1);
    assert.equal(info.serverPublicKey, vault.serverPublicKey);
    assert.equal(info.maxAttempts, 5);
    assert.equal(info.devAuth, true);
  });

  test('enable then recover, with the real Argon2id stretching', async () => {
    const backupKey = key();
    const password = 'correct horse 42';
    secrets.push({ password, backupKey });
    const c = client('real-kdf', { light: false });
    const r = await c.enable({ password, backupKey });
    assert.equal(r.serverPublicKey, vault.serverPublicKey);
    assert.deepEqual(r.record, { state: 'active', attemptsLeft: 5, maxAttempts: 5 });
    assert.deepEqual(await c.recover({ password }), backupKey);
    // Stretching is client-side only: a client with another setting sees a wrong password.
    await assert.rejects(
      client('real-kdf', { light: true }).recover({ password }),
      (e: unknown) => {
        assert.ok(e instanceof WrongPasswordError);
        return true;
      },
    );
    assert.deepEqual(await c.recover({ password }), backupKey, 'success resets the count');
    assert.equal((await c.status()).attemptsLeft, 5);
  });

  test('wrong passwords count down, then LOCKED forever, even for the right password', async () => {
    const backupKey = key();
    const password = 'tango mike 7';
    secrets.push({ password, backupKey });
    const c = client('countdown');
    const r = await c.enable({ password, backupKey, maxAttempts: 3 });
    assert.equal(r.record.maxAttempts, 3);
    const left: number[] = [];
    for (let i = 0; i < 3; i++) {
      await assert.rejects(c.recover({ password: `wrong guess ${i}` }), (e: unknown) => {
        assert.ok(e instanceof WrongPasswordError);
        assert.equal(e.code, 'WRONG_PASSWORD');
        left.push(e.attemptsLeft);
        return true;
      });
    }
    assert.deepEqual(left, [2, 1, 0]);
    await assert.rejects(c.recover({ password: 'wrong guess 4' }), { code: 'LOCKED' });
    await assert.rejects(c.recover({ password }), { code: 'LOCKED' });
    assert.equal((await c.status()).state, 'locked');
    // The device that still holds the key can protect it again (replacement with key proof).
    await assert.rejects(c.changePassword({ newPassword: 'revived pw 1', backupKey: key() }), {
      code: 'FORBIDDEN',
    });
    await c.changePassword({ newPassword: 'revived pw 1', backupKey });
    assert.deepEqual(await c.recover({ password: 'revived pw 1' }), backupKey);
  });

  test('password change: the old password fails, the new one works; key proof required', async () => {
    const backupKey = key();
    secrets.push({ password: 'first pass 1', backupKey }, { password: 'second pass 2', backupKey });
    const c = client('change');
    await c.enable({ password: 'first pass 1', backupKey });
    // A second enable is refused (the vault says CONFLICT), as ALREADY_ENABLED.
    await assert.rejects(c.enable({ password: 'hijack pw 1', backupKey: key() }), {
      code: 'ALREADY_ENABLED',
    });
    await assert.rejects(c.changePassword({ newPassword: 'hijack pw 1', backupKey: key() }), {
      code: 'FORBIDDEN',
    });
    const r = await c.changePassword({ newPassword: 'second pass 2', backupKey });
    assert.equal(r.record.state, 'active');
    await assert.rejects(c.recover({ password: 'first pass 1' }), { code: 'WRONG_PASSWORD' });
    assert.deepEqual(await c.recover({ password: 'second pass 2' }), backupKey);
  });

  test('disable needs the key proof; afterwards NOT_FOUND', async () => {
    const backupKey = key();
    secrets.push({ password: 'delete me 1', backupKey });
    const c = client('disable');
    await c.enable({ password: 'delete me 1', backupKey });
    await assert.rejects(c.disable({ backupKey: key() }), { code: 'FORBIDDEN' });
    await c.disable({ backupKey });
    await assert.rejects(c.status(), { code: 'NOT_FOUND' });
    await assert.rejects(c.recover({ password: 'delete me 1' }), { code: 'NOT_FOUND' });
    await assert.rejects(client('nobody').recover({ password: 'whatever 1' }), {
      code: 'NOT_FOUND',
    });
  });

  test('weak passwords are refused before anything is sent', async () => {
    const before = seen.length;
    await assert.rejects(client('weak').enable({ password: '12345678', backupKey: key() }), {
      code: 'WEAK_PASSWORD',
    });
    await assert.rejects(client('weak').enable({ password: 'abc', backupKey: key() }), {
      code: 'WEAK_PASSWORD',
    });
    assert.equal(seen.length, before);
    const r = await client('weak').enable({ password: 'password1', backupKey: key() });
    assert.match(r.passwordWarning ?? '', /common/);
  });

  test('a different vault key is refused: VAULT_MISMATCH, before and after OPAQUE', async () => {
    const backupKey = key();
    secrets.push({ password: 'pinned pw 1', backupKey });
    await client('pin').enable({ password: 'pinned pw 1', backupKey });
    const other = toBase64url(new Uint8Array(randomBytes(32)));
    const c = client('pin', { pinned: other });
    await assert.rejects(c.recover({ password: 'pinned pw 1' }), { code: 'VAULT_MISMATCH' });
    await assert.rejects(c.status(), { code: 'VAULT_MISMATCH' });
    await assert.rejects(c.disable({ backupKey }), { code: 'VAULT_MISMATCH' });
    await assert.rejects(c.changePassword({ newPassword: 'x pinned 2', backupKey }), {
      code: 'VAULT_MISMATCH',
    });
    // A vault that lies in the unauthenticated field is caught by the OPAQUE-authenticated key.
    const liar = recordingFetch(seen, (url, body) =>
      url.endsWith('/v1/login/start') ? { ...body, serverPublicKey: other } : body,
    );
    await assert.rejects(
      client('pin', { pinned: other, fetch: liar }).recover({ password: 'pinned pw 1' }),
      { code: 'VAULT_MISMATCH' },
    );
    // Nothing was deleted or replaced.
    assert.deepEqual(await client('pin').recover({ password: 'pinned pw 1' }), backupKey);
  });

  test('tokens: none → UNAUTHORIZED, forged → UNAUTHORIZED, static string works', async () => {
    await assert.rejects(new VaultClient({ baseUrl: vault.url }).status(), {
      code: 'UNAUTHORIZED',
    });
    await assert.rejects(new VaultClient({ baseUrl: vault.url, token: 'a.b.c' }).status(), {
      code: 'UNAUTHORIZED',
    });
    const token = await requestDevToken({ baseUrl: vault.url, account: 'static' });
    await assert.rejects(new VaultClient({ baseUrl: vault.url, token }).status(), {
      code: 'NOT_FOUND',
    });
  });

  test('a login finish whose answer was lost after it committed: the SDK logs in once more', async () => {
    const backupKey = key();
    const password = 'lost answer 9';
    secrets.push({ password, backupKey });
    await client('lost-finish').enable({ password, backupKey });
    // The first finish reaches the vault and commits (guesses reset, login state used), then
    // its answer is lost, as when a node dies before replying. The SDK resends it to the
    // next node (here: the same vault again), which answers CONFLICT.
    const finishes: number[] = [];
    let dropped = false;
    const losing: FetchLike = async (input, init) => {
      const res = await fetch(input, init);
      if (input.endsWith('/v1/login/finish')) {
        finishes.push(res.status);
        if (!dropped) {
          dropped = true;
          await res.arrayBuffer();
          throw new TypeError('fetch failed: connection reset');
        }
      }
      return res;
    };
    const c = new VaultClient({
      baseUrl: vault.url,
      failoverUrls: [vault.url],
      fetch: losing,
      token: () => requestDevToken({ baseUrl: vault.url, account: 'lost-finish' }),
      pinnedServerPublicKey: vault.serverPublicKey,
      insecureTestingKeyStretching: true,
    });
    assert.deepEqual(await c.recover({ password }), backupKey);
    assert.deepEqual(finishes, [200, 409, 200], 'committed, resent (CONFLICT), fresh login');
    assert.equal((await c.status()).attemptsLeft, 5, 'the extra start was reset too');
  });

  test('an unreachable vault or a failing network is UNAVAILABLE', async () => {
    await assert.rejects(new VaultClient({ baseUrl: 'http://127.0.0.1:9' }).info(), {
      code: 'UNAVAILABLE',
    });
    const broken: FetchLike = async () => {
      throw new TypeError('fetch failed');
    };
    await assert.rejects(new VaultClient({ baseUrl: vault.url, fetch: broken }).info(), {
      code: 'UNAVAILABLE',
    });
    const html: FetchLike = async () => new Response('<html>', { status: 200 });
    await assert.rejects(new VaultClient({ baseUrl: vault.url, fetch: html }).info(), {
      code: 'UNAVAILABLE',
    });
    const down: FetchLike = async () => new Response('bad gateway', { status: 502 });
    await assert.rejects(
      new VaultClient({ baseUrl: vault.url, fetch: down, token: 't' }).status(),
      {
        code: 'UNAVAILABLE',
      },
    );
    assert.throws(() => new VaultClient({ baseUrl: 'ftp://x' }), { code: 'USAGE' });
  });

  test('no request body and no byte of the vault data holds a password or backup key', async () => {
    assert.ok(secrets.length >= 5);
    const bodies = seen.map((s) => s.body).join('\n');
    assert.ok(seen.length > 20, 'requests were recorded');
    const files: Buffer[] = [];
    for (const name of await readdir(join(dataDir, 'vault'), { recursive: true })) {
      const p = join(dataDir, 'vault', name);
      files.push(await readFile(p).catch(() => Buffer.alloc(0)));
    }
    for (const { password, backupKey } of secrets) {
      const forms = [
        Buffer.from(password),
        Buffer.from(backupKey),
        Buffer.from(Buffer.from(backupKey).toString('hex')),
        Buffer.from(Buffer.from(backupKey).toString('base64url')),
        Buffer.from(Buffer.from(backupKey).toString('base64')),
        Buffer.from(formatBackupKey(backupKey)),
      ];
      for (const f of forms) {
        assert.ok(!bodies.includes(f.toString('latin1')), 'secret in a request body');
        for (const file of files) assert.ok(!file.includes(f), 'secret in the vault data dir');
        assert.ok(!vault.logs().includes(f.toString('latin1')), 'secret in the vault logs');
      }
    }
  });
});

test('the SDK is browser-safe: no node: imports, Buffer or process in src/client', async () => {
  const dir = fileURLToPath(new URL('../../../packages/sdk/dist/client', import.meta.url));
  const files = (await readdir(dir)).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 5);
  // The bundled TypeBox the client loads (make build) is held to the same rules.
  const vendor = fileURLToPath(
    new URL('../../../packages/sdk/dist/vendor/typebox.js', import.meta.url),
  );
  for (const f of [...files, vendor]) {
    const code = await readFile(f === vendor ? vendor : join(dir, f), 'utf8');
    assert.doesNotMatch(code, /from ['"]node:/, `${f} imports node:`);
    assert.doesNotMatch(code, /\bBuffer\s*[.(]/, `${f} uses Buffer`);
    assert.doesNotMatch(code, /\bprocess\.(env|argv|versions|exit|on)\b/, `${f} uses process`);
    assert.doesNotMatch(code, /require\(/, `${f} uses require`);
    for (const m of code.matchAll(/from ['"]([^'"]+)['"]/g)) {
      const spec = m[1] as string;
      assert.ok(
        spec.startsWith('./') ||
          ['../errors.js', '../wire/index.js', '../vendor/typebox.js'].includes(spec) ||
          spec.startsWith('../format/') ||
          spec.startsWith('@serenity-kit/opaque') ||
          spec.startsWith('@sinclair/typebox'),
        `${f} imports ${spec}`,
      );
    }
  }
  assert.ok(BackvaultError);
});
