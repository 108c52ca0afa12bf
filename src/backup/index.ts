/**
 * The backup engine (Node-only): back up a directory into an encrypted repository on any
 * Storage, restore, list, check, forget and prune. Signatures are documented in api.ts; the
 * rooms behind them in docs/ARCHITECTURE.md.
 */
import {
  BACKUP_RETRY_FOR_MS as BACKUP_RETRY,
  INTERACTIVE_RETRY_FOR_MS as INTERACTIVE_RETRY,
  networked,
} from '../storage/network.js';
import { check as checkEngine } from './checker/checker.js';
import { backup as backupEngine } from './commands/backup.js';
import { forget as forgetEngine } from './commands/forget.js';
import { prune as pruneEngine } from './commands/prune.js';
import { restore as restoreEngine } from './commands/restore.js';
import { listSnapshots as listSnapshotsEngine } from './commands/snapshots.js';
import { verify as verifyEngine } from './commands/verify.js';

export * from './api.js';
// Each operation applies its network options (retryFor, signal, limits, control) to its
// store first: storage/network.ts.
export const backup = networked(backupEngine, 'backup', BACKUP_RETRY);
export const restore = networked(restoreEngine, 'restore', INTERACTIVE_RETRY);
export const check = networked(checkEngine, 'check', INTERACTIVE_RETRY);
export const prune = networked(pruneEngine, 'prune', INTERACTIVE_RETRY);
export const forget = networked(forgetEngine, 'forget', INTERACTIVE_RETRY);
export const verify = networked(verifyEngine, 'restore', INTERACTIVE_RETRY);
export const listSnapshots = networked(listSnapshotsEngine, 'scan', INTERACTIVE_RETRY);
export {
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
export { type VerifyOptions, type VerifyResult } from './commands/verify.js';

// Every error class these functions throw, with the codes and type guards (src/errors.ts).
export * from '../errors.js';
export { MergeConflictError } from './restorer/merge.js';
