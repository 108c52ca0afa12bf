/** This Node process as the engine's host (platform/types.ts: EngineHost). Node-only. */
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import type { EngineHost } from '../platform/types.js';
import { accountGarbage } from './gc.js';
import { isProcessAlive } from './process-alive.js';

/**
 * Linux: this boot and this PID namespace (`<boot id>/pid:[<inode>]`): two containers, or
 * two machines, with the same host name have different ones, and a pid is meaningful only
 * inside its own. Elsewhere undefined (the host name alone decides, lock.ts).
 */
function pidSpace(): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = readlinkSync('/proc/self/ns/pid');
    return boot && ns ? `${boot}/${ns}` : undefined;
  } catch {
    return undefined;
  }
}

const space = pidSpace();

export const nodeHost: EngineHost = {
  hostname: () => hostname(),
  pid: process.pid,
  ...(space !== undefined ? { pidSpace: space } : {}),
  ...(process.getuid ? { uid: process.getuid() } : {}),
  isProcessAlive,
  accountGarbage,
};
