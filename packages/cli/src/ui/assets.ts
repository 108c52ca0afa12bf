/**
 * What the UI server sends to the browser besides JSON: the HTML shell of every page, the
 * stylesheet, the compiled page modules (`src/ui/web`), and the ESM builds of what they
 * import — the device SDK's browser-safe entry points (`backvault/client`, `/format`,
 * `/errors`, `/password-strength`) and its npm dependencies — reached through an import map. No bundler: the browser runs what
 * tsc emitted.
 *
 * Node-only.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UI_CSS } from './styles.js';

/** The CLI package's compiled tree (this file is dist/ui/assets.js). */
const DIST_SRC = fileURLToPath(new URL('../', import.meta.url));

/** URL prefix → compiled folder served under it (`.js` only, never `..`). */
const SERVED_FOLDERS: Readonly<Record<string, string>> = {
  '/src/ui/web/': join(DIST_SRC, 'ui/web'),
};

/**
 * Bare specifiers imported by the browser modules (the SDK and the password meter). A new
 * one makes the page fail with "Failed to resolve module specifier": add it here.
 */
export const BARE_SPECIFIERS = [
  'backvault/client',
  'backvault/errors',
  'backvault/format',
  'backvault/password-strength',
  '@serenity-kit/opaque',
  '@sinclair/typebox',
  '@sinclair/typebox/value',
  '@zxcvbn-ts/core',
  '@zxcvbn-ts/language-common',
  '@zxcvbn-ts/dictionary-compression/decompress',
  'fastest-levenshtein',
] as const;

/** An npm package whose browser ESM files are served. */
export interface ServedPackage {
  readonly name: string;
  readonly root: string;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

function packageRoot(name: string, entry: string): string {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === name) return dir;
    } catch {
      // not a package root
    }
  }
  throw new Error(`cannot find the package root of ${name}`);
}

/**
 * The browser ESM file of a specifier: through `exports` (Node's `import` condition) when the
 * package has them, else its `browser`/`module` field (a CJS `main` would not load).
 */
export function browserEntry(specifier: string): { pkg: ServedPackage; file: string } {
  const name = packageName(specifier);
  const resolved = fileURLToPath(import.meta.resolve(specifier));
  const root = packageRoot(name, resolved);
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    exports?: unknown;
    browser?: unknown;
    module?: unknown;
  };
  let file = resolved;
  if (manifest.exports === undefined && specifier === name) {
    const field = typeof manifest.browser === 'string' ? manifest.browser : manifest.module;
    if (typeof field !== 'string') throw new Error(`${name} has no ESM entry`);
    file = join(root, field);
  }
  return { pkg: { name, root }, file };
}

/** Everything the server needs to answer for assets, computed once at start. */
export interface UiAssets {
  /** The HTML shell (same for every page; the module reads `location.pathname`). */
  readonly html: string;
  readonly css: string;
  /** `'sha256-…'` of the import map: the only inline `<script>` the CSP allows. */
  readonly importMapHash: string;
  /** A URL path → the file to send, or undefined (404). */
  file(path: string): string | undefined;
}

/** Page titles by path; the server answers these paths with the shell. */
export const PAGES: Readonly<Record<string, string>> = {
  '/': 'Chat backup',
  '/protect': 'End-to-end encrypted backup',
  '/restore': 'Restore on a new device',
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The page shell: landmarks, navigation and an empty `<main>` the page module fills. The
 * import map is the only inline script (allowed by its hash); the app is an external module.
 */
function shell(importMap: string): string {
  const nav = Object.entries(PAGES)
    .map(([href, title]) => `<li><a href="${href}">${escapeHtml(title)}</a></li>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>backvault</title>
<link rel="stylesheet" href="/ui.css">
<script type="importmap">${importMap}</script>
<script type="module" src="/src/ui/web/app.js"></script>
</head><body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><p class="brand">backvault</p>
<nav aria-label="Sections"><ul>${nav}</ul></nav></header>
<main id="main" tabindex="-1"><p class="loading">Loading…</p></main>
<footer><p>Served by <code>backvault ui</code> on this computer only.</p></footer>
</body></html>`;
}

/**
 * Builds the assets.
 * @throws Error when a dependency's ESM build cannot be located (a broken install).
 */
export function loadAssets(): UiAssets {
  const imports: Record<string, string> = {};
  const packages = new Map<string, ServedPackage>();
  for (const specifier of BARE_SPECIFIERS) {
    const { pkg, file } = browserEntry(specifier);
    packages.set(pkg.name, pkg);
    imports[specifier] = `/pkg/${pkg.name}/${relative(pkg.root, file).split(sep).join('/')}`;
  }
  const importMap = JSON.stringify({ imports });
  const importMapHash = `'sha256-${createHash('sha256').update(importMap).digest('base64')}'`;
  const roots: [string, string][] = [
    ...Object.entries(SERVED_FOLDERS),
    ...[...packages.values()].map((p): [string, string] => [`/pkg/${p.name}/`, p.root]),
  ];
  return {
    html: shell(importMap),
    css: UI_CSS,
    importMapHash,
    file(path) {
      if (path.includes('..') || path.includes('\\') || path.includes('\0')) return undefined;
      if (!path.endsWith('.js') && !path.endsWith('.mjs')) return undefined;
      for (const [prefix, root] of roots) {
        if (!path.startsWith(prefix)) continue;
        const f = resolve(root, path.slice(prefix.length));
        return f.startsWith(root + sep) ? f : undefined;
      }
      return undefined;
    },
  };
}
