/**
 * The backup engine (Node-only): back up a directory into an encrypted repository on any
 * Storage, restore, list, check and prune. Signatures are documented in api.ts.
 */
export * from './api.js';
export { backup } from './backup.js';
export { restore } from './restore.js';
export { listSnapshots } from './snapshots.js';
export { check } from './check.js';
export { prune } from './prune.js';
export { initRepository, repositoryExists } from './repo.js';
