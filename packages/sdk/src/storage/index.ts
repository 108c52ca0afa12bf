/**
 * The browser-safe part of the storage layer: the Storage contract, the in-memory store
 * and the wrappers (retry by a deadline, pause gate, bandwidth limits, composed by
 * `withNetwork`). The Node adapters (local directory, S3) and `openStorage` live in
 * `storage/node/` so that a browser bundle never pulls in `node:` modules.
 *
 * @packageDocumentation
 */
export type { Storage } from './storage.js';
export { assertObjectName, assertListPrefix, assertRange } from './storage.js';
export { MemoryStorage, type FaultHook, type StorageOperation } from './memory.js';
export {
  withRetry,
  withoutRetry,
  DEFAULT_RETRY_FOR_MS,
  type RetryOptions,
  type StoreEvent,
} from './retry.js';
export { classifyStoreFailure, type FailureVerdict } from './failure.js';
export { BackupControl, withGate } from './gate.js';
export { ByteRateLimiter, withBandwidthLimit, type BandwidthOptions } from './throttle.js';
export {
  BACKUP_RETRY_FOR_MS,
  INTERACTIVE_RETRY_FOR_MS,
  parseRetryFor,
  parseRateLimit,
  withNetwork,
  type NetworkOptions,
  type StoreStatus,
} from './network.js';

// Every error class these functions throw, with the codes and type guards (src/errors.ts).
export * from '../errors.js';
