/**
 * `vault serve --cors-origin ORIGIN` on the real vault process: the exact preflight and
 * response headers for a listed origin, nothing for an unlisted one (and a 403 preflight in
 * the usual error shape), `Vary: Origin`, preflights rate-limited like every request and
 * changing no state (a record's guess counter and version stay put), the /metrics listener
 * untouched, and bad values refused at start by both `serve.js` and `backvault vault serve`
 * (exit 2, the value named, its correct spelling suggested).
 *
 * The browser side (a page on one origin recovering a key from a vault on another, and the
 * SDK's VAULT_CORS_BLOCKED) is test/browser/cors.test.ts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import * as opaque from '@serenity-kit/opaque';
import { hasCode } from '#sdk/errors.js';
import { parseVaultArgs } from '#vault/vault/config.js';
import { CORS_MAX_AGE_SECONDS, parseCorsOrigin } from '#vault/vault/cors.js';
import {
  NO_RATE_LIMITS,
  runVaultExpectingFailure,
  startVaultProcess,
  type VaultProcess,
} from './vault-process.js';
import { call, devToken, login, register } from './test-client.js';

const MAIN_JS = fileURLToPath(new URL('../../../packages/cli/dist/cli/main.js', import.meta.url));
const APP = 'http://127.0.0.1:5173';
const APP2 = 'https://chat.example';
const EVIL = 'https://evil.example';

interface Raw {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One HTTP request with exactly these headers (node:http; fetch would add its own). */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const preflight = (
  base: string,
  path: string,
  origin: string,
  method = 'POST',
  reqHeaders = 'authorization,content-type',
): Promise<Raw> =>
  raw(base, 'OPTIONS', path, {
    origin,
    'access-control-request-method': method,
    'access-control-request-headers': reqHeaders,
  });

/** Every `access-control-*` header of an answer. */
function acHeaders(r: Raw): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(r.headers).filter(([k]) => k.startsWith('access-control-')),
  );
}

function readRecord(dataDir: string, account: string): { version: number; failures: number } {
  const db = new Database(join(dataDir, 'vault.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT version, failures FROM records WHERE account = ?').get(account) as {
      version: number;
      failures: number;
    };
  } finally {
    db.close();
  }
}

