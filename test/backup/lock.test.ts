/**
 * Repository locks (src/backup/lock.ts): a prune never runs while a backup holds its lock,
 * a backup never starts under a prune's or another backup's lock (no forked chain), stale locks (dead process on this host, or not
 * refreshed for 30 min) are ignored and cleared by the next prune, a holder that lost its
 * lock refuses to commit, and racing exclusive holders never both proceed. The last tests
 * run the real CLI: a backup frozen (SIGSTOP) while it holds its lock makes a concurrent
 * prune fail with CONFLICT and delete nothing; a backup killed with SIGKILL leaves a lock
 * that the next prune recognises as dead.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  backup,
  check,
  forget,
  listSnapshots,
  prune,
  restore,
  type LockWait,
} from '#sdk/backup/index.js';
import {
  KEY_SLOTS_LOCK_OP,
  LOCK_REFRESH_MS,
  LOCK_SELF_STALE_MS,
  LOCK_STALE_MS,
  RepoLock,
  listLocks,
} from '#sdk/backup/repository/lock.js';
import { openRepository } from '#sdk/backup/repository/repository.js';
import { hasCode } from '#sdk/errors.js';
import {
  ObjectKind,
  generateBackupKey,
  objectAd,
  packName,
  toHex,
  utf8,
} from '#sdk/format/index.js';
import { seal } from '#sdk/backup/repository/keys.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { MAIN_JS } from '../cli/cli-harness.js';
import { removeDir, tempDir } from './helpers.js';

/** The pid of a process that has exited (so certainly not alive). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.exit(0)']);
  assert.ok(r.pid);
  return r.pid;
}

function snapshotOf(storage: MemoryStorage): Map<string, string> {
  return new Map([...storage.raw()].map(([k, v]) => [k, toHex(v)]));
}

describe('repository locks', () => {
  let dir: string;
  const key = generateBackupKey();
  let n = 0;

  before(async () => {
    dir = await tempDir('bv-lock-');
  });
  after(async () => {
    await removeDir(dir);
  });

  /** A repository with two snapshots and one orphan pack (prune has work to do). */
  async function repoWithGarbage(): Promise<{ storage: MemoryStorage; statePath: string }> {
    const src = join(dir, `src${n++}`);
    await mkdir(src, { recursive: true });
    const storage = new MemoryStorage();
    const statePath = join(dir, `state${n}.json`);
    await writeFile(join(src, 'a.bin'), randomBytes(200_000));
    await backup({ init: true, storage, backupKey: key, statePath, source: src, workers: 1 });
    await writeFile(join(src, 'a.bin'), randomBytes(200_000));
    await backup({ init: true, storage, backupKey: key, statePath, source: src, workers: 1 });
    // What a backup killed before its index leaves: a pack no index names (prune deletes it).
    const orphan = randomBytes(5000);
    await storage.put(packName(createHash('sha256').update(orphan).digest('hex')), orphan);
    return { storage, statePath };
  }

  it('a prune is refused while a live backup holds its lock, and deletes nothing', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    const held = await RepoLock.acquire(repo, 'backup', true);
    const before = snapshotOf(storage);
    await assert.rejects(prune({ storage, backupKey: key, statePath }), (e) =>
      hasCode(e, 'CONFLICT'),
    );
    assert.deepEqual(snapshotOf(storage), before, 'a refused prune changed the store');
    await held.release();
    const r = await prune({ storage, backupKey: key, statePath });
    assert.equal(r.packsDeleted, 1, 'the orphan pack was not deleted');
    assert.deepEqual(await listLocks(repo), [], 'locks left behind');
  });

  it('a backup is refused while a prune holds the exclusive lock, and writes nothing', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    const held = await RepoLock.acquire(repo, 'prune', true);
    const before = snapshotOf(storage);
    const src = join(dir, `src-b${n++}`);
    await mkdir(src);
    await writeFile(join(src, 'x'), 'new data');
    await assert.rejects(
      backup({ init: true, storage, backupKey: key, statePath, source: src }),
      (e) => hasCode(e, 'CONFLICT'),
    );
    assert.deepEqual(snapshotOf(storage), before, 'a refused backup changed the store');
    await held.release();
    await backup({ init: true, storage, backupKey: key, statePath, source: src, workers: 1 });
    assert.equal((await listSnapshots({ storage, backupKey: key, statePath })).length, 3);
  });

  it('shared locks share, and an exclusive one excludes them', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    const a = await RepoLock.acquire(repo, 'reader', false);
    const b = await RepoLock.acquire(repo, 'reader', false);
    assert.equal((await listLocks(repo)).length, 2);
    await assert.rejects(RepoLock.acquire(repo, 'prune', true), (e) => hasCode(e, 'CONFLICT'));
    await a.release();
    await b.release();
    assert.deepEqual(await listLocks(repo), []);
  });

  it('a key-slot change locks out other key-slot changes only, and clears only stale key-slot locks', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    const phone = { hostname: 'other-phone', pid: deadPid() };
    const keys = await RepoLock.acquire(repo, KEY_SLOTS_LOCK_OP, true, phone);
    // A backup and a prune run beside it: they never touch keys/.
    const b = await RepoLock.acquire(repo, 'backup', true);
    await b.release();
    await prune({ storage, backupKey: key, statePath });
    // Another key-slot change is refused, naming what holds the lock.
    await assert.rejects(RepoLock.acquire(repo, KEY_SLOTS_LOCK_OP, true), (e) => {
      assert.ok(hasCode(e, 'CONFLICT'));
      assert.match((e as Error).message, /a key-slot change on other-phone/);
      return true;
    });
    await keys.release();
    // Stale locks: a backup clears the stale backup lock it ignored, not the key-slot one;
    // the next key-slot change clears that.
    const past = Date.now() - LOCK_STALE_MS - 60_000;
    const old = { hostname: 'other-phone', now: () => past };
    await RepoLock.acquire(repo, KEY_SLOTS_LOCK_OP, true, old);
    await RepoLock.acquire(repo, 'backup', true, old);
    const fresh = await RepoLock.acquire(repo, 'backup', true);
    const ops = async (): Promise<string[]> => (await listLocks(repo)).map((l) => l.info.op).sort();
    assert.deepEqual(await ops(), ['backup', KEY_SLOTS_LOCK_OP]);
    await fresh.release();
    const change = await RepoLock.acquire(repo, KEY_SLOTS_LOCK_OP, true);
    assert.deepEqual(await ops(), [KEY_SLOTS_LOCK_OP]);
    await change.release();
    assert.deepEqual(await listLocks(repo), []);
  });

  it('two backups at once never fork the snapshot chain', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const srcs = [0, 1].map((i) => join(dir, `twin${n}-${i}`));
    n++;
    for (const [i, s] of srcs.entries()) {
      await mkdir(s);
      await writeFile(join(s, 'f.bin'), randomBytes(100_000 + i));
    }
    let conflicts = 0;
    for (const delayMs of [0, 2, 5, 10]) {
      const rs = await Promise.allSettled(
        srcs.map(async (source, i) => {
          if (i === 1) await new Promise((r) => setTimeout(r, delayMs));
          return backup({ init: true, storage, backupKey: key, statePath, source, workers: 1 });
        }),
      );
      for (const r of rs) {
        if (r.status === 'fulfilled') continue;
        assert.ok(hasCode(r.reason, 'CONFLICT'), String(r.reason));
        conflicts += 1;
      }
    }
    assert.ok(conflicts > 0, 'the backups never overlapped: the test proves nothing');
    // A fork would make this throw ROLLBACK.
    const snaps = await listSnapshots({ storage, backupKey: key, statePath });
    assert.ok(snaps.length >= 3, `only ${snaps.length} snapshots`);
    assert.deepEqual(
      snaps.map((s) => s.seq),
      snaps.map((_, i) => i + 1),
    );
  });

  it('stale locks (dead process here, or old anywhere) are ignored and cleared by prune', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    // A backup on another device, last refreshed 31 minutes ago.
    const past = Date.now() - LOCK_STALE_MS - 60_000;
    await RepoLock.acquire(repo, 'backup', true, { hostname: 'other-phone', now: () => past });
    // A backup on this host whose process died (kill -9) without releasing.
    await RepoLock.acquire(repo, 'backup', true, { pid: deadPid() });
    // The second, exclusive, acquirer cleared the stale lock it ignored.
    assert.equal((await listLocks(repo)).length, 1);
    await prune({ storage, backupKey: key, statePath });
    assert.deepEqual(await listLocks(repo), [], 'stale locks were not cleared');
  });

  it('a fresh lock of another host is respected even if its pid means nothing here', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    const other = await RepoLock.acquire(repo, 'backup', true, {
      hostname: 'other-phone',
      pid: deadPid(),
    });
    await assert.rejects(prune({ storage, backupKey: key, statePath }), (e) =>
      hasCode(e, 'CONFLICT'),
    );
    await other.release();
  });

  it('a fresh lock of another machine or container with this host name is respected though its pid is dead here', async () => {
    // Host names are not unique: two Raspberry Pis both `raspberrypi`, a container run with
    // the host's network (its name) but its own pids. Such a lock's pid says nothing here;
    // judging it dead let a prune run beside that backup. Written as another machine
    // writes it: the same host name, a pid that does not exist here, its own pid space.
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    const plain = JSON.stringify({
      v: 1,
      op: 'backup',
      exclusive: true,
      host: hostname(),
      pid: deadPid(),
      time: Date.now(),
      pidSpace: 'another-boot/pid:[4026531836]',
    });
    const name = `locks/${'cd'.repeat(32)}`;
    await storage.put(
      name,
      seal(repo.keys.meta, objectAd(ObjectKind.LOCK, repo.keys.repoId), utf8(plain)),
    );
    const before = snapshotOf(storage);
    await assert.rejects(prune({ storage, backupKey: key, statePath }), (e) =>
      hasCode(e, 'CONFLICT'),
    );
    assert.deepEqual(snapshotOf(storage), before, 'the prune changed the store');
    // Not refreshed for 30 minutes, it is stale like any other.
    const later = Date.now() + LOCK_STALE_MS + 60_000;
    const l = await RepoLock.acquire(repo, 'prune', true, { now: () => later });
    await l.release();
    assert.deepEqual(await listLocks(repo), []);
  });

  it('a holder whose lock was cleared or went unrefreshed refuses to commit', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    let t = Date.now();
    const lock = await RepoLock.acquire(repo, 'backup', true, { now: () => t });
    await lock.assertHeld();
    t += LOCK_SELF_STALE_MS + 1000; // stopped (suspended) for longer than it may trust
    await assert.rejects(lock.assertHeld(), (e) => hasCode(e, 'CONFLICT'));
    await lock.release();

    const lock2 = await RepoLock.acquire(repo, 'backup', true);
    await storage.delete(lock2.name); // a prune judged it stale and cleared it
    await assert.rejects(lock2.assertHeld(), (e) => hasCode(e, 'CONFLICT'));
    await lock2.release();
  });

  it('a holder refreshes its lock on time, but never revives one it let go stale', async (t) => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    t.mock.timers.enable({ apis: ['setInterval'] });
    let clock = Date.now();
    const lock = await RepoLock.acquire(repo, 'backup', true, { now: () => clock });
    const timeOf = async (): Promise<number | undefined> =>
      (await listLocks(repo)).find((l) => l.name === lock.name)?.info.time;
    clock += LOCK_REFRESH_MS;
    t.mock.timers.tick(LOCK_REFRESH_MS);
    await lock.assertHeld(); // waits for the refresh
    assert.equal(await timeOf(), clock, 'the lock was not refreshed');
    const refreshed = clock;
    clock += LOCK_SELF_STALE_MS; // stopped: others may be about to clear it
    t.mock.timers.tick(LOCK_REFRESH_MS);
    await assert.rejects(lock.assertHeld(), (e) => hasCode(e, 'CONFLICT'));
    assert.equal(await timeOf(), refreshed, 'a stale lock was rewritten');
    await lock.release();
  });

  it('retryLock: a backup waits for a prune to finish, told each time, then runs', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    const held = await RepoLock.acquire(repo, 'prune', true);
    const src = join(dir, `src-w${n++}`);
    await mkdir(src);
    await writeFile(join(src, 'x'), 'waited for');
    const waits: LockWait[] = [];
    const started = Date.now();
    const backingUp = backup({
      storage,
      backupKey: key,
      statePath,
      source: src,
      workers: 0,
      retryLock: '1m',
      onLockWait: (w) => waits.push(w),
    });
    // Released only once the backup has been refused and said it waits.
    while (waits.length === 0) {
      if (Date.now() - started > 30_000) assert.fail('the backup was not told it waits');
      await new Promise((r) => setTimeout(r, 20));
    }
    await held.release();
    const r = await backingUp;
    assert.equal(r.seq, 3);
    const w = waits[0]!;
    assert.match(w.message, /locked by a prune on /);
    assert.ok(w.nextTryAt > started && w.giveUpAt >= started + 59_000, JSON.stringify(w));
    assert.deepEqual(await listLocks(repo), []);
  });

  it('retryLock gives up with CONFLICT after its time; an abort ends the wait at once; a bad one is USAGE', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    const held = await RepoLock.acquire(repo, 'backup', true);
    try {
      const before = snapshotOf(storage);
      let t = Date.now();
      await assert.rejects(prune({ storage, backupKey: key, statePath, retryLock: 2500 }), (e) =>
        hasCode(e, 'CONFLICT'),
      );
      const waited = Date.now() - t;
      assert.ok(waited >= 2400 && waited < 10_000, `gave up after ${waited} ms`);
      assert.deepEqual(snapshotOf(storage), before, 'a refused prune changed the store');

      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      t = Date.now();
      await assert.rejects(
        prune({ storage, backupKey: key, statePath, retryLock: '10m', signal: ac.signal }),
        (e) => (e as Error).name === 'AbortError',
      );
      assert.ok(Date.now() - t < 3000, 'the abort did not end the wait');
      assert.deepEqual(snapshotOf(storage), before, 'an aborted prune changed the store');

      await assert.rejects(prune({ storage, backupKey: key, statePath, retryLock: 'soon' }), (e) =>
        hasCode(e, 'USAGE'),
      );
      await assert.rejects(prune({ storage, backupKey: key, statePath, retryLock: -1 }), (e) =>
        hasCode(e, 'USAGE'),
      );
    } finally {
      await held.release();
    }
  });

  it('racing exclusive holders never both proceed', async () => {
    const { storage, statePath } = await repoWithGarbage();
    const repo = await openRepository({ storage, backupKey: key, statePath });
    for (let i = 0; i < 20; i++) {
      const rs = await Promise.allSettled([
        RepoLock.acquire(repo, 'prune', true),
        RepoLock.acquire(repo, 'prune', true),
        RepoLock.acquire(repo, 'reader', false),
      ]);
      const won = rs.filter((r) => r.status === 'fulfilled');
      const exclusiveWon = rs.slice(0, 2).filter((r) => r.status === 'fulfilled').length;
      assert.ok(exclusiveWon <= 1, 'two exclusive locks held at once');
      if (exclusiveWon === 1) assert.equal(won.length, 1, 'an exclusive lock shared');
      for (const r of rs) if (r.status === 'fulfilled') await r.value.release();
      for (const r of rs) {
        if (r.status === 'rejected') assert.ok(hasCode(r.reason, 'CONFLICT'), String(r.reason));
      }
    }
    assert.deepEqual(await listLocks(repo), []);
  });

  it('an object under locks/ that is not our lock is CORRUPT, naming it; check finds it and the error says what to do', async () => {
    // Every backup, prune and forget fails on it, while `check`, which the error pointed
    // to, said the repository was sound: the user had no way forward. (A cloud drive's
    // sync client leaves such objects: an empty placeholder, a "conflicted copy".)
    const { storage, statePath } = await repoWithGarbage();
    const access = { storage, backupKey: key, statePath };
    const bogus = [
      `locks/${'ab'.repeat(32)}`,
      `locks/${'cd'.repeat(32)}`,
      `locks/${'ef'.repeat(32)}-conflicted-copy`,
    ];
    await storage.put(bogus[0] as string, randomBytes(64));
    await storage.put(bogus[1] as string, new Uint8Array(0));
    await storage.put(bogus[2] as string, randomBytes(64));
    await assert.rejects(prune(access), (e) => {
      assert.ok(hasCode(e, 'CORRUPT'), String(e));
      const o = (e as { object?: string }).object as string;
      assert.ok(bogus.includes(o) && (e as Error).message.includes(o), String(e));
      assert.match((e as { hint: string }).hint, /delete/);
      return true;
    });
    const c = await check({ ...access, readData: false });
    assert.deepEqual(
      // (The fixture's orphan pack of random bytes is a problem of its own.)
      c.problems.filter((p) => p.object.startsWith('locks/')).map((p) => [p.code, p.object]),
      bogus.map((b) => ['CORRUPT', b]),
    );
    for (const b of bogus) await storage.delete(b);
    await prune(access);
  });

  it('a prune that lost its lock before deleting deletes nothing, and a backup that took over keeps its data', async () => {
    // A prune stopped (a suspended laptop) until its lock went stale; another device's
    // backup cleared the lock, deduplicated against data this prune had planned to free and
    // committed. The prune wakes up: deleting now would take that snapshot's data with it.
    const src = join(dir, `lost${n++}`);
    await mkdir(src);
    const storage = new MemoryStorage();
    const statePath = join(dir, `lost-state${n}.json`);
    const photo = randomBytes(300_000);
    await writeFile(join(src, 'photo.jpg'), photo);
    const access = { storage, backupKey: key, statePath };
    await backup({ init: true, ...access, source: src, workers: 1 });
    await rm(join(src, 'photo.jpg'));
    await writeFile(join(src, 'note.txt'), 'only this now');
    await backup({ ...access, source: src, workers: 1 });
    // The first snapshot is forgotten: its photo is now data no snapshot uses.
    await forget({ ...access, policy: { last: 1 } });

    const other = join(dir, `lost-other${n}`);
    await mkdir(other);
    await writeFile(join(other, 'photo.jpg'), photo);
    const otherAccess = { storage, backupKey: key, statePath: join(dir, `lost-other${n}.json`) };
    let tookOver = false;
    const sleepy: typeof storage = Object.create(storage) as typeof storage;
    sleepy.put = async (name, data) => {
      if (name.startsWith('index/') && !tookOver) {
        tookOver = true;
        // The other device finds the prune's lock stale and clears it, then backs up.
        const repo = await openRepository(otherAccess);
        for (const l of await listLocks(repo)) await storage.delete(l.name);
        await backup({ ...otherAccess, source: other, workers: 1, hostname: 'laptop' });
      }
      return storage.put(name, data);
    };
    await assert.rejects(prune({ ...access, storage: sleepy }), (e) => hasCode(e, 'CONFLICT'));
    assert.ok(tookOver, 'the prune wrote no index: the test proves nothing');
    const out = join(dir, `lost-out${n}`);
    await restore({ ...otherAccess, target: out });
    assert.deepEqual(await readFile(join(out, 'photo.jpg')), photo);
    assert.deepEqual((await check(otherAccess)).problems, []);
    // Run again with the lock held, it frees nothing the new snapshot uses.
    await prune(otherAccess);
    assert.deepEqual((await check(otherAccess)).problems, []);
  });

  describe('with the real CLI and a local store', () => {
    async function cliBackupHoldingLock(): Promise<{
      repo: string;
      env: NodeJS.ProcessEnv;
      child: ReturnType<typeof spawn>;
      done: Promise<number | null>;
    }> {
      const base = join(dir, `cli${n++}`);
      const src = join(base, 'src');
      const repo = join(base, 'repo');
      await mkdir(src, { recursive: true });
      for (let i = 0; i < 6; i++) await writeFile(join(src, `f${i}.bin`), randomBytes(20 << 20));
      const env = {
        PATH: process.env.PATH,
        HOME: base,
        BACKVAULT_STATE: join(base, 'state.json'),
        BACKVAULT_KEY: toHex(key),
      };
      // A first backup makes the repository; the second one is the one caught holding its lock.
      const first = spawnSync(
        process.execPath,
        [MAIN_JS, 'backup', join(base, 'src'), '--init', '--repo', repo],
        { env },
      );
      assert.equal(first.status, 0, String(first.stderr));
      for (let i = 0; i < 6; i++) await writeFile(join(src, `f${i}.bin`), randomBytes(20 << 20));
      const child = spawn(process.execPath, [MAIN_JS, 'backup', src, '--init', '--repo', repo], {
        env,
        stdio: 'ignore',
      });
      const done = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      const locks = join(repo, 'locks');
      for (;;) {
        const names = await readdir(locks).catch(() => [] as string[]);
        if (names.some((x) => /^[0-9a-f]{64}$/.test(x))) break;
        if (child.exitCode !== null) assert.fail('the backup finished before its lock was seen');
        await new Promise((r) => setTimeout(r, 2));
      }
      return { repo, env, child, done };
    }

    it('prune fails with CONFLICT while a (frozen) backup holds its lock', async () => {
      const { repo, env, child, done } = await cliBackupHoldingLock();
      process.kill(child.pid as number, 'SIGSTOP');
      try {
        const before = await readdir(join(repo, 'data'), { recursive: true });
        const p = spawnSync(process.execPath, [MAIN_JS, 'prune', '--repo', repo], {
          env,
          encoding: 'utf8',
        });
        assert.equal(p.status, 1, p.stderr);
        assert.match(p.stderr, /^CONFLICT: .*locked by a backup on /);
        assert.deepEqual(await readdir(join(repo, 'data'), { recursive: true }), before);
      } finally {
        process.kill(child.pid as number, 'SIGCONT');
      }
      assert.equal(await done, 0, 'the backup failed after being resumed');
      const c = spawnSync(process.execPath, [MAIN_JS, 'check', '--repo', repo], {
        env,
        encoding: 'utf8',
      });
      assert.equal(c.status, 0, c.stderr);
      assert.deepEqual(await readdir(join(repo, 'locks')), [], 'locks left behind');
    });

    it('prune --retry-lock waits for a (frozen) backup, says so, and prunes once it is done', async () => {
      const { repo, env, child, done } = await cliBackupHoldingLock();
      process.kill(child.pid as number, 'SIGSTOP');
      const p = spawn(process.execPath, [MAIN_JS, 'prune', '--repo', repo, '--retry-lock', '2m'], {
        env,
      });
      let stderr = '';
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
      try {
        while (!/trying again in/.test(stderr)) {
          if (p.exitCode !== null) assert.fail(`prune did not wait: ${stderr}`);
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.match(
          stderr,
          /the repository is locked by a backup on .*; trying again in \d+ s \(--retry-lock: giving up in \d+ s\)/,
        );
      } finally {
        process.kill(child.pid as number, 'SIGCONT');
      }
      assert.equal(await done, 0, 'the backup failed after being resumed');
      assert.equal(await exited, 0, stderr);
      assert.deepEqual(await readdir(join(repo, 'locks')), [], 'locks left behind');
      const c = spawnSync(process.execPath, [MAIN_JS, 'check', '--repo', repo], {
        env,
        encoding: 'utf8',
      });
      assert.equal(c.status, 0, c.stderr);
      const bad = spawnSync(
        process.execPath,
        [MAIN_JS, 'prune', '--repo', repo, '--retry-lock', '5 min'],
        {
          env,
          encoding: 'utf8',
        },
      );
      assert.equal(bad.status, 2, bad.stderr);
      assert.match(bad.stderr, /^USAGE: invalid --retry-lock duration "5 min"/);
    });

    it('after a backup is killed with SIGKILL, prune sees its lock as dead and proceeds', async () => {
      const { repo, env, child, done } = await cliBackupHoldingLock();
      process.kill(child.pid as number, 'SIGKILL');
      await done;
      assert.equal((await readdir(join(repo, 'locks'))).length, 1);
      const p = spawnSync(process.execPath, [MAIN_JS, 'prune', '--repo', repo], {
        env,
        encoding: 'utf8',
      });
      assert.equal(p.status, 0, p.stderr);
      assert.deepEqual(await readdir(join(repo, 'locks')), [], 'the dead lock was not cleared');
      const c = spawnSync(process.execPath, [MAIN_JS, 'check', '--repo', repo], {
        env,
        encoding: 'utf8',
      });
      assert.equal(c.status, 0, c.stderr);
    });
  });
});
