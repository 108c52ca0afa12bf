/**
 * The browser-safe part of the storage layer: the Storage contract, the in-memory store
 * and the retry wrapper. The Node adapters (local directory, S3) and `openStorage` live in
 * `storage/node/` so that a browser bundle never pulls in `node:` modules.
 */
export type { Storage } from './storage.js';
export { assertObjectName, assertListPrefix, assertRange } from './storage.js';
export { MemoryStorage, type FaultHook, type StorageOperation } from './memory.js';
export { withRetry, type RetryOptions } from './retry.js';
