/**
 * `backvault/engine`: the backup engine with nothing of Node — for React Native (Hermes),
 * browsers and workers. Install a platform once before the first operation:
 *
 *   import { useEnginePlatform, nobleCrypto, MemoryFiles, memoryHost, backup } from 'backvault/engine';
 *   useEnginePlatform({ crypto: nobleCrypto(), files: new MemoryFiles(), host: memoryHost() });
 *
 * Everything runs in the calling thread. What is tested where: README, "What runs where".
 */
export * from './core.js';
export { nobleCrypto, type NobleCryptoOptions } from './platform/noble-crypto.js';
