/**
 * Process entry of the vault: `node serve.js --data DIR --port 0 --dev-auth --max-attempts N`.
 * When ready it prints ONE JSON line on stdout: `{"listening": url, "serverPublicKey": key,
 * "metrics": url}` (`metrics` only when `--metrics-listen` is not `off`).
 * Logs (JSON lines) go to stderr. SIGTERM/SIGINT drain and exit 0. Exit 2 on a usage
 * error, 1 on any other start failure. `backvault vault serve` wraps {@link main}.
 *
 * `--workers N` (default: the CPU count) runs a cluster primary with N worker processes
 * on the same port (see `cluster.ts`); the ready line comes once all of them listen, and
 * SIGTERM on the primary drains them all. `--workers 1` is a single process.
 */
import cluster from 'node:cluster';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BackvaultError } from 'backvault/errors';
import { parseVaultArgs } from './config.js';
import { exitOnSignals, runVaultWorker, startVaultCluster } from './cluster.js';
import { startVault } from './context.js';

/**
 * Parses `argv`, starts the vault and wires signals. Resolves once listening.
 * @throws UsageError on bad flags; other errors if the vault cannot start.
 */
export async function main(argv: readonly string[]): Promise<void> {
  const config = parseVaultArgs(argv);
  if (cluster.isWorker) return runVaultWorker(config);
  if (config.auth.kind === 'dev') {
    process.stderr.write(
      'WARNING: --dev-auth: this vault issues INSECURE tokens to anyone on this machine. Demo use only.\n',
    );
  }
  let vault: {
    url: string;
    serverPublicKey: string;
    close(): Promise<void>;
    reloadKeys(): Promise<void>;
    metricsUrl?: string;
  };
  if (config.workers > 1) {
    const c = await startVaultCluster(config, argv);
    c.failed.catch((e: unknown) => {
      process.stderr.write(`ERROR: ${(e as Error).message}\n`);
      process.exit(1);
    });
    vault = c;
  } else vault = await startVault(config);
  // Handlers first: a supervisor may signal the moment it reads the ready line (stdout
  // writes to a pipe are synchronous), and SIGHUP's default action would end the process.
  exitOnSignals(vault);
  process.stdout.write(
    `${JSON.stringify({ listening: vault.url, serverPublicKey: vault.serverPublicKey, ...(vault.metricsUrl ? { metrics: vault.metricsUrl } : {}) })}\n`,
  );
}

function isEntry(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    if (e instanceof BackvaultError) {
      process.stderr.write(`\nERROR ${e.code}: ${e.message}\n${e.hint ? `${e.hint}\n` : ''}\n`);
      process.exit(e.code === 'USAGE' ? 2 : 1);
    }
    process.stderr.write(`ERROR: vault failed to start: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
