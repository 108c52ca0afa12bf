/**
 * backvault for Node: the backup engine, the storage adapters, the 64-digit key encoding,
 * the vault client SDK and the error taxonomy. Browser code imports `backvault/client`,
 * `backvault/format` and `backvault/storage` instead (no `node:` modules there).
 *
 * @packageDocumentation
 */
export * from './errors.js';
export { generateBackupKey, formatBackupKey, parseBackupKey } from './format/key-encoding.js';
export * from './backup/index.js';
export * from './storage/index.js';
export { LocalStorage } from './storage/node/local.js';
export { S3Storage, type S3Credentials, type S3StorageOptions } from './storage/node/s3.js';
export { openStorage, type OpenStorageOptions } from './storage/node/open.js';
export * from './client/index.js';
