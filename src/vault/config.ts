/**
 * Vault configuration: read and validated once, failing fast with a clear message.
 * `parseVaultArgs` turns `backvault vault serve` / `serve.js` flags into a config;
 * `validateVaultConfig` checks any config object (also ones built in code).
 */
import { UsageError } from '../errors.js';

/** How bearer tokens are verified. */
export type AuthConfig =
  | { readonly kind: 'dev' }
  | {
      readonly kind: 'jwt';
      readonly issuer: string;
      readonly audience: string;
      readonly jwksFile?: string;
      readonly publicKeyFiles?: readonly string[];
    };

/** Everything the vault needs to start. */
export interface VaultConfig {
  /** Bind address. Default 127.0.0.1. */
  readonly host: string;
  /** TCP port; 0 picks a free one. Default 8787. */
  readonly port: number;
  /** Data directory (SQLite database, software HSM key file). Created 0700 if missing. */
  readonly dataDir: string;
  readonly store: 'sqlite';
  readonly hsm: 'software';
  /** Default and maximum guesses per record. Default 10. */
  readonly maxAttempts: number;
  /** Lifetime of a login state (and the last guess's window). Default 60. */
  readonly loginStateTtlSeconds: number;
  readonly auth: AuthConfig;
  /** Requests per minute per client IP (all routes). Default 600. */
  readonly rateLimitPerIp: number;
  /** Requests per minute per account (authenticated routes). Default 60. */
  readonly rateLimitPerAccount: number;
  /** pino level. Default info. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent';
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
} as const;

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
  }
  const logLevel = c.logLevel ?? VAULT_DEFAULTS.logLevel;
  if (!LEVELS.includes(logLevel))
    throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
  if ((c.store ?? 'sqlite') !== 'sqlite')
    throw new UsageError('--store must be sqlite (etcd: not yet)');
  if ((c.hsm ?? 'software') !== 'software')
    throw new UsageError('--hsm must be software (pkcs11: not yet)');
  return {
    host,
    port: int('--port', c.port ?? VAULT_DEFAULTS.port, 0, 65535),
    dataDir: c.dataDir,
    store: 'sqlite',
    hsm: 'software',
    maxAttempts: int('--max-attempts', c.maxAttempts ?? VAULT_DEFAULTS.maxAttempts, 1, 1000),
    loginStateTtlSeconds: int(
      '--login-ttl',
      c.loginStateTtlSeconds ?? VAULT_DEFAULTS.loginStateTtlSeconds,
      5,
      600,
    ),
    auth,
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
    logLevel,
  };
}

/** Usage text of the vault server flags. */
export const VAULT_USAGE = `usage: serve --data DIR [--host 127.0.0.1] [--port 8787]
  (--dev-auth | --issuer ISS --audience AUD (--jwks FILE | --jwt-public-key PEM ...))
  [--max-attempts 10] [--login-ttl 60] [--rate-limit-ip 600] [--rate-limit-account 60]
  [--store sqlite] [--hsm software] [--log-level info]
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
  const publicKeyFiles: string[] = [];
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
      case '--store':
        c.store = value();
        break;
      case '--hsm':
        c.hsm = value();
        break;
      case '--log-level':
        c.logLevel = value();
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
      default:
        throw new UsageError(`unknown option ${flag}`, VAULT_USAGE);
    }
  }
  const jwt =
    issuer !== undefined ||
    audience !== undefined ||
    jwksFile !== undefined ||
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
    };
  }
  return validateVaultConfig(c as Partial<VaultConfig>);
}
