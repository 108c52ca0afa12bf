/**
 * An AbortSignal stops every long operation within a second, at any moment, and leaves
 * things as they were: real files, a real local store (and S3 through a real server whose
 * answers hang). For backup, restore, check, verify, prune, forget and listSnapshots:
 * aborted before the start, mid-way from the progress callback, and after N storage
 * requests. Afterwards the repository checks clean, the next backup reuses the packs the
 * aborted one stored, and a restore target is byte for byte what it was.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  backup,
  check,
  forget,
  listSnapshots,
  prune,
  restore,
  verify,
  type Progress,
} from '#sdk/backup/index.js';
import { hasCode } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { S3Storage } from '#sdk/storage/node/s3.js';
import type { Storage } from '#sdk/storage/storage.js';
import { startS3Proxy, startS3Server, type S3TestServer } from '../storage/s3-server.js';
import { assertSameTree, describeTree, makeSampleTree, removeDir, tempDir } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The promise of the issue: an abort stops the operation within a second. */
const WITHIN_MS = 1000;
/** New data of the mid-way backups: enough to take several progress reports. */
const MORE = 24 * MiB;

async function corpus(dir: string, files: number, size: number): Promise<void> {
  await mkdir(join(dir, 'media'), { recursive: true });
  for (let i = 0; i < files; i++)
    await writeFile(join(dir, 'media', `f${i}.bin`), randomBytes(size));
}

/** `storage` with a hook told about every request before it is sent (and its count). */
function watched(storage: Storage, hook: (op: string, name: string, n: number) => void): Storage {
  let n = 0;
  const tell = (op: string, name: string): void => hook(op, name, ++n);
  const wrap = (s: Storage): Storage => ({
    location: s.location,
    put: (name, data) => (tell('put', name), s.put(name, data)),
    get: (name) => (tell('get', name), s.get(name)),
    getRange: (name, o, l) => (tell('getRange', name), s.getRange(name, o, l)),
    stat: (name) => (tell('stat', name), s.stat(name)),
    list: (prefix) => (tell('list', prefix), s.list(prefix)),
    delete: (name) => (tell('delete', name), s.delete(name)),
    close: () => s.close(),
    ...(s.localPath ? { localPath: s.localPath.bind(s) } : {}),
    ...(s.cleanupTemp ? { cleanupTemp: s.cleanupTemp.bind(s) } : {}),
    ...(s.withSignal ? { withSignal: (signal: AbortSignal) => wrap(s.withSignal!(signal)) } : {}),
  });
  return wrap(storage);
}

/** `storage` whose pack uploads each take at least `ms` longer. */
function slowPuts(storage: LocalStorage, ms: number): Storage {
  return {
    location: storage.location,
    put: async (name, data) => {
      if (name.startsWith('data/')) await new Promise((r) => setTimeout(r, ms));
      return storage.put(name, data);
    },
    get: (name) => storage.get(name),
    getRange: (name, o, l) => storage.getRange(name, o, l),
    stat: (name) => storage.stat(name),
    list: (prefix) => storage.list(prefix),
    delete: (name) => storage.delete(name),
    close: () => storage.close(),
    localPath: storage.localPath.bind(storage),
    cleanupTemp: storage.cleanupTemp.bind(storage),
  };
}

/** Every object in the store, name → size. */
async function objects(storage: Storage, prefix = ''): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of storage.list(prefix)) out.set(o.name, o.size);
  return out;
}

/**
 * Await an operation that must be aborted: it rejects with exactly the signal's reason,
 * within {@link WITHIN_MS} of the abort. Returns the delay (ms) for the log.
 */
async function stopsPromptly(
  what: string,
  op: Promise<unknown>,
  ac: AbortController,
  abortedAt: () => number,
): Promise<number> {
  const outcome = await op.then(
    () => 'resolved',
    (e: unknown) => e,
  );
  const took = performance.now() - abortedAt();
  assert.ok(ac.signal.aborted, `${what}: the abort happened`);
  assert.equal(outcome, ac.signal.reason, `${what}: rejects with the abort reason`);
  assert.ok(took < WITHIN_MS, `${what}: stopped ${took.toFixed(0)} ms after abort()`);
  console.log(`# ${what}: rejected ${took.toFixed(0)} ms after abort()`);
  return took;
}

/** Names of restore leftovers beside `target` (temporary directories). */
async function leftovers(parent: string): Promise<string[]> {
  return (await readdir(parent)).filter((n) => n.includes('.backvault-restore-'));
}

