// A Node app that bundles the engine with esbuild (format esm, platform node) backs up and
// restores byte for byte: with the README's recipe (worker.js and sqlite-lock-child.js as
// extra entry points beside the bundle) in worker threads; without it in the calling thread
// after one warning; with `workers: 0` in the calling thread and no warning. And a program
// given to `node -e` / `node --input-type=module -e` backs up in worker threads (they used to
// fail there and leave a repository with a config and no snapshot). And with the CLI's
// node flags (a V8 option, `--max-semi-space-size=2`): worker threads, not a silent fallback
// to the calling thread.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { assertSameTree, makeSampleTree, removeDir, tempDir } from './helpers.js';

/** The repository (dist/test/backup → root); its node_modules links `backvault` to packages/sdk. */
const REPO_ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
/** The installed device SDK's compiled tree, as an app's bundler finds it. */
const SDK_DIST = 'node_modules/backvault/dist';

/** The tiny app: back up SRC into REPO, restore into OUT, print both results. */
function appSource(workers: number | undefined): string {
  return `
import { backup, restore } from 'backvault/backup';
import { LocalStorage } from 'backvault/node';
const [src, repo, out] = process.argv.slice(2);
const storage = new LocalStorage(repo);
const backupKey = new Uint8Array(32).fill(9);
const workers = ${workers === undefined ? 'undefined' : String(workers)};
const statePath = repo + '.state.json';
const b = await backup({ storage, backupKey, statePath, source: src, init: true, ...(workers === undefined ? {} : { workers }) });
const r = await restore({ storage, backupKey, statePath, target: out, ...(workers === undefined ? {} : { workers }) });
console.log(JSON.stringify({ seq: b.seq, files: b.files, backupWorkers: b.workers, restoreWorkers: r.workers, restored: r.files }));
`;
}

interface AppRun {
  seq: number;
  files: number;
  backupWorkers: number;
  restoreWorkers: number;
  restored: number;
  stderr: string;
}

