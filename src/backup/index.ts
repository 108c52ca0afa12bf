/**
 * The backup engine (Node-only): back up a directory into an encrypted repository on any
 * Storage, restore, list, check, forget and prune. Signatures are documented in api.ts.
 */
export * from './api.js';
export { backup } from './backup.js';
export { restore } from './restore.js';
export { listSnapshots } from './snapshots.js';
export { check } from './check.js';
export { prune } from './prune.js';
export {
  forget,
  applyRetentionPolicy,
  describeRetentionPolicy,
  parseDuration,
  validateRetentionPolicy,
  type CalendarDuration,
  type PolicyDecision,
  type PolicyOptions,
  type PolicyPlan,
  type PolicySnapshot,
} from './forget.js';
export { initRepository, repositoryExists } from './repo.js';
export * from './key-slots.js';
export { sqliteCapture, type DatabaseCapture, type CapturedDatabase } from './sqlite-capture.js';
export { verify, type VerifyOptions, type VerifyResult } from './verify.js';
