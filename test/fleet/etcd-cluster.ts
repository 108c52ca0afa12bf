/**
 * Test harness: a real etcd cluster of `members` processes on 127.0.0.1, each with its own
 * data directory, client and peer port, started by the test and stopped by its own PIDs.
 *
 * Debian's etcd 3.4 (`etcd-server`, `etcd-client`) is required; without it the harness
 * fails with a message naming the packages (never a silent skip). Logs go to
 * `<root>/m<i>.log` so a failing test can show why a member misbehaved ({@link EtcdCluster.logTail}).
 *
 * Election settings are fast (heartbeat 50 ms, election timeout 500 ms) so that a killed
 * leader is replaced within about a second; production uses etcd's defaults (100/1000 ms)
 * or larger across data centres.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { TestPki } from './test-pki.js';

/** Where Debian installs the binaries; override with BACKVAULT_ETCD_BIN / BACKVAULT_ETCDCTL_BIN. */
export const ETCD_BIN = process.env.BACKVAULT_ETCD_BIN ?? '/usr/bin/etcd';
/** See {@link ETCD_BIN}. */
export const ETCDCTL_BIN = process.env.BACKVAULT_ETCDCTL_BIN ?? '/usr/bin/etcdctl';

/** Options of {@link startEtcdCluster}. */
export interface EtcdClusterOptions {
  /** Number of members (1, 3, 5 …). */
  readonly members: number;
  /** Root directory for data dirs and logs; a fresh temp dir when omitted (removed by stopAll). */
  readonly dir?: string;
  /** etcd binary (tests of the "missing binary" message pass a bogus path). */
  readonly etcdBin?: string;
  /** How long to wait for the cluster to become healthy. Default 20 s. */
  readonly startTimeoutMs?: number;
  /**
   * Mutual TLS everywhere: clients and peers on https://, certificates from this PKI,
   * and members that refuse clients without a certificate the PKI's CA signed.
   */
  readonly tls?: TestPki;
  /** More `etcd` flags for every member (e.g. `--quota-backend-bytes`). */
  readonly extraArgs?: readonly string[];
}

/** A running test cluster. Every method waits for the processes it touches. */
export interface EtcdCluster {
  /** `http(s)://127.0.0.1:<port>` per member, in member order (stable across restarts). */
  readonly clientUrls: readonly string[];
  /** Root directory (data dirs `m<i>.etcd`, logs `m<i>.log`). */
  readonly dir: string;
  /** PID of member `i`, or undefined while it is down. */
  pid(i: number): number | undefined;
  /** SIGKILL member `i` by its own PID (a crash) and wait until it is gone. */
  kill(i: number): Promise<void>;
  /** SIGTERM member `i` and wait for exit (SIGKILL after 5 s). */
  stop(i: number): Promise<void>;
  /** Starts member `i` again on the same data dir and ports; waits until it serves. */
  restart(i: number): Promise<void>;
  /** Index of the current leader as the running members see it, or undefined if none. */
  leader(): Promise<number | undefined>;
  /** Waits until every running member reports healthy (has a leader, serves reads). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** `etcdctl snapshot save` from a running member into `path`. */
  snapshot(path: string): Promise<void>;
  /**
   * The operator's restore: stops every member, replaces each data dir with one restored
   * from `snapshotPath` (`etcdctl snapshot restore`, new cluster token, same names and
   * ports), and starts them again. Clients on the same URLs now see the old state.
   */
  restoreSnapshot(snapshotPath: string): Promise<void>;
  /**
   * Runs `etcdctl ARGS` against the running members (with the client certificate under
   * TLS), as an operator would.
   * @throws Error with the output when it exits non-zero.
   */
  etcdctl(args: readonly string[]): Promise<string>;
  /** Member `i`'s Prometheus `/metrics` text (with the client certificate under TLS). */
  metrics(i: number): Promise<string>;
  /** The last `lines` lines of member `i`'s log. */
  logTail(i: number, lines?: number): string;
  /** SIGKILLs every member and removes the root directory (if the harness created it). */
  stopAll(): Promise<void>;
}

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  dataDir: string;
  readonly log: string;
  child: ChildProcess | undefined;
}

