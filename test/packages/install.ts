/**
 * Packs the workspace's packages with `npm pack` and installs the tarballs into a fresh app
 * the way an app developer would (`npm ci` of the app), without the network: the app's
 * lockfile is cut from the workspace's own (the same versions and integrity hashes), so
 * every tarball comes from the npm cache that the workspace's `npm ci` filled.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository (dist/test/packages → root). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The workspace packages, by npm name. */
export const WORKSPACE = {
  backvault: 'packages/sdk',
  '@backvault/vault': 'packages/vault',
  '@backvault/cli': 'packages/cli',
} as const;
export type PackageName = keyof typeof WORKSPACE;

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  peer?: boolean;
  [k: string]: unknown;
}

/** `npm pack` of every workspace package into `dest`; the tarball path by package name. */
export async function packPackages(dest: string): Promise<Record<PackageName, string>> {
  await mkdir(dest, { recursive: true });
  const args = ['pack', '--json', '--pack-destination', dest];
  for (const dir of Object.values(WORKSPACE)) args.push('--workspace', dir);
  const { stdout } = await run('npm', args, { cwd: ROOT, maxBuffer: 64 << 20 });
  const packed = JSON.parse(stdout) as { name: string; filename: string }[];
  const out: Partial<Record<PackageName, string>> = {};
  for (const p of packed) out[p.name as PackageName] = join(dest, p.filename);
  for (const name of Object.keys(WORKSPACE) as PackageName[]) {
    if (!out[name]) throw new Error(`npm pack did not pack ${name}`);
  }
  return out as Record<PackageName, string>;
}

/** What a packed tarball lists (`npm pack --dry-run`-like, from the tarball itself). */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', tarball], { maxBuffer: 64 << 20 });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
}

/**
 * A fresh app in `appDir` depending on `tarballs` (and on `extra` registry packages at the
 * workspace's locked versions), installed with `npm ci --offline`. Returns npm's output.
 * @throws when npm fails (its stderr in the message).
 */
export async function installApp(
  appDir: string,
  tarballs: Partial<Record<PackageName, string>>,
  extra: string[] = [],
  options: { ignoreScripts?: boolean } = {},
): Promise<{ stdout: string; stderr: string }> {
  const rootLock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const all = rootLock.packages;
  const packages: Record<string, LockEntry> = {};
  const appDeps: Record<string, string> = {};

  const clean = (e: LockEntry, name: string): LockEntry => {
    const c = { ...e };
    // The workspace's lock may omit registry URLs (omit-lockfile-registry-resolved); without
    // one npm would ask the registry for the package document. The tarball URL is fixed.
    if (!c.resolved && c.version) {
      const base = name.startsWith('@') ? name.split('/')[1] : name;
      c.resolved = `https://registry.npmjs.org/${name}/-/${base}-${c.version}.tgz`;
    }
    delete c.dev;
    delete c.devOptional;
    delete c.peer;
    return c;
  };
  /** Copy the entry `name` resolves to from `from` (a lock path), and its dependencies. */
  const pull = (name: string, fromRoot: string, optional: boolean): void => {
    for (let base = fromRoot; ;) {
      const key = `${base ? `${base}/` : ''}node_modules/${name}`;
      const entry = all[key];
      if (entry && !entry.link) {
        // Hoisted in the workspace → hoisted in the app; nested stays nested below its parent.
        const target = base === '' ? `node_modules/${name}` : key;
        if (packages[target]) return;
        packages[target] = clean(entry, name);
        for (const dep of Object.keys(entry.dependencies ?? {})) pull(dep, key, false);
        for (const dep of Object.keys(entry.optionalDependencies ?? {})) pull(dep, key, true);
        return;
      }
      if (base === '') {
        if (optional) return;
        throw new Error(`the workspace lock has no ${name} (wanted from ${fromRoot || 'root'})`);
      }
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };

  for (const [name, tarball] of Object.entries(tarballs) as [PackageName, string][]) {
    const manifest = JSON.parse(
      await readFile(join(ROOT, WORKSPACE[name], 'package.json'), 'utf8'),
    ) as LockEntry & { name: string; bin?: unknown; engines?: unknown; license?: string };
    const integrity = `sha512-${createHash('sha512')
      .update(await readFile(tarball))
      .digest('base64')}`;
    const spec = `file:${tarball}`;
    appDeps[name] = spec;
    packages[`node_modules/${name}`] = {
      version: manifest.version,
      resolved: spec,
      integrity,
      license: manifest.license,
      ...(manifest.dependencies ? { dependencies: manifest.dependencies } : {}),
      ...(manifest.peerDependencies ? { peerDependencies: manifest.peerDependencies } : {}),
      ...(manifest.peerDependenciesMeta
        ? { peerDependenciesMeta: manifest.peerDependenciesMeta }
        : {}),
      ...(manifest.bin ? { bin: manifest.bin } : {}),
      ...(manifest.engines ? { engines: manifest.engines } : {}),
    };
  }
  for (const name of Object.keys(tarballs) as PackageName[]) {
    const entry = packages[`node_modules/${name}`] as LockEntry;
    for (const dep of Object.keys(entry.dependencies ?? {})) {
      if (dep in tarballs) continue;
      pull(dep, '', false);
    }
  }
  for (const name of extra) {
    const entry = all[`node_modules/${name}`];
    if (!entry?.version) throw new Error(`the workspace lock has no ${name}`);
    appDeps[name] = entry.version;
    pull(name, '', false);
  }
  await mkdir(appDir, { recursive: true });
  const pkg = {
    name: 'fresh-app',
    version: '1.0.0',
    private: true,
    type: 'module',
    dependencies: appDeps,
  };
  await writeFile(join(appDir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  const lock = {
    name: 'fresh-app',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: 'fresh-app', version: '1.0.0', dependencies: appDeps }, ...packages },
  };
  await writeFile(join(appDir, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
  const args = ['ci', '--offline', '--no-audit', '--no-fund'];
  if (options.ignoreScripts) args.push('--ignore-scripts');
  try {
    return await run('npm', args, { cwd: appDir, maxBuffer: 64 << 20 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`npm ci in ${appDir} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`, {
      cause: error,
    });
  }
}
