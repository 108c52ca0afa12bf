/**
 * The wiring file: builds the whole vault from a validated {@link VaultConfig} — store,
 * HSM, authenticator, metrics, service, HTTP server — in one place, failing fast.
 */
import { chmod, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hsm } from '../hsm/hsm.js';
import { openSoftwareHsm, readKeyFile } from '../hsm/software-hsm.js';
import { UsageError } from 'backvault/errors';
import { makeDirectories } from 'backvault/node';
import {
  cachingAuthenticator,
  createDevAuthenticator,
  createJwtAuthenticator,
  type Authenticator,
} from './auth.js';
import { isLoopback, validateVaultConfig, type AuthConfig, type VaultConfig } from './config.js';

/**
 * What {@link startVault} and {@link createVaultContext} take: a data directory and how
 * tokens are verified; every other setting defaults as in `VAULT_DEFAULTS` (an embedding
 * app, a test or an example starts a vault in-process with just these).
 */
export type VaultSettings = Partial<VaultConfig> & {
  readonly dataDir: string;
  readonly auth: AuthConfig;
};
import cluster from 'node:cluster';
import { limitConnections } from './connections.js';
import {
  WORKER_SLOT_ENV,
  createVaultMetrics,
  startMetricsListener,
  type MetricsListener,
  type VaultMetrics,
} from './metrics.js';
import { buildServer } from './server.js';
import { openEtcdStore, type EtcdTlsOptions, type EtcdVaultStoreOptions } from './etcd-store.js';
import { openShards } from './sharded-store.js';
import { openSqliteStore } from './sqlite-store.js';
import type { VaultStore } from './store.js';
import { VaultService } from './vault-service.js';
import { scrubbingStore } from './scrubbing-store.js';

/** File names inside the data directory. */
export const DATA_FILES = {
  database: 'vault.sqlite',
  hsmKeys: 'hsm-keys.json',
  /** Highest etcd revision this node has seen (the store-rollback tripwire). */
  etcdRevision: 'etcd-revision.json',
  /** The same, per `--etcd-shard` cluster (shard ids are file-name safe). */
  etcdShardRevision: (shardId: string): string => `etcd-revision.${shardId}.json`,
} as const;

/**
 * Makes sure the data directory is private before anything is written to it, like ssh with
 * its keys: created 0700 when missing; refused when group or others may read, write or
 * enter it, or when another user owns it. The SQLite files are created (or reset to) 0600;
 * SQLite gives its -wal and -shm files the database file's mode.
 * @throws UsageError saying how to fix the directory.
 */
export async function ensurePrivateDataDir(config: VaultConfig): Promise<void> {
  const dir = config.dataDir;
  try {
    await makeDirectories(dir, 0o700);
  } catch (e) {
    // A file on the way is the operator's typo, not a bug (a read-only or full disk and a
    // missing permission keep their own codes, mapped where errors meet the CLI).
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTDIR' && code !== 'EEXIST') throw e;
    throw new UsageError(
      `cannot create the data directory ${dir}: a part of that path is a file`,
      'Give --data a directory path.',
    );
  }
  const st = await stat(dir);
  if (!st.isDirectory()) throw new UsageError(`--data ${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new UsageError(
      `REFUSING TO START: data directory ${dir} is owned by uid ${st.uid}, not by this process (uid ${uid})`,
      `Run the vault as the directory's owner, or \`chown ${uid} ${dir}\`.`,
    );
  }
  if ((st.mode & 0o077) !== 0) {
    throw new UsageError(
      `REFUSING TO START: data directory ${dir} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`,
      `It holds the vault database and may hold HSM keys: run \`chmod 700 ${dir}\`, then start again.`,
    );
  }
  if (config.store !== 'sqlite') return;
  const db = join(dir, DATA_FILES.database);
  await (await open(db, 'a', 0o600)).close();
  for (const f of [db, `${db}-wal`, `${db}-shm`]) {
    await chmod(f, 0o600).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}

/**
 * Runs `defragment` every `etcdDefragIntervalSeconds` (first run at a random point of the
 * first interval, so the nodes of a fleet spread out), in worker 0 only. Never overlaps
 * itself; failures are counted (`backvault_vault_scrub_failures_total`) and retried next
 * time.
 */
