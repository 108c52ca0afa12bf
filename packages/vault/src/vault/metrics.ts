/**
 * Prometheus metrics of one vault instance, on its own registry (several vaults may run
 * in one process in tests). Names are stable; docs/OPERATIONS.md explains them.
 *
 * In a cluster worker (`serve --workers N`) a scrape lands on whichever worker the
 * primary hands the connection to, so the worker's registry renders the cluster totals:
 * it asks the primary, which sums every worker's metrics with prom-client's
 * AggregatorRegistry (see `cluster.ts`). `backvault_vault_worker_requests_total{worker}`
 * keeps one series per worker slot, to see how the load is spread.
 */
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import {
  AggregatorRegistry,
  Counter,
  Histogram,
  Registry,
  collectDefaultMetrics,
} from 'prom-client';
import { UnavailableError } from 'backvault/errors';
import type { VaultEvents } from './vault-service.js';

/** IPC message types between a worker's registry and the cluster primary. */
export const METRICS_IPC = {
  request: 'backvault:metrics-req',
  response: 'backvault:metrics-res',
} as const;

/** Environment variable holding a worker's slot number (0..N-1), set by the primary. */
export const WORKER_SLOT_ENV = 'BACKVAULT_WORKER_SLOT';

interface MetricsResponse {
  readonly type: typeof METRICS_IPC.response;
  readonly id: string;
  readonly body?: string;
  readonly error?: string;
}

/** A worker's registry: its own metrics are collected by the primary; it renders the sum. */
class ClusterWorkerRegistry extends Registry {
  /**
   * The cluster-wide exposition text, from the primary.
   * @throws UnavailableError if the primary does not answer within 5 s.
   */
  override async metrics(): Promise<string> {
    const id = randomUUID();
    return new Promise<string>((resolve, reject) => {
      const onMessage = (m: unknown): void => {
        const r = m as Partial<MetricsResponse> | null;
        if (r?.type !== METRICS_IPC.response || r.id !== id) return;
        done();
        if (typeof r.body === 'string') resolve(r.body);
        else reject(new UnavailableError('cluster metrics are unavailable; retry'));
      };
      const timer = setTimeout(() => {
        done();
        reject(new UnavailableError('cluster metrics timed out; retry'));
      }, 5000);
      const done = (): void => {
        clearTimeout(timer);
        process.off('message', onMessage);
      };
      process.on('message', onMessage);
      process.send?.({ type: METRICS_IPC.request, id });
    });
  }
}

/** The vault's metrics and the event hooks that feed them. */
export interface VaultMetrics {
  readonly registry: Registry;
  readonly events: VaultEvents;
  /** Records one finished HTTP request. */
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  /** A scrub after a destroying write failed (old values may linger until the next one). */
  scrubFailed(): void;
  /** A connection was closed at once by a connection cap. */
  connectionRefused(reason: 'per_ip' | 'total'): void;
}

/** Creates a registry with the vault's counters, histograms and process metrics. */
export function createVaultMetrics(): VaultMetrics {
  const inCluster = cluster.isWorker;
  const registry = inCluster ? new ClusterWorkerRegistry() : new Registry();
  if (inCluster) {
    // Constructing one installs prom-client's worker-side IPC listener.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([registry]);
  }
  const slot = process.env[WORKER_SLOT_ENV] ?? '0';
  collectDefaultMetrics({ register: registry, prefix: 'backvault_vault_' });
  const c = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  const started = c('backvault_vault_logins_started_total', 'Login starts counted as guesses');
  const succeeded = c(
    'backvault_vault_logins_succeeded_total',
    'Login finishes that released the envelope',
  );
  const failed = c('backvault_vault_logins_failed_total', 'Login steps refused, by reason', [
    'reason',
  ]);
  const replays = c(
    'backvault_vault_login_replays_total',
    'Resent login starts answered from their stored answer (not counted as guesses)',
  );
  const lockouts = c('backvault_vault_lockouts_total', 'Records destroyed after the attempt limit');
  const registrations = c('backvault_vault_registrations_total', 'Registrations, by kind', [
    'kind',
  ]);
  const latency = new Histogram({
    name: 'backvault_vault_request_duration_seconds',
    help: 'HTTP request latency by route, method and status',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const perWorker = c(
    'backvault_vault_worker_requests_total',
    'HTTP requests served, by worker slot (one slot in a single-process vault)',
    ['worker'],
  ).labels({ worker: slot });
  const scrubFailures = c(
    'backvault_vault_scrub_failures_total',
    'Scrubs (WAL truncation, etcd compaction) after a destroying write that failed',
  );
  const refused = c(
    'backvault_vault_connections_refused_total',
    'Connections closed at once by a cap: per client address or in all',
    ['reason'],
  );
  return {
    registry,
    scrubFailed: () => scrubFailures.inc(),
    connectionRefused: (reason) => refused.inc({ reason }),
    events: {
      loginStarted: () => started.inc(),
      loginSucceeded: () => succeeded.inc(),
      loginFailed: (reason) => failed.inc({ reason }),
      loginReplayed: () => replays.inc(),
      lockout: () => lockouts.inc(),
      registered: (replaced) => registrations.inc({ kind: replaced ? 'replace' : 'create' }),
    },
    observeRequest(route, method, status, seconds) {
      latency.observe({ route, method, status: String(status) }, seconds);
      perWorker.inc();
    },
  };
}

/** A running metrics listener. */
export interface MetricsListener {
  /** e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text from `render`) on its own listener, away from the
 * API port: a scrape flood cannot slow logins there, and the default address is loopback.
 * Nothing else is served (404).
 * @throws Error if the address cannot be bound.
 */
export async function startMetricsListener(
  listen: { readonly host: string; readonly port: number },
  render: () => Promise<string>,
): Promise<MetricsListener> {
  const server = createServer(
    { headersTimeout: 5000, requestTimeout: 10_000, keepAliveTimeout: 5000 },
    (req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      render().then(
        (body) => {
          res.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE }).end(body);
        },
        () => res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
      );
    },
  );
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
