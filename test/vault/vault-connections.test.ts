/**
 * Issue 16, connections: slow clients lose their sockets (headers, request and keep-alive
 * timeouts), one address cannot take every socket even under a low file descriptor limit,
 * metrics live on their own loopback listener, and behind a trusted proxy the client is
 * the forwarded address (rate limits) while the proxy is exempt from the per-address cap.
 * All traffic is loopback; every loop is bounded in count and time.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseVaultArgs } from '#vault/vault/config.js';
import { effectiveMaxConnections } from '#vault/vault/connections.js';
import { devToken, login, register } from './test-client.js';
import { startVaultProcess, type VaultProcess } from './vault-process.js';

interface Conn {
  readonly socket: Socket;
  readonly openedAt: number;
  closedAt?: number;
}

/** Opens a TCP connection to `url`'s host and port (optionally from `localAddress`). */
function open(url: string, localAddress?: string): Promise<Conn> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: u.hostname,
      port: Number(u.port),
      ...(localAddress ? { localAddress } : {}),
    });
    const c: Conn = { socket, openedAt: Date.now() };
    socket.on('close', () => (c.closedAt ??= Date.now()));
    socket.resume(); // read (and drop) answers, so the server's close is seen
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(c));
    socket.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function untilAll(conns: Conn[], ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end && conns.some((c) => c.closedAt === undefined)) await sleep(100);
}

