/**
 * The store as an attacker, exhaustively: for every object of a small two-snapshot
 * repository (config, each pack, each index, each snapshot) flip bytes, truncate, delete,
 * swap with another object of the same kind, replay older states, and plant objects of
 * another repository made with the same key. After each mutation:
 *
 * - restoring either snapshot fails with the code SPEC.md gives for it, or restores the
 *   snapshot byte-identically (never a silent wrong restore);
 * - a failed restore leaves its target as it was (absent, or the old content with --force)
 *   and no temporary directory behind;
 * - `check` reports the mutation with the right code and object.
 *
 * core's test/backup/integrity.test.ts samples three positions per object; here every byte
 * of every metadata object and of every pack header and trailer is flipped, and every blob
 * is hit at its nonce, ciphertext and tag.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  backup,
  check,
  listSnapshots,
  prune,
  restore,
  type CheckResult,
} from '#sdk/backup/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { BackvaultError, UnavailableError, type ErrorCode } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/index.js';
import {
  assertTreeIs,
  describeTree,
  makeChat,
  mutateChat,
  packLayouts,
  type PackLayout,
} from './fixtures.js';

type Outcome = 'ok' | ErrorCode;

interface World {
  dir: string;
  key: Uint8Array;
  storage: MemoryStorage;
  statePath: string;
  pristine: Map<string, Uint8Array>;
  snapshotIds: [string, string];
  expected: [Map<string, string>, Map<string, string>];
  layouts: PackLayout[];
  counter: number;
}

function codeOf(e: unknown): ErrorCode {
  if (e instanceof BackvaultError) return e.code;
  throw e;
}

async function attemptRestore(w: World, which: 0 | 1, force: boolean): Promise<Outcome> {
  const target = join(w.dir, 'targets', `t${w.counter++}`);
  if (force) {
    await mkdir(target, { recursive: true });
    await writeFile(join(target, 'precious'), 'keep me');
  }
  let outcome: Outcome;
  try {
    await restore({
      storage: w.storage,
      backupKey: w.key,
      statePath: w.statePath,
      target,
      snapshotId: w.snapshotIds[which],
      force,
      // The restored tree must be exactly the snapshot (kept extras are tested elsewhere).
      delete: force,
      workers: 0,
    });
    outcome = 'ok';
  } catch (e) {
    outcome = codeOf(e);
  }
  if (outcome === 'ok') await assertTreeIs(target, w.expected[which], `snapshot ${which + 1}`);
  else if (force) {
    assert.deepEqual(
      await readdir(target),
      ['precious'],
      'forced target changed by a failed restore',
    );
    assert.equal(await readFile(join(target, 'precious'), 'utf8'), 'keep me');
  } else await assert.rejects(readdir(target), /ENOENT/, 'a failed restore created its target');
  const leftovers = (await readdir(join(w.dir, 'targets'))).filter((n) => n.startsWith('.'));
  assert.deepEqual(leftovers, [], 'temporary restore directories left behind');
  await rm(target, { recursive: true, force: true });
  return outcome;
}

async function attemptCheck(w: World, readData: boolean): Promise<CheckResult | ErrorCode> {
  try {
    return await check({
      storage: w.storage,
      backupKey: w.key,
      statePath: w.statePath,
      readData,
      workers: 0,
    });
  } catch (e) {
    return codeOf(e);
  }
}

function reset(w: World): void {
  w.storage.raw().clear();
  for (const [k, v] of w.pristine) w.storage.raw().set(k, v);
}

/**
 * Apply `mutate`, restore both snapshots and check, then undo. `allowed` are the codes a
 * failing restore may give; with `mustFail`, at least one of the two restores must fail.
 */
