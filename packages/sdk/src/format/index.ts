/**
 * The backvault repository format: byte layouts, key schedule and the 64-digit key.
 * Browser-safe (WebCrypto only); imports nothing of ours but `errors`.
 *
 * @packageDocumentation
 */
export * from './bytes.js';
export * from './constants.js';
export * from './config.js';
export * from './key-encoding.js';
export * from './key-slot.js';
export * from './key-schedule.js';
export * from './pack.js';
export * from './sealed.js';
export * from './snapshot.js';
export * from './tree.js';
// The base class of every error the format throws (`isKeySlotError` narrows to it).
export { BackvaultError, ERROR_CODES, type ErrorCode } from '../errors.js';
