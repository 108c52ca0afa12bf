/**
 * The backup engine (Node-only): back up a directory into an encrypted repository on any
 * Storage, restore, list, check, forget and prune. Signatures are documented in api.ts.
 */
export * from './api.js';
export { backup } from './commands/backup.js';
export { restore } from './commands/restore.js';
export { listSnapshots } from './commands/snapshots.js';
export { check } from './checker/checker.js';
export { prune } from './commands/prune.js';
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
} from './commands/forget.js';
export { initRepository, repositoryExists } from './repository/repository.js';
export * from './repository/key-slots.js';
export {
  sqliteCapture,
  type DatabaseCapture,
  type CapturedDatabase,
  type SqliteCapture,
} from './archiver/sqlite-capture.js';
export { verify, type VerifyOptions, type VerifyResult } from './commands/verify.js';