async function expectDetected(
  w: World,
  what: string,
  mutate: (m: Map<string, Uint8Array>) => void,
  opts: {
    allowed: ErrorCode[];
    mustFail: boolean | 'both';
    checkCode: ErrorCode | 'throws';
    object?: string;
    readData?: boolean;
    /** False: only `check` (for bytes restore provably never reads). */
    restore?: boolean;
    /** False: restore only the latest snapshot (for objects every restore reads first). */
    both?: boolean;
  },
): Promise<void> {
  reset(w);
  mutate(w.storage.raw());
  const outcomes: Outcome[] = [];
  if (opts.restore !== false) {
    if (opts.both !== false) outcomes.push(await attemptRestore(w, 0, false));
    outcomes.push(await attemptRestore(w, 1, true));
  }
  for (const o of outcomes) {
    assert.ok(
      o === 'ok' || opts.allowed.includes(o),
      `${what}: restore gave ${o}, allowed ${opts.allowed.join('/')}`,
    );
  }
  if (opts.mustFail === 'both')
    assert.ok(
      outcomes.every((o) => o !== 'ok'),
      `${what}: a restore succeeded: ${outcomes.join(', ')}`,
    );
  else if (opts.mustFail)
    assert.ok(
      outcomes.some((o) => o !== 'ok'),
      `${what}: both restores succeeded`,
    );
  const c = await attemptCheck(w, opts.readData ?? true);
  if (opts.checkCode === 'throws') {
    assert.ok(
      typeof c === 'string' && opts.allowed.includes(c),
      `${what}: check gave ${JSON.stringify(c)}`,
    );
  } else {
    assert.ok(typeof c !== 'string', `${what}: check threw ${String(c)}`);
    assert.equal(c.ok, false, `${what}: check passed`);
    const hit = c.problems.some(
      (p) => p.code === opts.checkCode && (opts.object === undefined || p.object === opts.object),
    );
    assert.ok(
      hit,
      `${what}: check problems ${JSON.stringify(c.problems)} lack ${opts.checkCode} ${opts.object ?? ''}`,
    );
  }
  reset(w);
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const b = bytes.slice();
  b[at] = (b[at] as number) ^ 0x01;
  return b;
}

