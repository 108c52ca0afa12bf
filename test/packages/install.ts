/**
 * Packs the workspace's packages with `npm pack` and installs the tarballs into a fresh app
 * the way an app developer would (`npm ci` of the app), without the network: the app's
 * lockfile is cut from the workspace's own (the same versions and integrity hashes), so
 * every tarball comes from the npm cache that the workspace's `npm ci` filled.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
  // An app that has a package.json keeps it (name, scripts); its dependencies become these.
  let pkg: Record<string, unknown> = {
    name: 'fresh-app',
    version: '1.0.0',
    private: true,
    type: 'module',
  };
  try {
    pkg = JSON.parse(await readFile(join(appDir, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  pkg = { ...pkg, dependencies: appDeps };
  delete pkg.devDependencies;
  const appName = typeof pkg.name === 'string' ? pkg.name : 'fresh-app';
  const appVersion = typeof pkg.version === 'string' ? pkg.version : '1.0.0';
  await writeFile(join(appDir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  const lock = {
    name: appName,
    version: appVersion,
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: appName, version: appVersion, dependencies: appDeps }, ...packages },
  };
  await writeFile(join(appDir, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);

  // One real install per set of packages in a run of the suite: later apps with the same
  // lockfile get a copy of its node_modules (native modules built once, ~2 min for the vault).
  // Keyed by what is installed (tarballs by their integrity, not their temporary paths).
  const identity = Object.entries(lock.packages as Record<string, LockEntry>).map(([k, v]) => [
    k,
    {
      ...v,
      resolved: v.resolved?.startsWith('file:') ? 'tarball' : v.resolved,
      dependencies: Object.fromEntries(
        Object.entries(v.dependencies ?? {}).map(([d, spec]) => [
          d,
          spec.startsWith('file:') ? 'tarball' : spec,
        ]),
      ),
    },
  ]);
  const key = createHash('sha256')
    .update(JSON.stringify([identity, options.ignoreScripts === true]))
    .digest('hex')
    .slice(0, 16);
  const cached = join(ROOT, '.tmp', 'installs', key);
  // Test files run in parallel: the first to need a set installs it; the others wait for
  // its copy instead of building the same native modules at the same time.
  const lockDir = `${cached}.lock`;
  await mkdir(dirname(cached), { recursive: true });
  for (const deadline = Date.now() + 15 * 60_000; ;) {
    if (await copyCached(cached, appDir)) {
      return {
        stdout: 'copied from the first install of this lockfile',
        stderr: await readFile(join(cached, 'npm-stderr.txt'), 'utf8'),
      };
    }
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock whose installer is gone (killed by a timeout) is taken over.
      const pid = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => 'NaN'));
      if (Number.isInteger(pid) && !alive(pid)) await rm(lockDir, { recursive: true, force: true });
      if (Date.now() > deadline)
        throw new Error(`waited too long for ${lockDir}`, { cause: error });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await installFresh(appDir, cached, options);
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Copy a cached install's node_modules into `appDir`; false when there is none yet. */
async function copyCached(cached: string, appDir: string): Promise<boolean> {
  try {
    await cp(join(cached, 'node_modules'), join(appDir, 'node_modules'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return false;
  }
}

/** `npm ci --offline` in `appDir`, then keep a copy of its node_modules under `cached`. */
async function installFresh(
  appDir: string,
  cached: string,
  options: { ignoreScripts?: boolean },
): Promise<{ stdout: string; stderr: string }> {
  const args = ['ci', '--offline', '--no-audit', '--no-fund'];
  if (options.ignoreScripts) args.push('--ignore-scripts');
  // better-sqlite3's install script looks for a prebuilt binary before it compiles SQLite
  // (~100 s of CPU per install, three installs per suite run). An app developer's install
  // downloads one from the package's GitHub releases; here, without the network, it finds
  // the one the workspace's own `npm ci` built, through prebuild-install's documented
  // `local-prebuilds` setting in an rc file the install script finds from its directory up.
  // Without that file (or for another version) it compiles, as before.
  const rc = join(appDir, '.prebuild-installrc');
  const prebuilds = await localPrebuilds();
  if (prebuilds) await writeFile(rc, `local-prebuilds=${prebuilds}\n`);
  let result: { stdout: string; stderr: string };
  try {
    result = await run('npm', args, { cwd: appDir, maxBuffer: 64 << 20 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`npm ci in ${appDir} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`, {
      cause: error,
    });
  } finally {
    if (prebuilds) await rm(rc, { force: true });
  }
  const staging = `${cached}.${process.pid}.tmp`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  await cp(join(appDir, 'node_modules'), join(staging, 'node_modules'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  await writeFile(join(staging, 'npm-stderr.txt'), result.stderr);
  try {
    await rename(staging, cached);
  } catch {
    // Another test file installed the same set at the same time: keep theirs.
    await rm(staging, { recursive: true, force: true });
  }
  return result;
}

/**
 * A directory holding better-sqlite3's prebuilt binary for this Node, named as its GitHub
 * release assets are (`better-sqlite3-v12.11.1-node-v115-linux-x64.tar.gz`), packed from
 * the workspace's own build; undefined when the workspace has none (then installs compile).
 */
async function localPrebuilds(): Promise<string | undefined> {
  const pkgDir = join(ROOT, 'node_modules', 'better-sqlite3');
  const binary = join('build', 'Release', 'better_sqlite3.node');
  try {
    await access(join(pkgDir, binary));
  } catch {
    return undefined;
  }
  const { version } = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  const dir = join(ROOT, '.tmp', 'prebuilds');
  const file = join(
    dir,
    `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`,
  );
  try {
    await access(file);
    return dir;
  } catch {
    // Not made yet in this checkout: made below (test files may race; rename is atomic).
  }
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await run('tar', ['-czf', tmp, '-C', pkgDir, binary]);
  await rename(tmp, file);
  return dir;
}
