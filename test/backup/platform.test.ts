// The engine over its platform interfaces (src/backup/platform/): the pure-JS crypto gives
// the Node provider's bytes, a MemoryFiles tree backs up and restores byte for byte with
// either provider, the pure-JS decompressors an app plugs in (test/phone/compression.ts)
// read what Node wrote and refuse a decompression bomb without inflating it, `workers: 0`
// never asks for a thread, and threads that cannot start neither fail a backup nor leave a
// repository behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants as zc, createBrotliCompress, createDeflateRaw } from 'node:zlib';
import { after, afterEach, describe, it } from 'node:test';
import {
  MemoryFiles,
  backup,
  check,
  installedPlatform,
  memoryHost,
  nodeCrypto,
  nodePlatform,
  restore,
  useEnginePlatform,
  type EnginePlatform,
} from '#sdk/backup/index.js';
import { WorkerPool, workerExecArgv } from '#sdk/backup/node/worker-pool.js';
import { nobleCrypto } from '#sdk/backup/platform/noble-crypto.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { Compression, ObjectKind, PREFIX, blobAd, generateBackupKey } from '#sdk/format/index.js';
import { openBlob } from '#sdk/backup/repository/blob-codec.js';
import { deriveRepoKeys, hmac, seal } from '#sdk/backup/repository/keys.js';
import { hasCode } from '#sdk/errors.js';
import { jsCompression } from '../phone/compression.js';
import { assertSameTree, makeSampleTree, removeDir, tempDir } from './helpers.js';

const KEY = new Uint8Array(32).fill(7);
const noble = nobleCrypto({ randomBytes: (n) => new Uint8Array(randomBytes(n)) });

/** A tree with what a chat holds: a database-like file, media, folders, a symlink, modes. */
function chatTree(): MemoryFiles {
  const fs = new MemoryFiles();
  const page = new Uint8Array(4096);
  const db = new Uint8Array(4096 * 300);
  db.set(new TextEncoder().encode('SQLite format 3\0'), 0);
  db[16] = 0x10; // page size 4096, big-endian
  db[17] = 0x00;
  for (let i = 1; i < 300; i++) {
    page.fill(i % 251);
    db.set(page, i * 4096);
  }
  fs.writeFile('/chat/msgstore.db', db, { mode: 0o600, mtimeNs: 1_700_000_000_123_456_000n });
  fs.writeFile('/chat/media/photo.jpg', new Uint8Array(randomBytes(3 * 1024 * 1024)));
  fs.writeFile('/chat/media/voice.opus', new Uint8Array(randomBytes(200_000)), { mode: 0o640 });
  fs.writeFile('/chat/notes.txt', new TextEncoder().encode('hello '.repeat(5000)));
  fs.writeFile('/chat/empty', new Uint8Array(0));
  fs.mkdirp('/chat/cache/empty-dir', 0o700);
  fs.symlink('media/photo.jpg', '/chat/latest');
  return fs;
}

function assertSameMemoryTree(a: MemoryFiles, aDir: string, b: MemoryFiles, bDir: string): void {
  const left = a.list(aDir);
  const right = b.list(bDir);
  assert.deepEqual(
    right.map((e) => [e.path, e.kind, e.mode]),
    left.map((e) => [e.path, e.kind, e.mode]),
  );
  for (let i = 0; i < left.length; i++) {
    const x = left[i];
    const y = right[i];
    if (x?.kind === 'file' && y?.kind === 'file') {
      assert.ok(Buffer.from(x.data).equals(Buffer.from(y.data)), `${x.path} differs`);
      assert.equal(y.mtimeNs, x.mtimeNs, `${x.path} mtime`);
    }
    if (x?.kind === 'symlink' && y?.kind === 'symlink') assert.equal(y.target, x.target);
  }
}

