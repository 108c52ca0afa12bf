/**
 * The platform the engine runs on in this process (see types.ts). The Node entry points
 * (`backvault`, the CLI, the worker threads) install the Node platform when they load; an
 * app on another engine (React Native, a browser) installs its own once, before the first
 * operation:
 *
 *   useEnginePlatform({ crypto: nobleCrypto(), files: new MemoryFiles(), host: memoryHost() })
 *
 * Files may also be given per operation (`files` in the options); crypto, host and workers
 * are per process.
 */
import { UsageError } from '../../errors.js';
import type { EngineCrypto, EngineFiles, EnginePlatform } from './types.js';

let current: EnginePlatform | undefined;
let crypto: EngineCrypto | undefined;

/** Install the platform the engine uses from now on (replaces any earlier one). */
export function useEnginePlatform(platform: EnginePlatform): void {
  current = platform;
  crypto = platform.crypto;
}

/** The installed platform, or undefined. */
export function installedPlatform(): EnginePlatform | undefined {
  return current;
}

function missing(): never {
  throw new UsageError(
    'the backup engine has no platform installed',
    "On Node, import the engine from 'backvault' (it installs node:fs, node:crypto and worker threads). Elsewhere, call useEnginePlatform({ crypto: nobleCrypto(), files, host }) first.",
  );
}

/** The installed platform. @throws UsageError when none is. */
export function enginePlatform(): EnginePlatform {
  return current ?? missing();
}

/** The installed crypto provider (the hot path: one load and one test). */
export function engineCrypto(): EngineCrypto {
  return crypto ?? missing();
}

/** Files for an operation: its own (`files` option) or the platform's. */
export function filesFor(opts: { files?: EngineFiles | undefined }): EngineFiles {
  return opts.files ?? enginePlatform().files;
}
