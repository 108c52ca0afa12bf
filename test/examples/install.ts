/**
 * Puts an example into a fresh app directory, as an app developer would have it, and runs
 * its entry. {@link installPackages} is the ONE place that decides where `backvault` and
 * `@backvault/vault` come from.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (this file runs from dist/test/examples). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const EXAMPLES_DIR = join(REPO_ROOT, 'examples');

/**
 * Installs the dependencies named in `appDir/package.json` into `appDir/node_modules`.
 *
 * TODAY (before the workspace split): `backvault` is a symlink to this repository, whose
 * package.json `exports` point into the compiled dist/src; `@backvault/vault` is a
 * two-line package re-exporting dist/src/vault/context.js (today's `backvault/vault`);
 * anything else (jose, esbuild) is a symlink into the repository's node_modules.
 * AFTER the split: `npm install --offline` of the packed tarballs (npm pack of
 * packages/sdk and packages/vault) plus the example's other dependencies, against the
 * npm cache that `npm ci` filled. Nothing else in the tests changes.
 */
export async function installPackages(appDir: string): Promise<void> {
  const pkg = JSON.parse(await readFile(join(appDir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
  for (const name of names) {
    const at = join(appDir, 'node_modules', name);
    await mkdir(dirname(at), { recursive: true });
    if (name === 'backvault') {
      await symlink(REPO_ROOT, at, 'dir');
    } else if (name === '@backvault/vault') {
      await mkdir(at);
      const entry = join(REPO_ROOT, 'dist/src/vault/context.js');
      await writeFile(
        join(at, 'package.json'),
        JSON.stringify({
          name,
          type: 'module',
          exports: { '.': { types: './index.d.ts', default: './index.js' } },
        }),
      );
      const reexport = `export * from ${JSON.stringify(entry)};\n`;
      await writeFile(join(at, 'index.js'), reexport);
      await writeFile(join(at, 'index.d.ts'), reexport);
    } else {
      await symlink(join(REPO_ROOT, 'node_modules', name), at, 'dir');
    }
  }
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