function scheduleDefrag(
  config: VaultConfig,
  defragment: (() => Promise<void>) | undefined,
  onError: (e: unknown) => void,
): { stop(): void } {
  const seconds = config.etcdDefragIntervalSeconds ?? 0;
  const slot = process.env[WORKER_SLOT_ENV] ?? '0';
  if (!defragment || seconds === 0 || slot !== '0') return { stop: () => undefined };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const next = (ms: number): void => {
    timer = setTimeout(() => {
      void defragment()
        .catch(onError)
        .finally(() => {
          if (!stopped) next(seconds * 1000);
        });
    }, ms);
    timer.unref();
  };
  next(Math.floor(Math.random() * seconds * 1000));
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** How often the etcd revision mark is persisted. */
const REVISION_MARK_INTERVAL_MS = 1000;

/** Everything a running vault is made of. */
export interface VaultContext {
  readonly config: VaultConfig;
  readonly store: VaultStore;
  readonly hsm: Hsm;
  readonly auth: Authenticator;
  readonly metrics: VaultMetrics;
  readonly service: VaultService;
  readonly serverPublicKey: string;
  /** Closes service, store and HSM. */
  close(): Promise<void>;
}

/**
 * Builds the vault's parts from a config (validated again here).
 * @throws UsageError on a bad config or unsafe key file; UnavailableError if the store cannot open.
 */
export async function createVaultContext(input: VaultSettings): Promise<VaultContext> {
  const config = validateVaultConfig(input);
  await ensurePrivateDataDir(config);
  const loginStateTtlMs = config.loginStateTtlSeconds * 1000;
  const auth = cachingAuthenticator(
    config.auth.kind === 'dev'
      ? await createDevAuthenticator()
      : await createJwtAuthenticator(config.auth),
  );
  const hsm = await openHsm(config, loginStateTtlMs);
  let opened: Awaited<ReturnType<typeof openStore>>;
  try {
    opened = await openStore(config);
  } catch (e) {
    await hsm.close();
    throw e;
  }
  const metrics = createVaultMetrics();
  // Every destroying write (delete, password change, lockout) is scrubbed before it is
  // answered; the service needs no hook for it.
  const store = scrubbingStore(opened.store, opened.scrub, () => metrics.scrubFailed());
  const service = new VaultService({
    store,
    hsm,
    maxAttempts: config.maxAttempts,
    loginStateTtlMs,
    pacing: config.pacing,
    events: metrics.events,
  });
  const defrag = scheduleDefrag(config, opened.defragment, () => metrics.scrubFailed());
  const serverPublicKey = await hsm.serverPublicKey();
  return {
    config,
    store,
    hsm,
    auth,
    metrics,
    service,
    serverPublicKey,
    async close() {
      defrag.stop();
      auth.close?.();
      service.close();
      await store.close();
      await hsm.close();
    },
  };
}

/**
 * The HSM named by the config: PKCS#11 (PIN from `BACKVAULT_PKCS11_PIN` only), or the
 * software HSM from `--hsm-key-file` (must exist), `BACKVAULT_HSM_KEYS`, or
 * `DATA/hsm-keys.json` (created when missing). With `fleetKey` set, a key set of another
 * fleet is refused.
 */
async function openHsm(config: VaultConfig, loginStateTtlMs: number): Promise<Hsm> {
  if (config.hsm === 'pkcs11') {
    const { openPkcs11Hsm } = await import('../hsm/pkcs11-hsm.js');
    return openPkcs11Hsm({
      ...(config.pkcs11Module ? { module: config.pkcs11Module } : {}),
      ...(config.pkcs11Token ? { tokenLabel: config.pkcs11Token } : {}),
      ...(config.fleetKey ? { expectedServerPublicKey: config.fleetKey } : {}),
      loginStateTtlMs,
    });
  }
  let hsm: Hsm;
  if (config.hsmKeyFile) {
    let keys;
    try {
      keys = await readKeyFile(config.hsmKeyFile);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      throw new UsageError(
        `HSM key file ${config.hsmKeyFile} does not exist`,
        'Install the fleet keys with `backvault vault import --hsm software`.',
      );
    }
    hsm = await openSoftwareHsm({ keys, loginStateTtlMs });
  } else {
    hsm = await openSoftwareHsm({
      keyFile: join(config.dataDir, DATA_FILES.hsmKeys),
      loginStateTtlMs,
    });
  }
  const pub = await hsm.serverPublicKey();
  if (config.fleetKey !== undefined && pub !== config.fleetKey) {
    await hsm.close();
    throw new UsageError(
      `the software HSM holds fleet key ${pub}, not the expected ${config.fleetKey}`,
      'Import the right fleet bundle (`backvault vault import`).',
    );
  }
  return hsm;
}

/**
 * The store named by the config, how to scrub destroyed values out of its files, and
 * (etcd) how to defragment the members' backends.
 */
async function openStore(config: VaultConfig): Promise<{
  store: VaultStore;
  scrub: () => Promise<void>;
  defragment?: () => Promise<void>;
}> {
  if (config.store === 'etcd') {
    const opts = {
      ...(config.etcdDeadlineMs !== undefined ? { deadlineMs: config.etcdDeadlineMs } : {}),
      ...(config.etcdPrefix ? { prefix: config.etcdPrefix } : {}),
      ...(config.etcdTls ? { tls: await readEtcdTls(config.etcdTls) } : {}),
    };
    const accept = config.acceptEtcdRollback === true;
    if (config.etcdShards?.length) {
      // One tripwire per cluster: revisions of different clusters are unrelated.
      const parts: { defragment(): Promise<void> }[] = [];
      const sharded = await openShards(config.etcdShards, async (s) => {
        const one = await openTripwiredEtcd(
          opts,
          s.endpoints,
          join(config.dataDir, DATA_FILES.etcdShardRevision(s.id)),
          accept,
        );
        parts.push(one);
        return one;
      });
      return {
        store: sharded,
        scrub: () => sharded.scrubHistory(),
        async defragment() {
          const r = await Promise.allSettled(parts.map((p) => p.defragment()));
          const failed = r.find((x): x is PromiseRejectedResult => x.status === 'rejected');
          if (failed) throw failed.reason;
        },
      };
    }
    const mark = join(config.dataDir, DATA_FILES.etcdRevision);
    const store = await openTripwiredEtcd(opts, config.etcdEndpoints ?? [], mark, accept);
    return { store, scrub: () => store.scrubHistory(), defragment: () => store.defragment() };
  }
  const sqlite = await openSqliteStore(join(config.dataDir, DATA_FILES.database));
  return { store: sqlite, scrub: () => sqlite.scrubWal() };
}

/**
 * Reads the PEM files named by `--etcd-ca/--etcd-cert/--etcd-key`.
 * @throws UsageError naming a file that cannot be read (never its contents).
 */
async function readEtcdTls(files: NonNullable<VaultConfig['etcdTls']>): Promise<EtcdTlsOptions> {
  const read = async (flag: string, path: string | undefined): Promise<Buffer | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path);
    } catch (e) {
      throw new UsageError(`${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  };
  const [ca, cert, key] = await Promise.all([
    read('--etcd-ca', files.caFile),
    read('--etcd-cert', files.certFile),
    read('--etcd-key', files.keyFile),
  ]);
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

/**
 * Opens one etcd cluster behind the rollback tripwire: the highest revision this node has
 * seen is persisted in `markFile` (every {@link REVISION_MARK_INTERVAL_MS} and at close)
 * and is the floor of the next start, so a store that went back in time fails closed.
 * `accept` (`--accept-etcd-rollback`) starts from the store's revision instead.
 * @throws UnavailableError if the cluster does not answer or went back in time;
 *   UsageError if the mark file is malformed.
 */
async function openTripwiredEtcd(
  opts: Omit<EtcdVaultStoreOptions, 'endpoints' | 'revisionFloor'>,
  endpoints: readonly string[],
  markFile: string,
  accept: boolean,
): Promise<VaultStore & { scrubHistory(): Promise<void>; defragment(): Promise<void> }> {
  const floor = accept ? 0 : await readRevisionMark(markFile);
  const etcd = await openEtcdStore({ ...opts, endpoints, revisionFloor: floor });
  let written = floor;
  const persist = async (): Promise<void> => {
    const rev = etcd.highestRevision;
    if (rev <= written) return;
    await writeRevisionMark(markFile, rev);
    written = rev;
  };
  const timer = setInterval(() => void persist().catch(() => undefined), REVISION_MARK_INTERVAL_MS);
  timer.unref();
  try {
    await persist();
  } catch (e) {
    clearInterval(timer);
    await etcd.close();
    throw e;
  }
  return {
    get: (a, o) => etcd.get(a, o),
    compareAndSwap: (a, v, n) => etcd.compareAndSwap(a, v, n),
    compareAndDelete: (a, v) => etcd.compareAndDelete(a, v),
    scrubHistory: () => etcd.scrubHistory(),
    defragment: () => etcd.defragment(),
    async close() {
      clearInterval(timer);
      await persist().catch(() => undefined);
      await etcd.close();
    },
  };
}

async function readRevisionMark(path: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  const rev = (JSON.parse(text) as { revision?: unknown }).revision;
  if (typeof rev !== 'number' || !Number.isSafeInteger(rev) || rev < 0) {
    throw new UsageError(
      `${path} is malformed`,
      'Delete it only if you know the store was not rolled back.',
    );
  }
  return rev;
}

async function writeRevisionMark(path: string, revision: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ revision })}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/** A started vault. */
export interface RunningVault {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** OPAQUE server public key clients pin (base64url). */
  readonly serverPublicKey: string;
  /** Stops accepting, drains in-flight requests, closes store and HSM. */
  close(): Promise<void>;
  /** Re-reads the JWT issuer key files (SIGHUP); keeps the old keys if that fails. */
  reloadKeys(): Promise<void>;
  /** URL of the metrics listener, if this process serves one. */
  readonly metricsUrl?: string;
}

/**
 * Builds and starts the vault.
 * @throws UsageError on a bad config (e.g. `--dev-auth` off loopback); UnavailableError
 *   if the store cannot open; Error if the port cannot be bound.
 */
export async function startVault(
  config: VaultSettings,
  options: { logStream?: NodeJS.WritableStream } = {},
): Promise<RunningVault> {
  const ctx = await createVaultContext(config);
  let metrics: MetricsListener | undefined;
  try {
    const app = await buildServer({
      config: ctx.config,
      service: ctx.service,
      auth: ctx.auth,
      metrics: ctx.metrics,
      serverPublicKey: ctx.serverPublicKey,
      ...(options.logStream ? { logStream: options.logStream } : {}),
    });
    ctx.auth.setLogger?.((level, msg, fields) => app.log[level](fields, msg));
    if (ctx.auth.keyThumbprints) {
      // Which issuer keys are in force, by RFC 7638 thumbprint: an operator checks a
      // rotation landed without the keys ever being logged.
      app.log.info(
        { keys: ctx.auth.keyThumbprints(), skipped: ctx.auth.skippedKeys?.() ?? [] },
        'jwt issuer keys loaded',
      );
    }
    const maxConnections = limitConnections(app.server, ctx.config, (r) =>
      ctx.metrics.connectionRefused(r),
    );
    app.log.info(
      {
        maxConnections,
        maxConnectionsPerIp: ctx.config.maxConnectionsPerIp,
        headersTimeoutMs: ctx.config.headersTimeoutMs,
        requestTimeoutMs: ctx.config.requestTimeoutMs,
        keepAliveTimeoutMs: ctx.config.keepAliveTimeoutMs,
        trustProxy: ctx.config.trustProxy,
      },
      'connection limits',
    );
    await app.listen({ host: ctx.config.host, port: ctx.config.port });
    // A cluster's metrics listener is the primary's (it sums every worker).
    if (ctx.config.metricsListen && !cluster.isWorker) {
      if (!isLoopback(ctx.config.metricsListen.host)) {
        app.log.warn(
          { metricsListen: ctx.config.metricsListen.host },
          'metrics are served on a non-loopback address: restrict who can reach it',
        );
      }
      metrics = await startMetricsListener(ctx.config.metricsListen, () =>
        ctx.metrics.registry.metrics(),
      );
    }
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : ctx.config.port;
    const host = ctx.config.host.includes(':') ? `[${ctx.config.host}]` : ctx.config.host;
    return {
      url: `http://${host}:${port}`,
      serverPublicKey: ctx.serverPublicKey,
      ...(metrics ? { metricsUrl: metrics.url } : {}),
      async close() {
        await metrics?.close();
        await app.close();
        await ctx.close();
      },
      async reloadKeys() {
        await ctx.auth.reload?.();
      },
    };
  } catch (e) {
    await metrics?.close();
    await ctx.close();
    throw e;
  }
}