describe('the engine over its platform interfaces', () => {
  const node = installedPlatform() as EnginePlatform;
  afterEach(() => useEnginePlatform(node));
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await removeDir(d);
  });

  it('the noble provider gives the Node provider’s bytes', () => {
    const key = new Uint8Array(randomBytes(32));
    const data = new Uint8Array(randomBytes(100_000));
    const ad = new Uint8Array(randomBytes(20));
    const nonce = new Uint8Array(randomBytes(12));
    assert.deepEqual(noble.sha256(data), nodeCrypto.sha256(data));
    assert.deepEqual(noble.hmacSha256(key, data), nodeCrypto.hmacSha256(key, data));
    const salt = new Uint8Array(16).fill(1);
    const info = new TextEncoder().encode('backvault/v1/data');
    assert.deepEqual(
      noble.hkdfSha256(key, salt, info, 32),
      nodeCrypto.hkdfSha256(key, salt, info, 32),
    );
    const a = new Uint8Array(data.length + 16 + 5);
    const b = new Uint8Array(data.length + 16 + 5);
    noble.aesGcmSealInto(key, nonce, ad, data, a, 5);
    nodeCrypto.aesGcmSealInto(key, nonce, ad, data, b, 5);
    assert.deepEqual(a, b);
    assert.deepEqual(nodeCrypto.aesGcmOpen(key, nonce, ad, a.subarray(5)), data);
    assert.deepEqual(noble.aesGcmOpen(key, nonce, ad, b.subarray(5)), data);
    a[100] = (a[100] as number) ^ 1;
    assert.equal(noble.aesGcmOpen(key, nonce, ad, a.subarray(5)), undefined);
    assert.equal(nodeCrypto.aesGcmOpen(key, nonce, ad, a.subarray(5)), undefined);
  });

  it('a MemoryFiles tree backs up and restores byte for byte with the Node platform', async () => {
    const src = chatTree();
    const storage = new MemoryStorage();
    const b = await backup({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      source: '/chat',
      files: src,
      init: true,
    });
    // Threads read only the platform's own files: a memory tree runs in this thread.
    assert.equal(b.workers, 0);
    assert.equal(b.files, 5);
    const dst = new MemoryFiles();
    const r = await restore({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      target: '/restored',
      files: dst,
    });
    assert.equal(r.files, 5);
    assertSameMemoryTree(src, '/chat', dst, '/restored');
    const c = await check({ storage, backupKey: KEY, rollbackProtection: false });
    assert.deepEqual(c.problems, []);
  });

  it('a restore writes files while it walks the trees, with a bounded number open (issue 17)', async () => {
    // Planning every file before writing anything made memory grow with the number of
    // files (605 MiB for 200,000): here the first bytes must be written before the walk
    // reaches the last folder, and the files open at once stay bounded by configuration.
    const src = new MemoryFiles();
    for (let d = 0; d < 60; d++)
      for (let f = 0; f < 50; f++)
        src.writeFile(`/many/d${d}/f${f}.bin`, new Uint8Array(randomBytes(600 + f)), {
          mode: 0o640,
        });
    const storage = new MemoryStorage();
    await backup({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      source: '/many',
      files: src,
      init: true,
    });
    const dst = new MemoryFiles();
    const events: string[] = [];
    let open = 0;
    let maxOpen = 0;
    const out = new Proxy(dst.out, {
      get(t, prop, recv) {
        const v = Reflect.get(t, prop, recv) as unknown;
        if (prop === 'mkdir')
          return async (p: string, o: { mode: number; recursive?: boolean }) => {
            events.push('mkdir');
            await t.mkdir(p, o);
          };
        if (prop === 'create')
          return async (p: string) => {
            const fd = await t.create(p);
            maxOpen = Math.max(maxOpen, ++open);
            const done = (): void => void (open -= 1);
            return {
              handle: fd.handle,
              finish: (m: number, ns: bigint) => fd.finish(m, ns).finally(done),
              close: () => fd.close().finally(done),
            };
          };
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    const files = new Proxy(dst, {
      get(t, prop, recv) {
        if (prop === 'out') return out;
        if (prop === 'writer')
          return (h: number) => {
            const w = t.writer(h);
            return {
              writeAt: (d: Uint8Array, at: number) => {
                events.push('write');
                return w.writeAt(d, at);
              },
            };
          };
        const v = Reflect.get(t, prop, recv) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    const r = await restore({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      target: '/restored',
      files,
    });
    assert.equal(r.files, 3000);
    assertSameMemoryTree(src, '/many', dst, '/restored');
    assert.ok(
      events.indexOf('write') < events.lastIndexOf('mkdir'),
      'the first write comes before the walk reaches the last folder',
    );
    // (MAX_BATCHES + OPEN_BATCHES) × BATCH_BLOBS + FINISHING (restorer.ts)
    assert.ok(maxOpen <= (8 + 4) * 48 + 16, `files open at once: ${maxOpen}`);
  });

  it('the whole engine runs on the noble provider, in memory, and its repository opens on Node', async () => {
    useEnginePlatform({ crypto: noble, files: new MemoryFiles(), host: memoryHost() });
    const src = chatTree();
    const storage = new MemoryStorage();
    const b = await backup({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      source: '/chat',
      files: src,
      init: true,
    });
    assert.equal(b.workers, 0);
    const second = await backup({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      source: '/chat',
      files: src,
    });
    assert.equal(second.bytesNew, 0, 'nothing new the second time');
    const dst = new MemoryFiles();
    await restore({ storage, backupKey: KEY, rollbackProtection: false, target: '/r', files: dst });
    assertSameMemoryTree(src, '/chat', dst, '/r');
    assert.deepEqual(
      (await check({ storage, backupKey: KEY, rollbackProtection: false })).problems,
      [],
    );
    // The same repository, read by the Node provider.
    useEnginePlatform(node);
    assert.deepEqual(
      (await check({ storage, backupKey: KEY, rollbackProtection: false })).problems,
      [],
    );
    const onNode = new MemoryFiles();
    await restore({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      target: '/n',
      files: onNode,
    });
    assertSameMemoryTree(src, '/chat', onNode, '/n');
  });

  it('a Node-made repository restores on the noble provider when it reads the compression, and says so when it does not', async () => {
    const src = chatTree();
    const storage = new MemoryStorage();
    await backup({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      source: '/chat',
      files: src,
      init: true,
    });
    // Without compression: the compressed blobs (notes.txt, the database) cannot be read.
    useEnginePlatform({ crypto: noble, files: new MemoryFiles(), host: memoryHost() });
    await assert.rejects(
      restore({
        storage,
        backupKey: KEY,
        rollbackProtection: false,
        target: '/r',
        files: new MemoryFiles(),
      }),
      (e: Error & { code?: string }) =>
        e.code === 'USAGE' && /cannot decompress blobs of method 2/.test(e.message),
    );
    // With the pure-JS compression an app plugs in (fflate and brotli: test/phone/compression.ts).
    useEnginePlatform({
      crypto: nobleCrypto({
        randomBytes: (n) => new Uint8Array(randomBytes(n)),
        compression: jsCompression,
      }),
      files: new MemoryFiles(),
      host: memoryHost(),
    });
    const dst = new MemoryFiles();
    await restore({ storage, backupKey: KEY, rollbackProtection: false, target: '/r', files: dst });
    assertSameMemoryTree(src, '/chat', dst, '/r');
  });

  it('a phone writing deflate-raw with fflate makes a repository Node restores', async () => {
    useEnginePlatform({
      crypto: nobleCrypto({
        randomBytes: (n) => new Uint8Array(randomBytes(n)),
        compression: jsCompression,
      }),
      files: new MemoryFiles(),
      host: memoryHost(),
    });
    const src = chatTree();
    const storage = new MemoryStorage();
    await backup({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      source: '/chat',
      files: src,
      init: true,
    });
    const packs = [...storage.raw().entries()].filter(([n]) => n.startsWith(PREFIX.data));
    const stored = packs.reduce((t, [, b]) => t + b.length, 0);
    // The database and notes compress: what is stored is well under the tree's bytes.
    const raw = src.list('/chat').reduce((t, e) => t + (e.kind === 'file' ? e.data.length : 0), 0);
    assert.ok(stored < raw - 1_000_000, `stored ${stored} of ${raw}`);
    useEnginePlatform(node);
    const dst = new MemoryFiles();
    await restore({ storage, backupKey: KEY, rollbackProtection: false, target: '/r', files: dst });
    assertSameMemoryTree(src, '/chat', dst, '/r');
  });

  it('a decompression bomb in a blob is CORRUPT on the noble provider, without being inflated', async () => {
    // 1 GiB of zeros, compressed by Node as a stream (a few MB of deflate-raw, ~200 KB of
    // Brotli), sealed as a blob that records 4096 raw bytes (only a key holder can seal; the
    // cap keeps a bad writer from exhausting a phone).
    async function bomb(z: NodeJS.WritableStream & NodeJS.ReadableStream): Promise<Uint8Array> {
      const parts: Buffer[] = [];
      z.on('data', (c: Buffer) => parts.push(c));
      const zero = Buffer.alloc(1 << 20);
      for (let i = 0; i < 1024; i++)
        if (!z.write(zero)) await new Promise((r) => z.once('drain', r));
      await new Promise<void>((r) => z.end(() => r()));
      return new Uint8Array(Buffer.concat(parts));
    }
    const bodies = [
      { method: Compression.DEFLATE_RAW, body: await bomb(createDeflateRaw({ level: 1 })) },
      {
        method: Compression.BROTLI,
        body: await bomb(
          createBrotliCompress({
            params: { [zc.BROTLI_PARAM_QUALITY]: 1, [zc.BROTLI_PARAM_LGWIN]: 24 },
          }),
        ),
      },
    ];
    useEnginePlatform({
      crypto: nobleCrypto({
        randomBytes: (n) => new Uint8Array(randomBytes(n)),
        compression: jsCompression,
      }),
      files: new MemoryFiles(),
      host: memoryHost(),
    });
    const keys = deriveRepoKeys(KEY, new Uint8Array(16).fill(3));
    const before = process.resourceUsage().maxRSS; // KiB
    for (const { method, body } of bodies) {
      const id = hmac(keys.blobId, new Uint8Array(4096));
      const sealed = seal(keys.data, blobAd(ObjectKind.DATA_BLOB, keys.repoId, method, id), body);
      const ref = { kind: ObjectKind.DATA_BLOB, compression: method, id, rawLength: 4096 };
      assert.throws(
        () => openBlob(keys, ref, sealed, 'data/bomb'),
        (e: unknown) => hasCode(e, 'CORRUPT') && /does not decompress/.test(String(e)),
        `method ${method}`,
      );
    }
    // Inflating either would have raised the peak by 1 GiB; the cap keeps it to megabytes
    // (Brotli's window is at most 16 MiB).
    const grew = (process.resourceUsage().maxRSS - before) / 1024;
    assert.ok(grew < 128, `peak memory grew by ${grew.toFixed(0)} MiB`);
  });

  it('workers: 0 backs up and restores a directory without asking for a single thread', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    await makeSampleTree(`${dir}/src`, 3 * 1024 * 1024);
    let asked = 0;
    useEnginePlatform({
      ...nodePlatform,
      workers: {
        defaultWorkers: () => 2,
        start: () => {
          asked += 1;
          throw new Error('no threads wanted');
        },
      },
    });
    const storage = new MemoryStorage();
    const b = await backup({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      source: `${dir}/src`,
      init: true,
      workers: 0,
    });
    assert.equal(b.workers, 0);
    const r = await restore({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      target: `${dir}/out`,
      workers: 0,
    });
    assert.equal(r.workers, 0);
    assert.equal(asked, 0, 'the pool factory was never called');
    await assertSameTree(`${dir}/src`, `${dir}/out`);
    assert.deepEqual(
      (await check({ storage, backupKey: KEY, rollbackProtection: false, workers: 0 })).problems,
      [],
    );
    // The default still uses threads on Node.
    useEnginePlatform(node);
    const withThreads = await backup({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      source: `${dir}/src`,
      workers: 2,
    });
    assert.equal(withThreads.workers, 2);
  });

  it('threads that cannot start fall back to this thread, with one warning', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    await makeSampleTree(`${dir}/src`, 1024 * 1024);
    const warnings: string[] = [];
    useEnginePlatform({
      ...nodePlatform,
      workers: {
        defaultWorkers: () => 2,
        start: async () => {
          throw new Error("Cannot find module '/app/worker.js'");
        },
      },
      onFallback: (m) => warnings.push(m),
    });
    const storage = new MemoryStorage();
    const b = await backup({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      source: `${dir}/src`,
      init: true,
    });
    assert.equal(b.workers, 0);
    const r = await restore({
      storage,
      backupKey: KEY,
      rollbackProtection: false,
      target: `${dir}/out`,
    });
    assert.equal(r.workers, 0);
    await assertSameTree(`${dir}/src`, `${dir}/out`);
    assert.ok(warnings.length >= 1);
    assert.match(warnings[0] as string, /worker threads could not start.*Bundling/);
  });

  it('a process run with V8 flags (the CLI’s shebang: --max-semi-space-size=2) gets worker threads', async () => {
    // Passing those flags to a Worker explicitly fails it (ERR_WORKER_INVALID_EXEC_ARGV),
    // and the engine then ran the whole restore and backup in one thread without a word
    // to the CLI's user (found by the restore bench, issue 17).
    const dir = await tempDir();
    dirs.push(dir);
    await makeSampleTree(`${dir}/src`, 256 * 1024);
    const engine = import.meta.resolve('#sdk/backup/index.js');
    const local = import.meta.resolve('#sdk/storage/node/local.js');
    const script = `${dir}/child.mjs`;
    await writeFile(
      script,
      `import { backup, restore } from ${JSON.stringify(engine)};
      import { LocalStorage } from ${JSON.stringify(local)};
      const [src, repo, out] = process.argv.slice(2);
      const storage = new LocalStorage(repo);
      const backupKey = new Uint8Array(32).fill(7);
      const b = await backup({ storage, backupKey, rollbackProtection: false, source: src, init: true });
      const r = await restore({ storage, backupKey, rollbackProtection: false, target: out });
      await storage.close();
      console.log(JSON.stringify({ backupWorkers: b.workers, restoreWorkers: r.workers }));`,
    );
    const out = execFileSync(
      process.execPath,
      ['--max-semi-space-size=2', script, `${dir}/src`, `${dir}/repo`, `${dir}/out`],
      { encoding: 'utf8' },
    );
    const got = JSON.parse(out.trim().split('\n').pop() as string) as Record<string, number>;
    assert.ok((got.backupWorkers as number) >= 1, out);
    assert.ok((got.restoreWorkers as number) >= 1, out);
    await assertSameTree(`${dir}/src`, `${dir}/out`);
    assert.equal(workerExecArgv(['--max-semi-space-size=2']), undefined);
    assert.deepEqual(
      workerExecArgv([
        '--max-semi-space-size=2',
        '--input-type=module',
        '-e',
        'x',
        '--no-warnings',
      ]),
      ['--no-warnings'],
    );
  });

  it('closing the pool stops a running job at its next chunk and terminates the worker idle', async () => {
    // Node aborts the whole process when a worker is terminated inside a zlib call; close()
    // asks the job to stop and waits until the worker answered. A 1 GiB sparse file takes a
    // worker well over CLOSE_WAIT_MS (500 ms) to chunk, hash and compress: without the stop
    // check the job would still be running when close() gives up waiting.
    const dir = await tempDir('bv-pool-close-');
    try {
      const path = join(dir, 'sparse.bin');
      await writeFile(path, '');
      await truncate(path, 1024 ** 3);
      const keys = deriveRepoKeys(generateBackupKey(), randomBytes(16));
      const pool = await WorkerPool.start(1, keys, { onPack: async () => {} });
      const { done } = await pool.submitFile({ path, offset: 0, length: -1, fixed: 0 });
      const outcome = done.then(
        () => 'finished',
        (e: unknown) => String((e as Error).message),
      );
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      await pool.close();
      const closeMs = performance.now() - t0;
      assert.equal(await outcome, 'worker pool closed');
      const inFlight = (pool as unknown as { inFlight: number[] }).inFlight;
      assert.deepEqual(inFlight, [0], 'the worker answered before it was terminated');
      assert.ok(closeMs < 400, `close took ${closeMs.toFixed(0)} ms`);
    } finally {
      await removeDir(dir);
    }
  });

  it('a backup that cannot start leaves no repository behind', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    await makeSampleTree(`${dir}/src`, 1024 * 1024);
    useEnginePlatform({
      ...nodePlatform,
      workers: {
        defaultWorkers: () => 2,
        start: async () => {
          throw new Error('no worker');
        },
      },
      onFallback: () => {
        throw new Error('this app refuses to run without threads');
      },
    });
    const storage = new MemoryStorage();
    await assert.rejects(
      backup({
        storage,
        backupKey: KEY,
        rollbackProtection: false,
        source: `${dir}/src`,
        init: true,
      }),
      /refuses to run without threads/,
    );
    assert.equal(await storage.stat(PREFIX.config), undefined, 'no config written');
    const names: string[] = [];
    for await (const o of storage.list('')) names.push(o.name);
    assert.deepEqual(names, []);
  });
});