// Every etcd this process started, so that even an uncaught failure or a signal leaves
// none behind (an orphaned member would hold its ports and keep a CPU busy).
const live = new Set<ChildProcess>();
/** Temp roots the harness created and has not removed yet. */
const ownedRoots = new Set<string>();
let hooksInstalled = false;
function killAllSync(): void {
  for (const c of live) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const cleanupSync = (): void => {
    killAllSync();
    for (const root of ownedRoots) rmSync(root, { recursive: true, force: true });
  };
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupSync();
      // Restore the default action and re-raise so the process still dies of the signal.
      process.off(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs a command to completion with a deadline; resolves with its output. */
function run(
  bin: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`${bin} ${args[0] ?? ''} timed out after ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

function missingBinaryError(bin: string): Error {
  return new Error(
    `etcd is not installed (${bin} not found). The etcd tests need real etcd members: ` +
      'run `apt-get install -y etcd-server etcd-client` as root (`make test` installs them).',
  );
}

/**
 * Starts a fresh cluster and waits until it is healthy.
 * @throws Error naming `apt-get install etcd-server etcd-client` when etcd is missing;
 *   Error with the members' log tails when the cluster does not become healthy in time.
 */
export async function startEtcdCluster(options: EtcdClusterOptions): Promise<EtcdCluster> {
  const etcdBin = options.etcdBin ?? ETCD_BIN;
  if (!existsSync(etcdBin)) throw missingBinaryError(etcdBin);
  if (!Number.isInteger(options.members) || options.members < 1) {
    throw new Error('members must be a positive integer');
  }
  installHooks();
  const ownsDir = options.dir === undefined;
  const root = options.dir ?? (await mkdtemp(join(tmpdir(), 'bv-etcd-')));
  if (ownsDir) ownedRoots.add(root);
  await mkdir(root, { recursive: true, mode: 0o700 });
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  let token = `bv-${randomBytes(6).toString('hex')}`;

  const members: Member[] = [];
  const ports = new Set<number>();
  while (members.length < options.members) {
    const clientPort = await freePort();
    const peerPort = await freePort();
    if (ports.has(clientPort) || ports.has(peerPort) || clientPort === peerPort) continue;
    ports.add(clientPort).add(peerPort);
    const i = members.length;
    members.push({
      name: `m${i}`,
      clientPort,
      peerPort,
      dataDir: join(root, `m${i}.etcd`),
      log: join(root, `m${i}.log`),
      child: undefined,
    });
  }
  const tls = options.tls;
  const scheme = tls ? 'https' : 'http';
  const peerUrl = (m: Member): string => `${scheme}://127.0.0.1:${m.peerPort}`;
  const clientUrl = (m: Member): string => `${scheme}://127.0.0.1:${m.clientPort}`;
  const tlsFlags = tls
    ? [
        ...['--cert-file', tls.serverCertFile, '--key-file', tls.serverKeyFile],
        ...['--client-cert-auth', '--trusted-ca-file', tls.caFile],
        ...['--peer-cert-file', tls.serverCertFile, '--peer-key-file', tls.serverKeyFile],
        ...['--peer-client-cert-auth', '--peer-trusted-ca-file', tls.caFile],
      ]
    : [];
  const ctlTlsFlags = tls
    ? ['--cacert', tls.caFile, '--cert', tls.clientCertFile, '--key', tls.clientKeyFile]
    : [];
  /** POSTs/GETs a member's HTTP endpoint as text (with the client certificate under TLS). */
  const httpText = async (
    m: Member,
    path: string,
    body?: string,
    timeoutMs = 1000,
  ): Promise<string> => {
    const url = `${clientUrl(m)}${path}`;
    const method = body === undefined ? 'GET' : 'POST';
    if (!tls) {
      const res = await fetch(url, { method, body, signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
      return res.text();
    }
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        { method, ca: tls.ca, cert: tls.clientCert, key: tls.clientKey, timeout: timeoutMs },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => {
            if (res.statusCode === 200) resolve(Buffer.concat(parts).toString('utf8'));
            else reject(new Error(`${path}: HTTP ${res.statusCode}`));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${path}: timeout`)));
      req.on('error', reject);
      req.end(body);
    });
  };
  /** The member's JSON gateway. */
  const gateway = async (m: Member, path: string, body?: string): Promise<unknown> =>
    JSON.parse(await httpText(m, path, body)) as unknown;
  const initialCluster = (): string => members.map((m) => `${m.name}=${peerUrl(m)}`).join(',');

  const member = (i: number): Member => {
    const m = members[i];
    if (!m) throw new Error(`no member ${i}`);
    return m;
  };

  const spawnMember = (m: Member): void => {
    // Append: a restarted member's log keeps its history for debugging.
    const fd = openSync(m.log, 'a');
    try {
      const child = spawn(
        etcdBin,
        [
          '--name',
          m.name,
          '--data-dir',
          m.dataDir,
          '--listen-client-urls',
          clientUrl(m),
          '--advertise-client-urls',
          clientUrl(m),
          '--listen-peer-urls',
          peerUrl(m),
          '--initial-advertise-peer-urls',
          peerUrl(m),
          '--initial-cluster',
          initialCluster(),
          // Ignored by etcd once the data dir holds a WAL, so restarts may pass it too.
          '--initial-cluster-state',
          'new',
          '--initial-cluster-token',
          token,
          '--heartbeat-interval',
          '50',
          '--election-timeout',
          '500',
          '--logger',
          'zap',
          // What docs/OPERATIONS.md asks of a deployment: history older than an hour is
          // compacted (a login writes two revisions that etcd keeps until then).
          '--auto-compaction-mode',
          'periodic',
          '--auto-compaction-retention',
          '1h',
          ...tlsFlags,
          ...(options.extraArgs ?? []),
        ],
        { stdio: ['ignore', fd, fd] },
      );
      m.child = child;
      live.add(child);
      child.once('exit', () => live.delete(child));
    } finally {
      closeSync(fd);
    }
  };

  const logTail = (i: number, lines = 30): string => {
    try {
      return readFileSync(member(i).log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const healthy = async (m: Member): Promise<boolean> => {
    try {
      // /health is true only when the member has a leader and can serve a quorum read.
      const body = (await gateway(m, '/health')) as { health?: unknown };
      return body.health === true || body.health === 'true';
    } catch {
      return false;
    }
  };

  const running = (m: Member): boolean =>
    m.child !== undefined && m.child.exitCode === null && m.child.signalCode === null;

  const waitHealthy = async (timeoutMs = startTimeoutMs, only?: Member[]): Promise<void> => {
    const targets = only ?? members.filter(running);
    const until = Date.now() + timeoutMs;
    for (;;) {
      for (const m of targets) {
        if (!running(m)) {
          throw new Error(
            `etcd member ${m.name} exited (code ${m.child?.exitCode ?? '?'}):\n${logTail(members.indexOf(m))}`,
          );
        }
      }
      const ok = await Promise.all(targets.map(healthy));
      if (ok.every(Boolean)) return;
      if (Date.now() > until) {
        const tails = targets.map((m) => `--- ${m.name}\n${logTail(members.indexOf(m), 15)}`);
        throw new Error(`etcd cluster not healthy after ${timeoutMs} ms\n${tails.join('\n')}`);
      }
      await sleep(100);
    }
  };

  const kill = async (i: number): Promise<void> => {
    const m = member(i);
    const child = m.child;
    if (!child || !running(m) || child.pid === undefined) return;
    process.kill(child.pid, 'SIGKILL');
    await exited(child);
  };

  const stop = async (i: number): Promise<void> => {
    const m = member(i);
    const child = m.child;
    if (!child || !running(m) || child.pid === undefined) return;
    process.kill(child.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (running(m) && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, 5000);
    await exited(child);
    clearTimeout(timer);
  };

  const stopAll = async (): Promise<void> => {
    await Promise.all(members.map((_, i) => kill(i)));
    if (ownsDir) {
      await rm(root, { recursive: true, force: true });
      ownedRoots.delete(root);
    }
  };

  try {
    for (const m of members) spawnMember(m);
    await waitHealthy(startTimeoutMs);
  } catch (e) {
    await stopAll();
    throw e;
  }

  const liveUrl = (): string => {
    const m = members.find(running);
    if (!m) throw new Error('no etcd member is running');
    return clientUrl(m);
  };
  const etcdctl = async (args: readonly string[]): Promise<string> => {
    const r = await run(
      ETCDCTL_BIN,
      ['--endpoints', liveUrl(), ...ctlTlsFlags, '--command-timeout=10s', ...args],
      15_000,
    );
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} failed:\n${r.out}`);
    return r.out;
  };

  return {
    clientUrls: members.map(clientUrl),
    dir: root,
    pid: (i) => (running(member(i)) ? member(i).child?.pid : undefined),
    kill,
    stop,
    async restart(i) {
      const m = member(i);
      if (running(m)) await stop(i);
      spawnMember(m);
      // Alone it cannot be healthy without quorum; wait for the members that are up.
      await waitHealthy(startTimeoutMs, members.filter(running));
    },
    waitHealthy: (timeoutMs) => waitHealthy(timeoutMs),
    async leader() {
      // The gRPC gateway's JSON status names this member and the leader it follows.
      const status = await Promise.all(
        members.map(async (m) => {
          if (!running(m)) return undefined;
          try {
            return (await gateway(m, '/v3/maintenance/status', '{}')) as {
              header?: { member_id?: string };
              leader?: string;
            };
          } catch {
            return undefined;
          }
        }),
      );
      const leaderId = status.find((s) => s?.leader && s.leader !== '0')?.leader;
      const i = status.findIndex((s) => s?.header?.member_id === leaderId);
      return i >= 0 ? i : undefined;
    },
    etcdctl,
    metrics: (i) => httpText(member(i), '/metrics', undefined, 5000),
    async snapshot(path) {
      await etcdctl(['snapshot', 'save', path]);
    },
    async restoreSnapshot(snapshotPath) {
      await Promise.all(members.map((_, i) => stop(i)));
      token = `bv-${randomBytes(6).toString('hex')}`;
      for (const m of members) {
        const fresh = join(root, `${m.name}.restored-${token}.etcd`);
        const r = await run(
          ETCDCTL_BIN,
          [
            'snapshot',
            'restore',
            snapshotPath,
            '--name',
            m.name,
            '--data-dir',
            fresh,
            '--initial-cluster',
            initialCluster(),
            '--initial-cluster-token',
            token,
            '--initial-advertise-peer-urls',
            peerUrl(m),
          ],
          15_000,
        );
        if (r.code !== 0) throw new Error(`etcdctl snapshot restore failed:\n${r.out}`);
        await rm(m.dataDir, { recursive: true, force: true });
        m.dataDir = fresh;
      }
      for (const m of members) spawnMember(m);
      await waitHealthy(startTimeoutMs);
    },
    logTail,
    stopAll,
  };
}
