/**
 * The web origin of the browser test, on 127.0.0.1: one HTML page (import map + module
 * script), the COMPILED browser-safe modules from an allowlist of folders, the ESM builds of
 * the SDK's npm dependencies, a same-origin proxy of `/v1/*` to a real vault (so no CORS
 * question; left out for test/browser/cors.test.ts, where the vault is on another origin),
 * and `POST /result` where the page reports.
 *
 * No bundler: what the browser runs is exactly what tsc emitted for `src/client`, `src/wire`,
 * `src/format` and `src/errors.ts`.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { browserEntry, type ServedPackage } from '#cli/ui/assets.js';
import { forward } from '../client/vault-process.js';

/** The compiled tree this file belongs to (test/browser → its root). */
const DIST_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The device SDK package's compiled tree (packages/sdk/dist). */
const SDK_DIST = join(DIST_ROOT, '../packages/sdk/dist');

/** URL prefix → compiled folder served under it (recursively, `.js` only). */
const SERVED_FOLDERS: Readonly<Record<string, string>> = {
  '/src/client/': join(SDK_DIST, 'client'),
  '/src/wire/': join(SDK_DIST, 'wire'),
  '/src/format/': join(SDK_DIST, 'format'),
  // TypeBox, bundled into one file (packages/sdk/src/vendor/typebox.ts).
  '/src/vendor/': join(SDK_DIST, 'vendor'),
};
/** Single compiled files served as they are. */
const SERVED_FILES: Readonly<Record<string, string>> = {
  '/src/errors.js': join(SDK_DIST, 'errors.js'),
  '/test/browser/sdk-page.js': join(DIST_ROOT, 'test/browser/sdk-page.js'),
  '/test/browser/cors-page.js': join(DIST_ROOT, 'test/browser/cors-page.js'),
};

/**
 * Bare specifiers the compiled SDK imports, mapped by the page's import map. A new one in
 * src/client or src/wire makes the page fail with "Failed to resolve module specifier":
 * add it here.
 */
export const BARE_SPECIFIERS = [
  '@serenity-kit/opaque',
  '@sinclair/typebox',
  '@sinclair/typebox/value',
] as const;

/** The import map and the package folders it points into. */
function importMap(): { map: { imports: Record<string, string> }; packages: ServedPackage[] } {
  const imports: Record<string, string> = {};
  const packages = new Map<string, ServedPackage>();
  for (const specifier of BARE_SPECIFIERS) {
    const { pkg, file } = browserEntry(specifier);
    packages.set(pkg.name, pkg);
    imports[specifier] = `/pkg/${pkg.name}/${relative(pkg.root, file).split(sep).join('/')}`;
  }
  // The test page imports the SDK as the tests do (`#sdk/…`, the workspace root's import
  // alias); in the browser that prefix is the served SDK tree.
  imports['#sdk/'] = '/src/';
  return { map: { imports }, packages: [...packages.values()] };
}

/**
 * The page: a classic script installs the error reporters first (so a module that fails to
 * load or throws at evaluation is reported, not lost), then a module script dynamically
 * imports the app module (a static import failure would not reach any handler).
 */
