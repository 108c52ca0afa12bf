/**
 * The Node platform (platform/types.ts): node:crypto + node:zlib, node:fs, worker threads,
 * better-sqlite3 for live databases. `import 'backvault'` (src/backup/index.ts), the CLI and
 * every worker thread install it. Node-only.
 */
import { sqliteCapture } from './sqlite-capture.js';
import { installedPlatform, useEnginePlatform } from '../platform/current.js';
import type { EnginePlatform } from '../platform/types.js';
import { nodeCrypto } from './crypto.js';
import { nodeFiles } from './files.js';
import { nodeHost } from './host.js';
import { nodeWorkers } from './worker-pool.js';

export { nodeHost };

let warned = false;

export const nodePlatform: EnginePlatform = {
  crypto: nodeCrypto,
  files: nodeFiles,
  host: nodeHost,
  workers: nodeWorkers,
  databases: () => sqliteCapture(),
  onFallback(message) {
    if (warned) return;
    warned = true;
    process.emitWarning(message, { code: 'BACKVAULT_NO_WORKERS' });
  },
};

/** Install the Node platform unless the app installed one already. */
export function installNodePlatform(): void {
  if (!installedPlatform()) useEnginePlatform(nodePlatform);
}
