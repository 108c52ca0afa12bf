/**
 * A loopback TCP proxy for fault injection between a client and one real server.
 * Modes: `pass` forwards both ways; `drop-responses` keeps forwarding the client's bytes
 * but throws away the server's (the request is executed, the answer is lost — the
 * "unknown outcome" every CAS must survive); `blackhole` forwards nothing.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** Proxy behaviour; see the module comment. */
export type ProxyMode = 'pass' | 'drop-responses' | 'blackhole';

/** A running proxy. */
export interface TcpProxy {
  /** `http://127.0.0.1:<port>` of the proxy's listening side. */
  readonly url: string;
  mode: ProxyMode;
  /** Client bytes forwarded to the server while the mode was `drop-responses`. */
  readonly droppedRequestBytes: number;
  /** Destroys every open connection (clients see a reset). */
  resetConnections(): void;
  close(): Promise<void>;
}

/**
 * Starts a proxy on 127.0.0.1 (free port) to `target` (`host:port` or `http://host:port`).
 * @throws Error if the port cannot be bound.
 */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const u = new URL(target.includes('://') ? target : `tcp://${target}`);
  const targetPort = Number(u.port);
  const targetHost = u.hostname;
  const sockets = new Set<Socket>();
  let dropped = 0;
  const proxy: { mode: ProxyMode } = { mode: 'pass' };
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    const gone = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', gone).on('close', gone);
    upstream.on('error', gone).on('close', gone);
    client.on('data', (d: Buffer) => {
      if (proxy.mode === 'blackhole') return;
      if (proxy.mode === 'drop-responses') dropped += d.length;
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (proxy.mode === 'pass') client.write(d);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return proxy.mode;
    },
    set mode(m: ProxyMode) {
      proxy.mode = m;
    },
    get droppedRequestBytes() {
      return dropped;
    },
    resetConnections() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close() {
      for (const s of sockets) s.destroy();
      sockets.clear();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
