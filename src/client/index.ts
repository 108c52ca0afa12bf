/**
 * The browser-safe device SDK: the vault client, the client-side envelope format and the
 * password rules. Node-only device pieces (the profile directory) live in `src/device`.
 */
export * from './encoding.js';
export * from './envelope.js';
export * from './events.js';
export * from './http-errors.js';
export * from './password.js';
export * from './vault-client.js';
export * from './passkey.js';

// Every error class these functions throw, with the codes and type guards (src/errors.ts).
export * from '../errors.js';
