/**
 * Vault configuration: read and validated once, failing fast with a clear message.
 * `parseVaultArgs` turns `backvault vault serve` / `serve.js` flags into a config;
 * `validateVaultConfig` checks any config object (also ones built in code).
 */
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { UsageError } from 'backvault/errors';
import { parseCorsOrigins } from './cors.js';
import { parseEtcdEndpoints } from './etcd-store.js';
import { parseEtcdShardSpec, type EtcdShardSpec } from './sharded-store.js';
import { DEFAULT_PACING } from 'backvault/wire';
import type { Pacing } from './vault-service.js';

/**
 * Parses `--pacing`: `off`, or `FREE:D1,D2,...` — FREE counted wrong guesses without
 * delay, then delays in seconds, the last one repeating (default `3:60,300,900,3600`).
 * @throws UsageError on anything else.
 */
export function parsePacing(text: string): Pacing | null {
  if (text === 'off') return null;
  const m = /^(\d{1,4}):(\d{1,6}(?:,\d{1,6}){0,31})$/.exec(text);
  if (!m) {
    throw new UsageError(
      '--pacing must be off or FREE:SECONDS,SECONDS,... (e.g. 3:60,300,900,3600)',
    );
  }
  return {
    freeGuesses: Number(m[1]),
    delaysSeconds: (m[2] ?? '').split(',').map(Number),
  };
}

/** How bearer tokens are verified. */
export type AuthConfig =
  | { readonly kind: 'dev' }
  | {
      readonly kind: 'jwt';
      readonly issuer: string;
      readonly audience: string;
      readonly jwksFile?: string;
      readonly publicKeyFiles?: readonly string[];
      /**
       * Longest token lifetime accepted (`exp - iat`, and `exp` from now), in seconds.
       * Default 3600. Tokens without `exp` are always refused.
       */
      readonly maxTokenLifetimeSeconds?: number;
    };