async function withVault<T>(
  args: string[],
  f: (v: VaultProcess) => Promise<T>,
  options: { wrapper?: string[] } = {},
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'bv-conn-'));
  const v = await startVaultProcess(
    ['--data', join(dir, 'data'), '--dev-auth', '--workers', '1', ...args],
    {},
    options,
  );
  try {
    return await f(v);
  } finally {
    await v.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

describe('vault connections: timeouts against slow clients', () => {
  it('closes never-finished headers, trickled bodies and idle keep-alives', async () => {
    await withVault(
      [
        '--headers-timeout-ms',
        '1500',
        '--request-timeout-ms',
        '2500',
        '--keep-alive-timeout-ms',
        '1000',
        '--max-connections-per-ip',
        '1000',
      ],
      async (v) => {
        const headers: Conn[] = [];
        const bodies: Conn[] = [];
        const idle: Conn[] = [];
        for (let i = 0; i < 40; i++) {
          const h = await open(v.url);
          h.socket.write('POST /v1/login/start HTTP/1.1\r\nHost: x\r\n');
          headers.push(h);
          const b = await open(v.url);
          b.socket.write(
            'POST /v1/login/start HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{',
          );
          bodies.push(b);
        }
        for (let i = 0; i < 10; i++) {
          const k = await open(v.url);
          k.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
          idle.push(k);
        }
        // Keep trickling: a header line and a body byte every 400 ms (resets idle timers).
        const trickle = setInterval(() => {
          for (const h of headers) if (h.closedAt === undefined) h.socket.write('X-a: b\r\n');
          for (const b of bodies) if (b.closedAt === undefined) b.socket.write(' ');
        }, 400);
        try {
          await sleep(700);
          assert.ok(
            [...headers, ...bodies].every((c) => c.closedAt === undefined),
            'still open before the timeouts',
          );
          await untilAll([...headers, ...bodies, ...idle], 8000);
        } finally {
          clearInterval(trickle);
          for (const c of [...headers, ...bodies, ...idle]) c.socket.destroy();
        }
        const late = (cs: Conn[], max: number) =>
          cs.filter((c) => c.closedAt === undefined || c.closedAt - c.openedAt > max).length;
        // Timeout + Node's 1 s check interval (or keep-alive buffer) + slack for a shared
        // machine; Node's own defaults would keep all of them for 60 s or more.
        assert.equal(late(headers, 1500 + 1000 + 2000), 0, 'header trickle closed');
        assert.equal(late(bodies, 2500 + 1000 + 2000), 0, 'body trickle closed');
        assert.equal(late(idle, 1000 + 1000 + 2000), 0, 'idle keep-alive closed');
      },
    );
  });

  it('has finite defaults, each checked at start', () => {
    const c = parseVaultArgs(['--data', '/tmp/x', '--dev-auth']);
    assert.equal(c.headersTimeoutMs, 10_000);
    assert.equal(c.requestTimeoutMs, 30_000);
    assert.equal(c.keepAliveTimeoutMs, 5_000);
    assert.equal(c.maxConnectionsPerIp, 32);
    assert.deepEqual(c.metricsListen, { host: '127.0.0.1', port: 0 });
    assert.deepEqual(c.trustProxy, []);
    const bad = [
      ['--headers-timeout-ms', '0'],
      ['--request-timeout-ms', '1000', '--headers-timeout-ms', '5000'],
      ['--max-connections-per-ip', '0'],
      ['--metrics-listen', 'nowhere'],
      ['--trust-proxy', '10.0.0.0/8'],
      ['--trust-proxy', ':'],
    ];
    for (const b of bad) {
      assert.throws(() => parseVaultArgs(['--data', '/tmp/x', '--dev-auth', ...b]), /--/);
    }
    assert.equal(effectiveMaxConnections(4096, 160), Math.floor((160 - 64) * 0.9));
    assert.equal(effectiveMaxConnections(50, 100_000), 50);
  });
});

describe('vault connections: one address cannot starve the others', () => {
  it('under `ulimit -n 160`, 170 sockets from one address leave a login from another working', async () => {
    await withVault(
      [],
      async (v) => {
        const hog: Conn[] = [];
        for (let i = 0; i < 170; i++) {
          try {
            hog.push(await open(v.url, '127.0.0.2'));
          } catch {
            // refused outright: fine too
          }
        }
        try {
          await sleep(500);
          const alive = hog.filter((c) => c.closedAt === undefined).length;
          assert.ok(alive <= 32, `at most 32 sockets kept for one address, got ${alive}`);
          // A real user from another address: register and log in.
          const t = await devToken(v.url, 'user');
          const bk = randomBytes(32);
          assert.equal((await register(v.url, t, 'user-password-1', bk)).status.status, 200);
          const l = await login(v.url, t, 'user-password-1');
          assert.ok(l.ok);
          const m = await (await fetch(v.metricsUrl as string)).text();
          assert.match(m, /backvault_vault_connections_refused_total\{reason="per_ip"\} [1-9]/);
          // The total cap was fitted to the fd limit, and the start log says so.
          const line = v
            .output()
            .split('\n')
            .find((l) => l.includes('"connection limits"'));
          assert.ok(line, 'connection limits are logged at start');
          const logged = JSON.parse(line) as {
            maxConnections: number;
            maxConnectionsPerIp: number;
          };
          assert.equal(logged.maxConnections, effectiveMaxConnections(4096, 160));
          assert.equal(logged.maxConnectionsPerIp, 32);
        } finally {
          for (const c of hog) c.socket.destroy();
        }
      },
      { wrapper: ['prlimit', '--nofile=160:160'] },
    );
  });
});

describe('vault metrics: their own loopback listener', () => {
  let dir: string;
  let v: VaultProcess;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-metrics-'));
    v = await startVaultProcess(['--data', join(dir, 'data'), '--dev-auth', '--workers', '1']);
  });
  after(async () => {
    await v?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('does not serve /metrics on the API port; serves it on loopback', async () => {
    assert.equal((await fetch(`${v.url}/metrics`)).status, 404);
    const url = v.metricsUrl ?? '';
    assert.ok(url.startsWith('http://127.0.0.1:'), url);
    assert.notEqual(new URL(url).port, new URL(v.url).port);
    const m = await fetch(url);
    assert.equal(m.status, 200);
    assert.match(await m.text(), /backvault_vault_logins_started_total/);
    assert.equal((await fetch(new URL('/v1/info', url))).status, 404);
  });

  it('keeps /healthz constant and cheap', async () => {
    const r = await fetch(`${v.url}/healthz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ok' });
  });

  it('--metrics-listen off serves no metrics anywhere', async () => {
    await withVault(['--metrics-listen', 'off'], async (w) => {
      assert.equal(w.metricsUrl, undefined);
      assert.equal((await fetch(`${w.url}/metrics`)).status, 404);
    });
  });

  it('a cluster serves the sum of its workers on the primary’s listener', async () => {
    const d = await mkdtemp(join(tmpdir(), 'bv-metrics-c-'));
    const c = await startVaultProcess(['--data', join(d, 'data'), '--dev-auth', '--workers', '2']);
    try {
      await fetch(`${c.url}/healthz`);
      const m = await (await fetch(c.metricsUrl as string)).text();
      assert.match(m, /backvault_vault_worker_requests_total/);
    } finally {
      await c.stop();
      await rm(d, { recursive: true, force: true });
    }
  });
});

describe('vault behind a load balancer (--trust-proxy)', () => {
  it('rate-limits by the forwarded client and exempts the proxy from the address cap', async () => {
    await withVault(
      ['--trust-proxy', '127.0.0.1', '--rate-limit-ip', '3', '--max-connections-per-ip', '5'],
      async (v) => {
        const get = (xff: string) =>
          fetch(`${v.url}/v1/info`, { headers: { 'x-forwarded-for': xff } }).then((r) => r.status);
        assert.deepEqual(
          [await get('10.0.0.1'), await get('10.0.0.1'), await get('10.0.0.1')],
          [200, 200, 200],
        );
        assert.equal(await get('10.0.0.1'), 429, 'the forwarded client is limited');
        assert.equal(await get('10.0.0.2'), 200, 'another forwarded client is not');
        const conns: Conn[] = [];
        for (let i = 0; i < 12; i++) conns.push(await open(v.url));
        await sleep(300);
        assert.equal(conns.filter((c) => c.closedAt !== undefined).length, 0);
        for (const c of conns) c.socket.destroy();
      },
    );
  });

  it('without --trust-proxy, X-Forwarded-For does not escape the per-address limits', async () => {
    await withVault(['--rate-limit-ip', '3', '--max-connections-per-ip', '5'], async (v) => {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`${v.url}/v1/info`, {
          headers: { 'x-forwarded-for': `10.0.0.${i}` },
        });
        statuses.push(r.status);
      }
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const conns: Conn[] = [];
      for (let i = 0; i < 12; i++) conns.push(await open(v.url));
      await sleep(300);
      assert.ok(conns.filter((c) => c.closedAt === undefined).length <= 5);
      for (const c of conns) c.socket.destroy();
    });
  });
});
