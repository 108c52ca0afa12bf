/**
 * Connection limits of the API listener, so one client address cannot hold every socket
 * (and with them every file descriptor the store, the HSM and etcd need):
 * - per client address: at most `maxConnectionsPerIp` open connections; more are closed at
 *   once (trusted proxies, which carry many users, are exempt);
 * - in all: `maxConnections`, lowered to fit the process's file descriptor limit, so the
 *   process never meets EMFILE (where every new connection fails, anyone's).
 * Slow clients are cut by the HTTP timeouts set in `server.ts` (headers, request,
 * keep-alive), checked every {@link CONNECTIONS_CHECK_INTERVAL_MS}.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** How often Node checks the headers and request timeouts (its default is 30 s). */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1000;

/** File descriptors kept free for everything that is not a client connection. */
export const FD_RESERVE = 64;

/** The soft limit on open files of this process (Linux /proc), or undefined if unknown. */
export function openFileLimit(): number | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (!m || m[1] === 'unlimited') return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

/** The connection cap in force: the configured one, lowered to fit the fd limit. */
export function effectiveMaxConnections(configured: number, fdLimit = openFileLimit()): number {
  if (fdLimit === undefined) return configured;
  return Math.max(1, Math.min(configured, Math.floor((fdLimit - FD_RESERVE) * 0.9)));
}

/** What {@link limitConnections} refused, for metrics. */
export type RefusedReason = 'per_ip' | 'total';

/** Normalises `::ffff:1.2.3.4` to `1.2.3.4` so one client is one key. */
function addressOf(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/**
 * Applies the caps to `server`. Returns the effective total cap.
 * @param onRefused called for each connection closed by a cap.
 */
export function limitConnections(
  server: Server,
  o: {
    readonly maxConnectionsPerIp: number;
    readonly maxConnections: number;
    readonly trustProxy: readonly string[];
  },
  onRefused: (reason: RefusedReason) => void = () => undefined,
): number {
  const total = effectiveMaxConnections(o.maxConnections);
  // Node closes connections beyond this right after accepting them (freeing the fd).
  server.maxConnections = total;
  server.on('drop', () => onRefused('total'));
  const trusted = new Set(o.trustProxy);
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = addressOf(socket);
    if (trusted.has(ip)) return;
    const n = (open.get(ip) ?? 0) + 1;
    if (n > o.maxConnectionsPerIp) {
      onRefused('per_ip');
      socket.destroy();
      return;
    }
    open.set(ip, n);
    socket.once('close', () => {
      const left = (open.get(ip) ?? 1) - 1;
      if (left <= 0) open.delete(ip);
      else open.set(ip, left);
    });
  });
  return total;
}
