/**
 * An interrupted backup resumes: kill -9 at 50 moments of a backup (a real child process,
 * small packs so that kills fall between many pack uploads), each followed by a backup of
 * the same source that must not upload again what reached the store. After each resume the
 * store holds no more pack bytes than one uninterrupted backup stores (nothing twice), the
 * resumed backup uploaded at most what was still missing, `check` passes, and every 10th
 * resume restores byte-exact. Leftover temporary files of the kills are removed by `prune`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, check, initRepository, prune, restore } from '#sdk/backup/index.js';
import { generateBackupKey, toHex } from '#sdk/format/index.js';
import { LocalStorage, TEMP_PREFIX } from '#sdk/storage/node/local.js';
import { copyRepo, killAllChildren, runChild } from './child-runner.js';
import { addMessages, assertTreeIs, describeTree } from './fixtures.js';

const KILLS = 50;
const ATTEMPTS = 90;
const PACK_SIZE = 512 * 1024;
const CHILD_ENV = { BACKVAULT_TEST_PACK_SIZE: String(PACK_SIZE) };

/** The pack files under `data/` (whole ones: temporary files of uploads are not counted). */
async function packFiles(repo: string): Promise<number> {
  let n = 0;
  for (const sub of await readdir(join(repo, 'data')).catch(() => [] as string[])) {
    for (const f of await readdir(join(repo, 'data', sub)).catch(() => [] as string[]))
      if (!f.startsWith(TEMP_PREFIX)) n += 1;
  }
  return n;
}

/** Total bytes of the packs under `data/` and the temp files anywhere in the store. */
async function storeBytes(repo: string): Promise<{ packs: number; temps: string[] }> {
  let packs = 0;
  const temps: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.startsWith(TEMP_PREFIX)) temps.push(p);
      else if (p.startsWith(join(repo, 'data'))) packs += (await stat(p)).size;
    }
  };
  await walk(repo);
  return { packs, temps };
}

describe('resume after kill -9', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-resume-'));
  });
  after(async () => {
    killAllChildren();
    await rm(dir, { recursive: true, force: true });
  });

  it(`at ${KILLS} points of a backup: the next backup uploads only what was still missing`, async (t) => {
    const key = generateBackupKey();
    const keyHex = toHex(key);
    const src = join(dir, 'src');
    await mkdir(join(src, 'media'), { recursive: true });
    addMessages(join(src, 'msgstore.db'), 15_000, 0);
    for (let i = 0; i < 10; i++)
      await writeFile(join(src, 'media', `IMG_${i}.jpg`), randomBytes(1_000_000 + i * 7919));
    const expected = await describeTree(src);
    // An empty repository and its state, copied for every attempt.
    const empty = join(dir, 'empty');
    const emptyState = join(dir, 'empty-state.json');
    await initRepository({
      storage: new LocalStorage(empty),
      backupKey: key,
      statePath: emptyState,
    });

    // One uninterrupted backup: how long it takes and how many pack bytes it stores.
    const full = join(dir, 'full');
    await copyRepo(empty, full);
    await cp(emptyState, join(dir, 'full-state.json'));
    const ref = await runChild(
      ['backup', full, join(dir, 'full-state.json'), src],
      keyHex,
      undefined,
      CHILD_ENV,
    );
    assert.equal(ref.code, 0, ref.stderr);
    const fullBytes = (await storeBytes(full)).packs;
    const packsInFull = await packFiles(full);
    assert.ok(packsInFull > 4, `only ${packsInFull} packs: too few kill points`);
    let fullMs = ref.ms;
    // Pack headers differ a little with how blobs fall into packs; nothing else may differ.
    const slack = 16 * 1024;

    let landed = 0;
    let resumedPacks = 0;
    let tempsSeen = 0;
    for (let attempt = 0; landed < KILLS && attempt < ATTEMPTS; attempt++) {
      const k = landed;
      const repo = join(dir, 'repo');
      const state = join(dir, 'state.json');
      await copyRepo(empty, repo);
      await cp(emptyState, state);
      // Killed once `m` packs are stored, then 0-15 ms later (often in the middle of the
      // next pack's upload): kill points by the work done, not by the clock. On the clock
      // (a share of an earlier run's time) a loaded machine made kills land early, with
      // almost nothing stored yet to resume.
      const m = k % packsInFull;
      const jitter = Math.random() * 15;
      let reachedAt = 0;
      const r = await runChild(
        ['backup', repo, state, src],
        keyHex,
        async () => {
          if (!reachedAt && (await packFiles(repo)) >= m) reachedAt = performance.now();
          return reachedAt > 0 && performance.now() - reachedAt >= jitter;
        },
        CHILD_ENV,
      );
      const at = r.ms;
      if (!r.killed) {
        assert.equal(r.code, 0, r.stderr);
        fullMs = Math.min(fullMs, r.ms);
        continue;
      }
      landed += 1;
      const before = await storeBytes(repo);
      tempsSeen += before.temps.length;
      const storage = new LocalStorage(repo);
      const access = { storage, backupKey: key, statePath: state };
      const c = await check({ ...access, readData: false, workers: 1 });
      assert.deepEqual(c.problems, [], `k=${k}: check after the kill`);

      const resumed = await backup({
        ...access,
        source: src,
        hostname: 'phone',
        packSize: PACK_SIZE,
        workers: 2,
      });
      const afterResume = await storeBytes(repo);
      resumedPacks += resumed.resumed.packs;
      assert.ok(
        afterResume.packs <= fullBytes + slack,
        `k=${k} (${at.toFixed(0)} ms): the store holds ${afterResume.packs} pack bytes, one backup stores ${fullBytes}: data was uploaded twice`,
      );
      assert.ok(
        resumed.bytesStoredNew <= fullBytes - before.packs + slack + 64 * 1024,
        `k=${k}: the resumed backup stored ${resumed.bytesStoredNew} bytes, but only ${fullBytes - before.packs} were missing`,
      );
      assert.equal(resumed.resumed.bytes <= before.packs, true);
      const c2 = await check({ ...access, readData: k % 10 === 0, workers: 1 });
      assert.deepEqual(c2.problems, [], `k=${k}: check after the resume`);
      if (k % 10 === 0) {
        const target = join(dir, `restore-${k}`);
        await restore({ ...access, target, workers: 1 });
        await assertTreeIs(target, expected, `k=${k}: restore after the resume`);
        await rm(target, { recursive: true });
      }
      if (before.temps.length > 0) {
        // Temporary files of the killed uploads: prune removes them once they are a minute
        // old (younger ones may belong to a write in progress).
        const old = new Date(Date.now() - 120_000);
        for (const f of before.temps) await utimes(f, old, old).catch(() => undefined);
        const p = await prune(access);
        assert.ok(p.tempRemoved >= before.temps.length, `k=${k}: ${p.tempRemoved} removed`);
        assert.deepEqual((await storeBytes(repo)).temps, [], `k=${k}: temp files left`);
      }
    }
    t.diagnostic(
      `backup ~${fullMs.toFixed(0)} ms, ${fullBytes} pack bytes; ${landed} kills landed; ${resumedPacks} packs resumed; ${tempsSeen} temp files left by kills`,
    );
    assert.equal(landed, KILLS, `only ${landed} kills landed inside the backup`);
    assert.ok(
      resumedPacks > KILLS,
      'the kills left almost nothing to resume: the test proves nothing',
    );
  });
});
