/**
 * Puts an example into a fresh app directory, as an app developer would have it, and runs
 * its entry. {@link installPackages} is the ONE place that decides where `backvault` and
 * `@backvault/vault` come from.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile } from 'node:fs/promises';
import { installApp, packPackages, WORKSPACE, type PackageName } from '../packages/install.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (this file runs from dist/test/examples). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const EXAMPLES_DIR = join(REPO_ROOT, 'examples');

let packed: Promise<Record<PackageName, string>> | undefined;

/**
 * Installs the dependencies named in `appDir/package.json` as an app developer would: the
 * workspace's packages from their `npm pack` tarballs (packed once per test file), anything
 * else (jose, esbuild) at the workspace's locked version, with `npm ci --offline` against
 * the npm cache that the workspace's `npm ci` filled (test/packages/install.ts).
 */
export async function installPackages(appDir: string): Promise<void> {
  const pkg = JSON.parse(await readFile(join(appDir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
  packed ??= mkdtemp(join(tmpdir(), 'bv-packs-')).then((dir) => packPackages(dir));
  const tarballs = await packed;
  const ours: Partial<Record<PackageName, string>> = {};
  const extra: string[] = [];
  for (const name of names) {
    if (name in WORKSPACE) ours[name as PackageName] = tarballs[name as PackageName];
    else extra.push(name);
  }
  await installApp(appDir, ours, extra);
}

/** A fresh app directory holding a copy of `examples/<name>` with its packages installed. */
export async function exampleApp(name: string): Promise<string> {
  const appDir = await mkdtemp(join(tmpdir(), `bv-example-${name}-`));
  await cp(join(EXAMPLES_DIR, name), appDir, {
    recursive: true,
    filter: (src) => !/[/\\](node_modules|dist)$/.test(src),
  });
  await installPackages(appDir);
  return appDir;
}

/** What a finished example printed. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node <file> ...args` in `appDir`; kills it after `timeoutMs`. */
export function runNode(
  appDir: string,
  file: string,
  args: readonly string[] = [],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], {
      cwd: appDir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Type-checks an app's `.mjs` files (`// @ts-check`, strict) against the types its
 * installed packages ship, as an editor would show them to the app developer.
 */
export function typeCheck(appDir: string, files: readonly string[]): Promise<RunResult> {
  const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  return runNode(appDir, tsc, [
    '--noEmit',
    '--allowJs',
    '--checkJs',
    '--strict',
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--target',
    'es2022',
    '--lib',
    'es2023,dom',
    '--typeRoots',
    join(REPO_ROOT, 'node_modules/@types'),
    '--types',
    'node',
    '--skipLibCheck',
    ...files,
  ]);
}
