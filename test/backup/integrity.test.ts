import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { backup, check, listSnapshots, prune, restore } from '#sdk/backup/index.js';
import { MemoryStorage, type StorageOperation } from '#sdk/storage/memory.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { hasCode, UnavailableError, type ErrorCode } from '#sdk/errors.js';
import { assertSameTree, removeDir, tempDir } from './helpers.js';

const isCode = (code: ErrorCode) => (e: unknown) => hasCode(e, code);

async function sample(dir: string): Promise<string> {
  const src = join(dir, `src-${randomBytes(4).toString('hex')}`);
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'a.bin'), randomBytes(300_000));
  await writeFile(join(src, 'sub', 'b.txt'), 'hello '.repeat(5000));
  return src;
}

function names(storage: MemoryStorage, prefix: string): string[] {
  return [...storage.raw().keys()].filter((n) => n.startsWith(prefix)).sort();
}

describe('integrity: wrong key, tampering, rollback, outages', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await removeDir(dir);
  });

  it('a wrong key is WRONG_KEY for every operation, and only config was read', async () => {
    const storage = new MemoryStorage();
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey: generateBackupKey(),
      source: await sample(dir),
      workers: 1,
    });
    const ops: string[] = [];
    storage.injectFault((op: StorageOperation, name: string) => {
      ops.push(`${op} ${name}`);
      return undefined;
    });
    const wrong = { storage, backupKey: generateBackupKey(), rollbackProtection: false };
    await assert.rejects(
      backup({ init: true, ...wrong, source: dir, workers: 1 }),
      isCode('WRONG_KEY'),
    );
    await assert.rejects(restore({ ...wrong, target: join(dir, 'never') }), isCode('WRONG_KEY'));
    await assert.rejects(listSnapshots(wrong), isCode('WRONG_KEY'));
    await assert.rejects(check(wrong), isCode('WRONG_KEY'));
    await assert.rejects(prune(wrong), isCode('WRONG_KEY'));
    assert.deepEqual(new Set(ops), new Set(['stat config', 'get config']));
    await assert.rejects(readdir(join(dir, 'never')), /ENOENT/);
  });

  it('config tampering: repo id / key check -> WRONG_KEY; magic, version, length -> CORRUPT', async () => {
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey: key,
      source: await sample(dir),
      workers: 1,
    });
    const original = storage.raw().get('config') as Uint8Array;
    const cases: [number, ErrorCode][] = [
      [0, 'CORRUPT'],
      [8, 'CORRUPT'],
      [10, 'CORRUPT'],
      [12, 'WRONG_KEY'],
      [27, 'WRONG_KEY'],
      [28, 'WRONG_KEY'],
      [59, 'WRONG_KEY'],
    ];
    for (const [at, code] of cases) {
      const m = original.slice();
      m[at] = (m[at] as number) ^ 0x01;
      storage.raw().set('config', m);
      await assert.rejects(
        listSnapshots({ rollbackProtection: false, storage, backupKey: key }),
        isCode(code),
        `byte ${at}`,
      );
    }
    storage.raw().set('config', original.subarray(0, 40));
    await assert.rejects(
      listSnapshots({ rollbackProtection: false, storage, backupKey: key }),
      isCode('CORRUPT'),
    );
    storage.raw().delete('config');
    await assert.rejects(
      listSnapshots({ rollbackProtection: false, storage, backupKey: key }),
      isCode('NO_REPOSITORY'),
    );
  });

  it('a flipped bit in any pack, index or snapshot is CORRUPT on restore and reported by check', async () => {
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    const src = await sample(dir);
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey: key,
      source: src,
      workers: 1,
    });
    const objects = [
      ...names(storage, 'data/'),
      ...names(storage, 'index/'),
      ...names(storage, 'snapshots/'),
    ];
    for (const name of objects) {
      const original = storage.raw().get(name) as Uint8Array;
      for (const at of [0, Math.floor(original.length / 2), original.length - 1]) {
        const m = original.slice();
        m[at] = (m[at] as number) ^ 0x80;
        storage.raw().set(name, m);
        const target = join(dir, `t-${randomBytes(4).toString('hex')}`);
        // Restore verifies every byte it uses. A pack's header and trailer are redundant for
        // restore (the index says where blobs are), so damage there may restore correctly;
        // `check` must report it either way.
        const restored = await restore({
          rollbackProtection: false,
          storage,
          backupKey: key,
          target,
          workers: 1,
        }).then(
          () => true,
          (e: unknown) => {
            assert.ok(hasCode(e, 'CORRUPT'), `${name}@${at}: ${String(e)}`);
            return false;
          },
        );
        if (restored) {
          assert.ok(
            name.startsWith('data/') && at === original.length - 1,
            `${name}@${at} restored`,
          );
          await assertSameTree(src, target);
        } else await assert.rejects(readdir(target), /ENOENT/);
        const c = await check({ rollbackProtection: false, storage, backupKey: key, workers: 1 });
        assert.equal(c.ok, false);
        assert.ok(
          c.problems.some((p) => p.code === 'CORRUPT' && p.object === name),
          `${name}: ${JSON.stringify(c.problems)}`,
        );
      }
      storage.raw().set(name, original);
    }
    assert.equal(
      (await check({ rollbackProtection: false, storage, backupKey: key, workers: 1 })).ok,
      true,
    );
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.includes('backvault')),
      [],
    );
  });

  it('a damaged snapshot object is named once in the error, whoever reports it, with a way on', async () => {
    // The message said "… (snapshots/<id>) (snapshots/<id>)": the problem's message already
    // named the object, and the error built from it named it again.
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    const access = { rollbackProtection: false as const, storage, backupKey: key };
    const src = await sample(dir);
    await backup({ ...access, init: true, source: src, workers: 1 });
    const [name] = names(storage, 'snapshots/');
    const b = (storage.raw().get(name as string) as Uint8Array).slice();
    b[40] = (b[40] as number) ^ 1;
    storage.raw().set(name as string, b);
    for (const op of [
      () => restore({ ...access, target: join(dir, `t-${randomBytes(4).toString('hex')}`) }),
      () => listSnapshots(access),
      () => restore({ ...access, target: join(dir, 'x'), snapshotId: (name as string).slice(10) }),
    ]) {
      await assert.rejects(op(), (e) => {
        assert.ok(hasCode(e, 'CORRUPT'), String(e));
        assert.equal((e as Error).message.split(name as string).length, 2, (e as Error).message);
        // It may be the newest snapshot: "restore an older one" cannot work; say what does.
        assert.match((e as { hint: string }).hint, /delete that object.*acceptRollback/);
        return true;
      });
    }
  });

  it('a damaged newest snapshot this device saw: its next backup chains onto it and every snapshot restores again', async () => {
    // One flipped bit in the newest snapshot object stopped every command for good: it may
    // be the newest, so no older one is taken as the latest. The device that saw it as its
    // latest knows exactly which it is (its name) and its seq: its next backup names it as
    // previous, which makes it provably older, and everything works again.
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    const statePath = join(dir, `seen-${randomBytes(4).toString('hex')}.json`);
    const access = { storage, backupKey: key, statePath };
    const src = await sample(dir);
    await backup({ ...access, init: true, source: src, workers: 1 });
    const before = names(storage, 'snapshots/');
    await writeFile(join(src, 'later.txt'), 'second');
    const second = await backup({ ...access, source: src, workers: 1 });
    const name = `snapshots/${second.snapshotId}`;
    const b = (storage.raw().get(name) as Uint8Array).slice();
    b[40] = (b[40] as number) ^ 1;
    storage.raw().set(name, b);
    await assert.rejects(listSnapshots(access), (e) => hasCode(e, 'CORRUPT'));
    // Another device, which never saw it, cannot tell: still CORRUPT, nothing written.
    const other = {
      ...access,
      statePath: join(dir, `other-${randomBytes(4).toString('hex')}.json`),
    };
    await assert.rejects(backup({ ...other, source: src, workers: 1 }), (e) =>
      hasCode(e, 'CORRUPT'),
    );
    assert.equal(names(storage, 'snapshots/').length, 2);

    await writeFile(join(src, 'third.txt'), 'third');
    const third = await backup({ ...access, source: src, workers: 1 });
    assert.equal(third.seq, 3);
    assert.ok(
      third.warnings.some((w) => w.includes(name)),
      JSON.stringify(third.warnings),
    );
    const snaps = await listSnapshots(access);
    assert.deepEqual(
      snaps.map((s) => s.seq),
      [1, 3],
    );
    for (const [i, id] of [snaps[1]?.id, before[0]?.slice(10)].entries()) {
      const t = join(dir, `healed-${randomBytes(4).toString('hex')}`);
      const r = await restore({ ...access, target: t, snapshotId: id, workers: 1 });
      if (i === 0) await assertSameTree(src, t);
      assert.equal(r.seq, i === 0 ? 3 : 1);
    }
    // Any device now sees a sound chain with one damaged older snapshot, left out.
    assert.equal((await listSnapshots(other)).length, 2);
  });

  it('a deleted pack is MISSING_OBJECT; a failed restore leaves a forced target untouched', async () => {
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey: key,
      source: await sample(dir),
      workers: 1,
    });
    const target = join(dir, 'keep-me');
    await mkdir(target);
    await writeFile(join(target, 'precious'), 'do not lose');
    const pack = names(storage, 'data/')[0] as string;
    const saved = storage.raw().get(pack) as Uint8Array;
    storage.raw().delete(pack);
    await assert.rejects(
      restore({
        rollbackProtection: false,
        storage,
        backupKey: key,
        target,
        force: true,
        workers: 1,
      }),
      isCode('MISSING_OBJECT'),
    );
    assert.equal(await readFile(join(target, 'precious'), 'utf8'), 'do not lose');
    const c = await check({ rollbackProtection: false, storage, backupKey: key });
    assert.ok(c.problems.some((p) => p.code === 'MISSING_OBJECT' && p.object === pack));
    storage.raw().set(pack, saved);
  });

  it('rollback: an older head, a dropped newest snapshot or a fork is ROLLBACK with a state file', async () => {
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    const statePath = join(dir, `state-${randomBytes(4).toString('hex')}.json`);
    const access = { storage, backupKey: key, statePath };
    const src = await sample(dir);
    await backup({ init: true, ...access, source: src, workers: 1 });
    const afterFirst = new Map(storage.raw());
    await writeFile(join(src, 'new.txt'), 'more');
    const r2 = await backup({ init: true, ...access, source: src, workers: 1 });
    assert.equal(r2.seq, 2);

    // The store serves the repository as it was after the first backup.
    const latest = new Map(storage.raw());
    storage.raw().clear();
    for (const [k, v] of afterFirst) storage.raw().set(k, v);
    await assert.rejects(listSnapshots(access), isCode('ROLLBACK'));
    await assert.rejects(restore({ ...access, target: join(dir, 'rb') }), isCode('ROLLBACK'));
    await assert.rejects(
      backup({ init: true, ...access, source: src, workers: 1 }),
      isCode('ROLLBACK'),
    );
    const c = await check(access);
    assert.ok(c.problems.some((p) => p.code === 'ROLLBACK'));
    // Without the state file the older chain is internally consistent (documented limit).
    assert.equal(
      (await listSnapshots({ rollbackProtection: false, storage, backupKey: key })).length,
      1,
    );

    // A device without state that backs up on the old head forks the chain: once the store
    // serves everything again, every device sees the fork.
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey: key,
      source: src,
      workers: 1,
    });
    for (const [k, v] of latest) storage.raw().set(k, v);
    await assert.rejects(
      listSnapshots({ rollbackProtection: false, storage, backupKey: key }),
      isCode('ROLLBACK'),
    );
    await assert.rejects(listSnapshots(access), isCode('ROLLBACK'));

    // A dropped middle snapshot is a gap: reported, and the others still list and restore.
    storage.raw().clear();
    for (const [k, v] of latest) storage.raw().set(k, v);
    await writeFile(join(src, 'newer.txt'), 'even more');
    await backup({ init: true, ...access, source: src, workers: 1 });
    const snaps = await listSnapshots(access);
    assert.equal(snaps.length, 3);
    storage.raw().delete(`snapshots/${snaps[1]?.id}`);
    const warnings: string[] = [];
    const left = await listSnapshots({ ...access, onWarning: (m) => warnings.push(m) });
    assert.deepEqual(
      left.map((s) => s.seq),
      [1, 3],
    );
    assert.match(warnings.join(), /snapshot 2 is not in the repository/);
  });

  it('storage outages pass through as UNAVAILABLE', async () => {
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    const src = await sample(dir);
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey: key,
      source: src,
      workers: 1,
    });
    storage.injectFault((op) =>
      op === 'getRange' || op === 'put' ? new UnavailableError('store down') : undefined,
    );
    await assert.rejects(
      restore({ rollbackProtection: false, storage, backupKey: key, target: join(dir, 'down') }),
      isCode('UNAVAILABLE'),
    );
    await writeFile(join(src, 'x'), randomBytes(1000));
    await assert.rejects(
      backup({
        rollbackProtection: false,
        init: true,
        storage,
        backupKey: key,
        source: src,
        workers: 1,
      }),
      isCode('UNAVAILABLE'),
    );
    storage.injectFault(undefined);
    assert.equal((await check({ rollbackProtection: false, storage, backupKey: key })).ok, true);
  });

  it(
    'a store failing mid-backup fails the backup (no hang) and leaves the previous snapshot intact',
    { timeout: 60_000 },
    async () => {
      const key = generateBackupKey();
      const storage = new MemoryStorage();
      const src = await sample(dir);
      await backup({
        rollbackProtection: false,
        init: true,
        storage,
        backupKey: key,
        source: src,
        workers: 2,
      });
      // Enough data for several packs per worker, so workers wait for buffers to come back.
      for (let i = 0; i < 4; i++)
        await writeFile(join(src, `big${i}.bin`), randomBytes(20_000_000));
      let puts = 0;
      storage.injectFault((op, name) =>
        op === 'put' && name.startsWith('data/') && ++puts > 1
          ? new UnavailableError('store down')
          : undefined,
      );
      await assert.rejects(
        backup({
          rollbackProtection: false,
          init: true,
          storage,
          backupKey: key,
          source: src,
          workers: 2,
        }),
        isCode('UNAVAILABLE'),
      );
      storage.injectFault(undefined);
      assert.equal(
        (await listSnapshots({ rollbackProtection: false, storage, backupKey: key })).length,
        1,
      );
      assert.equal(
        (await check({ rollbackProtection: false, storage, backupKey: key, readData: false })).ok,
        true,
      );
      for (let i = 0; i < 4; i++)
        await (await import('node:fs/promises')).rm(join(src, `big${i}.bin`));
    },
  );

  it('an interrupted backup leaves the previous snapshot restorable; prune removes and repacks leftovers', async () => {
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    const access = { storage, backupKey: key, rollbackProtection: false };
    const src = await sample(dir);
    await backup({ init: true, ...access, source: src, workers: 1 });
    const before = new Set(storage.raw().keys());

    // Two new files land in one pack; the snapshot write fails (crash at the commit point).
    await writeFile(join(src, 'keep.bin'), randomBytes(200_000));
    await writeFile(join(src, 'drop.bin'), randomBytes(200_000));
    storage.injectFault((op, name) =>
      op === 'put' && name.startsWith('snapshots/') ? new UnavailableError('crash') : undefined,
    );
    await assert.rejects(
      backup({ init: true, ...access, source: src, workers: 1 }),
      isCode('UNAVAILABLE'),
    );
    storage.injectFault(undefined);
    const leftovers = [...storage.raw().keys()].filter((n) => !before.has(n));
    assert.ok(
      leftovers.some((n) => n.startsWith('data/')) && leftovers.some((n) => n.startsWith('index/')),
    );
    assert.equal((await listSnapshots(access)).length, 1);
    assert.equal((await check(access)).ok, true);

    // Next backup reuses keep.bin's chunks from the leftover pack, drop.bin is gone.
    const { rm } = await import('node:fs/promises');
    await rm(join(src, 'drop.bin'));
    const r = await backup({ init: true, ...access, source: src, workers: 1 });
    assert.equal(r.chunksNew, 0);

    const p = await prune(access);
    assert.ok(p.packsRepacked >= 1, JSON.stringify(p));
    assert.ok(p.packsDeleted >= 1 && p.indexesDeleted >= 2 && p.bytesFreed > 0, JSON.stringify(p));
    assert.equal(names(storage, 'index/').length, 1);
    const c = await check(access);
    assert.deepEqual(c.problems, []);
    const out = join(dir, 'after-prune');
    await restore({ ...access, target: out });
    await assertSameTree(src, out);
    const first = join(dir, 'after-prune-first');
    await restore({ ...access, target: first, snapshotId: (await listSnapshots(access))[0]?.id });

    // A second prune has nothing to do.
    const p2 = await prune(access);
    assert.deepEqual([p2.packsDeleted, p2.indexesDeleted, p2.packsRepacked], [0, 0, 0]);
  });
});
