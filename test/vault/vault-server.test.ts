import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import * as opaque from '@serenity-kit/opaque';
import { NO_RATE_LIMITS, startVaultProcess, type VaultProcess } from './vault-process.js';
import { FAST_STRETCHING, call, devToken, keyProofOf, login, register } from './test-client.js';

const LIMIT = 5;

function readRecord(
  dataDir: string,
  account: string,
): { version: number; failures: number; state: string } | undefined {
  const db = new Database(join(dataDir, 'vault.sqlite'), { readonly: true });
  try {
    return db
      .prepare('SELECT version, failures, state FROM records WHERE account = ?')
      .get(account) as { version: number; failures: number; state: string } | undefined;
  } finally {
    db.close();
  }
}

describe('vault server (real process)', () => {
  let dir: string;
  let vault: VaultProcess;
  let logs = '';
  const secrets: { password: string; backupKey: Buffer }[] = [];
  const args = () => [
    '--data',
    dir,
    '--dev-auth',
    '--max-attempts',
    String(LIMIT),
    ...NO_RATE_LIMITS,
  ];

  before(async () => {
    await opaque.ready;
    dir = await mkdtemp(join(tmpdir(), 'bv-vault-'));
    vault = await startVaultProcess(args());
  });
  after(async () => {
    await vault?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function restart(crash = false): Promise<void> {
    logs += vault.output();
    await (crash ? vault.crash() : vault.stop());
    vault = await startVaultProcess(args());
  }

  function secret(): { password: string; backupKey: Buffer } {
    const s = {
      password: `pw-${randomBytes(9).toString('base64url')}`,
      backupKey: randomBytes(32),
    };
    secrets.push(s);
    return s;
  }

  it('serves info, healthz, openapi', async () => {
    const info = await call(vault.url, 'GET', '/v1/info');
    assert.equal(info.status, 200);
    assert.equal(info.body.serverPublicKey, vault.serverPublicKey);
    assert.equal(info.body.maxAttempts, LIMIT);
    assert.equal((await call(vault.url, 'GET', '/healthz')).body.status, 'ok');
    const api = await call(vault.url, 'GET', '/v1/openapi.json');
    assert.equal(api.body.openapi, '3.1.0');
    const paths = Object.keys(api.body.paths as object);
    for (const p of [
      '/v1/login/start',
      '/v1/login/finish',
      '/v1/registration/start',
      '/v1/registration/finish',
      '/v1/record',
      '/v1/record/delete',
    ]) {
      assert.ok(paths.includes(p), p);
    }
  });

  it('register, then login releases the backup key; the pinned key matches', async () => {
    const s = secret();
    const t = await devToken(vault.url, 'alice');
    const r = await register(vault.url, t, s.password, s.backupKey);
    assert.equal(r.status.status, 200);
    assert.deepEqual(r.status.body, { state: 'active', attemptsLeft: LIMIT, maxAttempts: LIMIT });
    const l = await login(vault.url, t, s.password);
    assert.ok(l.ok);
    assert.deepEqual(l.backupKey, s.backupKey);
    // a second registration without key proof is refused
    const again = await register(vault.url, t, 'other-pass-1', randomBytes(32));
    assert.equal(again.status.status, 409);
    assert.equal(again.status.body.error?.code, 'CONFLICT');
  });

  it('wrong passwords count down with attemptsLeft; success resets the count', async () => {
    const s = secret();
    const t = await devToken(vault.url, 'bob');
    await register(vault.url, t, s.password, s.backupKey);
    for (let i = 1; i <= 3; i++) {
      const w = await login(vault.url, t, 'wrong password');
      assert.equal(w.ok, false);
      assert.equal(!w.ok && w.code, 'WRONG_PASSWORD');
      assert.equal(!w.ok && w.attemptsLeft, LIMIT - i);
    }
    assert.equal(
      (await call(vault.url, 'GET', '/v1/record', undefined, t)).body.attemptsLeft,
      LIMIT - 3,
    );
    assert.ok((await login(vault.url, t, s.password)).ok);
    assert.equal(
      (await call(vault.url, 'GET', '/v1/record', undefined, t)).body.attemptsLeft,
      LIMIT,
    );
    assert.equal(readRecord(dir, 'bob')?.failures, 0);
  });

  it('100 concurrent wrong guesses give at most `limit` OPAQUE responses, then LOCKED — even after restart', async () => {
    const s = secret();
    const t = await devToken(vault.url, 'carol');
    await register(vault.url, t, s.password, s.backupKey);
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => {
        const c = opaque.client.startLogin({ password: 'guess' });
        return call(
          vault.url,
          'POST',
          '/v1/login/start',
          { startLoginRequest: c.startLoginRequest },
          t,
        );
      }),
    );
    const opaqueResponses = answers.filter(
      (a) => a.status === 200 && typeof a.body.loginResponse === 'string',
    );
    assert.ok(opaqueResponses.length <= LIMIT, `${opaqueResponses.length} responses`);
    assert.equal(opaqueResponses.length, LIMIT, 'every allowed guess was served');
    for (const a of answers)
      if (a.status !== 200) assert.equal(a.body.error?.code, 'LOCKED', JSON.stringify(a.body));
    const after1 = await login(vault.url, t, s.password);
    assert.equal(!after1.ok && after1.code, 'LOCKED');
    assert.equal(!after1.ok && after1.status, 423);
    await restart(true);
    // dev tokens die with the process (in-memory issuer key): get a fresh one
    const t2 = await devToken(vault.url, 'carol');
    assert.equal((await call(vault.url, 'GET', '/v1/record', undefined, t)).status, 401);
    const after2 = await login(vault.url, t2, s.password);
    assert.equal(!after2.ok && after2.code, 'LOCKED');
    assert.equal((await call(vault.url, 'GET', '/v1/record', undefined, t2)).body.state, 'locked');
    const db = new Database(join(dir, 'vault.sqlite'), { readonly: true });
    const row = db
      .prepare('SELECT sealed_record, key_envelope FROM records WHERE account = ?')
      .get('carol') as Record<string, unknown>;
    db.close();
    assert.equal(row.sealed_record, null);
    assert.equal(row.key_envelope, null);
  });

  it('the last guess can still succeed; a start after it locks', async () => {
    const s = secret();
    const t = await devToken(vault.url, 'dave');
    await register(vault.url, t, s.password, s.backupKey);
    for (let i = 0; i < LIMIT - 1; i++) await login(vault.url, t, 'nope');
    const last = await login(vault.url, t, s.password);
    assert.ok(last.ok, 'the limit-th guess is a real guess');
    for (let i = 0; i < LIMIT; i++) await login(vault.url, t, 'nope');
    const locked = await login(vault.url, t, s.password);
    assert.equal(!locked.ok && locked.code, 'LOCKED');
  });

  it('unknown account: NOT_FOUND', async () => {
    const t = await devToken(vault.url, 'nobody');
    const l = await login(vault.url, t, 'whatever1');
    assert.equal(!l.ok && l.code, 'NOT_FOUND');
    assert.equal(!l.ok && l.status, 404);
  });

  it('a token for account A cannot touch account B', async () => {
    const a = secret();
    const b = secret();
    const ta = await devToken(vault.url, 'erin');
    const tb = await devToken(vault.url, 'frank');
    await register(vault.url, ta, a.password, a.backupKey);
    await register(vault.url, tb, b.password, b.backupKey);
    const before = readRecord(dir, 'frank');
    // B's login state finished under A's token: refused
    const c = opaque.client.startLogin({ password: b.password });
    const s = await call(
      vault.url,
      'POST',
      '/v1/login/start',
      { startLoginRequest: c.startLoginRequest },
      tb,
    );
    const f = opaque.client.finishLogin({
      password: b.password,
      clientLoginState: c.clientLoginState,
      loginResponse: s.body.loginResponse as string,
      keyStretching: FAST_STRETCHING,
    });
    const cross = await call(
      vault.url,
      'POST',
      '/v1/login/finish',
      { loginState: s.body.loginState, finishLoginRequest: f!.finishLoginRequest },
      ta,
    );
    assert.equal(cross.status, 400);
    // deleting with B's key proof under A's token acts on A and fails
    const del = await call(
      vault.url,
      'POST',
      '/v1/record/delete',
      { keyProof: keyProofOf(b.backupKey) },
      ta,
    );
    assert.equal(del.body.error?.code, 'FORBIDDEN');
    const after = readRecord(dir, 'frank');
    assert.equal(after?.failures, (before?.failures ?? 0) + 1, 'only B’s own start counted');
    assert.ok((await login(vault.url, tb, b.password)).ok);
    assert.ok((await login(vault.url, ta, a.password)).ok);
  });

  it('replace and delete need the backup-key proof', async () => {
    const s = secret();
    const n = secret();
    const t = await devToken(vault.url, 'grace');
    await register(vault.url, t, s.password, s.backupKey);
    const v0 = readRecord(dir, 'grace')!.version;
    const noProof = await register(vault.url, t, n.password, s.backupKey);
    assert.equal(noProof.status.body.error?.code, 'CONFLICT');
    const wrong = await register(vault.url, t, n.password, s.backupKey, {
      currentBackupKey: randomBytes(32),
    });
    assert.equal(wrong.status.status, 403);
    assert.equal(wrong.status.body.error?.code, 'FORBIDDEN');
    const delWrong = await call(
      vault.url,
      'POST',
      '/v1/record/delete',
      { keyProof: keyProofOf(randomBytes(32)) },
      t,
    );
    assert.equal(delWrong.status, 403);
    assert.equal(readRecord(dir, 'grace')!.version, v0, 'nothing changed');
    const ok = await register(vault.url, t, n.password, s.backupKey, {
      currentBackupKey: s.backupKey,
    });
    assert.equal(ok.status.status, 200);
    assert.equal((await login(vault.url, t, s.password)).ok, false, 'old password is gone');
    const l = await login(vault.url, t, n.password);
    assert.ok(l.ok);
    assert.deepEqual(l.backupKey, s.backupKey);
    const del = await call(
      vault.url,
      'POST',
      '/v1/record/delete',
      { keyProof: keyProofOf(s.backupKey) },
      t,
    );
    assert.deepEqual(del.body, { deleted: true });
    const gone = await login(vault.url, t, n.password);
    assert.equal(!gone.ok && gone.code, 'NOT_FOUND');
  });

  it('malformed, oversized, replayed and out-of-order messages get 4xx and change nothing', async () => {
    const s = secret();
    const t = await devToken(vault.url, 'heidi');
    const reg = await register(vault.url, t, s.password, s.backupKey);
    const ok = await login(vault.url, t, s.password);
    assert.ok(ok.ok);
    const before = readRecord(dir, 'heidi')!;
    const bad: [string, 'GET' | 'POST', string, unknown, string | undefined, number, string][] = [
      [
        'bad base64',
        'POST',
        '/v1/login/start',
        { startLoginRequest: '!'.repeat(128) },
        undefined,
        400,
        'BAD_REQUEST',
      ],
      [
        'short KE1',
        'POST',
        '/v1/login/start',
        { startLoginRequest: 'A'.repeat(100) },
        undefined,
        400,
        'BAD_REQUEST',
      ],
      [
        'extra field',
        'POST',
        '/v1/login/start',
        { startLoginRequest: 'A'.repeat(128), account: 'bob' },
        undefined,
        400,
        'BAD_REQUEST',
      ],
      [
        'missing field',
        'POST',
        '/v1/login/finish',
        { loginState: 'AAAA'.repeat(10) },
        undefined,
        400,
        'BAD_REQUEST',
      ],
      ['not json', 'POST', '/v1/login/start', undefined, '{nope', 400, 'BAD_REQUEST'],
      [
        'oversized',
        'POST',
        '/v1/registration/finish',
        undefined,
        JSON.stringify({ keyEnvelope: 'A'.repeat(40_000) }),
        413,
        'BAD_REQUEST',
      ],
      [
        'envelope too big',
        'POST',
        '/v1/registration/finish',
        { ...reg.finishBody, keyEnvelope: 'A'.repeat(1500) },
        undefined,
        400,
        'BAD_REQUEST',
      ],
      [
        'replayed registration',
        'POST',
        '/v1/registration/finish',
        reg.finishBody,
        undefined,
        409,
        'CONFLICT',
      ],
      [
        'replayed login finish',
        'POST',
        '/v1/login/finish',
        ok.ok ? ok.finishBody : {},
        undefined,
        409,
        'CONFLICT',
      ],
      [
        'finish without start',
        'POST',
        '/v1/login/finish',
        {
          loginState: randomBytes(200).toString('base64url'),
          finishLoginRequest: randomBytes(64).toString('base64url'),
        },
        undefined,
        400,
        'BAD_REQUEST',
      ],
      [
        'registration finish without start',
        'POST',
        '/v1/registration/finish',
        { ...reg.finishBody, registrationTicket: randomBytes(80).toString('base64url') },
        undefined,
        400,
        'BAD_REQUEST',
      ],
      ['unknown route', 'POST', '/v1/nope', {}, undefined, 404, 'NOT_FOUND'],
    ];
    for (const [name, method, path, body, raw, status, code] of bad) {
      const a = await call(vault.url, method, path, body, t, raw);
      assert.equal(a.status, status, `${name}: ${JSON.stringify(a.body)}`);
      assert.equal(a.body.error?.code, code, name);
      assert.ok(typeof a.body.error?.message === 'string' && a.body.error.message.length > 0, name);
    }
    const afterRec = readRecord(dir, 'heidi')!;
    assert.equal(afterRec.version, before.version, 'record version unchanged');
    assert.equal(afterRec.failures, before.failures, 'failures unchanged');
    assert.ok((await login(vault.url, t, s.password)).ok);
  });

  it('exposes metrics', async () => {
    const m = await fetch(vault.metricsUrl as string).then((r) => r.text());
    for (const name of [
      'backvault_vault_logins_started_total',
      'backvault_vault_logins_succeeded_total',
      'backvault_vault_lockouts_total',
      'backvault_vault_request_duration_seconds_bucket',
    ]) {
      assert.ok(m.includes(name), name);
    }
    assert.match(m, /backvault_vault_logins_succeeded_total [1-9]/);
  });

  it('no password, backup key or token appears in any log line or any byte of the data directory', async () => {
    await vault.stop();
    logs += vault.output();
    const files = await readdir(dir);
    assert.ok(files.includes('vault.sqlite') && files.includes('hsm-keys.json'));
    const blobs = await Promise.all(files.map((f) => readFile(join(dir, f))));
    const logBuf = Buffer.from(logs);
    assert.ok(logs.includes('"route":"/v1/login/start"'), 'logs were captured');
    for (const s of secrets) {
      const needles = [
        Buffer.from(s.password),
        s.backupKey,
        Buffer.from(s.backupKey.toString('hex')),
        Buffer.from(s.backupKey.toString('base64')),
        Buffer.from(s.backupKey.toString('base64url')),
      ];
      for (const n of needles) {
        assert.ok(!logBuf.includes(n), 'secret in logs');
        for (const b of blobs) assert.ok(!b.includes(n), 'secret in data dir');
      }
    }
    for (const l of logs.split('\n'))
      assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\./.test(l), 'token in logs');
    vault = await startVaultProcess(args());
  });
});
