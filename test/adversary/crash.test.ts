/**
 * kill -9 at many moments of a backup, a prune and a restore on a LocalStorage repository
 * (a real child process, SIGKILLed by its pid). After every kill:
 * - backup: the previous snapshot restores byte-identically, `check` passes (leftovers of
 *   the killed backup are valid, unreferenced objects, not problems), and a following
 *   backup + prune succeed and `check` passes again;
 * - prune: the repository checks clean, the latest snapshot restores, prune completes;
 * - restore: the target is absent (or, with --force over an old target, the old content),
 *   never half-written.
 * Kill points are spread uniformly (with jitter) over the measured duration of the
 * operation, timed from the moment the child starts the operation.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, check, listSnapshots, prune, restore } from '#sdk/backup/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import type { Storage } from '#sdk/storage/storage.js';
import { UnavailableError } from '#sdk/errors.js';
import { generateBackupKey, toHex } from '#sdk/format/index.js';
import { addMessages, assertTreeIs, describeTree } from './fixtures.js';
import { copyRepo, killAllChildren, runChild, type RunResult } from './child-runner.js';

/** Kills that must land inside the backup; points that miss (it finished) are retried. */
const BACKUP_KILLS = 16;
const BACKUP_ATTEMPTS = 32;
const PRUNE_KILLS = 6;
const RESTORE_KILLS = 12;

/** A Storage that refuses to write snapshots: a backup that dies at its commit point. */
function noSnapshots(inner: Storage): Storage {
  return {
    location: inner.location,
    put: (n, d) =>
      n.startsWith('snapshots/')
        ? Promise.reject(new UnavailableError('crash before commit'))
        : inner.put(n, d),
    get: (n) => inner.get(n),
    getRange: (n, o, l) => inner.getRange(n, o, l),
    stat: (n) => inner.stat(n),
    list: (p) => inner.list(p),
    delete: (n) => inner.delete(n),
    close: () => inner.close(),
  };
}

