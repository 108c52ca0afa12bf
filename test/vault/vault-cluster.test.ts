import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import {
  NO_RATE_LIMITS,
  childrenOf,
  startVaultProcess,
  type VaultProcess,
} from './vault-process.js';
import { FAST_STRETCHING, call, devToken, login, register } from './test-client.js';

const LIMIT = 5;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** POST on a NEW connection each time, so the primary hands it to the next worker. */
function postFresh(
  url: string,
  path: string,
  body: unknown,
  token: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url + path,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(data),
          authorization: `Bearer ${token}`,
          connection: 'close',
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString('utf8')));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(text) as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

interface RequestLog {
  pid: number;
  route: string;
  status: number;
}

function requestLogs(output: string): RequestLog[] {
  const out: RequestLog[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !line.includes('"msg":"request"')) continue;
    const j = JSON.parse(line) as RequestLog;
    out.push({ pid: j.pid, route: j.route, status: j.status });
  }
  return out;
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('vault cluster: --workers 2 (real processes)', () => {
  let dir: string;
  let vault: VaultProcess | undefined;
  const args = () => [
    '--data',
    dir,
    '--dev-auth',
    '--workers',
    '2',
    '--max-attempts',
    String(LIMIT),
    ...NO_RATE_LIMITS,
  ];

  before(async () => {
    await opaque.ready;
    dir = await mkdtemp(join(tmpdir(), 'bv-cluster-'));
    vault = await startVaultProcess(args());
  });
  after(async () => {
    const pids = vault ? await childrenOf(vault.pid) : [];
    await vault?.stop();
    for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('runs two workers under one primary', async () => {
    const v = vault!;
    const workers = await childrenOf(v.pid);
    assert.equal(workers.length, 2, `workers: ${workers.join(',')}`);
  });

  it('100 concurrent wrong guesses across both workers: exactly `limit` OPAQUE responses, then LOCKED', async () => {
    const v = vault!;
    const t = await devToken(v.url, 'carol');
    assert.equal(
      (await register(v.url, t, 'right-password-1', randomBytes(32))).status.status,
      200,
    );
    const before = requestLogs(v.output()).length;
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => {
        const c = opaque.client.startLogin({ password: 'guess' });
        return postFresh(v.url, '/v1/login/start', { startLoginRequest: c.startLoginRequest }, t);
      }),
    );
    const served = answers.filter(
      (a) => a.status === 200 && typeof a.body.loginResponse === 'string',
    );
    assert.equal(served.length, LIMIT, `${served.length} OPAQUE responses`);
    for (const a of answers) {
      if (a.status !== 200) {
        assert.equal((a.body.error as { code: string }).code, 'LOCKED', JSON.stringify(a.body));
      }
    }
    const after1 = await login(v.url, t, 'right-password-1');
    assert.equal(!after1.ok && after1.code, 'LOCKED');
    // both workers answered some of the 100 guesses
    await waitFor(() => requestLogs(v.output()).length >= before + 100, 5000, 'request logs');
    const pids = new Set(
      requestLogs(v.output())
        .slice(before)
        .filter((l) => l.route === '/v1/login/start')
        .map((l) => l.pid),
    );
    assert.equal(pids.size, 2, 'guesses served by both workers');
    // /metrics (served by the primary, summing every worker) shows the cluster total
    const m = await (await fetch(v.metricsUrl as string)).text();
    assert.equal(metric(m, 'backvault_vault_logins_started_total'), LIMIT);
    assert.equal(metric(m, 'backvault_vault_lockouts_total'), 1);
  });

  it('a login started on one worker finishes on the other; many concurrent logins all succeed', async () => {
    const v = vault!;
    const accounts = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const token = await devToken(v.url, `cross-${i}`);
        const password = `pw-${randomBytes(8).toString('hex')}`;
        const backupKey = randomBytes(32);
        assert.equal((await register(v.url, token, password, backupKey)).status.status, 200);
        return { token, password, backupKey };
      }),
    );
    // Sequential logins on fresh connections: each request's worker is read from its log line.
    let crossed = 0;
    for (const a of accounts.slice(0, 8)) {
      const c = opaque.client.startLogin({ password: a.password });
      const of = (route: string) => requestLogs(v.output()).filter((l) => l.route === route);
      let n = of('/v1/login/start').length;
      const s = await postFresh(
        v.url,
        '/v1/login/start',
        { startLoginRequest: c.startLoginRequest },
        a.token,
      );
      assert.equal(s.status, 200);
      await waitFor(() => of('/v1/login/start').length > n, 5000, 'start log');
      const startPid = of('/v1/login/start')[n]!.pid;
      const f = opaque.client.finishLogin({
        password: a.password,
        clientLoginState: c.clientLoginState,
        loginResponse: s.body.loginResponse as string,
        keyStretching: FAST_STRETCHING,
      });
      assert.ok(f);
      n = of('/v1/login/finish').length;
      const r = await postFresh(
        v.url,
        '/v1/login/finish',
        { loginState: s.body.loginState, finishLoginRequest: f.finishLoginRequest },
        a.token,
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(typeof r.body.releasedEnvelope, 'string');
      await waitFor(() => of('/v1/login/finish').length > n, 5000, 'finish log');
      if (of('/v1/login/finish')[n]!.pid !== startPid) crossed++;
    }
    assert.ok(crossed > 0, 'no login crossed workers');
    console.log(`logins finished on another worker than they started: ${crossed}/8`);
    // Concurrent full logins (pooled connections spread over both workers) all succeed.
    const results = await Promise.all(accounts.map((a) => login(v.url, a.token, a.password)));
    results.forEach((l, i) => {
      assert.ok(l.ok, JSON.stringify(l));
      assert.deepEqual(l.backupKey, accounts[i]!.backupKey);
    });
    const m = await (await fetch(v.metricsUrl as string)).text();
    for (const w of ['0', '1']) {
      assert.ok(
        metric(m, `backvault_vault_worker_requests_total\\{worker="${w}"\\}`) > 0,
        `worker ${w} served requests`,
      );
    }
  });

  it('kill -9 of a worker: the primary replaces it and service continues', async () => {
    const v = vault!;
    const [victim, other] = await childrenOf(v.pid);
    assert.ok(victim && other);
    process.kill(victim, 'SIGKILL');
    await waitFor(
      async () => {
        const now = await childrenOf(v.pid);
        return now.length === 2 && !now.includes(victim) && now.includes(other);
      },
      10_000,
      'a replacement worker',
    );
    await waitFor(() => /vault worker died; restarted/.test(v.output()), 5000, 'restart log');
    assert.match(v.output(), new RegExp(`"deadPid":${victim}`));
    await waitFor(
      () => /"msg":"Server listening/.test(v.output().split(`"deadPid":${victim}`)[1] ?? ''),
      10_000,
      'the replacement to listen',
    );
    const t = await devToken(v.url, 'after-crash');
    const backupKey = randomBytes(32);
    assert.equal((await register(v.url, t, 'after-crash-pw', backupKey)).status.status, 200);
    const logins = await Promise.all(
      Array.from({ length: 6 }, () => call(v.url, 'GET', '/v1/record', undefined, t)),
    );
    for (const l of logins) assert.equal(l.status, 200);
    const l = await login(v.url, t, 'after-crash-pw');
    assert.ok(l.ok && l.backupKey.equals(backupKey));
  });

  it('kill -9 of the primary: every worker exits (no orphans)', async () => {
    const v = vault!;
    const workers = await childrenOf(v.pid);
    assert.equal(workers.length, 2);
    await v.crash();
    await waitFor(() => workers.every((p) => !alive(p)), 10_000, 'workers to exit');
    vault = undefined;
  });

  it('SIGTERM on the primary stops all workers', async () => {
    const v = await startVaultProcess(args());
    vault = v;
    const workers = await childrenOf(v.pid);
    assert.equal(workers.length, 2);
    await v.stop();
    await waitFor(() => workers.every((p) => !alive(p)), 10_000, 'workers to exit');
    assert.doesNotMatch(v.output(), /worker died/);
    vault = undefined;
  });
});
