/**
 * The packages as an app developer meets them (issue 19): `npm pack` of the workspace, the
 * tarballs installed into fresh apps with `npm ci` (offline, from the npm cache), and the
 * app's own Node program — importing only the published entry points — backing up,
 * restoring byte-exact and recovering its key through a vault installed from its tarball.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { launchVault } from '../vault/vault-process.js';
import { installApp, packPackages, tarballFiles, type PackageName } from './install.js';

const run = promisify(execFile);

/** Every file under `dir`, relative, sorted (symlinks and special files left out). */
async function listFiles(dir: string, base = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, base), { withFileTypes: true })) {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

/** The app's program: only `backvault` entry points, as the README shows them. */
const APP_PROGRAM = `
import { backup, restore, check, generateBackupKey, VaultClient, requestDevToken } from 'backvault';
import { LocalStorage } from 'backvault/node';

const [source, store, target, statePath, vaultUrl] = process.argv.slice(2);
const storage = new LocalStorage(store);
const backupKey = generateBackupKey();
const out = {};
try {
  await backup({ storage, backupKey, source, statePath, init: true });
  out.withoutSqlite = 'saved';
} catch (error) {
  out.withoutSqlite = error.code;
  out.hint = error.hint;
}
// Nothing writes this database during the backup: read it as a plain file.
const saved = await backup({ storage, backupKey, source, statePath, init: true, databases: false });
out.snapshot = saved.snapshotId;
out.check = (await check({ storage, backupKey, statePath })).ok;
await restore({ storage, backupKey, target, statePath });

const token = () => requestDevToken({ baseUrl: vaultUrl, account: 'app-user-1' });
const password = 'violet tractor sings under 42 quiet lamps';
await new VaultClient({ baseUrl: vaultUrl, token }).enable({ password, backupKey });
const recovered = await new VaultClient({ baseUrl: vaultUrl, token }).recover({ password });
out.keyRecovered = Buffer.from(recovered).equals(Buffer.from(backupKey));
console.log(JSON.stringify(out));
`;

describe('the packages, packed and installed into a fresh app', () => {
  let work: string;
  let tarballs: Record<PackageName, string>;
  let sdkInstall: { stdout: string; stderr: string };
  const sdkApp = (): string => join(work, 'app');
  const vaultApp = (): string => join(work, 'operator');

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'bv-packages-'));
    tarballs = await packPackages(join(work, 'packs'));
    sdkInstall = await installApp(sdkApp(), { backvault: tarballs.backvault });
    // The operator's side: the vault, native modules built by npm (the same set as
    // examples/node-password, so the suite builds them once).
    await installApp(vaultApp(), {
      backvault: tarballs.backvault,
      '@backvault/vault': tarballs['@backvault/vault'],
    });
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ships the device SDK with its docs and without sources, maps or tests', async () => {
    const files = await tarballFiles(tarballs.backvault);
    for (const f of [
      'package.json',
      'README.md',
      'SPEC.md',
      'CHANGELOG.md',
      'docs/ARCHITECTURE.md',
      'docs/THREAT_MODEL.md',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/client/index.js',
      'dist/storage/node/index.js',
      'dist/backup/node/worker.js',
      'dist/vendor/typebox.js',
    ]) {
      assert.ok(files.includes(f), `${f} is in the SDK tarball`);
    }
    assert.deepEqual(
      files.filter((f) => /\.map$|^src\/|^test\/|tsbuildinfo/.test(f)),
      [],
      'no sources, source maps or tests',
    );
    // TypeBox ships as one bundled file (import time), not a re-export of ~250 modules.
    const vendor = await readFile(
      join(sdkApp(), 'node_modules/backvault/dist/vendor/typebox.js'),
      'utf8',
    );
    assert.doesNotMatch(vendor, /from ['"]@sinclair\/typebox/);
    assert.match(vendor, /Value/);
    // Every relative link of the packed README resolves inside the package.
    const readme = await readFile(join(sdkApp(), 'node_modules/backvault/README.md'), 'utf8');
    for (const [, link] of readme.matchAll(/\]\(((?!https?:|#)[^)#\s]+)/g)) {
      assert.ok(files.includes(link as string), `README link ${link} is in the package`);
    }
  });

  it('installs the device SDK without anything native or of the server, and without warnings', async () => {
    const installed = await readdir(join(sdkApp(), 'node_modules'));
    for (const server of ['fastify', 'etcd3', 'pkcs11js', 'better-sqlite3', 'prom-client']) {
      assert.ok(!installed.includes(server), `${server} is not installed with the SDK`);
    }
    assert.ok(!installed.includes('@aws-sdk'), 'the AWS SDK is an optional peer');
    const native = (await listFiles(join(sdkApp(), 'node_modules'))).filter((f) =>
      /(^|\/)binding\.gyp$|\.node$/.test(f),
    );
    assert.deepEqual(native, [], 'no native module in the SDK install');
    assert.doesNotMatch(sdkInstall.stderr, /warn|EBADENGINE/i, sdkInstall.stderr);
  });

  it("the app's own Node program backs up, restores byte-exact and recovers its key through the packed vault", async () => {
    const app = sdkApp();
    await writeFile(join(app, 'app.mjs'), APP_PROGRAM);
    const source = join(work, 'chat');
    await mkdir(join(source, 'media'), { recursive: true });
    // A real SQLite database (made by the repository's own better-sqlite3, not the app's).
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(source, 'msgstore.db'));
    db.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)');
    const insert = db.prepare('INSERT INTO messages (body) VALUES (?)');
    for (let i = 0; i < 2000; i++) insert.run(`message ${i} ${randomBytes(16).toString('hex')}`);
    db.close();
    await writeFile(join(source, 'media', 'photo.jpg'), randomBytes(3 << 20));
    await writeFile(join(source, 'media', 'voice.opus'), randomBytes(200_000));

    const vault = await launchVault(
      [
        join(vaultApp(), 'node_modules/.bin/backvault-vault'),
        '--data',
        join(work, 'vault-data'),
        '--port',
        '0',
        '--dev-auth',
        '--log-level',
        'info',
      ],
      { PATH: process.env.PATH ?? '', HOME: work },
    );
    try {
      const { stdout } = await run(
        process.execPath,
        [
          'app.mjs',
          source,
          join(work, 'store'),
          join(work, 'restored'),
          join(work, 'state.json'),
          vault.url,
        ],
        { cwd: app, timeout: 120_000 },
      );
      const out = JSON.parse(stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
      // Without the optional better-sqlite3 a live database is not copied blindly.
      assert.equal(out.withoutSqlite, 'USAGE');
      assert.match(String(out.hint), /better-sqlite3/);
      assert.match(String(out.snapshot), /^[0-9a-f]{64}$/);
      assert.equal(out.check, true);
      assert.equal(out.keyRecovered, true);
      const want = await listFiles(source);
      assert.deepEqual(await listFiles(join(work, 'restored')), want);
      for (const f of want) {
        assert.ok(
          (await readFile(join(source, f))).equals(await readFile(join(work, 'restored', f))),
          `${f} restored byte-exact`,
        );
      }
    } finally {
      await vault.stop();
    }
  });

  it('the CLI installed from its tarball starts (its bin, files and imports)', async () => {
    // Without install scripts: the natives are the vault's, tested above; this checks that
    // the CLI's tarball is whole and reaches the SDK and the vault by package name only.
    const cliApp = join(work, 'cli');
    await installApp(
      cliApp,
      {
        backvault: tarballs.backvault,
        '@backvault/vault': tarballs['@backvault/vault'],
        '@backvault/cli': tarballs['@backvault/cli'],
      },
      [],
      { ignoreScripts: true },
    );
    const bin = join(cliApp, 'node_modules/.bin/backvault');
    const version = await run(bin, ['--version'], { cwd: cliApp });
    assert.equal(version.stdout.trim(), 'backvault 0.2.0');
    const help = await run(bin, ['backup', '--help'], { cwd: cliApp });
    assert.match(help.stdout, /--repo/);
    const files = await tarballFiles(tarballs['@backvault/cli']);
    assert.ok(files.includes('dist/cli/main.js') && files.includes('dist/ui/web/app.js'));
  });
});
