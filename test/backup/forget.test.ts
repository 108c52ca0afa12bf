/**
 * `forget` on real repositories (MemoryStorage and LocalStorage): it deletes exactly the
 * snapshots the policy does not keep, oldest first and never the head; every kept snapshot
 * still restores byte-exact and `check` is clean; `--prune` frees their data; a dry run and
 * a bad policy change nothing; forget and a backup racing, in both orders and at once,
 * leave a consistent repository in which no snapshot the policy keeps is lost.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { forget, listSnapshots, type ForgetResult } from '#sdk/backup/index.js';
import { DAMAGED_PREV_REASON } from '#sdk/backup/commands/forget.js';
import { RepoLock } from '#sdk/backup/repository/lock.js';
import { openRepository } from '#sdk/backup/repository/repository.js';
import { hasCode } from '#sdk/errors.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import type { Storage } from '#sdk/storage/storage.js';
import {
  assertConsistent,
  backupOnce,
  makeRepo,
  objectMap,
  snapshotNames,
  storedBytes,
  type Fixture,
} from './forget-fixtures.js';
import { removeDir, tempDir } from './helpers.js';

/**
 * A Storage that stops at the first operation `match` accepts until `release()`: so a test
 * can hold one operation in the middle of its work (its lock taken) while another starts.
 */
function gated(
  inner: Storage,
  match: (op: 'put' | 'delete', name: string) => boolean,
): { storage: Storage; reached: Promise<void>; release: () => void } {
  let hit = false;
  let onReached: () => void = () => undefined;
  let onRelease: () => void = () => undefined;
  const reached = new Promise<void>((r) => (onReached = r));
  const released = new Promise<void>((r) => (onRelease = r));
  const wait = async (op: 'put' | 'delete', name: string): Promise<void> => {
    if (hit || !match(op, name)) return;
    hit = true;
    onReached();
    await released;
  };
  const storage: Storage = {
    location: inner.location,
    put: async (n, d) => {
      await wait('put', n);
      return inner.put(n, d);
    },
    get: (n) => inner.get(n),
    getRange: (n, o, l) => inner.getRange(n, o, l),
    stat: (n) => inner.stat(n),
    list: (p) => inner.list(p),
    delete: async (n) => {
      await wait('delete', n);
      return inner.delete(n);
    },
    close: () => inner.close(),
  };
  return { storage, reached, release: () => onRelease() };
}