function runNode(args: string[], cwd: string): AppRun {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `node ${args.slice(0, 2).join(' ')} failed:\n${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop() as string;
  return { ...(JSON.parse(last) as Omit<AppRun, 'stderr'>), stderr: r.stderr };
}

describe('a bundled Node app and node -e back up', () => {
  let dir: string;
  let src: string;
  before(async () => {
    dir = await tempDir('bv-bundle-');
    src = join(dir, 'chat');
    await makeSampleTree(src, 2 * 1024 * 1024);
    // The bundle marks the native module external, as an app does: resolved at run time
    // from node_modules beside the bundle.
    await symlink(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  });
  after(async () => {
    await removeDir(dir);
  });

  const bundle = async (
    name: string,
    workers: number | undefined,
    withWorkerEntries: boolean,
  ): Promise<string> => {
    const appDir = join(dir, name);
    await mkdir(appDir);
    await writeFile(join(appDir, 'app.mjs'), appSource(workers));
    const out = join(appDir, 'out');
    // The README's recipe ("Bundling"): the worker and the SQLite lock helper as entry
    // points of their own, named so that they land beside the app's bundle.
    const entryPoints: Record<string, string> = { app: join(appDir, 'app.mjs') };
    if (withWorkerEntries) {
      entryPoints.worker = join(dir, SDK_DIST, 'backup/node/worker.js');
      entryPoints['sqlite-lock-child'] = join(dir, SDK_DIST, 'backup/node/sqlite-lock-child.js');
    }
    await build({
      entryPoints,
      bundle: true,
      format: 'esm',
      platform: 'node',
      outdir: out,
      external: ['better-sqlite3'],
      logLevel: 'silent',
    });
    const files = (await readdir(out)).sort();
    assert.deepEqual(
      files,
      withWorkerEntries ? ['app.js', 'sqlite-lock-child.js', 'worker.js'] : ['app.js'],
    );
    await writeFile(join(out, 'package.json'), '{"type":"module"}');
    return join(out, 'app.js');
  };

  const check = async (app: string, name: string): Promise<AppRun> => {
    const repo = join(dir, `${name}-repo`);
    const out = join(dir, `${name}-out`);
    const run = runNode([app, src, repo, out], dir);
    assert.equal(run.seq, 1);
    assert.equal(run.restored, run.files);
    await assertSameTree(src, out);
    return run;
  };

  it('with the recipe (worker.js beside the bundle): worker threads', async () => {
    const run = await check(await bundle('recipe', undefined, true), 'recipe');
    assert.ok(run.backupWorkers >= 1, 'backup ran in worker threads');
    assert.ok(run.restoreWorkers >= 1, 'restore ran in worker threads');
    assert.doesNotMatch(run.stderr, /BACKVAULT_NO_WORKERS/);
  });

  it('without the worker entry: the calling thread, after one warning', async () => {
    const app = await bundle('plain', undefined, false);
    const run = await check(app, 'plain');
    assert.equal(run.backupWorkers, 0);
    assert.equal(run.restoreWorkers, 0);
    assert.equal(run.stderr.match(/BACKVAULT_NO_WORKERS/g)?.length, 1, run.stderr);
    assert.match(run.stderr, /Bundling/);
  });

  it('with workers: 0: the calling thread, no warning', async () => {
    const app = await bundle('zero', 0, false);
    const run = await check(app, 'zero');
    assert.equal(run.backupWorkers, 0);
    assert.equal(run.restoreWorkers, 0);
    assert.doesNotMatch(run.stderr, /BACKVAULT_NO_WORKERS/);
  });

  it("with the CLI's V8 option (--max-semi-space-size=2): worker threads, no warning", async () => {
    const shebang = (await readFile(join(REPO_ROOT, 'packages/cli/src/cli/main.ts'), 'utf8')).split(
      '\n',
      1,
    )[0] as string;
    const v8Flag = /--max-semi-space-size=\d+/.exec(shebang)?.[0];
    assert.ok(v8Flag, `the CLI's shebang names its V8 option: ${shebang}`);
    const app = await bundle('v8flag', undefined, true);
    const a = runNode([v8Flag, app, src, join(dir, 'v8-repo'), join(dir, 'v8-out')], dir);
    assert.ok(a.backupWorkers >= 1, 'backup ran in worker threads');
    assert.ok(a.restoreWorkers >= 1, 'restore ran in worker threads');
    assert.doesNotMatch(a.stderr, /BACKVAULT_NO_WORKERS/);
    await assertSameTree(src, join(dir, 'v8-out'));
    // Both at once: flags that must be dropped (-e) beside one Node refuses to pass on.
    const esm = appSource(undefined).replace(/process\.argv\.slice\(2\)/, 'process.argv.slice(1)');
    const b = runNode(
      [v8Flag, '--input-type=module', '-e', esm, src, join(dir, 'v8e-repo'), join(dir, 'v8e-out')],
      dir,
    );
    assert.ok(b.backupWorkers >= 1, 'backup ran in worker threads');
    assert.doesNotMatch(b.stderr, /BACKVAULT_NO_WORKERS/);
  });

  it('node --input-type=module -e and node -e: worker threads, a snapshot', async () => {
    const esm = appSource(undefined).replace(/process\.argv\.slice\(2\)/, 'process.argv.slice(1)');
    const a = runNode(
      ['--input-type=module', '-e', esm, src, join(dir, 'e1-repo'), join(dir, 'e1-out')],
      dir,
    );
    assert.equal(a.seq, 1);
    assert.ok(a.backupWorkers >= 1);
    await assertSameTree(src, join(dir, 'e1-out'));
    // CommonJS eval, the engine loaded with import().
    const cjs = `(async () => {
      const { backup, restore } = await import('backvault/backup');
      const { LocalStorage } = await import('backvault/node');
      const [src, repo, out] = process.argv.slice(1);
      const storage = new LocalStorage(repo);
      const backupKey = new Uint8Array(32).fill(9);
      const statePath = repo + '.state.json';
      const b = await backup({ storage, backupKey, statePath, source: src, init: true });
      const r = await restore({ storage, backupKey, statePath, target: out });
      console.log(JSON.stringify({ seq: b.seq, files: b.files, backupWorkers: b.workers, restoreWorkers: r.workers, restored: r.files }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
    const b = runNode(['-e', cjs, src, join(dir, 'e2-repo'), join(dir, 'e2-out')], dir);
    assert.equal(b.seq, 1);
    assert.ok(b.backupWorkers >= 1);
    await assertSameTree(src, join(dir, 'e2-out'));
  });
});
