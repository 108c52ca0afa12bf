/**
 * `vault serve` on a port another process holds: said before the vault starts, as
 * PORT_IN_USE (exit 8), instead of worker processes dying one by one and the start
 * failing as an internal error. A probe listens and closes at once; the vault's own
 * listen error is mapped the same way (see `local-errors.ts`) should the port be taken
 * in between.
 */
import { createServer } from 'node:net';
import { PortInUseError } from 'backvault/errors';

/**
 * @throws PortInUseError when `host:port` is taken. Other failures (an address this
 *   machine does not have, a privileged port) are left for the vault to report.
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new PortInUseError(`${host}:${port}`));
      else resolve();
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}