async function makeWorld(dir: string, key: Uint8Array): Promise<World> {
  const storage = new MemoryStorage();
  const src = join(dir, 'src');
  await mkdir(src);
  await makeChat(src);
  const statePath = join(dir, 'state.json');
  await backup({
    init: true,
    storage,
    backupKey: key,
    statePath,
    source: src,
    workers: 1,
    hostname: 'phone',
  });
  const copy1 = join(dir, 'src1');
  await cp(src, copy1, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  const expected1 = await describeTree(src);
  await mutateChat(src);
  await backup({
    init: true,
    storage,
    backupKey: key,
    statePath,
    source: src,
    workers: 1,
    hostname: 'phone',
  });
  const expected2 = await describeTree(src);
  const snaps = await listSnapshots({ storage, backupKey: key, statePath });
  assert.equal(snaps.length, 2);
  const pristine = new Map(storage.raw());
  await mkdir(join(dir, 'targets'));
  return {
    dir,
    key,
    storage,
    statePath,
    pristine,
    snapshotIds: [snaps[0]?.id as string, snaps[1]?.id as string],
    expected: [expected1, expected2],
    layouts: packLayouts(pristine, key),
    counter: 0,
  };
}

const named = (w: World, prefix: string): string[] =>
  [...w.pristine.keys()].filter((n) => n.startsWith(prefix)).sort();

describe('adversary: every object of a repository tampered with', () => {
  let w: World;
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-adversary-'));
    w = await makeWorld(dir, generateBackupKey());
  });
  after(async () => {
    await rm(w.dir, { recursive: true, force: true });
  });

  it('the untouched repository restores both snapshots and checks clean', async () => {
    assert.equal(await attemptRestore(w, 0, false), 'ok');
    assert.equal(await attemptRestore(w, 1, true), 'ok');
    const c = await attemptCheck(w, true);
    assert.ok(typeof c !== 'string' && c.ok, JSON.stringify(c));
    assert.ok(
      w.layouts.length >= 2 &&
        named(w, 'index/').length === 2 &&
        named(w, 'snapshots/').length === 2,
    );
  });

  it('config: every byte flipped, every truncation, deletion, another repository’s config', async () => {
    const cfg = w.pristine.get('config') as Uint8Array;
    for (let at = 0; at < cfg.length; at++) {
      // Magic, version, reserved: malformed. Repo id and key check: indistinguishable from a wrong key.
      const code: ErrorCode = at < 12 ? 'CORRUPT' : 'WRONG_KEY';
      await expectDetected(w, `config byte ${at}`, (m) => m.set('config', flip(cfg, at)), {
        allowed: [code],
        mustFail: 'both',
        checkCode: 'throws',
      });
    }
    for (let n = 0; n < cfg.length; n++) {
      await expectDetected(w, `config cut to ${n}`, (m) => m.set('config', cfg.subarray(0, n)), {
        allowed: ['CORRUPT'],
        mustFail: 'both',
        checkCode: 'throws',
      });
    }
    await expectDetected(
      w,
      'config appended',
      (m) => m.set('config', new Uint8Array([...cfg, 0])),
      { allowed: ['CORRUPT'], mustFail: 'both', checkCode: 'throws' },
    );
    await expectDetected(w, 'config deleted', (m) => m.delete('config'), {
      allowed: ['NO_REPOSITORY'],
      mustFail: 'both',
      checkCode: 'throws',
    });

    // Another repository made with the same key: its config passes the key check, but the
    // repo id is the HKDF salt and is bound into every AD, so nothing of ours opens.
    const other = new MemoryStorage();
    await backup({
      rollbackProtection: false,
      init: true,
      storage: other,
      backupKey: w.key,
      source: join(w.dir, 'src1'),
      workers: 1,
    });
    const otherCfg = other.raw().get('config') as Uint8Array;
    await expectDetected(
      w,
      'config of another repository, same key',
      (m) => m.set('config', otherCfg),
      // ROLLBACK: this device knows which repository lives here (SPEC §12, locations).
      { allowed: ['CORRUPT', 'ROLLBACK'], mustFail: 'both', checkCode: 'throws' },
    );
    const stranger = new MemoryStorage();
    await backup({
      rollbackProtection: false,
      init: true,
      storage: stranger,
      backupKey: generateBackupKey(),
      source: join(w.dir, 'src1'),
      workers: 1,
    });
    await expectDetected(
      w,
      'config of another repository, other key',
      (m) => m.set('config', stranger.raw().get('config') as Uint8Array),
      {
        allowed: ['WRONG_KEY'],
        mustFail: 'both',
        checkCode: 'throws',
      },
    );
  });

  it('snapshots: every byte flipped, every truncation, deletion, swap, rename', async () => {
    // The head's damage is CORRUPT for every restore (taking the older one as the head would
    // be a silent rollback). The first snapshot is named as previous by the head, so it is
    // provably older: its damage costs only itself (restoring it is CORRUPT), never the head.
    for (const name of [`snapshots/${w.snapshotIds[1]}`, `snapshots/${w.snapshotIds[0]}`]) {
      const head = name.endsWith(w.snapshotIds[1]);
      const b = w.pristine.get(name) as Uint8Array;
      const expect = {
        allowed: ['CORRUPT'] as ErrorCode[],
        mustFail: head ? ('both' as const) : true,
        checkCode: 'CORRUPT' as const,
        object: name,
        readData: false,
        both: !head,
      };
      for (let at = 0; at < b.length; at++) {
        await expectDetected(w, `${name} byte ${at}`, (m) => m.set(name, flip(b, at)), expect);
      }
      for (let n = 0; n < b.length; n++) {
        await expectDetected(
          w,
          `${name} cut to ${n}`,
          (m) => m.set(name, b.subarray(0, n)),
          expect,
        );
      }
    }
    const first = w.snapshotIds[0];
    const latest = `snapshots/${w.snapshotIds[1]}`;
    const oldest = `snapshots/${first}`;
    // This device saw snapshot 2: a store that drops it is rolling back.
    await expectDetected(w, 'latest snapshot deleted', (m) => m.delete(latest), {
      allowed: ['ROLLBACK'],
      mustFail: 'both',
      checkCode: 'ROLLBACK',
      readData: false,
    });
    // An older snapshot gone (forgotten, or lost by the store) costs only itself: the head
    // restores, the first is MISSING_OBJECT, check notes the gap (see the replay tests).
    reset(w);
    w.storage.raw().delete(oldest);
    assert.equal(await attemptRestore(w, 1, true), 'ok');
    assert.equal(await attemptRestore(w, 0, false), 'MISSING_OBJECT');
    const gap = await attemptCheck(w, false);
    assert.ok(typeof gap !== 'string' && gap.ok && /snapshot 1 is not in/.test(gap.notes.join()));
    await expectDetected(
      w,
      'both snapshots deleted',
      (m) => {
        m.delete(oldest);
        m.delete(latest);
      },
      { allowed: ['ROLLBACK'], mustFail: 'both', checkCode: 'ROLLBACK', readData: false },
    );
    await expectDetected(
      w,
      'snapshots swapped',
      (m) => {
        m.set(oldest, w.pristine.get(latest) as Uint8Array);
        m.set(latest, w.pristine.get(oldest) as Uint8Array);
      },
      { allowed: ['CORRUPT'], mustFail: 'both', checkCode: 'CORRUPT', readData: false },
    );
    await expectDetected(
      w,
      'latest snapshot renamed',
      (m) => {
        m.delete(latest);
        m.set(`snapshots/${'a'.repeat(64)}`, w.pristine.get(latest) as Uint8Array);
      },
      { allowed: ['CORRUPT', 'ROLLBACK'], mustFail: 'both', checkCode: 'CORRUPT', readData: false },
    );
    await expectDetected(
      w,
      'a copy of a snapshot under a second name',
      (m) => {
        m.set(`snapshots/${'b'.repeat(64)}`, w.pristine.get(latest) as Uint8Array);
      },
      { allowed: ['CORRUPT'], mustFail: 'both', checkCode: 'CORRUPT', readData: false },
    );
    await expectDetected(
      w,
      'an empty object named by the SHA-256 of nothing',
      (m) => {
        m.set(
          'snapshots/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
          new Uint8Array(),
        );
      },
      { allowed: ['CORRUPT'], mustFail: 'both', checkCode: 'CORRUPT', readData: false },
    );
    await expectDetected(
      w,
      'an unexpected name under snapshots/',
      (m) => m.set('snapshots/latest', w.pristine.get(latest) as Uint8Array),
      {
        allowed: ['CORRUPT'],
        mustFail: 'both',
        checkCode: 'CORRUPT',
        readData: false,
      },
    );
  });

  it('indexes: every byte flipped, every truncation, deletion, swap', async () => {
    const [i1, i2] = named(w, 'index/') as [string, string];
    for (const name of [i1, i2]) {
      const b = w.pristine.get(name) as Uint8Array;
      for (let at = 0; at < b.length; at++) {
        await expectDetected(w, `${name} byte ${at}`, (m) => m.set(name, flip(b, at)), {
          allowed: ['CORRUPT'],
          mustFail: 'both',
          checkCode: 'CORRUPT',
          object: name,
          readData: false,
          both: false,
        });
      }
      for (let n = 0; n < b.length; n += n < 64 ? 1 : 13) {
        await expectDetected(w, `${name} cut to ${n}`, (m) => m.set(name, b.subarray(0, n)), {
          allowed: ['CORRUPT'],
          mustFail: 'both',
          checkCode: 'CORRUPT',
          object: name,
          readData: false,
          both: false,
        });
      }
      // A deleted index hides blobs: whatever needs them is a missing object.
      await expectDetected(w, `${name} deleted`, (m) => m.delete(name), {
        allowed: ['MISSING_OBJECT'],
        mustFail: true,
        checkCode: 'MISSING_OBJECT',
        readData: false,
      });
    }
    await expectDetected(
      w,
      'indexes swapped',
      (m) => {
        m.set(i1, w.pristine.get(i2) as Uint8Array);
        m.set(i2, w.pristine.get(i1) as Uint8Array);
      },
      { allowed: ['CORRUPT'], mustFail: 'both', checkCode: 'CORRUPT', readData: false },
    );
    await expectDetected(
      w,
      'an index copied under a second name',
      (m) => m.set(`index/${'c'.repeat(64)}`, w.pristine.get(i1) as Uint8Array),
      {
        allowed: ['CORRUPT'],
        mustFail: 'both',
        checkCode: 'CORRUPT',
        readData: false,
      },
    );
  });

  it('packs: every header and trailer byte, every blob at nonce/ciphertext/tag, truncations, deletion, swaps', async () => {
    for (const p of w.layouts) {
      const b = w.pristine.get(p.name) as Uint8Array;
      // Restore reads blobs by the index and never needs the header: damage there may
      // restore correctly, but check must see it.
      // Every header byte goes through check; restore runs on every 16th and the trailer.
      for (let at = p.headerOffset; at < b.length; at++) {
        const restoreToo = (at - p.headerOffset) % 16 === 0 || at >= b.length - 4;
        await expectDetected(
          w,
          `${p.name} header byte ${at - p.headerOffset}`,
          (m) => m.set(p.name, flip(b, at)),
          {
            allowed: ['CORRUPT'],
            mustFail: false,
            checkCode: 'CORRUPT',
            object: p.name,
            readData: false,
            restore: restoreToo,
          },
        );
      }
      for (const e of p.entries) {
        // Nonce, first ciphertext byte, middle, tag.
        for (const at of [
          e.offset,
          e.offset + 12,
          e.offset + (e.length >> 1),
          e.offset + e.length - 1,
        ]) {
          await expectDetected(
            w,
            `${p.name} blob@${e.offset} byte ${at - e.offset}`,
            (m) => m.set(p.name, flip(b, at)),
            { allowed: ['CORRUPT'], mustFail: true, checkCode: 'CORRUPT', object: p.name },
          );
        }
      }
      const cuts = new Set([
        0,
        3,
        4,
        31,
        p.headerOffset,
        p.headerOffset + 1,
        b.length - 4,
        b.length - 1,
        ...p.entries.map((e) => e.offset + 1),
      ]);
      for (const n of cuts) {
        const inBlobs = n < p.headerOffset;
        await expectDetected(w, `${p.name} cut to ${n}`, (m) => m.set(p.name, b.subarray(0, n)), {
          allowed: ['CORRUPT'],
          mustFail: inBlobs,
          checkCode: 'CORRUPT',
          object: p.name,
          readData: false,
        });
      }
      await expectDetected(
        w,
        `${p.name} appended`,
        (m) => m.set(p.name, new Uint8Array([...b, 0])),
        {
          allowed: ['CORRUPT'],
          mustFail: false,
          checkCode: 'CORRUPT',
          object: p.name,
          readData: false,
        },
      );
      await expectDetected(w, `${p.name} deleted`, (m) => m.delete(p.name), {
        allowed: ['MISSING_OBJECT'],
        mustFail: true,
        checkCode: 'MISSING_OBJECT',
        object: p.name,
        readData: false,
      });
    }
    for (const a of w.layouts) {
      for (const b of w.layouts) {
        if (a.name >= b.name) continue;
        await expectDetected(
          w,
          `${a.name} <-> ${b.name}`,
          (m) => {
            m.set(a.name, w.pristine.get(b.name) as Uint8Array);
            m.set(b.name, w.pristine.get(a.name) as Uint8Array);
          },
          { allowed: ['CORRUPT'], mustFail: true, checkCode: 'CORRUPT' },
        );
      }
    }
    // One pack's first blob replaced by another pack's blob of the same length (if any):
    // the AD binds the blob id, so the swap cannot pass as the original.
    const all = w.layouts.flatMap((p) => p.entries.map((e) => ({ p, e })));
    let swapped = 0;
    for (const x of all) {
      const y = all.find((o) => o.p.name !== x.p.name && o.e.length === x.e.length);
      if (!y) continue;
      const bx = w.pristine.get(x.p.name) as Uint8Array;
      const by = w.pristine.get(y.p.name) as Uint8Array;
      await expectDetected(
        w,
        `blob of ${y.p.name} placed in ${x.p.name}`,
        (m) => {
          const n = bx.slice();
          n.set(by.subarray(y.e.offset, y.e.offset + y.e.length), x.e.offset);
          m.set(x.p.name, n);
        },
        { allowed: ['CORRUPT'], mustFail: true, checkCode: 'CORRUPT', object: x.p.name },
      );
      swapped += 1;
    }
    assert.ok(swapped > 0, 'no two blobs of equal sealed length in different packs');
    // Blobs of one pack exchanged in place (same pack, different lengths shift the tiling).
    for (const p of w.layouts) {
      if (p.entries.length < 2) continue;
      const [e0, e1] = p.entries as [(typeof p.entries)[0], (typeof p.entries)[0]];
      const b = w.pristine.get(p.name) as Uint8Array;
      const n = new Uint8Array([
        ...b.subarray(e1.offset, e1.offset + e1.length),
        ...b.subarray(e0.offset, e0.offset + e0.length),
        ...b.subarray(e1.offset + e1.length),
      ]);
      await expectDetected(w, `${p.name} first two blobs exchanged`, (m) => m.set(p.name, n), {
        allowed: ['CORRUPT'],
        mustFail: true,
        checkCode: 'CORRUPT',
        object: p.name,
      });
    }
  });

  it('objects of another repository with the same key are rejected, not mixed in', async () => {
    const other = new MemoryStorage();
    const src = join(w.dir, 'src');
    await backup({
      rollbackProtection: false,
      init: true,
      storage: other,
      backupKey: w.key,
      source: src,
      workers: 1,
    });
    for (const [name, bytes] of other.raw()) {
      if (name === 'config') continue;
      const isPack = name.startsWith('data/');
      // A foreign pack is unreferenced: restore never reads it, check must reject it.
      await expectDetected(w, `foreign ${name}`, (m) => m.set(name, bytes), {
        allowed: ['CORRUPT'],
        mustFail: isPack ? false : 'both',
        checkCode: 'CORRUPT',
        object: name,
        readData: !isPack,
      });
    }
  });
});

