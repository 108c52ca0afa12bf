/**
 * The browser-safe device SDK: the vault client, the client-side envelope format and the
 * password rules. Node-only device pieces (the profile directory) live in `src/device`.
 *
 * @packageDocumentation
 */
export * from './encoding.js';
export * from './envelope.js';
export * from './events.js';
export * from './http-errors.js';
export * from './password.js';
export * from './vault-client.js';
export * from './passkey.js';
// The errors the client's methods throw (instanceof and `code`), and the wire types its
// methods return, so an app importing only `backvault/client` can name them.
export * from '../errors.js';
export type {
  InfoResponse,
  RecordEventsResponse,
  RecordStatus,
  SecurityEvent,
  SnapshotHead,
} from '../wire/index.js';