for (const kind of ['memory', 'local'] as const) {
  describe(`forget on a ${kind} repository`, () => {
    let dir: string;
    before(async () => {
      dir = await tempDir('bv-forget-');
    });
    after(async () => removeDir(dir));

    const fresh = async (name: string, versions: number): Promise<Fixture> => {
      const d = join(dir, name);
      await mkdir(d, { recursive: true });
      const storage = kind === 'memory' ? new MemoryStorage() : new LocalStorage(join(d, 'repo'));
      return makeRepo(storage, d, versions);
    };

    it('keep-last 2 deletes the 3 oldest, oldest first; the kept ones restore byte-exact', async () => {
      const f = await fresh('last', 5);
      const before = await listSnapshots({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
      });
      const deleted: string[] = [];
      const spy: Storage = {
        location: f.storage.location,
        list: (p) => f.storage.list(p),
        get: (n) => f.storage.get(n),
        getRange: (n, o, l) => f.storage.getRange(n, o, l),
        stat: (n) => f.storage.stat(n),
        put: (n, d) => f.storage.put(n, d),
        close: () => f.storage.close(),
        delete: (n) => {
          if (n.startsWith('snapshots/')) deleted.push(n.slice('snapshots/'.length));
          return f.storage.delete(n);
        },
      };
      const progress: number[] = [];
      const r = await forget({
        storage: spy,
        backupKey: f.key,
        statePath: f.statePath,
        policy: { last: 2 },
        timeZone: 'UTC',
        onProgress: (p) => {
          assert.equal(p.phase, 'forget');
          progress.push(p.filesDone);
        },
      });
      assert.equal(r.dryRun, false);
      assert.equal(r.removed, 3);
      assert.deepEqual(
        r.remove.map((s) => s.seq),
        [1, 2, 3],
      );
      assert.deepEqual(
        r.keep.map((s) => [s.seq, s.reasons]),
        [
          [4, ['last snapshot']],
          [5, ['last snapshot']],
        ],
      );
      assert.deepEqual(
        deleted,
        before.slice(0, 3).map((s) => s.id),
        'oldest first, nothing else',
      );
      assert.deepEqual(progress, [1, 2, 3]);
      assert.equal(r.prune, undefined, 'no prune unless asked');
      assert.deepEqual(
        await snapshotNames(f.storage),
        before
          .slice(3)
          .map((s) => s.id)
          .sort(),
      );
      const warnings: string[] = [];
      const after = await listSnapshots({
        storage: f.storage,
        backupKey: f.key,
        statePath: f.statePath,
        onWarning: (w) => warnings.push(w),
      });
      assert.deepEqual(
        after.map((s) => s.seq),
        [4, 5],
      );
      assert.match(warnings.join('\n'), /snapshots 1-3 are not in the repository/);
      await assertConsistent(f);
      // The chain goes on: the next backup is seq 6 and forget again removes seq 4.
      await backupOnce(f);
      const again = await forget({
        storage: f.storage,
        backupKey: f.key,
        statePath: f.statePath,
        policy: { last: 2 },
      });
      assert.deepEqual(
        again.remove.map((s) => s.seq),
        [4],
      );
      await assertConsistent(f);
    });

    it('--prune frees the data only the removed snapshots used', async () => {
      const f = await fresh('prune', 4);
      const before = await storedBytes(f.storage);
      const r = await forget({
        storage: f.storage,
        backupKey: f.key,
        statePath: f.statePath,
        policy: { last: 1 },
        prune: true,
      });
      assert.equal(r.removed, 3);
      assert.ok(r.prune, 'prune ran');
      // Three versions of 90 KB of random data each were only in the removed snapshots.
      assert.ok(r.prune.bytesFreed > 3 * 85_000, `freed ${r.prune.bytesFreed}`);
      const afterBytes = await storedBytes(f.storage);
      assert.ok(before - afterBytes > 3 * 85_000, `${before} -> ${afterBytes}`);
      await assertConsistent(f);
    });

    it('a dry run changes nothing and returns the plan a real run then follows', async () => {
      const f = await fresh('dry', 4);
      const map = await objectMap(f.storage);
      const dry = await forget({
        storage: f.storage,
        backupKey: f.key,
        statePath: f.statePath,
        policy: { last: 1, within: '1h' },
        dryRun: true,
        prune: true,
      });
      assert.equal(dry.dryRun, true);
      assert.equal(dry.removed, 0);
      assert.equal(dry.prune, undefined);
      assert.deepEqual(await objectMap(f.storage), map, 'not one object changed');
      // Backups a second apart are all within 1h of the newest: nothing to remove.
      assert.equal(dry.remove.length, 0);
      const dry2 = await forget({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
        policy: { last: 2 },
        dryRun: true,
      });
      assert.deepEqual(await objectMap(f.storage), map);
      const real = await forget({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
        policy: { last: 2 },
      });
      const plan = (r: ForgetResult): unknown => [
        r.keep.map((s) => [s.id, s.reasons]),
        r.remove.map((s) => s.id),
      ];
      assert.deepEqual(plan(real), plan(dry2));
      assert.equal(real.removed, 2);
    });

    it('a bad policy or time zone changes nothing (USAGE)', async () => {
      const f = await fresh('bad', 2);
      const map = await objectMap(f.storage);
      const access = { storage: f.storage, backupKey: f.key, statePath: f.statePath };
      for (const policy of [{}, { last: 0 }, { last: -3 }, { within: '2w' }, { daily: 1.5 }]) {
        await assert.rejects(
          forget({ ...access, policy }),
          (e) => hasCode(e, 'USAGE'),
          JSON.stringify(policy),
        );
      }
      await assert.rejects(
        forget({ ...access, policy: { last: 1 }, timeZone: 'Nowhere/Else' }),
        (e) => hasCode(e, 'USAGE'),
      );
      assert.deepEqual(await objectMap(f.storage), map);
    });

    it('the head is kept even when its clock is older than the others', async () => {
      const f = await fresh('clock', 0);
      const realNow = Date.now;
      const at = async (iso: string): Promise<string> => {
        const offset = Date.parse(iso) - realNow();
        Date.now = () => realNow() + offset;
        try {
          return await backupOnce(f);
        } finally {
          Date.now = realNow;
        }
      };
      const s1 = await at('2024-03-01T10:00:00Z');
      await at('2024-03-02T10:00:00Z');
      const s3 = await at('2024-03-03T10:00:00Z');
      const head = await at('2024-03-02T12:00:00Z'); // the clock went back a day
      const r = await forget({
        storage: f.storage,
        backupKey: f.key,
        statePath: f.statePath,
        policy: { last: 1 },
        timeZone: 'UTC',
      });
      assert.deepEqual(
        r.keep.map((s) => [s.id, s.reasons]),
        [
          [s3, ['last snapshot']],
          [head, ['latest snapshot (the head is always kept)']],
        ],
      );
      assert.equal(r.remove[0]?.id, s1);
      assert.deepEqual(await snapshotNames(f.storage), [s3, head].sort());
      await assertConsistent(f);
      // keep-daily in Asia/Tokyo over the same kind of history: calendar days of the zone.
      const d = await at('2024-03-05T16:00:00Z'); // 6 March in Tokyo
      const e = await at('2024-03-05T14:00:30Z'); // 5 March 23:00:30 in Tokyo (clock back)
      const daily = await forget({
        storage: f.storage,
        backupKey: f.key,
        statePath: f.statePath,
        policy: { daily: 2 },
        timeZone: 'Asia/Tokyo',
        dryRun: true,
      });
      assert.deepEqual(
        daily.keep.map((s) => s.id),
        [d, e],
      );
    });

    it('a damaged older snapshot: forget skips it; with --prune it refuses before deleting', async () => {
      if (kind !== 'memory') return; // tampering needs the memory store's hook
      const f = await fresh('damaged', 4);
      const mem = f.storage as MemoryStorage;
      const list = await listSnapshots({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
      });
      const victim = `snapshots/${list[1]?.id}`;
      mem.tamper(victim, (b) => {
        b[b.length - 1] = (b[b.length - 1] as number) ^ 1;
        return b;
      });
      const map = await objectMap(f.storage);
      await assert.rejects(
        forget({
          rollbackProtection: false,
          storage: f.storage,
          backupKey: f.key,
          policy: { last: 1 },
          prune: true,
        }),
        (e) => hasCode(e, 'CORRUPT'),
      );
      assert.deepEqual(await objectMap(f.storage), map, 'nothing deleted');
      const r = await forget({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
        policy: { last: 1 },
      });
      // Seq 3 names the damaged seq 2: deleting it would leave a damaged object that could be
      // the head, and every command would fail. So it stays, with a reason.
      assert.deepEqual(
        r.remove.map((s) => s.seq),
        [1],
      );
      assert.deepEqual(
        r.keep.map((s) => [s.seq, s.reasons]),
        [
          [3, [DAMAGED_PREV_REASON]],
          [4, ['last snapshot']],
        ],
      );
      assert.match(r.warnings.join('\n'), /damaged and was left out/);
      assert.ok(mem.raw().has(victim), 'forget does not delete what it could not verify');
      // The repository still lists and restores its snapshots.
      const list2 = await listSnapshots({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
      });
      assert.deepEqual(
        list2.map((s) => s.seq),
        [3, 4],
      );
      const again = await forget({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
        policy: { last: 1 },
      });
      assert.equal(again.remove.length, 0, 'stable');
    });

    it('a forget while another process holds the lock fails with CONFLICT and deletes nothing', async () => {
      const f = await fresh('locked', 3);
      const repo = await openRepository({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
      });
      const lock = await RepoLock.acquire(repo, 'backup', true);
      try {
        const map = await objectMap(f.storage);
        await assert.rejects(
          forget({
            rollbackProtection: false,
            storage: f.storage,
            backupKey: f.key,
            policy: { last: 1 },
          }),
          (e) => hasCode(e, 'CONFLICT') && /locked by a backup/.test(e.message),
        );
        assert.deepEqual(await objectMap(f.storage), map);
        // A dry run takes no lock: it still answers.
        const dry = await forget({
          rollbackProtection: false,
          storage: f.storage,
          backupKey: f.key,
          policy: { last: 1 },
          dryRun: true,
        });
        assert.equal(dry.remove.length, 2);
      } finally {
        await lock.release();
      }
    });

    it('backup first, forget during it: forget is refused, then applies to the new snapshot too', async () => {
      const f = await fresh('race-a', 3);
      const g = gated(f.storage, (op, n) => op === 'put' && n.startsWith('index/'));
      const running = backupOnce(f, g.storage);
      await g.reached; // the backup holds its lock and has uploaded its packs
      const snaps = await snapshotNames(f.storage);
      await assert.rejects(
        forget({
          rollbackProtection: false,
          storage: f.storage,
          backupKey: f.key,
          policy: { last: 1 },
        }),
        (e) => hasCode(e, 'CONFLICT'),
      );
      assert.deepEqual(await snapshotNames(f.storage), snaps, 'nothing deleted');
      g.release();
      const newest = await running;
      const r = await forget({
        storage: f.storage,
        backupKey: f.key,
        statePath: f.statePath,
        policy: { last: 2 },
      });
      assert.equal(r.keep.at(-1)?.id, newest);
      assert.deepEqual(
        r.keep.map((s) => s.seq),
        [3, 4],
      );
      await assertConsistent(f);
    });

    it('forget first, backup during it: the backup is refused, commits nothing, and succeeds after', async () => {
      const f = await fresh('race-b', 4);
      const g = gated(f.storage, (op, n) => op === 'delete' && n.startsWith('snapshots/'));
      const running = forget({
        storage: g.storage,
        backupKey: f.key,
        statePath: f.statePath,
        policy: { last: 2 },
      });
      await g.reached; // forget holds its lock and is about to delete the oldest snapshot
      await assert.rejects(backupOnce(f), (e) => hasCode(e, 'CONFLICT'));
      g.release();
      const r = await running;
      assert.equal(r.removed, 2);
      const kept = r.keep.map((s) => s.id);
      assert.deepEqual((await snapshotNames(f.storage)).sort(), [...kept].sort());
      const newest = await backupOnce(f);
      const list = await listSnapshots({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
      });
      assert.deepEqual(
        list.map((s) => s.id),
        [...kept, newest],
      );
      await assertConsistent(f);
    });

    it('backup and forget started together, many rounds: never both, never a lost keeper', async () => {
      const f = await fresh('race-c', 2);
      let forgets = 0;
      let backups = 0;
      for (let round = 0; round < 6; round++) {
        const [b, g] = await Promise.allSettled([
          backupOnce(f),
          forget({
            storage: f.storage,
            backupKey: f.key,
            statePath: f.statePath,
            policy: { last: 2 },
          }),
        ]);
        for (const x of [b, g]) {
          if (x.status === 'rejected') assert.ok(hasCode(x.reason, 'CONFLICT'), String(x.reason));
        }
        if (b.status === 'fulfilled') backups += 1;
        if (g.status === 'fulfilled') {
          forgets += 1;
          // Every snapshot this forget kept is still there.
          const names = new Set(await snapshotNames(f.storage));
          for (const k of g.value.keep) assert.ok(names.has(k.id), `kept ${k.seq} is stored`);
        }
        // Retry what was refused, one after the other.
        if (b.status === 'rejected') {
          await backupOnce(f);
          backups += 1;
        }
        if (g.status === 'rejected') {
          const r = await forget({
            storage: f.storage,
            backupKey: f.key,
            statePath: f.statePath,
            policy: { last: 2 },
          });
          forgets += 1;
          assert.deepEqual((await snapshotNames(f.storage)).sort(), r.keep.map((s) => s.id).sort());
        }
      }
      assert.equal(backups, 6);
      assert.equal(forgets, 6);
      const list = await listSnapshots({
        rollbackProtection: false,
        storage: f.storage,
        backupKey: f.key,
      });
      assert.ok(list.length >= 2 && list.length <= 3, `${list.length} snapshots`);
      assert.equal(list.at(-1)?.seq, 8, 'the chain reached seq 8 without a fork');
      await assertConsistent(f);
    });
  });
}