/** Everything the vault needs to start. */
export interface VaultConfig {
  /** Bind address. Default 127.0.0.1. */
  readonly host: string;
  /** TCP port; 0 picks a free one. Default 8787. */
  readonly port: number;
  /** Data directory (SQLite database, software HSM key file). Created 0700 if missing. */
  readonly dataDir: string;
  /** `sqlite` (embedded, in `dataDir`) or `etcd` (replicated; a fleet). */
  readonly store: 'sqlite' | 'etcd';
  /** etcd client URLs (store = etcd, one cluster). */
  readonly etcdEndpoints?: readonly string[];
  /** Shards (store = etcd, several clusters): `--etcd-shard ID=URL,URL` (repeatable). */
  readonly etcdShards?: readonly EtcdShardSpec[];
  /**
   * TLS to etcd (with `https://` endpoints; the same material for every shard): PEM files
   * of the CA that signed the members' certificates (default: the system's CAs) and of
   * this node's client certificate and key (both or neither; for `--client-cert-auth`).
   */
  readonly etcdTls?: {
    readonly caFile?: string;
    readonly certFile?: string;
    readonly keyFile?: string;
  };
  /** etcd key prefix. Default `/backvault/v1/`. */
  readonly etcdPrefix?: string;
  /** Deadline of one store call in ms, retries included. Default 3000. */
  readonly etcdDeadlineMs?: number;
  /**
   * store = etcd: defragment every member this often (seconds; 0 = never), so values
   * compacted after a destroying write leave etcd's free pages too. Default 3600. Only
   * worker 0 of a node does it; each fleet node runs its own schedule.
   */
  readonly etcdDefragIntervalSeconds?: number;
  /**
   * Start even though etcd is older than this node has seen (after a deliberate restore):
   * resets the rollback tripwire (`DATA/etcd-revision.json`). See docs/OPERATIONS.md.
   */
  readonly acceptEtcdRollback?: boolean;
  /** `software` (keys in a file or `BACKVAULT_HSM_KEYS`) or `pkcs11` (a token). */
  readonly hsm: 'software' | 'pkcs11';
  /**
   * Software HSM key file (e.g. written by `vault import`); must exist. Default
   * `dataDir/hsm-keys.json`, created with fresh keys when missing.
   */
  readonly hsmKeyFile?: string;
  /** PKCS#11 module path (default env `BACKVAULT_PKCS11_MODULE`). The PIN comes only from env. */
  readonly pkcs11Module?: string;
  /** PKCS#11 token label (default env `BACKVAULT_PKCS11_TOKEN`). */
  readonly pkcs11Token?: string;
  /**
   * The fleet's OPAQUE server public key (base64url): the HSM must hold exactly that
   * fleet's keys or the vault refuses to start.
   */
  readonly fleetKey?: string;
  /** Default and maximum guesses per record. Default 10. */
  readonly maxAttempts: number;
  /** Lifetime of a login state (and the last guess's window). Default 60. */
  readonly loginStateTtlSeconds: number;
  readonly auth: AuthConfig;
  /** Requests per minute per client IP (all routes). Default 600. */
  readonly rateLimitPerIp: number;
  /** Requests per minute per account (authenticated routes). Default 60. */
  readonly rateLimitPerAccount: number;
  /**
   * Pacing of wrong guesses, kept in each record (so it holds across workers, nodes and
   * restarts); `null` = off. Default {@link DEFAULT_PACING}.
   */
  readonly pacing: Pacing | null;
  /** pino level. Default info. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent';
  /**
   * Worker processes of `serve` (node:cluster, one port, one store file, one HSM key
   * file). Default: `os.availableParallelism()`. 1 = a single process, no primary.
   * Only the `serve` entry forks; `startVault` always runs in the calling process.
   * The rate limits above are kept in memory PER WORKER: with N workers a client may get
   * up to N times the configured rate. The attempt counter (in the store) is the real limit.
   */
  readonly workers: number;
  /** A request's headers must arrive within this (slowloris). Default 10 s. */
  readonly headersTimeoutMs: number;
  /** A whole request (headers and body) must arrive within this. Default 30 s. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. Default 5 s. */
  readonly keepAliveTimeoutMs: number;
  /**
   * Open connections allowed per client address (per worker process); more are closed at
   * once, so one address cannot take every socket or file descriptor. Addresses in
   * `trustProxy` (a load balancer carrying many users) are exempt. Default 32.
   */
  readonly maxConnectionsPerIp: number;
  /**
   * Open connections allowed in all (per worker), lowered at start to fit the process's
   * file descriptor limit (keeping room for the store, the HSM and etcd). Default 4096.
   */
  readonly maxConnections: number;
  /**
   * Load balancers / reverse proxies whose `X-Forwarded-For` names the client (exact IP
   * addresses). Default none: the client is the TCP peer.
   */
  readonly trustProxy: readonly string[];
  /**
   * Where `/metrics` is served: its own listener, loopback by default (`127.0.0.1:0` = a
   * free port, announced in the ready line), or `null` (`--metrics-listen off`). The API
   * port never serves metrics.
   */
  readonly metricsListen: { readonly host: string; readonly port: number } | null;
  /**
   * Web app origins allowed to call the vault from a browser (`--cors-origin`, repeatable),
   * each exactly `scheme://host[:port]` (http or https; never `*` or `null`). Default none:
   * no CORS headers, every preflight refused. See `cors.ts` and docs/THREAT_MODEL.md.
   */
  readonly corsOrigins: readonly string[];
}

/** Defaults for everything but `dataDir` and `auth`. */
export const VAULT_DEFAULTS = {
  host: '127.0.0.1',
  port: 8787,
  store: 'sqlite',
  hsm: 'software',
  maxAttempts: 10,
  loginStateTtlSeconds: 60,
  rateLimitPerIp: 600,
  rateLimitPerAccount: 60,
  logLevel: 'info',
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnectionsPerIp: 32,
  maxConnections: 4096,
  metricsListen: { host: '127.0.0.1', port: 0 },
} as const;

