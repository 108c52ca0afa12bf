/**
 * The backup engine (Node-only): back up a directory into an encrypted repository on any
 * Storage, restore, list, check, forget and prune. Signatures are documented in api.ts.
 */
import {
  BACKUP_RETRY_FOR_MS as BACKUP_RETRY,
  INTERACTIVE_RETRY_FOR_MS as INTERACTIVE_RETRY,
  networked,
} from '../storage/network.js';
import { backup as backupEngine } from './backup.js';
import { check as checkEngine } from './check.js';
import { forget as forgetEngine } from './forget.js';
import { prune as pruneEngine } from './prune.js';
import { restore as restoreEngine } from './restore.js';
import { listSnapshots as listSnapshotsEngine } from './snapshots.js';
import { verify as verifyEngine } from './verify.js';

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
} from './forget.js';
export { initRepository, repositoryExists } from './repo.js';
export { sqliteCapture, type DatabaseCapture, type CapturedDatabase } from './sqlite-capture.js';
export { type VerifyOptions, type VerifyResult } from './verify.js';