describe('AbortSignal: every operation stops within a second and leaves things as they were', () => {
  let dir: string;
  let src: string;
  let store: LocalStorage;
  const backupKey = generateBackupKey();
  let access: { storage: Storage; backupKey: Uint8Array; statePath: string };

  before(async () => {
    dir = await tempDir('bv-abort-');
    src = join(dir, 'src');
    await makeSampleTree(src, 1 * MiB);
    await corpus(src, 12, MiB);
    store = new LocalStorage(join(dir, 'repo'));
    access = { storage: store, backupKey, statePath: join(dir, 'state.json') };
    await backup({ ...access, init: true, source: src, workers: 2, packSize: 256 * KiB });
  });
  after(async () => {
    await removeDir(dir);
  });

  it('backup: aborted before it starts, nothing is read or written', async () => {
    const before = await objects(store);
    const ac = new AbortController();
    ac.abort();
    const t = performance.now();
    await stopsPromptly(
      'backup (already aborted)',
      backup({ ...access, source: src, signal: ac.signal }),
      ac,
      () => t,
    );
    assert.equal((ac.signal.reason as Error).name, 'AbortError');
    assert.deepEqual(await objects(store), before);
  });

  for (const moment of ['progress', 'storage'] as const) {
    it(`backup: aborted mid-way (${moment === 'progress' ? 'from the progress callback' : 'at the 4th pack upload'}), the repository checks clean and the next backup reuses what was stored`, async () => {
      const more = join(dir, `more-${moment}`);
      await corpus(more, MORE / MiB, MiB);
      const dataBefore = await objects(store, 'data/');
      const snapsBefore = (await listSnapshots(access)).length;
      const ac = new AbortController();
      let abortedAt = 0;
      const abort = (): void => {
        if (ac.signal.aborted) return;
        abortedAt = performance.now();
        ac.abort();
      };
      let packPuts = 0;
      // From the progress callback: progress is reported at most every 100 ms, and 24 MiB can
      // be read, sealed and stored in less than that after the first report (1 MiB), leaving
      // no report before the last to abort from. Pack uploads that take 20 ms each (at most
      // four in flight) spread the backup over several reports.
      const storage =
        moment === 'storage'
          ? watched(store, (op, name) => {
              if (op === 'put' && name.startsWith('data/') && ++packPuts === 4) abort();
            })
          : slowPuts(store, 20);
      await stopsPromptly(
        `backup (${moment})`,
        backup({
          ...access,
          storage,
          source: more,
          workers: 2,
          packSize: 256 * KiB,
          signal: ac.signal,
          onProgress: (p: Progress) => {
            // Any report before the last (the last comes after the commit point).
            if (moment === 'progress' && p.bytesDone >= 3 * MiB && p.bytesDone < MORE) abort();
          },
        }),
        ac,
        () => abortedAt,
      );
      // Nothing was committed; what was stored is consistent.
      assert.equal((await listSnapshots(access)).length, snapsBefore);
      const c = await check({ ...access, workers: 2 });
      assert.equal(c.ok, true, JSON.stringify(c.problems));
      const stored = [...(await objects(store, 'data/'))].filter(([n]) => !dataBefore.has(n));
      assert.ok(stored.length > 0, 'the aborted backup had stored packs');
      const storedBytes = stored.reduce((s, [, size]) => s + size, 0);

      // The next backup of the same source adopts those packs instead of uploading again.
      const r = await backup({ ...access, source: more, workers: 2, packSize: 256 * KiB });
      assert.equal(r.resumed.packs, stored.length);
      assert.equal(r.resumed.bytes, storedBytes);
      assert.ok(
        r.bytesStoredNew + storedBytes < MORE + 1 * MiB,
        `stored ${r.bytesStoredNew} new bytes on top of ${storedBytes} resumed`,
      );
      const after = await objects(store, 'data/');
      for (const [n, size] of stored) assert.equal(after.get(n), size, `${n} kept as it was`);
      const target = join(dir, `restored-${moment}`);
      await restore({ ...access, target, workers: 2 });
      await assertSameTree(more, target);
    });
  }

  /** The latest snapshot of `src`: a backup of it (deduplicated: nearly free). */
  async function backupOfSrc(): Promise<void> {
    await backup({ ...access, source: src, workers: 2, packSize: 256 * KiB });
  }

  for (const moment of ['start', 'progress', 'storage'] as const) {
    for (const kind of ['absent', 'full'] as const) {
      it(`restore into ${kind === 'absent' ? 'a new directory' : 'a full one with force (merge)'}: aborted ${moment === 'start' ? 'before it starts' : moment === 'progress' ? 'mid-way from the progress callback' : 'at its 3rd storage request'}, the target is as it was`, async () => {
        await backupOfSrc();
        const parent = join(dir, `restore-${moment}-${kind}`);
        await mkdir(parent);
        const target = join(parent, 'chat');
        if (kind === 'full') {
          await mkdir(join(target, 'media'), { recursive: true });
          await writeFile(join(target, 'media', 'f0.bin'), 'the old f0, replaced by a restore\n');
          await writeFile(join(target, 'mine.txt'), 'not in the snapshot\n');
        }
        const beforeTree = kind === 'full' ? await describeTree(target) : undefined;
        const ac = new AbortController();
        let abortedAt = 0;
        const abort = (): void => {
          if (ac.signal.aborted) return;
          abortedAt = performance.now();
          ac.abort();
        };
        if (moment === 'start') abort();
        const storage =
          moment === 'storage' ? watched(store, (_op, _name, n) => n === 3 && abort()) : store;
        await stopsPromptly(
          `restore ${kind} (${moment})`,
          restore({
            ...access,
            storage,
            target,
            force: kind === 'full',
            workers: 2,
            signal: ac.signal,
            onProgress: (p: Progress) => {
              if (moment === 'progress' && p.bytesDone > 0) abort();
            },
          }),
          ac,
          () => abortedAt,
        );
        if (beforeTree) assert.deepEqual(await describeTree(target), beforeTree);
        else assert.deepEqual(await readdir(parent), []);
        assert.deepEqual(await leftovers(parent), []);
        // And the same restore without an abort is whole.
        await restore({ ...access, target, force: kind === 'full', workers: 2 });
        if (kind === 'absent') await assertSameTree(src, target);
      });
    }
  }

  for (const moment of ['start', 'progress', 'storage'] as const) {
    it(`check: aborted ${moment}, rejects within a second; a check afterwards is clean`, async () => {
      const ac = new AbortController();
      let abortedAt = 0;
      const abort = (): void => {
        if (ac.signal.aborted) return;
        abortedAt = performance.now();
        ac.abort();
      };
      if (moment === 'start') abort();
      const storage =
        moment === 'storage'
          ? watched(store, (op, name) => op === 'get' && name.startsWith('data/') && abort())
          : store;
      await stopsPromptly(
        `check (${moment})`,
        check({
          ...access,
          storage,
          workers: 2,
          signal: ac.signal,
          onProgress: (p) => {
            if (moment === 'progress' && p.filesDone >= 3) abort();
          },
        }),
        ac,
        () => abortedAt,
      );
      const c = await check({ ...access, workers: 2 });
      assert.equal(c.ok, true, JSON.stringify(c.problems));
    });
  }

  it('verify: aborted mid-way, rejects within a second and leaves no temporary directory', async () => {
    const tmp = join(dir, 'verify-tmp');
    await mkdir(tmp);
    const ac = new AbortController();
    let abortedAt = 0;
    await stopsPromptly(
      'verify (progress)',
      verify({
        ...access,
        tempDir: tmp,
        workers: 2,
        signal: ac.signal,
        onProgress: (p) => {
          if (!ac.signal.aborted && p.bytesDone > 0) {
            abortedAt = performance.now();
            ac.abort();
          }
        },
      }),
      ac,
      () => abortedAt,
    );
    assert.deepEqual(await readdir(tmp), []);
  });

  it('listSnapshots and forget: aborted before they start, nothing is read or deleted', async () => {
    const before = await objects(store);
    for (const [what, op] of [
      ['listSnapshots', (signal: AbortSignal) => listSnapshots({ ...access, signal })],
      ['forget', (signal: AbortSignal) => forget({ ...access, policy: { last: 1 }, signal })],
    ] as const) {
      const ac = new AbortController();
      ac.abort();
      const t = performance.now();
      await stopsPromptly(`${what} (already aborted)`, op(ac.signal), ac, () => t);
    }
    assert.deepEqual(await objects(store), before);
  });

  it('prune: aborted at its 2nd pack deletion, the repository checks clean and a second prune finishes', async () => {
    // Garbage: every snapshot but the newest forgotten, with the packs only they use.
    await forget({ ...access, policy: { last: 1 } });
    const ac = new AbortController();
    let abortedAt = 0;
    let deletes = 0;
    const storage = watched(store, (op, name) => {
      if (op === 'delete' && name.startsWith('data/') && ++deletes === 2) {
        abortedAt = performance.now();
        ac.abort();
      }
    });
    const before = await objects(store, 'data/');
    await stopsPromptly(
      'prune (storage)',
      prune({ ...access, storage, signal: ac.signal }),
      ac,
      () => abortedAt,
    );
    const afterAbort = await objects(store, 'data/');
    assert.ok(afterAbort.size < before.size, 'it had started deleting');
    const c = await check({ ...access, workers: 2 });
    assert.equal(c.ok, true, JSON.stringify(c.problems));
    const p = await prune(access);
    assert.ok(p.packsDeleted > 0, 'the second prune deleted the rest');
    assert.equal((await check({ ...access, workers: 2 })).ok, true);
    const target = join(dir, 'after-prune');
    await restore({ ...access, target, workers: 2 });
    await assertSameTree(src, target);
  });
});

