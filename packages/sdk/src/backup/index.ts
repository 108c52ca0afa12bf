/**
 * The backup engine on Node: back up a directory into an encrypted repository on any
 * Storage, restore, list, check, forget and prune. Signatures are documented in api.ts; the
 * rooms behind them in docs/ARCHITECTURE.md. Loading this module installs the Node platform
 * (node:fs, node:crypto, worker threads: node/platform.ts) unless the app installed one;
 * the same engine without anything of Node is `engine.ts` (`backvault/engine`).
 *
 * @packageDocumentation
 */
import { installNodePlatform } from './node/platform.js';
import { networked, INTERACTIVE_RETRY_FOR_MS as INTERACTIVE_RETRY } from '../storage/network.js';
import { verify as verifyEngine } from './node/verify.js';

installNodePlatform();

export * from './core.js';
/** The restore drill (Node: restores into a temp folder, runs SQLite's integrity_check). */
export const verify = networked(verifyEngine, 'restore', INTERACTIVE_RETRY);
export {
  sqliteCapture,
  type SqliteCapture,
  type SqliteCaptureOptions,
} from './node/sqlite-capture.js';
export { type VerifyOptions, type VerifyResult } from './node/verify.js';
export { fsTime, nodeFiles } from './node/files.js';
export { nodeCrypto } from './node/crypto.js';
export { nodePlatform } from './node/platform.js';
export { workerUrl } from './node/worker-pool.js';
