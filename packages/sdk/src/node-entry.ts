/**
 * `backvault/node`: the device SDK's Node-only pieces besides the engine — the file-system
 * and S3 stores, the store opener, the private-file writer, everything of
 * `backvault/storage`, and the Node platform of the engine (node:fs, node:crypto, worker
 * threads), which `backvault/backup` installs by itself on import. Browsers and React
 * Native import `backvault/storage` and `backvault/engine` instead.
 *
 * @packageDocumentation
 */
export * from './storage/node/index.js';
export { installNodePlatform } from './backup/node/platform.js';