describe('AbortSignal with S3: a request in flight is cancelled (real S3 server, hanging answers)', () => {
  let dir: string;
  let server: S3TestServer;
  const backupKey = generateBackupKey();

  before(async () => {
    dir = await tempDir('bv-abort-s3-');
    server = await startS3Server({ setEnv: false });
  });
  after(async () => {
    await server?.stop();
    await removeDir(dir);
  });

  it('backup and restore stop within a second while a pack upload or download hangs', async () => {
    const proxy = await startS3Proxy(server.port);
    try {
      const storage = new S3Storage({
        bucket: server.bucket,
        prefix: 'abort',
        endpoint: proxy.endpoint,
        forcePathStyle: true,
        region: server.region,
        credentials: server.credentials,
        // Far beyond the promise: only the abort can end a hanging request in time.
        timeoutMs: 60_000,
      });
      const access = { storage, backupKey, statePath: join(dir, 'state.json') };
      const src = join(dir, 'src');
      await corpus(src, 4, MiB);
      await backup({ ...access, init: true, source: src, workers: 1, packSize: 256 * KiB });

      // Backup: the 2nd pack upload hangs.
      const more = join(dir, 'more');
      await corpus(more, 4, MiB);
      for (const [what, method, run] of [
        [
          'backup',
          'PUT',
          (signal: AbortSignal) =>
            backup({ ...access, source: more, workers: 1, packSize: 256 * KiB, signal }),
        ],
        [
          'restore',
          'GET',
          (signal: AbortSignal) =>
            restore({ ...access, target: join(dir, 'target'), workers: 1, signal }),
        ],
      ] as const) {
        const ac = new AbortController();
        let abortedAt = 0;
        let seen = 0;
        proxy.set((req) => {
          if (req.method !== method || !req.url.includes('/data/')) return 'pass';
          if (++seen !== 2) return 'pass';
          setTimeout(() => {
            abortedAt = performance.now();
            ac.abort();
          }, 300);
          return 'hang';
        });
        await stopsPromptly(
          `${what} on S3 (hanging ${method})`,
          run(ac.signal),
          ac,
          () => abortedAt,
        );
        proxy.set(() => 'pass');
      }
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n === 'target' || n.includes('backvault-restore')),
        [],
      );
      const c = await check(access);
      assert.equal(c.ok, true, JSON.stringify(c.problems));
      assert.equal(c.snapshots, 1);
    } finally {
      await proxy.close();
    }
  });

  it('without statePath nor rollbackProtection: false, every operation is a USAGE error naming both, before the store is touched', async () => {
    let requests = 0;
    const storage = watched(new LocalStorage(join(dir, 'untouched')), () => void requests++);
    const bare = { storage, backupKey };
    for (const op of [
      () => backup({ ...bare, init: true, source: dir }),
      () => restore({ ...bare, target: join(dir, 'never') }),
      () => check(bare),
      () => listSnapshots(bare),
      () => prune(bare),
      () => forget({ ...bare, policy: { last: 1 } }),
      () => verify(bare),
    ]) {
      await assert.rejects(
        op(),
        (e: unknown) =>
          hasCode(e, 'USAGE') &&
          /statePath/.test(e.message) &&
          /`statePath`/.test(e.hint) &&
          /`rollbackProtection: false`/.test(e.hint),
      );
    }
    await assert.rejects(
      check({ ...bare, statePath: join(dir, 's.json'), rollbackProtection: false }),
      (e: unknown) => hasCode(e, 'USAGE') && /contradict/.test(e.message),
    );
    assert.equal(requests, 0);
  });
});
