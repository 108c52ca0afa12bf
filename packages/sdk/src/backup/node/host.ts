/** This Node process as the engine's host (platform/types.ts: EngineHost). Node-only. */
import { hostname } from 'node:os';
import type { EngineHost } from '../platform/types.js';
import { accountGarbage } from './gc.js';
import { isProcessAlive } from './process-alive.js';

export const nodeHost: EngineHost = {
  hostname: () => hostname(),
  pid: process.pid,
  ...(process.getuid ? { uid: process.getuid() } : {}),
  isProcessAlive,
  accountGarbage,
};