/**
 * Parses `--metrics-listen`: `HOST:PORT`, `[IPV6]:PORT` or `off`.
 * @throws UsageError if malformed.
 */
export function parseMetricsListen(v: string): VaultConfig['metricsListen'] {
  if (v === 'off') return null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v);
  const port = Number(m?.[3]);
  if (!m || port > 65535)
    throw new UsageError('--metrics-listen must be HOST:PORT (e.g. 127.0.0.1:9464) or off');
  return { host: (m[1] ?? m[2]) as string, port };
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'silent'] as const;

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function int(name: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * Validates a config. Refuses `--dev-auth` on a non-loopback address.
 * @throws UsageError with a message naming the bad setting.
 */
export function validateVaultConfig(c: Partial<VaultConfig> & { dataDir?: string }): VaultConfig {
  if (!c.dataDir) throw new UsageError('the vault needs a data directory (--data DIR)');
  const host = c.host ?? VAULT_DEFAULTS.host;
  const auth = c.auth;
  if (!auth) {
    throw new UsageError(
      'choose how tokens are verified: --jwks FILE or --jwt-public-key FILE (with --issuer and --audience), or --dev-auth',
    );
  }
  if (auth.kind === 'dev' && !isLoopback(host)) {
    throw new UsageError(
      `REFUSING TO START: --dev-auth lets anyone mint tokens for any account, and ${host} is not a loopback address`,
      'Use --dev-auth only with --host 127.0.0.1, or configure real JWT issuer keys.',
    );
  }
  if (auth.kind === 'jwt') {
    if (!auth.issuer || !auth.audience)
      throw new UsageError('JWT auth needs --issuer and --audience');
    if (!auth.jwksFile && !auth.publicKeyFiles?.length) {
      throw new UsageError('JWT auth needs --jwks FILE or --jwt-public-key FILE');
    }
    if (auth.maxTokenLifetimeSeconds !== undefined)
      int('--max-token-lifetime', auth.maxTokenLifetimeSeconds, 60, 86_400);
  }
  const logLevel = c.logLevel ?? VAULT_DEFAULTS.logLevel;
  if (!LEVELS.includes(logLevel))
    throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
  const store = c.store ?? 'sqlite';
  if (store !== 'sqlite' && store !== 'etcd')
    throw new UsageError('--store must be sqlite or etcd');
  if (store === 'etcd' && !c.etcdEndpoints?.length && !c.etcdShards?.length)
    throw new UsageError('--store etcd needs --etcd URL,URL,... (or --etcd-shard ID=URL,...)');
  if (c.etcdEndpoints?.length && c.etcdShards?.length)
    throw new UsageError('use either --etcd or --etcd-shard, not both');
  if (store === 'sqlite' && (c.etcdEndpoints || c.etcdShards))
    throw new UsageError('--etcd needs --store etcd');
  const tls = c.etcdTls;
  if (c.etcdDefragIntervalSeconds !== undefined && store !== 'etcd')
    throw new UsageError('--etcd-defrag-interval needs --store etcd');
  if (tls && store !== 'etcd')
    throw new UsageError('--etcd-ca/--etcd-cert/--etcd-key need --store etcd');
  if (tls && !tls.certFile !== !tls.keyFile)
    throw new UsageError('--etcd-cert and --etcd-key go together');
  const urls = [...(c.etcdEndpoints ?? []), ...(c.etcdShards ?? []).flatMap((s) => s.endpoints)];
  if (tls && !urls.every((u) => u.startsWith('https://')))
    throw new UsageError('--etcd-ca/--etcd-cert/--etcd-key need https:// etcd endpoints');
  if (
    !tls &&
    urls.some((u) => u.startsWith('https://')) &&
    urls.some((u) => u.startsWith('http://'))
  )
    throw new UsageError('use https:// for every etcd member or for none');
  const hsm = c.hsm ?? 'software';
  if (hsm !== 'software' && hsm !== 'pkcs11')
    throw new UsageError('--hsm must be software or pkcs11');
  if (hsm === 'pkcs11' && c.hsmKeyFile)
    throw new UsageError('--hsm-key-file is for --hsm software');
  if (hsm === 'software' && (c.pkcs11Module || c.pkcs11Token))
    throw new UsageError('--pkcs11-module and --pkcs11-token need --hsm pkcs11');
  const trustProxy = c.trustProxy ?? [];
  for (const a of trustProxy) {
    if (isIP(a) === 0)
      throw new UsageError(`--trust-proxy takes exact IP addresses, not ${JSON.stringify(a)}`);
  }
  const metricsListen =
    c.metricsListen === undefined ? VAULT_DEFAULTS.metricsListen : c.metricsListen;
  if (metricsListen) int('--metrics-listen port', metricsListen.port, 0, 65535);
  const headersTimeoutMs = int(
    '--headers-timeout-ms',
    c.headersTimeoutMs ?? VAULT_DEFAULTS.headersTimeoutMs,
    500,
    120_000,
  );
  const requestTimeoutMs = int(
    '--request-timeout-ms',
    c.requestTimeoutMs ?? VAULT_DEFAULTS.requestTimeoutMs,
    500,
    300_000,
  );
  if (requestTimeoutMs < headersTimeoutMs)
    throw new UsageError('--request-timeout-ms must be at least --headers-timeout-ms');
  if (c.fleetKey !== undefined && !/^[A-Za-z0-9_-]{40,60}$/.test(c.fleetKey))
    throw new UsageError('--fleet-key must be the base64url fleet public key printed by keygen');
  return {
    host,
    port: int('--port', c.port ?? VAULT_DEFAULTS.port, 0, 65535),
    dataDir: c.dataDir,
    store,
    ...(c.etcdEndpoints?.length ? { etcdEndpoints: c.etcdEndpoints } : {}),
    ...(c.etcdShards?.length ? { etcdShards: c.etcdShards } : {}),
    ...(tls ? { etcdTls: tls } : {}),
    ...(c.etcdPrefix ? { etcdPrefix: c.etcdPrefix } : {}),
    ...(c.acceptEtcdRollback ? { acceptEtcdRollback: true } : {}),
    ...(store === 'etcd'
      ? {
          etcdDeadlineMs: int('--etcd-deadline-ms', c.etcdDeadlineMs ?? 3000, 100, 60_000),
          etcdDefragIntervalSeconds: int(
            '--etcd-defrag-interval',
            c.etcdDefragIntervalSeconds ?? 3600,
            0,
            604_800,
          ),
        }
      : {}),
    hsm,
    ...(c.hsmKeyFile ? { hsmKeyFile: c.hsmKeyFile } : {}),
    ...(c.pkcs11Module ? { pkcs11Module: c.pkcs11Module } : {}),
    ...(c.pkcs11Token ? { pkcs11Token: c.pkcs11Token } : {}),
    ...(c.fleetKey !== undefined ? { fleetKey: c.fleetKey } : {}),
    maxAttempts: int('--max-attempts', c.maxAttempts ?? VAULT_DEFAULTS.maxAttempts, 1, 1000),
    loginStateTtlSeconds: int(
      '--login-ttl',
      c.loginStateTtlSeconds ?? VAULT_DEFAULTS.loginStateTtlSeconds,
      5,
      600,
    ),
    auth:
      auth.kind === 'jwt'
        ? {
            ...auth,
            maxTokenLifetimeSeconds: int(
              '--max-token-lifetime',
              auth.maxTokenLifetimeSeconds ?? 3600,
              60,
              86_400,
            ),
          }
        : auth,
    rateLimitPerIp: int(
      '--rate-limit-ip',
      c.rateLimitPerIp ?? VAULT_DEFAULTS.rateLimitPerIp,
      1,
      10_000_000,
    ),
    rateLimitPerAccount: int(
      '--rate-limit-account',
      c.rateLimitPerAccount ?? VAULT_DEFAULTS.rateLimitPerAccount,
      1,
      10_000_000,
    ),
    pacing: c.pacing === undefined ? DEFAULT_PACING : c.pacing,
    logLevel,
    workers: int('--workers', c.workers ?? availableParallelism(), 1, 64),
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: int(
      '--keep-alive-timeout-ms',
      c.keepAliveTimeoutMs ?? VAULT_DEFAULTS.keepAliveTimeoutMs,
      100,
      120_000,
    ),
    maxConnectionsPerIp: int(
      '--max-connections-per-ip',
      c.maxConnectionsPerIp ?? VAULT_DEFAULTS.maxConnectionsPerIp,
      1,
      1_000_000,
    ),
    maxConnections: int(
      '--max-connections',
      c.maxConnections ?? VAULT_DEFAULTS.maxConnections,
      1,
      1_000_000,
    ),
    trustProxy,
    metricsListen,
    corsOrigins: parseCorsOrigins(c.corsOrigins ?? []),
  };
}

/** Usage text of the vault server flags. */
export const VAULT_USAGE = `usage: serve --data DIR [--host 127.0.0.1] [--port 8787]
  (--dev-auth | --issuer ISS --audience AUD [--jwks FILE] [--jwt-public-key PEM ...]
    [--max-token-lifetime 3600])
  [--max-attempts 10] [--login-ttl 60] [--rate-limit-ip 600] [--rate-limit-account 60]
  [--pacing 3:60,300,900,3600 | --pacing off] (wrong guesses: free, then delays in s)
  [--store sqlite] [--hsm software] [--log-level info] [--workers N (default: CPUs)]
  [--store etcd (--etcd URL,URL,... | --etcd-shard ID=URL,URL ...)]
  [--etcd-ca PEM] [--etcd-cert PEM --etcd-key PEM] (TLS to https:// etcd members)
  [--etcd-prefix /backvault/v1/] [--etcd-deadline-ms 3000] [--accept-etcd-rollback]
  [--etcd-defrag-interval 3600] (seconds, 0 = never)
  [--hsm software [--hsm-key-file FILE]] [--fleet-key KEY]
  [--hsm pkcs11 --pkcs11-module SO --pkcs11-token LABEL] (PIN: env BACKVAULT_PKCS11_PIN)
  [--headers-timeout-ms 10000] [--request-timeout-ms 30000] [--keep-alive-timeout-ms 5000]
  [--max-connections-per-ip 32] [--max-connections 4096] [--trust-proxy IP,IP]
  [--metrics-listen 127.0.0.1:0 | HOST:PORT | off]
  [--cors-origin https://app.example ...] (web app origins allowed from a browser; none by default)
Rate limits are per worker process; the attempt counter is shared and exact.
HSM keys: DIR/hsm-keys.json (created 0600), or env BACKVAULT_HSM_KEYS.`;

/**
 * Parses command-line flags into a validated config.
 * @throws UsageError on unknown flags, missing values or invalid settings.
 */
export function parseVaultArgs(argv: readonly string[]): VaultConfig {
  const c: Record<string, unknown> = {};
  let devAuth = false;
  let issuer: string | undefined;
  let audience: string | undefined;
  let jwksFile: string | undefined;
  let maxTokenLifetime: string | undefined;
  const publicKeyFiles: string[] = [];
  const corsOrigins: string[] = [];
  const shards: EtcdShardSpec[] = [];
  const etcdTls: { caFile?: string; certFile?: string; keyFile?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] ?? '';
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--'))
        throw new UsageError(`${flag} needs a value`, VAULT_USAGE);
      return v;
    };
    switch (flag) {
      case '--data':
        c.dataDir = value();
        break;
      case '--host':
        c.host = value();
        break;
      case '--port':
        c.port = value();
        break;
      case '--max-attempts':
        c.maxAttempts = value();
        break;
      case '--login-ttl':
        c.loginStateTtlSeconds = value();
        break;
      case '--rate-limit-ip':
        c.rateLimitPerIp = value();
        break;
      case '--rate-limit-account':
        c.rateLimitPerAccount = value();
        break;
      case '--pacing':
        c.pacing = parsePacing(value());
        break;
      case '--store':
        c.store = value();
        break;
      case '--hsm':
        c.hsm = value();
        break;
      case '--etcd':
        c.etcdEndpoints = parseEtcdEndpoints(value());
        break;
      case '--etcd-shard':
        shards.push(parseEtcdShardSpec(value()));
        break;
      case '--etcd-ca':
        etcdTls.caFile = value();
        break;
      case '--etcd-cert':
        etcdTls.certFile = value();
        break;
      case '--etcd-key':
        etcdTls.keyFile = value();
        break;
      case '--etcd-prefix':
        c.etcdPrefix = value();
        break;
      case '--etcd-deadline-ms':
        c.etcdDeadlineMs = value();
        break;
      case '--etcd-defrag-interval':
        c.etcdDefragIntervalSeconds = value();
        break;
      case '--accept-etcd-rollback':
        c.acceptEtcdRollback = true;
        break;
      case '--hsm-key-file':
        c.hsmKeyFile = value();
        break;
      case '--pkcs11-module':
        c.pkcs11Module = value();
        break;
      case '--pkcs11-token':
        c.pkcs11Token = value();
        break;
      case '--fleet-key':
        c.fleetKey = value();
        break;
      case '--log-level':
        c.logLevel = value();
        break;
      case '--workers':
        c.workers = value();
        break;
      case '--headers-timeout-ms':
        c.headersTimeoutMs = value();
        break;
      case '--request-timeout-ms':
        c.requestTimeoutMs = value();
        break;
      case '--keep-alive-timeout-ms':
        c.keepAliveTimeoutMs = value();
        break;
      case '--max-connections-per-ip':
        c.maxConnectionsPerIp = value();
        break;
      case '--max-connections':
        c.maxConnections = value();
        break;
      case '--trust-proxy':
        c.trustProxy = value()
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x !== '');
        break;
      case '--metrics-listen':
        c.metricsListen = parseMetricsListen(value());
        break;
      case '--cors-origin':
        corsOrigins.push(value());
        break;
      case '--dev-auth':
        devAuth = true;
        break;
      case '--issuer':
        issuer = value();
        break;
      case '--audience':
        audience = value();
        break;
      case '--jwks':
        jwksFile = value();
        break;
      case '--jwt-public-key':
        publicKeyFiles.push(value());
        break;
      case '--max-token-lifetime':
        maxTokenLifetime = value();
        break;
      default:
        throw new UsageError(`unknown option ${flag}`, VAULT_USAGE);
    }
  }
  if (shards.length) c.etcdShards = shards;
  if (corsOrigins.length) c.corsOrigins = corsOrigins;
  if (Object.keys(etcdTls).length) c.etcdTls = etcdTls;
  const jwt =
    issuer !== undefined ||
    audience !== undefined ||
    jwksFile !== undefined ||
    maxTokenLifetime !== undefined ||
    publicKeyFiles.length > 0;
  if (devAuth && jwt) throw new UsageError('--dev-auth cannot be combined with JWT issuer options');
  if (devAuth) c.auth = { kind: 'dev' };
  else if (jwt) {
    c.auth = {
      kind: 'jwt',
      issuer: issuer ?? '',
      audience: audience ?? '',
      ...(jwksFile ? { jwksFile } : {}),
      ...(publicKeyFiles.length ? { publicKeyFiles } : {}),
      ...(maxTokenLifetime !== undefined
        ? { maxTokenLifetimeSeconds: int('--max-token-lifetime', maxTokenLifetime, 60, 86_400) }
        : {}),
    };
  }
  return validateVaultConfig(c as Partial<VaultConfig>);
}