/** `backvault vault serve ARGS` expected to fail at start: exit code and stderr. */
function cliServe(args: readonly string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN_JS, 'vault', 'serve', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('--cors-origin values', () => {
  it('accepts exact origins, repeated, and keeps each once', () => {
    const c = parseVaultArgs([
      '--data',
      '/tmp/x',
      '--dev-auth',
      '--cors-origin',
      APP,
      '--cors-origin',
      APP2,
      '--cors-origin',
      'http://[::1]:8080',
      '--cors-origin',
      APP,
    ]);
    assert.deepEqual(c.corsOrigins, [APP, APP2, 'http://[::1]:8080']);
    assert.deepEqual(parseVaultArgs(['--data', '/tmp/x', '--dev-auth']).corsOrigins, []);
  });

  it('refuses anything that is not exactly one origin, with a stable code and a fix', () => {
    const cases: [string, RegExp][] = [
      ['*', /wildcards are not allowed/],
      ['https://*.example.com', /wildcards are not allowed/],
      ['null', /opaque origin null/],
      ['NULL', /opaque origin null/],
      ['https://app.example/', /Write it as https:\/\/app\.example /],
      ['https://App.Example', /Write it as https:\/\/app\.example /],
      ['https://app.example:443', /Write it as https:\/\/app\.example /],
      ['http://app.example:80', /Write it as http:\/\/app\.example /],
      ['https://app.example/chat', /no path, query or fragment/],
      ['https://app.example?x=1', /no path, query or fragment/],
      ['ftp://app.example', /must use http or https/],
      ['file:///tmp/page.html', /must use http or https/],
      ['https://u:p@app.example', /user or password/],
      ['app.example', /is not an origin/],
      ['', /is not an origin/],
    ];
    for (const [value, why] of cases) {
      assert.throws(
        () => parseCorsOrigin(value),
        (e: unknown) => {
          assert.ok(hasCode(e, 'USAGE'), `${value}: ${String(e)}`);
          assert.ok(e.message.includes(JSON.stringify(value)), `${value}: ${e.message}`);
          assert.match(`${e.message} ${e.hint}`, why, value);
          return true;
        },
      );
      assert.throws(
        () => parseVaultArgs(['--data', '/tmp/x', '--dev-auth', '--cors-origin', value]),
        (e: unknown) => hasCode(e, 'USAGE'),
        value,
      );
    }
    const many = Array.from({ length: 65 }, (_, i) => ['--cors-origin', `https://a${i}.example`]);
    assert.throws(
      () => parseVaultArgs(['--data', '/tmp/x', '--dev-auth', ...many.flat()]),
      /more than 64/,
    );
  });

  it('a bad value stops serve.js and `backvault vault serve` before they listen (exit 2)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-cors-cli-'));
    try {
      const a = await runVaultExpectingFailure([
        '--data',
        join(dir, 'a'),
        '--dev-auth',
        '--cors-origin',
        '*',
      ]);
      assert.equal(a.code, 2, a.output);
      assert.match(a.output, /ERROR USAGE: --cors-origin "\*": wildcards are not allowed/);
      assert.doesNotMatch(a.output, /"listening"/);
      const b = await cliServe([
        '--data',
        join(dir, 'b'),
        '--dev-auth',
        '--port',
        '0',
        '--cors-origin',
        APP,
        '--cors-origin',
        'https://app.example/',
      ]);
      assert.equal(b.code, 2, b.out);
      assert.match(b.out, /--cors-origin "https:\/\/app\.example\/"/);
      assert.match(b.out, /Write it as https:\/\/app\.example/);
      assert.doesNotMatch(b.out, /"listening"/);
      // The flag is listed in the command's help.
      const help = await cliServe(['--help']);
      assert.match(help.out, /--cors-origin ORIGIN/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('vault CORS (real process, --cors-origin listed twice)', () => {
  let dir: string;
  let vault: VaultProcess;

  before(async () => {
    await opaque.ready;
    dir = await mkdtemp(join(tmpdir(), 'bv-cors-'));
    vault = await startVaultProcess([
      '--data',
      dir,
      '--dev-auth',
      '--workers',
      '1',
      '--cors-origin',
      APP,
      '--cors-origin',
      APP2,
      ...NO_RATE_LIMITS,
    ]);
  });
  after(async () => {
    await vault?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a listed origin’s preflight with 204 and exactly the vault’s methods and headers', async () => {
    for (const origin of [APP, APP2]) {
      for (const path of ['/v1/login/start', '/v1/record/events', '/v1/info']) {
        const r = await preflight(vault.url, path, origin);
        assert.equal(r.status, 204, `${origin} ${path}: ${r.body}`);
        assert.equal(r.body, '');
        assert.deepEqual(acHeaders(r), {
          'access-control-allow-origin': origin,
          'access-control-allow-methods': 'GET, POST',
          'access-control-allow-headers': 'authorization, content-type, x-backvault-key-proof',
          'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
        });
        assert.equal(r.headers.vary, 'Origin');
      }
    }
    assert.equal(CORS_MAX_AGE_SECONDS, 600);
  });

  it('gives a listed origin’s answers (200, 401, 404, 413) the origin and Retry-After to read', async () => {
    const ok = await raw(vault.url, 'GET', '/v1/info', { origin: APP2 });
    const noToken = await raw(vault.url, 'GET', '/v1/record', { origin: APP });
    const missing = await raw(vault.url, 'GET', '/v1/nothing', { origin: APP });
    const tooBig = await raw(
      vault.url,
      'POST',
      '/v1/login/start',
      { origin: APP, 'content-type': 'application/json' },
      JSON.stringify({ x: 'a'.repeat(200_000) }),
    );
    assert.deepEqual(
      [ok.status, noToken.status, missing.status, tooBig.status],
      [200, 401, 404, 413],
    );
    for (const [r, origin] of [
      [ok, APP2],
      [noToken, APP],
      [missing, APP],
      [tooBig, APP],
    ] as const) {
      assert.deepEqual(acHeaders(r), {
        'access-control-allow-origin': origin,
        'access-control-expose-headers': 'retry-after',
      });
      assert.equal(r.headers.vary, 'Origin');
      assert.equal(r.headers['access-control-allow-credentials'], undefined);
    }
    assert.equal(JSON.parse(noToken.body).error.code, 'UNAUTHORIZED');
  });

  it('gives an unlisted origin no CORS header, and its preflight a 403 in the usual error shape', async () => {
    for (const origin of [EVIL, 'null', `${APP}/`, APP.toUpperCase(), `${APP}, ${EVIL}`]) {
      const p = await preflight(vault.url, '/v1/login/start', origin);
      assert.equal(p.status, 403, origin);
      assert.deepEqual(acHeaders(p), {}, origin);
      assert.equal(p.headers.vary, 'Origin');
      assert.deepEqual(JSON.parse(p.body), {
        error: {
          code: 'CORS_ORIGIN_NOT_ALLOWED',
          message: 'this origin is not in the vault’s --cors-origin list',
        },
      });
      const g = await raw(vault.url, 'GET', '/v1/info', { origin });
      assert.equal(g.status, 200);
      assert.deepEqual(acHeaders(g), {}, origin);
      assert.equal(g.headers.vary, 'Origin');
    }
    // No Origin at all (curl, the Node SDK): served as always, no CORS header.
    const plain = await raw(vault.url, 'GET', '/v1/info', {});
    assert.equal(plain.status, 200);
    assert.deepEqual(acHeaders(plain), {});
    // OPTIONS that is not a preflight: no such route, as before.
    const opt = await raw(vault.url, 'OPTIONS', '/v1/info', { origin: APP });
    assert.equal(opt.status, 404);
    assert.equal(JSON.parse(opt.body).error.code, 'NOT_FOUND');
    assert.equal(opt.headers['access-control-allow-methods'], undefined);
  });

  it('preflights, allowed or not, change no record: not a guess, not a version', async () => {
    const account = `cors-${randomBytes(6).toString('hex')}`;
    const token = await devToken(vault.url, account);
    const password = `pw-${randomBytes(8).toString('hex')}`;
    const r = await register(vault.url, token, password, randomBytes(32));
    assert.equal(r.status.status, 200);
    const wrong = await login(vault.url, token, 'not the password');
    assert.equal(wrong.ok, false);
    const before = readRecord(dir, account);
    assert.equal(before.failures, 1);
    for (const origin of [EVIL, APP]) {
      for (const path of [
        '/v1/login/start',
        '/v1/login/finish',
        '/v1/registration/start',
        '/v1/registration/finish',
        '/v1/record/delete',
        '/v1/record/head',
      ]) {
        const p = await raw(vault.url, 'OPTIONS', path, {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
          // A browser never sends it with a preflight; a token along changes nothing either.
          authorization: `Bearer ${token}`,
        });
        assert.equal(p.status, origin === APP ? 204 : 403);
      }
    }
    assert.deepEqual(readRecord(dir, account), before);
    const status = await call(vault.url, 'GET', '/v1/record', undefined, token);
    assert.equal(status.body.attemptsLeft, 9);
    // The password still works and resets the counter: the record is whole.
    const right = await login(vault.url, token, password);
    assert.equal(right.ok, true);
  });

  it('leaves the /metrics listener without CORS', async () => {
    assert.ok(vault.metricsUrl);
    const m = await raw(vault.metricsUrl, 'GET', '/metrics', { origin: APP });
    assert.equal(m.status, 200);
    assert.deepEqual(acHeaders(m), {});
    const p = await preflight(vault.metricsUrl, '/metrics', APP, 'GET', '');
    assert.deepEqual(acHeaders(p), {});
    assert.notEqual(p.status, 204);
  });
});

describe('vault CORS limits', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-cors-limits-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('counts preflights against the per-address limit, and a listed page can read the 429', async () => {
    const vault = await startVaultProcess([
      '--data',
      join(dir, 'limited'),
      '--dev-auth',
      '--workers',
      '1',
      '--rate-limit-ip',
      '4',
      '--cors-origin',
      APP,
    ]);
    try {
      const seen: number[] = [];
      seen.push((await preflight(vault.url, '/v1/login/start', APP)).status);
      seen.push((await preflight(vault.url, '/v1/login/start', EVIL)).status);
      seen.push((await preflight(vault.url, '/v1/login/finish', APP)).status);
      seen.push((await raw(vault.url, 'GET', '/v1/info', { origin: APP })).status);
      const p = await preflight(vault.url, '/v1/login/start', APP);
      const g = await raw(vault.url, 'GET', '/v1/info', { origin: APP });
      assert.deepEqual(seen, [204, 403, 204, 200]);
      assert.equal(p.status, 429, 'the fifth request (a preflight) is over the limit');
      assert.equal(g.status, 429, 'preflights used the same budget as the API');
      assert.equal(g.headers['access-control-allow-origin'], APP);
      assert.equal(g.headers['access-control-expose-headers'], 'retry-after');
      assert.match(String(g.headers['retry-after']), /^\d+$/);
      assert.equal(JSON.parse(g.body).error.code, 'RATE_LIMITED');
    } finally {
      await vault.stop();
    }
  });

  it('without --cors-origin: no CORS header, no Vary, every preflight refused', async () => {
    const vault = await startVaultProcess([
      '--data',
      join(dir, 'none'),
      '--dev-auth',
      '--workers',
      '1',
      ...NO_RATE_LIMITS,
    ]);
    try {
      const p = await preflight(vault.url, '/v1/info', APP, 'GET', '');
      assert.equal(p.status, 403);
      assert.deepEqual(acHeaders(p), {});
      assert.equal(JSON.parse(p.body).error.code, 'CORS_ORIGIN_NOT_ALLOWED');
      assert.match(JSON.parse(p.body).error.message, /allows no cross-origin requests/);
      const g = await raw(vault.url, 'GET', '/v1/info', { origin: APP });
      assert.equal(g.status, 200);
      assert.deepEqual(acHeaders(g), {});
      assert.equal(g.headers.vary, undefined);
    } finally {
      await vault.stop();
    }
  });
});
