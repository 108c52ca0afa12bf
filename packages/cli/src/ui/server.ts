/**
 * The local settings screen's HTTP server (`backvault ui`): node:http on 127.0.0.1 only.
 *
 * Every request passes, in order:
 * 1. the Host check — `127.0.0.1:PORT` or `localhost:PORT` exactly, else 403 (a page on
 *    another origin that rebinds its DNS name to 127.0.0.1 sends its own name as Host);
 * 2. the session check — the token printed on start (256 bits from the CSPRNG) is exchanged
 *    once, on `/?token=…`, for an HttpOnly, SameSite=Strict session cookie (another 256
 *    bits), and every later request must carry that cookie; both are compared in constant
 *    time. No token/cookie → 403;
 * 3. for anything but GET/HEAD: an `Origin` header, if present, must be this origin, and
 *    API bodies must be `application/json` (a cross-site form cannot send that without a
 *    CORS preflight, which this server never answers).
 *
 * Every response carries a strict Content-Security-Policy (scripts from this origin only,
 * plus the import map by its hash; `wasm-unsafe-eval` for the OPAQUE WebAssembly), no
 * CORS headers, `no-store`, `nosniff`, no referrer, no framing.
 *
 * Node-only. Routes: see {@link handleApi} (`/api/*`), {@link proxyVault} (`/vault/*`).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PortInUseError, UsageError } from 'backvault/errors';
import { loadAssets, PAGES, type UiAssets } from './assets.js';
import { handleApi, type ApiContext } from './api.js';
import { JobRunner } from './jobs.js';
import { proxyVault } from './vault-proxy.js';
import type { UiConfig } from './config.js';

/** The only address the server binds. */
export const UI_HOST = '127.0.0.1';

/** Largest request body the server reads (JSON and proxied OPAQUE messages are small). */
export const MAX_BODY_BYTES = 256 * 1024;

/** A running UI server. */
export interface UiServer {
  /** `http://localhost:PORT` (the socket listens on 127.0.0.1 only) */
  readonly origin: string;
  readonly port: number;
  /** The URL to open: origin + `/?token=…` (print it; it is the only way in). */
  readonly url: string;
  /**
   * Stops listening and closes every connection. A running backup is not waited for: the
   * engine commits atomically, so the process may end at any instant (as on Ctrl-C).
   */
  close(): Promise<void>;
}

/** Fixed-length digests, so the comparison is constant-time whatever the lengths. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function securityHeaders(assets: UiAssets): Record<string, string> {
  return {
    'content-security-policy': [
      "default-src 'none'",
      `script-src 'self' 'wasm-unsafe-eval' ${assets.importMapHash}`,
      "style-src 'self'",
      "img-src 'self' data:",
      "connect-src 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'cache-control': 'no-store',
  };
}

function refuse(res: ServerResponse, headers: Record<string, string>, why: string): void {
  res.writeHead(403, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${why}\n`);
}

/** Reads a request body up to {@link MAX_BODY_BYTES}; `undefined` when it is larger. */
export function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooBig ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Starts the server on 127.0.0.1.
 * @throws UsageError for a host other than 127.0.0.1 or a port out of range;
 *   PortInUseError when the port is taken.
 */
export async function startUiServer(config: UiConfig): Promise<UiServer> {
  if (config.host !== undefined && config.host !== UI_HOST) {
    throw new UsageError(
      `backvault ui listens on ${UI_HOST} only, not ${config.host}`,
      'The settings screen holds your backup key: it is never reachable from other machines.',
    );
  }
  const wanted = config.port ?? 0;
  if (!Number.isInteger(wanted) || wanted < 0 || wanted > 65535) {
    throw new UsageError('--port must be a whole number from 0 to 65535');
  }
  const assets = loadAssets();
  const token = randomBytes(32).toString('base64url');
  const session = randomBytes(32).toString('base64url');
  const jobs = new JobRunner();
  let port = 0;
  const headers = securityHeaders(assets);
  const api: ApiContext = { config, jobs, headers };

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, headers);
      res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = req.headers.host ?? '';
    if (host !== `${UI_HOST}:${port}` && host !== `localhost:${port}`) {
      return refuse(res, headers, 'refused: unexpected Host header');
    }
    const url = new URL(req.url ?? '/', `http://${host}`);
    const cookieName = `backvault_ui_${port}`;
    const given = url.searchParams.get('token');
    if (given !== null && req.method === 'GET') {
      if (!sameSecret(given, token)) return refuse(res, headers, 'refused: wrong token');
      url.searchParams.delete('token');
      // The token leaves the address bar (and history) at once: the cookie carries on.
      res.writeHead(303, {
        ...headers,
        'set-cookie': `${cookieName}=${session}; HttpOnly; SameSite=Strict; Path=/`,
        location: `${url.pathname}${url.search}`,
      });
      return void res.end();
    }
    const cookie = cookieValue(req.headers.cookie, cookieName);
    if (cookie === undefined || !sameSecret(cookie, session)) {
      return refuse(
        res,
        headers,
        'refused: open the link that `backvault ui` printed (it carries the access token)',
      );
    }
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${host}`) {
        return refuse(res, headers, 'refused: cross-origin request');
      }
    }
    const path = url.pathname;
    if (path.startsWith('/api/')) return handleApi(api, req, res, path);
    if (path.startsWith('/vault/')) return proxyVault(api, req, res, path.slice('/vault'.length));
    if (method !== 'GET') {
      res.writeHead(405, headers);
      return void res.end();
    }
    if (PAGES[path] !== undefined) {
      res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' });
      return void res.end(assets.html);
    }
    if (path === '/ui.css') {
      res.writeHead(200, { ...headers, 'content-type': 'text/css; charset=utf-8' });
      return void res.end(assets.css);
    }
    const file = assets.file(path);
    const data = file ? await readFile(file).catch(() => undefined) : undefined;
    if (!data) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
      return void res.end('not found\n');
    }
    res.writeHead(200, { ...headers, 'content-type': 'text/javascript; charset=utf-8' });
    res.end(data);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new PortInUseError(`${UI_HOST}:${wanted}`) : e),
    );
    server.listen({ host: UI_HOST, port: wanted, exclusive: true }, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  // The link names localhost, not 127.0.0.1: WebAuthn refuses an IP address as relying-party
  // id, and the passkey protection uses the page's host as one. Still bound to 127.0.0.1
  // only; Chromium resolves localhost to loopback itself and treats it as a secure context.
  const origin = `http://localhost:${port}`;
  return {
    origin,
    port,
    url: `${origin}/?token=${token}`,
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
    },
  };
}