describe('kill -9', () => {
  let dir: string;
  let key: Uint8Array;
  let keyHex: string;
  let src: string;
  let repo1: string;
  let state1: string;
  let expected1: Map<string, string>;
  let expected2: Map<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-crash-'));
    key = generateBackupKey();
    keyHex = toHex(key);
    src = join(dir, 'src');
    await mkdir(join(src, 'media'), { recursive: true });
    addMessages(join(src, 'msgstore.db'), 20_000, 0);
    for (let i = 0; i < 3; i++)
      await writeFile(join(src, 'media', `IMG_${i}.jpg`), randomBytes(3 * 1024 * 1024));
    await writeFile(join(src, 'chat.txt'), 'see you tomorrow\n'.repeat(60_000));
    repo1 = join(dir, 'repo1');
    state1 = join(dir, 'state1.json');
    await backup({
      init: true,
      storage: new LocalStorage(repo1),
      backupKey: key,
      statePath: state1,
      source: src,
      hostname: 'phone',
    });
    expected1 = await describeTree(src);
    // The second backup has real work: new messages spread over the database, new photos.
    addMessages(join(src, 'msgstore.db'), 4000, 20_000);
    for (let i = 3; i < 8; i++)
      await writeFile(join(src, 'media', `IMG_${i}.jpg`), randomBytes(3 * 1024 * 1024));
    await writeFile(join(src, 'media', 'voice.opus'), randomBytes(700_000));
    expected2 = await describeTree(src);
  });

  after(async () => {
    killAllChildren();
    await rm(dir, { recursive: true, force: true });
  });

  it(`during a second backup (${BACKUP_KILLS} points): the previous snapshot survives, check passes, backup + prune recover`, async (t) => {
    const calib = join(dir, 'calib');
    // Calibrate on a warm page cache: the fastest of two runs, so late points still land.
    const runs: RunResult[] = [];
    for (let i = 0; i < 2; i++) {
      await copyRepo(repo1, calib);
      await cp(state1, join(dir, 'calib-state.json'));
      runs.push(await runChild(['backup', calib, join(dir, 'calib-state.json'), src], keyHex));
      assert.equal(runs[i]?.code, 0, runs[i]?.stderr);
    }
    let fullMs = Math.min(...runs.map((r) => r.ms));
    let interrupted = 0;
    // Points k/N of the way through, with jitter; a run that finishes before its kill
    // shortens the estimate (the machine is shared and speeds vary), and the point is retried.
    for (let attempt = 0; interrupted < BACKUP_KILLS && attempt < BACKUP_ATTEMPTS; attempt++) {
      const k = interrupted;
      const repo = join(dir, `repo-a${attempt}`);
      const state = join(dir, `state-a${attempt}.json`);
      await copyRepo(repo1, repo);
      await cp(state1, state);
      const at = (0.95 * fullMs * (k + Math.random())) / BACKUP_KILLS;
      const r = await runChild(['backup', repo, state, src], keyHex, at);
      if (r.killed) interrupted += 1;
      else {
        assert.equal(r.code, 0, `k=${k}: ${r.stderr}`);
        fullMs = Math.min(fullMs, r.ms);
      }
      const storage = new LocalStorage(repo);
      const access = { storage, backupKey: key, statePath: state };
      const c = await check({ ...access, workers: 1 });
      assert.deepEqual(c.problems, [], `k=${k} (${at.toFixed(0)} ms): check after kill`);
      const snaps = await listSnapshots(access);
      assert.ok(snaps.length === 1 || snaps.length === 2, `k=${k}: ${snaps.length} snapshots`);
      const t1 = join(dir, `restore-a${attempt}`);
      await restore({ ...access, target: t1, snapshotId: snaps[0]?.id });
      await assertTreeIs(t1, expected1, `k=${k} previous snapshot`);
      await rm(t1, { recursive: true });
      // The device carries on: back up again, prune the leftovers, all clean.
      await backup({ init: true, ...access, source: src, hostname: 'phone' });
      await prune(access);
      const c2 = await check({ ...access, readData: attempt % 4 === 0, workers: 1 });
      assert.deepEqual(c2.problems, [], `k=${k}: check after backup + prune`);
      if (attempt % 4 === 0) {
        const t2 = join(dir, `restore2-a${attempt}`);
        await restore({ ...access, target: t2 });
        await assertTreeIs(t2, expected2, `k=${k} new snapshot`);
        await rm(t2, { recursive: true });
      }
      await rm(repo, { recursive: true });
    }
    t.diagnostic(`backup ~${fullMs.toFixed(0)} ms; ${interrupted} kills interrupted it`);
    assert.equal(
      interrupted,
      BACKUP_KILLS,
      `only ${interrupted} kills landed inside the backup (~${fullMs.toFixed(0)} ms)`,
    );
  });

  it(`during prune (${PRUNE_KILLS} points): check passes, the latest snapshot restores, prune completes`, async () => {
    // A repository where prune must repack, write an index and delete: leftovers of a
    // backup that died at its commit point, and a later backup reusing some of them.
    const repoP = join(dir, 'repoP');
    const stateP = join(dir, 'stateP.json');
    await copyRepo(repo1, repoP);
    await cp(state1, stateP);
    const local = new LocalStorage(repoP);
    await writeFile(join(src, 'keep.bin'), randomBytes(2_000_000));
    await writeFile(join(src, 'drop.bin'), randomBytes(2_000_000));
    await assert.rejects(
      backup({
        init: true,
        storage: noSnapshots(local),
        backupKey: key,
        statePath: stateP,
        source: src,
        hostname: 'phone',
      }),
    );
    await rm(join(src, 'drop.bin'));
    await backup({
      init: true,
      storage: local,
      backupKey: key,
      statePath: stateP,
      source: src,
      hostname: 'phone',
    });
    const expected = await describeTree(src);
    await rm(join(src, 'keep.bin'));

    const calib = join(dir, 'calibP');
    await copyRepo(repoP, calib);
    await cp(stateP, join(dir, 'calibP-state.json'));
    const full = await runChild(['prune', calib, join(dir, 'calibP-state.json')], keyHex);
    assert.equal(full.code, 0, full.stderr);
    assert.match(full.stderr, /^$/);
    for (let k = 0; k < PRUNE_KILLS; k++) {
      const repo = join(dir, `repoP-k${k}`);
      await copyRepo(repoP, repo);
      const r = await runChild(
        ['prune', repo, stateP],
        keyHex,
        (full.ms * (k + Math.random())) / PRUNE_KILLS,
      );
      if (!r.killed) assert.equal(r.code, 0, r.stderr);
      const access = { storage: new LocalStorage(repo), backupKey: key, statePath: stateP };
      assert.deepEqual((await check({ ...access, workers: 1 })).problems, [], `prune k=${k}`);
      const t = join(dir, `restoreP-k${k}`);
      await restore({ ...access, target: t });
      await assertTreeIs(t, expected, `prune k=${k}`);
      await rm(t, { recursive: true });
      await prune(access);
      assert.deepEqual(
        (await check({ ...access, readData: false })).problems,
        [],
        `prune k=${k} after prune`,
      );
      await rm(repo, { recursive: true });
    }
  });

  it(`during restore (${RESTORE_KILLS} points): the target is absent or untouched, never half-written`, async (t) => {
    const repo = join(dir, 'repoR');
    await copyRepo(repo1, repo);
    const state = join(dir, 'stateR.json');
    await cp(state1, state);
    const target = join(dir, 'out', 'chat');
    await mkdir(join(dir, 'out'));
    const full = await runChild(['restore', repo, state, target], keyHex);
    assert.equal(full.code, 0, full.stderr);
    await assertTreeIs(target, expected1, 'uninterrupted restore');
    for (let k = 0; k < RESTORE_KILLS; k++) {
      const force = k % 3 === 1;
      const merge = k % 3 === 2;
      await rm(target, { recursive: true, force: true });
      if (force || merge) {
        await mkdir(target);
        await writeFile(join(target, 'old.txt'), 'the old target');
      }
      if (merge) await writeFile(join(target, 'chat.txt'), 'the old chat');
      const r = await runChild(
        [merge ? 'restore-merge' : 'restore', repo, state, target],
        keyHex,
        (full.ms * (k + Math.random())) / RESTORE_KILLS,
      );
      const entries = await readdir(target).catch(() => undefined);
      if (merge) {
        // --force keeps what the snapshot does not hold; killed at any moment, every entry
        // is whole: the old one, or the snapshot's (each arrives by one rename).
        assert.equal(await readFile(join(target, 'old.txt'), 'utf8'), 'the old target');
        const got = await describeTree(target);
        for (const [p, d] of got) {
          if (p === 'old.txt') continue;
          if (p === 'chat.txt' && (await readFile(join(target, p), 'utf8')) === 'the old chat')
            continue;
          assert.equal(d, expected1.get(p), `restore k=${k} (merge): ${p} is half-restored`);
        }
        // The next restore finishes (or redoes) it: the snapshot plus the kept file.
        const again = await runChild(['restore-merge', repo, state, target], keyHex);
        assert.equal(again.code, 0, again.stderr);
        const done = await describeTree(target);
        done.delete('old.txt');
        assert.deepEqual(done, expected1, `restore k=${k} (merge) after the interruption`);
        assert.equal(await readFile(join(target, 'old.txt'), 'utf8'), 'the old target');
        continue;
      }
      if (!r.killed) {
        assert.equal(r.code, 0, r.stderr);
        await assertTreeIs(target, expected1, `restore k=${k} finished`);
      } else if (entries === undefined && force) {
        // Killed between the two renames of the swap: the old target waits in the marked
        // temporary directory, and the next restore puts it back (restore-recovery.test.ts).
        const tmps = (await readdir(join(dir, 'out'))).filter((n) =>
          n.startsWith('.chat.backvault-restore-'),
        );
        const olds = await Promise.all(
          tmps.map((n) => readFile(join(dir, 'out', n, 'old', 'old.txt'), 'utf8').catch(() => '')),
        );
        assert.ok(
          olds.includes('the old target'),
          `restore k=${k}: a forced restore killed at the swap lost the old target`,
        );
        const again = await runChild(['restore', repo, state, target], keyHex);
        assert.equal(again.code, 0, again.stderr);
        await assertTreeIs(target, expected1, `restore k=${k} after the swap was interrupted`);
      } else if (entries === undefined) {
        // Killed before the move: nothing at the target.
      } else if (force && entries.includes('old.txt')) {
        assert.deepEqual(entries, ['old.txt'], `restore k=${k}: old target changed`);
        assert.equal(await readFile(join(target, 'old.txt'), 'utf8'), 'the old target');
      } else {
        // Killed after the final rename: the target must be complete.
        await assertTreeIs(target, expected1, `restore k=${k} killed after the move`);
      }
    }
    // Plaintext left beside the target by the last kill: the next restore removes it.
    const stale = (await readdir(join(dir, 'out'))).filter((n) => n.includes('.backvault-'));
    t.diagnostic(`temporary restore directories left by the last kill: ${stale.length}`);
    const r = await runChild(['restore', repo, state, target], keyHex);
    assert.equal(r.code, 0, r.stderr);
    await assertTreeIs(target, expected1, 'restore after the kills');
    const left = (await readdir(join(dir, 'out'))).filter((n) => n.includes('.backvault-'));
    const inside = await Promise.all(
      left.map(async (n) => {
        const d = join(dir, 'out', n);
        const names = await readdir(d).catch(() => [] as string[]);
        const marker = await readFile(join(d, '.backvault-restore'), 'utf8').catch(() => '-');
        return `${n}: [${names.join(', ')}] marker=${JSON.stringify(marker)}`;
      }),
    );
    assert.deepEqual(
      left,
      [],
      `a restore after killed restores leaves nothing beside the target: ${inside.join('; ')}; warnings: ${r.stderr}`,
    );
  });

  it('a restore killed while writing files leaves a temporary directory that the next restore removes', async () => {
    const repo = join(dir, 'repoK');
    await copyRepo(repo1, repo);
    const state = join(dir, 'stateK.json');
    await cp(state1, state);
    const out = join(dir, 'outK');
    await mkdir(out);
    const target = join(out, 'chat');
    // A sibling that only looks alike (another target's name) must survive the cleanup.
    const other = join(out, '.chat2.backvault-restore-0123456789ab');
    await mkdir(other);
    await writeFile(join(other, 'keep.txt'), 'not ours to delete');
    const killed = await runChild(['restore-selfkill', repo, state, target], keyHex);
    assert.ok(killed.killed || killed.code === null, `not killed: ${killed.stderr}`);
    const stale = (await readdir(out)).filter((n) => n.startsWith('.chat.backvault-restore-'));
    assert.equal(stale.length, 1, 'the killed restore left its temporary directory');
    const ok = await runChild(['restore', repo, state, target], keyHex);
    assert.equal(ok.code, 0, ok.stderr);
    await assertTreeIs(target, expected1, 'restore after a killed restore');
    assert.deepEqual((await readdir(out)).sort(), [
      '.chat2.backvault-restore-0123456789ab',
      'chat',
    ]);
    assert.equal(await readFile(join(other, 'keep.txt'), 'utf8'), 'not ours to delete');
  });
});
