/**
 * The engine's public surface without anything of Node (engine core): what both
 * `backvault/backup` (Node: index.ts, which installs the Node platform) and
 * `backvault/engine` (engine.ts: React Native, browsers, anything with no `node:`) export.
 * Signatures are documented in api.ts; the rooms behind them in docs/ARCHITECTURE.md.
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

export * from './api.js';
// Each operation applies its network options (retryFor, signal, limits, control) to its
// store first: storage/network.ts.
export const backup = networked(backupEngine, 'backup', BACKUP_RETRY);
export const restore = networked(restoreEngine, 'restore', INTERACTIVE_RETRY);
export const check = networked(checkEngine, 'check', INTERACTIVE_RETRY);
export const prune = networked(pruneEngine, 'prune', INTERACTIVE_RETRY);
export const forget = networked(forgetEngine, 'forget', INTERACTIVE_RETRY);
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
export type { CapturedDatabase, DatabaseCapture } from './archiver/databases.js';
export { useEnginePlatform, installedPlatform } from './platform/current.js';
export { MemoryFiles, memoryHost } from './platform/memory-files.js';
export { posixPath } from './platform/posix-path.js';
export type * from './platform/types.js';
export type { MemoryEntry } from './platform/memory-files.js';
export type { CompressionValue } from '../format/constants.js';
export type { RepoKeys } from './repository/keys.js';
export type * from './workers/pool-types.js';
export { SourceReadError } from './workers/pool-types.js';
export { Compression, ObjectKind } from '../format/constants.js';
export type { BlobEntry, BlobRef } from '../format/pack.js';
export type { BlobKind } from '../format/constants.js';
export { acceptRollback, type AcceptRollbackResult } from './commands/snapshots.js';
export {
  diffSnapshots,
  listSnapshotTree,
  openInspector,
  pathParts,
  repositoryStats,
  type DiffEntry,
  type Inspector,
  type ListedEntry,
  type SnapshotStats,
} from './commands/inspect.js';
export { ExcludeSet, parseExcludeFile } from './archiver/exclude.js';
export {
  HEAD_REASON,
  MAX_KEEP,
  defaultTimeZone,
  formatDuration,
  isoWeek,
  type RetentionPolicy,
} from './commands/retention.js';
export { type SeenHead } from './repository/state.js';
export {
  EntryType,
  type DirEntry,
  type EntryBase,
  type FileEntry,
  type SymlinkEntry,
  type TreeEntry,
} from '../format/tree.js';
// Types the signatures above name, so `backvault/backup` alone can spell them.
export type { Storage } from '../storage/storage.js';
export type { NetworkOptions, StoreStatus } from '../storage/network.js';
export type { StoreEvent } from '../storage/retry.js';
export { BackupControl } from '../storage/gate.js';
export { KeySlotKind, type KeySlotKindName } from '../format/key-slot.js';
// What EngineCrypto extends: the format's key slots run on any engine provider.
export type { FormatCrypto } from '../format/key-schedule.js';

// Every error class these functions throw, with the codes and type guards (src/errors.ts).
export * from '../errors.js';
export { MergeConflictError } from './restorer/merge.js';
