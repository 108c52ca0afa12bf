/**
 * The device SDK's Node-only entry (`backvault/node`): the file-system and S3 stores, the
 * store opener that reads a `--repo`-style location, and the private-file writer the CLI and
 * the vault share — plus everything of `backvault/storage` (the contract and its wrappers). Browsers and React Native import `backvault/storage` instead.
 *
 * The S3 adapter loads the AWS SDK only when an S3 store is opened.
 */
export { LocalStorage } from './local.js';
export { S3Storage, type S3Credentials, type S3StorageOptions } from './s3.js';
export { openStorage, type OpenStorageOptions } from './open.js';
export * from '../index.js';
export { fsyncDir, writePrivateFile } from '../../node/private-file.js';
export { makeDirectories } from '../../node/make-dirs.js';
