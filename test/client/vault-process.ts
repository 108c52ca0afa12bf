/**
 * A real vault process for device-side tests: `node src/vault/serve.js` (or `backvault vault
 * serve`) on 127.0.0.1 with `--dev-auth`, stopped by its own PID. Also a recording loopback
 * proxy, to see every request body a device sends.
 */
import {
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { launchVault } from '../vault/vault-process.js';

/** Compiled vault entry and CLI, located from this compiled file (test/client → src/…). */
export const SERVE_JS = fileURLToPath(
  new URL('../../../packages/vault/dist/vault/serve.js', import.meta.url),
);
export const MAIN_JS = fileURLToPath(
  new URL('../../../packages/cli/dist/cli/main.js', import.meta.url),
);

/** A running vault child process (see test/vault/vault-process.ts). */
export interface VaultProcess {
  readonly url: string;
  readonly serverPublicKey: string;
  readonly pid: number;
  /** Everything the vault wrote (its JSON logs). */
  logs(): string;
  /** SIGTERM by PID, then SIGKILL after 5 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts a `--dev-auth` vault on a free loopback port, with a minimal environment (PATH and
 * a HOME inside `dataDir`).
 * @param via `serve` runs serve.js; `cli` runs `backvault vault serve`.
 */
export async function startVaultProcess(opts: {
  dataDir: string;
  maxAttempts?: number;
  via?: 'serve' | 'cli';
  extraArgs?: string[];
}): Promise<VaultProcess> {
  const flags = [
    '--data',
    opts.dataDir,
    '--port',
    '0',
    '--dev-auth',
    '--max-attempts',
    String(opts.maxAttempts ?? 10),
    '--log-level',
    'info',
    ...(opts.extraArgs ?? []),
  ];
  const entry = opts.via === 'cli' ? [MAIN_JS, 'vault', 'serve'] : [SERVE_JS];
  const v = await launchVault([...entry, ...flags], {
    PATH: process.env.PATH ?? '',
    HOME: opts.dataDir,
  });
  return {
    url: v.url,
    serverPublicKey: v.serverPublicKey,
    pid: v.pid,
    logs: () => v.output(),
    stop: () => v.stop(),
  };
}

/** Forward one request (its body already read) to `target`; a failure is a 502. */
export function forward(
  target: URL,
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
): void {
  const fwd = request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: target.host },
    },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  fwd.on('error', () => {
    res.writeHead(502);
    res.end();
  });
  fwd.end(body);
}

/** A loopback HTTP proxy that forwards to `target` and keeps every request body. */
export interface RecordingProxy {
  readonly url: string;
  /** Request bodies seen so far, with method and path. */
  readonly requests: { method: string; path: string; headers: string; body: Buffer }[];
  close(): Promise<void>;
}

/** Starts a {@link RecordingProxy} in this process on 127.0.0.1. */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const t = new URL(target);
  const requests: RecordingProxy['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: JSON.stringify(req.headers),
        body,
      });
      forward(t, req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
