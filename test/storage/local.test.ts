import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import {
  chmod,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { hasCode, MissingObjectError, UnavailableError } from '#sdk/errors.js';
import { LocalStorage, TEMP_PREFIX } from '#sdk/storage/node/local.js';
import { randomData, runStorageConformance } from './conformance.js';

const CHILD = fileURLToPath(new URL('./local-child-process.js', import.meta.url));

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'bv-local-'));
}

runStorageConformance('local', async () => {
  const dir = await tempDir();
  // The root does not exist yet: the first put must create it.
  return {
    storage: new LocalStorage(path.join(dir, 'repo')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('LocalStorage', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir();
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('stores each object as a plain file at its name and leaves no temp file', async () => {
    const root = path.join(dir, 'layout');
    const s = new LocalStorage(root);
    const data = randomData(1234);
    await s.put('data/ab/abcd', data);
    assert.deepEqual(new Uint8Array(await readFile(path.join(root, 'data/ab/abcd'))), data);
    assert.deepEqual(await readdir(path.join(root, 'data/ab')), ['abcd']);
    assert.equal(s.location, root);
    assert.equal(new LocalStorage('relative/x').root, path.resolve('relative/x'));
  });

  it('ignores temp files and foreign files; cleanupTemp removes only old temp files', async () => {
    const root = path.join(dir, 'stray');
    const s = new LocalStorage(root);
    await s.put('data/aa/1', randomData(3));
    const oldTemp = path.join(root, 'data/aa', `${TEMP_PREFIX}old`);
    const newTemp = path.join(root, 'data', `${TEMP_PREFIX}new`);
    await writeFile(oldTemp, 'partial');
    await writeFile(newTemp, 'partial');
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(oldTemp, hourAgo, hourAgo);
    await writeFile(path.join(root, 'config (1)'), 'sync-client conflict copy');
    await writeFile(path.join(root, '.DS_Store'), 'finder');
    const names: string[] = [];
    for await (const e of s.list('')) names.push(e.name);
    assert.deepEqual(names, ['data/aa/1']);
    await assert.rejects(
      s.get(`data/aa/${TEMP_PREFIX}old`),
      TypeError,
      'temp names are not object names',
    );
    assert.equal(await s.cleanupTemp(), 1);
    await assert.rejects(stat(oldTemp), { code: 'ENOENT' });
    await stat(newTemp);
    assert.equal(await s.cleanupTemp(0), 1);
    await assert.rejects(stat(newTemp), { code: 'ENOENT' });
    await stat(path.join(root, 'config (1)'));
    assert.equal(await new LocalStorage(path.join(dir, 'absent')).cleanupTemp(0), 0);
  });

  it('reads a range at the end of a huge sparse file without reading the file', async () => {
    const root = path.join(dir, 'sparse');
    const s = new LocalStorage(root);
    await s.put('packs/huge', new Uint8Array([1]));
    const size = 8 * 1024 ** 3; // 8 GiB: get() could not even hold it in one buffer
    const handle = await open(path.join(root, 'packs/huge'), 'r+');
    await handle.truncate(size);
    await handle.write(new Uint8Array([7, 8, 9]), 0, 3, size - 3);
    await handle.close();
    const started = performance.now();
    assert.deepEqual(
      await s.getRange('packs/huge', size - 5, 100),
      new Uint8Array([0, 0, 7, 8, 9]),
    );
    assert.ok(performance.now() - started < 1000);
    assert.deepEqual(await s.stat('packs/huge'), { size });
  });

  it('reports a root that is a file as UNAVAILABLE on put, missing on get', async () => {
    const file = path.join(dir, 'not-a-dir');
    await writeFile(file, 'x');
    const s = new LocalStorage(file);
    await assert.rejects(s.put('config', randomData(1)), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.match(e.message, /ENOTDIR|EEXIST/);
      return true;
    });
    await assert.rejects(s.get('config'), MissingObjectError);
  });

  it('fails, never spins, where a folder exists but refuses new children (ENOENT)', async (t) => {
    // /proc/1 is such a folder. Node's own recursive mkdir loops there forever (ENOENT for
    // the child, EEXIST for the parent, again), burning a libuv thread: a put never settled.
    if (!existsSync('/proc/1')) return t.skip('no /proc');
    const s = new LocalStorage('/proc/1/backvault-repo');
    const started = performance.now();
    await assert.rejects(s.put('data/ab/abcd', randomData(1)), { code: 'PERMISSION_DENIED' });
    assert.ok(performance.now() - started < 2000, 'settled at once');
    // Folders that are missing are still made, several levels deep.
    const deep = new LocalStorage(path.join(dir, 'a', 'b', 'c'));
    await deep.put('data/ab/abcd', randomData(10));
    assert.equal((await deep.get('data/ab/abcd')).length, 10);
  });

  it('maps permission errors to PERMISSION_DENIED with the errno, never data, in the message', async () => {
    const base = await tempDir();
    await chmod(base, 0o755); // let an unprivileged child reach the tree
    const root = path.join(base, 'repo');
    await mkdir(path.join(root, 'ro'), { recursive: true });
    await mkdir(path.join(root, 'locked'));
    await writeFile(path.join(root, 'ro/existing'), 'x');
    await writeFile(path.join(root, 'secret'), 'SECRET-PAYLOAD');
    await writeFile(path.join(root, 'locked/inner'), 'SECRET-PAYLOAD');
    await chmod(root, 0o755);
    await chmod(path.join(root, 'ro'), 0o555);
    await chmod(path.join(root, 'secret'), 0o000);
    await chmod(path.join(root, 'locked'), 0o000);
    try {
      // root ignores permission bits: run the probe as "nobody" then.
      const asRoot = process.getuid?.() === 0;
      const child = spawn(process.execPath, [CHILD, 'probe', root], {
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, err);
      const result = JSON.parse(out) as Record<
        string,
        { code: string; message: string; cause?: string }
      >;
      for (const op of ['put', 'get', 'getRange', 'stat', 'list', 'delete']) {
        const r = result[op];
        assert.ok(r, op);
        assert.equal(r.code, 'PERMISSION_DENIED', `${op}: ${JSON.stringify(r)}`);
        assert.equal(r.cause, 'EACCES', op);
        assert.match(r.message, /EACCES/);
        assert.doesNotMatch(r.message, /SECRET/);
      }
    } finally {
      await chmod(path.join(root, 'ro'), 0o755);
      await chmod(path.join(root, 'secret'), 0o644);
      await chmod(path.join(root, 'locked'), 0o755);
      await rm(base, { recursive: true, force: true });
    }
  });

  it('never shows a torn object when a writer is killed with SIGKILL (20 runs)', async () => {
    const root = path.join(dir, 'killed');
    const name = 'data/ab/big';
    const size = 8 * 1024 * 1024;
    let whole = 0;
    let absent = 0;
    let tempFilesLeft = 0;
    for (let run = 0; run < 20; run++) {
      const child = spawn(process.execPath, [CHILD, 'writer', root, name, String(size)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = once(child, 'exit');
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.once('data', () => resolve());
          child.once('exit', () => reject(new Error('writer exited early')));
        });
        await sleep(Math.floor(Math.random() * 150));
      } finally {
        child.kill('SIGKILL');
        await exited;
      }

      const s = new LocalStorage(root);
      try {
        const data = await s.get(name);
        assert.equal(data.length, size, `run ${run}: torn object (length)`);
        const digest = createHash('sha256').update(data.subarray(32)).digest();
        assert.ok(digest.equals(data.subarray(0, 32)), `run ${run}: torn object (content)`);
        whole += 1;
      } catch (error) {
        if (!hasCode(error, 'MISSING_OBJECT')) throw error;
        // Only allowed before the first write ever completed: an overwrite never hides the old one.
        assert.equal(whole, 0, `run ${run}: object vanished after an interrupted overwrite`);
        absent += 1;
      }
      const listed: string[] = [];
      for await (const e of s.list('')) listed.push(e.name);
      assert.deepEqual(listed, absent > 0 && whole === 0 ? [] : [name]);
      const temps = (await readdir(path.join(root, 'data/ab')).catch(() => [] as string[])).filter(
        (f) => f.startsWith(TEMP_PREFIX),
      );
      tempFilesLeft += temps.length;
      assert.equal(await s.cleanupTemp(0), temps.length);
    }
    // The kills must have landed mid-write at least sometimes, or this test proved nothing.
    assert.ok(tempFilesLeft > 0, 'no kill interrupted a write');
    assert.ok(whole > 0, 'no write ever completed');
    console.log(
      `# kill test: ${whole} whole, ${absent} absent, ${tempFilesLeft} interrupted writes`,
    );
  });
});
