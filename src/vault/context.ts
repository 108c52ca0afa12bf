/**
 * The wiring file: builds the whole vault from a validated {@link VaultConfig} — store,
 * HSM, authenticator, metrics, service, HTTP server — in one place, failing fast.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hsm } from '../hsm/hsm.js';
import { openSoftwareHsm } from '../hsm/software-hsm.js';
import {
  cachingAuthenticator,
  createDevAuthenticator,
  createJwtAuthenticator,
  type Authenticator,
} from './auth.js';
import { validateVaultConfig, type VaultConfig } from './config.js';
import { createVaultMetrics, type VaultMetrics } from './metrics.js';
import { buildServer } from './server.js';
import { openSqliteStore } from './sqlite-store.js';
import type { VaultStore } from './store.js';
import { VaultService } from './vault-service.js';

/** File names inside the data directory. */
export const DATA_FILES = { database: 'vault.sqlite', hsmKeys: 'hsm-keys.json' } as const;

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
export async function createVaultContext(input: VaultConfig): Promise<VaultContext> {
  const config = validateVaultConfig(input);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const loginStateTtlMs = config.loginStateTtlSeconds * 1000;
  const auth = cachingAuthenticator(
    config.auth.kind === 'dev'
      ? await createDevAuthenticator()
      : await createJwtAuthenticator(config.auth),
  );
  const hsm = await openSoftwareHsm({
    keyFile: join(config.dataDir, DATA_FILES.hsmKeys),
    loginStateTtlMs,
  });
  const sqlite = await openSqliteStore(join(config.dataDir, DATA_FILES.database));
  const metrics = createVaultMetrics();
  const service = new VaultService({
    store: sqlite,
    hsm,
    maxAttempts: config.maxAttempts,
    loginStateTtlMs,
    events: metrics.events,
    afterLockout: () => sqlite.scrubWal(),
  });
  const serverPublicKey = await hsm.serverPublicKey();
  return {
    config,
    store: sqlite,
    hsm,
    auth,
    metrics,
    service,
    serverPublicKey,
    async close() {
      service.close();
      await sqlite.close();
      await hsm.close();
    },
  };
}

/** A started vault. */
export interface RunningVault {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** OPAQUE server public key clients pin (base64url). */
  readonly serverPublicKey: string;
  /** Stops accepting, drains in-flight requests, closes store and HSM. */
  close(): Promise<void>;
}

/**
 * Builds and starts the vault.
 * @throws UsageError on a bad config (e.g. `--dev-auth` off loopback); UnavailableError
 *   if the store cannot open; Error if the port cannot be bound.
 */
export async function startVault(
  config: VaultConfig,
  options: { logStream?: NodeJS.WritableStream } = {},
): Promise<RunningVault> {
  const ctx = await createVaultContext(config);
  try {
    const app = await buildServer({
      config: ctx.config,
      service: ctx.service,
      auth: ctx.auth,
      metrics: ctx.metrics,
      serverPublicKey: ctx.serverPublicKey,
      ...(options.logStream ? { logStream: options.logStream } : {}),
    });
    await app.listen({ host: ctx.config.host, port: ctx.config.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : ctx.config.port;
    const host = ctx.config.host.includes(':') ? `[${ctx.config.host}]` : ctx.config.host;
    return {
      url: `http://${host}:${port}`,
      serverPublicKey: ctx.serverPublicKey,
      async close() {
        await app.close();
        await ctx.close();
      },
    };
  } catch (e) {
    await ctx.close();
    throw e;
  }
}