function pageHtml(map: { imports: Record<string, string> }, autorun: boolean): string {
  if (!autorun) {
    // Driven from outside (Playwright imports a module and calls it): only the import map.
    return `<!doctype html>
<html><head><meta charset="utf-8"><title>backvault SDK, cross-origin</title>
<script type="importmap">${JSON.stringify(map)}</script>
</head><body><h1>backvault SDK on this page, the vault on another origin</h1>
<pre id="log" style="white-space: pre-wrap"></pre></body></html>`;
  }
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>backvault SDK in a browser</title>
<script type="importmap">${JSON.stringify(map)}</script>
<script>
  const env = () => ({ userAgent: navigator.userAgent, typeofProcess: typeof process,
    typeofBuffer: typeof Buffer, steps: [] });
  const asError = (e) => e instanceof Error
    ? { name: e.name, message: e.message, code: e.code, stack: e.stack }
    : { name: typeof e, message: String(e) };
  window.__report = (r) => fetch('/result', { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
  addEventListener('error', (ev) => window.__report({ ok: false, source: 'window-error', ...env(),
    error: ev.error ? asError(ev.error)
      : { name: 'Error', message: ev.message + ' at ' + ev.filename + ':' + ev.lineno } }));
  addEventListener('unhandledrejection', (ev) => window.__report({ ok: false,
    source: 'unhandled-rejection', ...env(), error: asError(ev.reason) }));
  window.__asError = asError; window.__env = env;
</script>
<script type="module">
  try {
    const page = await import('/test/browser/sdk-page.js');
    await window.__report(await page.runSdkInBrowser());
  } catch (e) {
    await window.__report({ ok: false, source: 'module-load', ...window.__env(),
      error: window.__asError(e) });
  }
</script>
</head><body>backvault SDK test</body></html>`;
}

/** The running origin. */
export interface PageServer {
  readonly url: string;
  /** Every JSON body POSTed to /result, in order. */
  readonly results: unknown[];
  /** `METHOD /path` of every request proxied to the vault, in order. */
  readonly proxied: string[];
  /** Paths the page asked for that were refused or missing (helps when a module is missing). */
  readonly refused: string[];
  /** Resolves with the first result POSTed. */
  nextResult(): Promise<unknown>;
  close(): Promise<void>;
}

const MAX_RESULT_BYTES = 1 << 20;

/** Maps a URL path to a file inside the allowlist, or undefined. Never follows `..`. */
function servedFile(path: string, packages: readonly ServedPackage[]): string | undefined {
  if (path.includes('..') || path.includes('\\') || path.includes('\0')) return undefined;
  if (!path.endsWith('.js') && !path.endsWith('.mjs')) return undefined;
  const single = SERVED_FILES[path];
  if (single) return single;
  const roots: [string, string][] = [
    ...Object.entries(SERVED_FOLDERS),
    ...packages.map((p): [string, string] => [`/pkg/${p.name}/`, p.root]),
  ];
  for (const [prefix, root] of roots) {
    if (!path.startsWith(prefix)) continue;
    const file = resolve(root, path.slice(prefix.length));
    return file.startsWith(root + sep) ? file : undefined;
  }
  return undefined;
}

/**
 * Starts the origin on 127.0.0.1 in this process.
 * @param vaultUrl the real vault `/v1/*` is proxied to; undefined: no proxy (the page talks
 *   to a vault on another origin, test/browser/cors.test.ts).
 * @param options.autorun false: the page only carries the import map (a test drives it);
 *   default true: it runs `sdk-page.js` and POSTs the result.
 * @throws Error when a dependency's ESM build cannot be located.
 */
export async function startPageServer(
  vaultUrl: string | undefined,
  options: { readonly autorun?: boolean } = {},
): Promise<PageServer> {
  const target = vaultUrl === undefined ? undefined : new URL(vaultUrl);
  const { map, packages } = importMap();
  const html = pageHtml(map, options.autorun ?? true);
  const results: unknown[] = [];
  const refused: string[] = [];
  const proxied: string[] = [];
  const waiters: ((r: unknown) => void)[] = [];

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_RESULT_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (target && path.startsWith('/v1/')) {
        proxied.push(`${req.method ?? ''} ${path}`);
        return forward(target, req, res, body);
      }
      if (req.method === 'POST' && path === '/result') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          parsed = { ok: false, source: 'server', error: { message: 'result is not JSON' } };
        }
        results.push(parsed);
        for (const w of waiters.splice(0)) w(parsed);
        res.writeHead(204);
        return res.end();
      }
      if (req.method !== 'GET') {
        res.writeHead(405);
        return res.end();
      }
      if (path === '/') {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
        });
        return res.end(html);
      }
      const file = servedFile(path, packages);
      if (!file) {
        if (path !== '/favicon.ico') refused.push(path);
        res.writeHead(404);
        return res.end();
      }
      readFile(file).then(
        (data) => {
          res.writeHead(200, {
            'content-type': 'text/javascript; charset=utf-8',
            'cache-control': 'no-store',
          });
          res.end(data);
        },
        () => {
          refused.push(path);
          res.writeHead(404);
          res.end();
        },
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    results,
    proxied,
    refused,
    nextResult: () =>
      results.length > 0
        ? Promise.resolve(results[0])
        : new Promise<unknown>((r) => waiters.push(r)),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