describe('adversary: replays of older states', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-replay-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('every older state of the store is ROLLBACK to a device that saw the newest; explicit old snapshots too', async () => {
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    const statePath = join(dir, 'state.json');
    const src = join(dir, 'src');
    await mkdir(src);
    await makeChat(src, 50_000);
    const states: Map<string, Uint8Array>[] = [];
    for (let i = 0; i < 4; i++) {
      if (i > 0) await writeFile(join(src, `n${i}.txt`), `note ${i}\n`);
      await backup({ init: true, storage, backupKey: key, statePath, source: src, workers: 1 });
      states.push(new Map(storage.raw()));
    }
    const latest = states[3] as Map<string, Uint8Array>;
    const ids = (await listSnapshots({ storage, backupKey: key, statePath })).map((s) => s.id);
    for (let i = 0; i < 3; i++) {
      storage.raw().clear();
      for (const [k, v] of states[i] as Map<string, Uint8Array>) storage.raw().set(k, v);
      for (const snapshotId of [undefined, ids[0]]) {
        const target = join(dir, `rb-${i}-${snapshotId ? 'first' : 'head'}`);
        await assert.rejects(
          restore({ storage, backupKey: key, statePath, target, snapshotId, workers: 0 }),
          (e: unknown) => codeOf(e) === 'ROLLBACK',
        );
        await assert.rejects(readdir(target), /ENOENT/);
      }
      await assert.rejects(
        listSnapshots({ storage, backupKey: key, statePath }),
        (e: unknown) => codeOf(e) === 'ROLLBACK',
      );
      await assert.rejects(
        prune({ storage, backupKey: key, statePath }),
        (e: unknown) => codeOf(e) === 'ROLLBACK',
      );
      assert.deepEqual(new Map(storage.raw()), states[i], 'a refused prune changed the store');
      const c = await check({ storage, backupKey: key, statePath, workers: 0 });
      assert.ok(
        c.problems.some((p) => p.code === 'ROLLBACK'),
        JSON.stringify(c.problems),
      );
    }
    // Every subset of snapshots withheld from the newest state: without the head it is a
    // rollback; with the head, the others are gaps that are reported and block nothing.
    const snapNames = ids.map((id) => `snapshots/${id}`);
    for (let mask = 1; mask < 1 << snapNames.length; mask++) {
      storage.raw().clear();
      for (const [k, v] of latest) storage.raw().set(k, v);
      snapNames.forEach((n, j) => mask & (1 << j) && storage.raw().delete(n));
      const access = { storage, backupKey: key, statePath };
      if (mask & (1 << 3)) {
        await assert.rejects(
          listSnapshots(access),
          (e: unknown) => codeOf(e) === 'ROLLBACK',
          `mask ${mask}`,
        );
        continue;
      }
      const warnings: string[] = [];
      const listed = await listSnapshots({ ...access, onWarning: (m) => warnings.push(m) });
      const gone = [0, 1, 2].filter((j) => mask & (1 << j)).map((j) => j + 1);
      assert.deepEqual(
        listed.map((s) => s.seq),
        [1, 2, 3, 4].filter((s) => !gone.includes(s)),
      );
      assert.equal(warnings.length, 1, `mask ${mask}: ${warnings.join('; ')}`);
      assert.match(warnings[0] as string, /not in the repository/);
      const target = join(dir, `gap-${mask}`);
      await restore({ ...access, target, workers: 0 });
      await rm(target, { recursive: true });
    }
  });

  it('an index replayed after prune never yields a wrong restore', async () => {
    const key = generateBackupKey();
    const storage = new MemoryStorage();
    const statePath = join(dir, 'state2.json');
    const access = { storage, backupKey: key, statePath };
    const src = join(dir, 'src2');
    await mkdir(src);
    await makeChat(src, 60_000);
    await backup({ init: true, ...access, source: src, workers: 1 });
    // A backup that dies at its commit point leaves a pack and an index no snapshot names.
    await writeFile(join(src, 'keep.bin'), randomBytes(150_000));
    await writeFile(join(src, 'drop.bin'), randomBytes(150_000));
    storage.injectFault((op, name) =>
      op === 'put' && name.startsWith('snapshots/') ? new UnavailableError('crash') : undefined,
    );
    await assert.rejects(backup({ init: true, ...access, source: src, workers: 1 }));
    storage.injectFault(undefined);
    await rm(join(src, 'drop.bin'));
    await backup({ init: true, ...access, source: src, workers: 1 });
    const expected = await describeTree(src);
    const before = new Map(storage.raw());
    const p = await prune(access);
    assert.ok(p.packsRepacked >= 1 && p.packsDeleted >= 1, JSON.stringify(p));
    const afterPrune = new Map(storage.raw());
    const dropped = [...before.keys()].filter((n) => !afterPrune.has(n));
    const oldIndexes = dropped.filter((n) => n.startsWith('index/'));
    assert.ok(
      oldIndexes.length >= 2 && dropped.some((n) => n.startsWith('data/')),
      JSON.stringify(dropped),
    );
    for (const name of oldIndexes) {
      storage.raw().clear();
      for (const [k, v] of afterPrune) storage.raw().set(k, v);
      storage.raw().set(name, before.get(name) as Uint8Array);
      const target = join(dir, `replay-${name.slice(6, 14)}`);
      try {
        await restore({ ...access, target, workers: 0 });
        await assertTreeIs(target, expected, `replayed ${name}`);
      } catch (e) {
        assert.equal(codeOf(e), 'MISSING_OBJECT', `replayed ${name}: ${String(e)}`);
        await assert.rejects(readdir(target), /ENOENT/);
      }
    }
  });
});
