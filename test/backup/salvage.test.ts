/**
 * Damage stays local: one flipped byte in any pack costs only the files that pack held.
 * `restore --partial` writes every file whose data verifies (byte-exact), writes nothing
 * unverified, and lists the damaged paths; without it the error says that --partial exists.
 * `include` restores one file or folder.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  backup,
  check,
  diffSnapshots,
  forget,
  listSnapshotTree,
  openInspector,
  prune,
  repositoryStats,
  restore,
} from '#sdk/backup/index.js';
import { readTree } from '#sdk/backup/repository/packs.js';
import { RepoLock } from '#sdk/backup/repository/lock.js';
import { loadChain } from '#sdk/backup/repository/snapshots.js';
import { loadIndex } from '#sdk/backup/repository/indexes.js';
import { openRepository } from '#sdk/backup/repository/repository.js';
import { UnavailableError, hasCode } from '#sdk/errors.js';
import { ObjectKind, generateBackupKey, packName, toHex } from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { removeDir, tempDir } from './helpers.js';

async function filesUnder(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(relative(root, p), await readFile(p));
    }
  };
  await walk(root);
  return out;
}

/**
 * Flip one bit inside the first data blob of the file `file` (at the top of the newest
 * snapshot) where its pack is stored, as a store's bit rot would. Returns the pack's name.
 */
async function flipFirstBlobOf(
  access: { storage: MemoryStorage; backupKey: Uint8Array; rollbackProtection: false },
  file: string,
): Promise<string> {
  const repo = await openRepository(access);
  const chain = await loadChain(repo);
  const index = await loadIndex(repo);
  const head = chain[chain.length - 1];
  const entries = await readTree(repo, index, head?.snap.rootTree as Uint8Array);
  const e = entries.find((x) => x.name === file) as { chunks: Uint8Array[] };
  const at = index.blobs.get(e.chunks[0] as Uint8Array, ObjectKind.DATA_BLOB);
  assert.ok(at, `${file}: no blob`);
  const name = packName(at.packId);
  const pack = (access.storage.raw().get(name) as Uint8Array).slice();
  pack[at.entry.offset + 40] = (pack[at.entry.offset + 40] as number) ^ 1;
  access.storage.raw().set(name, pack);
  return name;
}

describe('salvage: damage stays local', () => {
  let dir: string;
  let src: string;
  const storage = new MemoryStorage();
  const backupKey = generateBackupKey();
  let source: Map<string, Buffer>;
  before(async () => {
    dir = await tempDir('bv-salvage-');
    src = join(dir, 'chat');
    for (const sub of ['media', 'voice', 'docs/2026'])
      await mkdir(join(src, sub), { recursive: true });
    for (let i = 0; i < 12; i++)
      await writeFile(join(src, 'media', `IMG_${i}.jpg`), randomBytes(90_000 + i));
    for (let i = 0; i < 6; i++)
      await writeFile(join(src, 'voice', `v${i}.opus`), randomBytes(40_000 + i));
    await writeFile(join(src, 'docs', '2026', 'a.pdf'), randomBytes(120_000));
    await writeFile(join(src, 'notes.txt'), 'hello\n'.repeat(1000));
    await backup({
      rollbackProtection: false,
      storage,
      backupKey,
      source: src,
      workers: 1,
      init: true,
      packSize: 256 * 1024,
    });
    source = await filesUnder(src);
  });
  after(async () => {
    await removeDir(dir);
  });

  /** The pack holding the snapshot's root tree: without it nothing can be restored. */
  const rootPackId = async (): Promise<string | undefined> => {
    const repo = await openRepository({ rollbackProtection: false, storage, backupKey });
    const [snap] = await loadChain(repo);
    return (await loadIndex(repo)).blobs.get(
      toHex(snap?.snap.rootTree as Uint8Array),
      ObjectKind.TREE_BLOB,
    )?.packId;
  };

  it('a flipped byte in each pack in turn: --partial restores every other file byte-exact', async () => {
    const rootPack = await rootPackId();
    const packs = [...storage.raw().keys()].filter((k) => k.startsWith('data/')).sort();
    assert.ok(packs.length >= 6, `only ${packs.length} packs`);
    let salvaged = 0;
    for (const [n, pack] of packs.entries()) {
      const good = storage.raw().get(pack) as Uint8Array;
      const bad = good.slice();
      bad[20] = (bad[20] as number) ^ 0x40; // inside the first blob's ciphertext
      storage.raw().set(pack, bad);
      try {
        // Without --partial: CORRUPT, the target untouched, and the way forward named.
        const strict = join(dir, `strict-${n}`);
        await assert.rejects(
          restore({ rollbackProtection: false, storage, backupKey, target: strict, workers: 1 }),
          (e: unknown) => hasCode(e, 'CORRUPT') && /`partial: true`/.test(e.hint),
        );
        await assert.rejects(readdir(strict), /ENOENT/);
        const target = join(dir, `partial-${n}`);
        let r;
        try {
          r = await restore({
            rollbackProtection: false,
            storage,
            backupKey,
            target,
            workers: 1,
            partial: true,
          });
        } catch (e) {
          // Only the root tree is needed for anything at all.
          assert.equal(pack.slice(-64), rootPack, `${pack}: partial restore failed: ${String(e)}`);
          continue;
        }
        salvaged += 1;
        assert.ok(r.damaged.length > 0, `${pack}: nothing reported damaged`);
        const got = await filesUnder(target);
        for (const [p, bytes] of got)
          assert.deepEqual(bytes, source.get(p), `${pack}: ${p} differs`);
        // The counts are of what was restored: the CLI printed "N files, all verified" with
        // the damaged files among the N.
        assert.equal(r.files, got.size, `${pack}: files counted`);
        let bytesGot = 0;
        for (const b of got.values()) bytesGot += b.length;
        assert.equal(r.bytes, bytesGot, `${pack}: bytes counted`);
        for (const p of source.keys()) {
          if (got.has(p)) continue;
          assert.ok(
            r.damaged.some((d) => d.path === p || (d.path.endsWith('/') && p.startsWith(d.path))),
            `${pack}: ${p} is neither restored nor listed as damaged`,
          );
        }
        await rm(target, { recursive: true });
      } finally {
        storage.raw().set(pack, good);
      }
    }
    assert.ok(salvaged >= packs.length - 1, `${salvaged} of ${packs.length} packs salvaged`);
  });

  it('check names, for each damaged pack, the snapshots and paths it costs', async () => {
    const rootPack = await rootPackId();
    const packs = [...storage.raw().keys()].filter(
      (k) => k.startsWith('data/') && k.slice(-64) !== rootPack,
    );
    const pack = packs.sort()[1] as string;
    const good = storage.raw().get(pack) as Uint8Array;
    const bad = good.slice();
    bad[20] = (bad[20] as number) ^ 0x40;
    storage.raw().set(pack, bad);
    try {
      const r = await restore({
        rollbackProtection: false,
        storage,
        backupKey,
        target: join(dir, 'chk'),
        workers: 1,
        partial: true,
      });
      const c = await check({ rollbackProtection: false, storage, backupKey, workers: 1 });
      const p = c.problems.find((x) => x.object === pack);
      assert.ok(p?.affects && p.affects.length === 1, JSON.stringify(c.problems));
      const a = p.affects[0];
      assert.equal(a?.seq, 1);
      assert.deepEqual(
        [...(a?.paths ?? [])].sort(),
        r.damaged.map((d) => d.path).sort(),
        'check and restore --partial disagree about what the damage costs',
      );
      // A damaged header or trailer costs no file: reported, with nothing affected.
      const tail = good.slice();
      tail[tail.length - 2] = (tail[tail.length - 2] as number) ^ 1;
      storage.raw().set(pack, tail);
      const c2 = await check({ rollbackProtection: false, storage, backupKey, workers: 1 });
      assert.ok(c2.problems.some((x) => x.object === pack && x.affects === undefined));
    } finally {
      storage.raw().set(pack, good);
    }
  });

  it('a deleted pack: --partial restores the rest, lists what it held', async () => {
    // Any pack but the one holding the root tree (without it nothing can be restored).
    const rootPack = await rootPackId();
    const packs = [...storage.raw().keys()].filter(
      (k) => k.startsWith('data/') && k.slice(-64) !== rootPack,
    );
    const victim = packs.sort()[0] as string;
    const saved = storage.raw().get(victim) as Uint8Array;
    storage.raw().delete(victim);
    try {
      const target = join(dir, 'missing-pack');
      const r = await restore({
        rollbackProtection: false,
        storage,
        backupKey,
        target,
        workers: 1,
        partial: true,
      });
      assert.ok(r.damaged.length > 0);
      const got = await filesUnder(target);
      for (const [p, bytes] of got) assert.deepEqual(bytes, source.get(p));
      // Every source file came back, or is listed, or lies under a listed folder (the pack
      // may have held a folder's tree: then the whole folder is what the damage costs).
      const listed = r.damaged.map((d) => d.path);
      for (const p of source.keys()) {
        if (got.has(p)) continue;
        assert.ok(
          listed.some((l) => l === p || (l.endsWith('/') && p.startsWith(l))),
          `${p} neither restored nor listed as damaged: ${JSON.stringify(listed)}`,
        );
      }
    } finally {
      storage.raw().set(victim, saved);
    }
  });

  it('include restores one file, or one folder, and nothing else', async () => {
    const one = join(dir, 'one');
    const r = await restore({
      rollbackProtection: false,
      storage,
      backupKey,
      target: one,
      workers: 1,
      include: 'media/IMG_3.jpg',
    });
    assert.equal(r.files, 1);
    assert.deepEqual([...(await filesUnder(one)).keys()], ['media/IMG_3.jpg']);
    assert.deepEqual(
      await readFile(join(one, 'media', 'IMG_3.jpg')),
      source.get('media/IMG_3.jpg'),
    );
    const folder = join(dir, 'folder');
    await restore({
      rollbackProtection: false,
      storage,
      backupKey,
      target: folder,
      workers: 1,
      include: 'docs/',
    });
    assert.deepEqual([...(await filesUnder(folder)).keys()], ['docs/2026/a.pdf']);
    await assert.rejects(
      restore({
        rollbackProtection: false,
        storage,
        backupKey,
        target: join(dir, 'none'),
        workers: 1,
        include: 'media/nope.jpg',
      }),
      (e: unknown) => hasCode(e, 'NOT_FOUND'),
    );
    await assert.rejects(readdir(join(dir, 'none')), /ENOENT/);
  });
});

describe('salvage: a damaged index object', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('bv-salvage-index-');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('costs nothing: --partial restores every file, backups go on, prune repairs it', async () => {
    // Every pack is intact and names its blobs in its authenticated header; only the index
    // object that lists them is damaged (a flipped bit in the cloud). Restore --partial
    // refused everything, check called every blob missing, and every later backup failed.
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const access = { rollbackProtection: false as const, storage, backupKey };
    const src = join(dir, 'chat');
    await mkdir(join(src, 'media'), { recursive: true });
    for (let i = 0; i < 4; i++)
      await writeFile(join(src, 'media', `IMG_${i}.jpg`), randomBytes(80_000 + i));
    await backup({ ...access, source: src, workers: 1, init: true });
    const [damaged] = [...storage.raw().keys()].filter((k) => k.startsWith('index/'));
    await writeFile(join(src, 'notes.txt'), 'a second snapshot\n');
    await backup({ ...access, source: src, workers: 1 });
    const expected = await filesUnder(src);
    const bytes = storage.raw().get(damaged as string) as Uint8Array;
    const flipped = bytes.slice();
    flipped[40] = (flipped[40] as number) ^ 1;
    storage.raw().set(damaged as string, flipped);

    // Without --partial: CORRUPT, as for any damaged object a restore meets, saying that
    // --partial exists.
    await assert.rejects(
      restore({ ...access, target: join(dir, 'strict'), workers: 1 }),
      (e) => hasCode(e, 'CORRUPT') && /partial/.test((e as { hint: string }).hint),
    );
    const r = await restore({ ...access, target: join(dir, 'partial'), workers: 1, partial: true });
    assert.deepEqual(r.damaged, []);
    assert.ok(
      r.warnings.some((w) => w.includes(damaged as string)),
      JSON.stringify(r.warnings),
    );
    assert.deepEqual(await filesUnder(join(dir, 'partial')), expected);
    // ls, diff and stats need only trees: they read the packs by their headers too.
    const ins = await openInspector(access);
    const [s1, s2] = ins.snapshots;
    assert.ok(s1 && s2);
    assert.deepEqual(
      (await listSnapshotTree(ins, s2)).map((e) => e.path),
      ['media', ...[0, 1, 2, 3].map((i) => `media/IMG_${i}.jpg`), 'notes.txt'],
    );
    assert.deepEqual(
      (await diffSnapshots(ins, s1, s2)).map((d) => `${d.change} ${d.path}`),
      ['added notes.txt'],
    );
    assert.equal((await repositoryStats(ins)).snapshots.length, 2);
    // check names the damaged object, and only it: every blob is still readable.
    const c = await check({ ...access, workers: 1 });
    assert.deepEqual(
      c.problems.map((p) => [p.code, p.object]),
      [['CORRUPT', damaged]],
    );

    await writeFile(join(src, 'notes.txt'), 'a third snapshot\n');
    const b = await backup({ ...access, source: src, workers: 1 });
    assert.ok(
      b.warnings.some((w) => w.includes(damaged as string)),
      JSON.stringify(b.warnings),
    );
    await prune(access);
    assert.ok(!storage.raw().has(damaged as string), 'prune kept the damaged index');
    assert.deepEqual((await check({ ...access, workers: 1 })).problems, []);
    const t = join(dir, 'after');
    await restore({ ...access, target: t, workers: 1 });
    assert.deepEqual(await filesUnder(t), await filesUnder(src));
  });
});

describe('salvage: prune over a damaged pack', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('bv-salvage-prune-');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('frees the rest and leaves the damaged pack as it was (it refused everything, for good)', async () => {
    // A flipped bit in a used blob of a pack that also holds unused ones: prune's repack
    // verified it and refused the whole prune, and so did every later one (the device's
    // forget --prune after each backup), while the store only grew.
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const access = { rollbackProtection: false as const, storage, backupKey };
    const src = join(dir, 'chat');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'kept.jpg'), randomBytes(150_000));
    await writeFile(join(src, 'gone.jpg'), randomBytes(150_000));
    await backup({ ...access, source: src, workers: 1, init: true });
    await rm(join(src, 'gone.jpg'));
    await writeFile(join(src, 'new.jpg'), randomBytes(150_000));
    await backup({ ...access, source: src, workers: 1 });
    await forget({ ...access, policy: { last: 1 } });
    // The pack of the first backup now holds kept.jpg (used) and gone.jpg (not): flip a
    // byte inside kept.jpg's blob.
    const name = await flipFirstBlobOf(access, 'kept.jpg');
    // Leftovers prune must still free: a pack no index names.
    const orphan = randomBytes(5000);
    const orphanName = packName(createHash('sha256').update(orphan).digest('hex'));
    await storage.put(orphanName, orphan);

    const problems = async (): Promise<string[]> =>
      (await check({ ...access, workers: 1 })).problems
        .map((p) => `${p.code} ${p.object}`)
        .filter((p) => !p.endsWith(orphanName))
        .sort();
    const before = await problems();
    assert.ok(before.includes(`CORRUPT ${name}`), before.join('; '));
    const r = await prune(access);
    assert.deepEqual(r.damagedPacks, [name]);
    assert.ok(!storage.raw().has(orphanName), 'prune freed nothing');
    assert.ok(storage.raw().has(name), 'prune deleted the damaged pack');
    // No worse: the same damage, the same salvage.
    assert.deepEqual(await problems(), before);
    const t = join(dir, 'partial');
    const res = await restore({ ...access, target: t, workers: 1, partial: true });
    assert.deepEqual(
      res.damaged.map((d) => d.path),
      ['kept.jpg'],
    );
    assert.deepEqual(await readFile(join(t, 'new.jpg')), await readFile(join(src, 'new.jpg')));
    // A second prune finds the same and changes nothing.
    const again = await prune(access);
    assert.deepEqual([again.packsDeleted, again.packsRepacked, again.damagedPacks], [0, 0, [name]]);
  });
});

describe('salvage: check --repair, then a backup heals a bit-flipped blob', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('bv-salvage-repair-');
  });
  after(async () => {
    await removeDir(dir);
  });

  /** A memory repository whose first snapshot holds `photo.jpg` and `other.jpg` (random). */
  async function photoRepo(name: string) {
    const storage = new MemoryStorage();
    const access = { rollbackProtection: false as const, storage, backupKey: generateBackupKey() };
    const src = join(dir, name);
    await mkdir(src, { recursive: true });
    const photo = randomBytes(150_000);
    await writeFile(join(src, 'photo.jpg'), photo);
    await writeFile(join(src, 'other.jpg'), randomBytes(150_000));
    const first = await backup({ ...access, source: src, workers: 1, init: true });
    return { storage, access, src, photo, first };
  }

  it('without repair every later backup refers to the damaged blob; with it the next backup stores it again and every snapshot restores', async () => {
    const { storage, access, src, photo, first } = await photoRepo('chat');
    // The store flips one bit inside photo.jpg's blob.
    const name = await flipFirstBlobOf(access, 'photo.jpg');

    // Without repair: the next backup (a new file beside) says saved, and is damaged too.
    await writeFile(join(src, 'new.txt'), 'a new message');
    const second = await backup({ ...access, source: src, workers: 1 });
    const damaged = async (snapshotId: string): Promise<string[]> =>
      (
        await restore({
          ...access,
          target: join(dir, `probe-${snapshotId.slice(0, 8)}-${Date.now()}`),
          snapshotId,
          workers: 1,
          partial: true,
        })
      ).damaged.map((d) => d.path);
    assert.deepEqual(await damaged(second.snapshotId), ['photo.jpg']);

    // check --repair: reports the damage, and drops the blob from the index.
    await assert.rejects(check({ ...access, readData: false, repair: true }), (e: unknown) =>
      hasCode(e, 'USAGE'),
    );
    // While a backup holds the lock: the problems, and a note that nothing was repaired.
    const repo = await openRepository(access);
    const held = await RepoLock.acquire(repo, 'backup', false);
    try {
      const busy = await check({ ...access, workers: 1, repair: true });
      assert.equal(busy.ok, false);
      assert.equal(busy.repaired, undefined);
      assert.ok(
        busy.notes.some((n) => /^the index was not repaired: the repository is locked/.test(n)),
        busy.notes.join('; '),
      );
    } finally {
      await held.release();
    }
    const c = await check({ ...access, workers: 1, repair: true });
    assert.equal(c.ok, false);
    assert.deepEqual(c.repaired, { blobsDropped: 1, packsDropped: 0, indexesReplaced: 2 });
    assert.equal([...storage.raw().keys()].filter((k) => k.startsWith('index/')).length, 1);

    // The next backup reads photo.jpg again (its chunk is no longer in the index) and stores
    // it under the same id: every snapshot that used it restores again, the first included.
    const third = await backup({ ...access, source: src, workers: 1 });
    for (const s of [first, second, third]) {
      const out = join(dir, `out-${s.seq}`);
      const r = await restore({ ...access, target: out, snapshotId: s.snapshotId, workers: 1 });
      assert.deepEqual(r.damaged ?? [], []);
      assert.deepEqual(await readFile(join(out, 'photo.jpg')), photo, `snapshot ${s.seq}`);
    }
    // The damaged pack still holds the bad copy (and other.jpg): prune rewrites it without
    // it, and then the check is clean.
    assert.ok(storage.raw().has(name));
    const p = await prune(access);
    assert.deepEqual(p.damagedPacks, []);
    assert.ok(!storage.raw().has(name), 'prune left the damaged pack');
    const clean = await check({ ...access, workers: 1, repair: true });
    assert.deepEqual(clean.problems, []);
    assert.equal(clean.repaired, undefined, 'nothing to repair, nothing written');
  });

  it('a repair stopped before it deleted the old indexes leaves a valid repository; run again, it finishes', async () => {
    const { storage, access, src, photo, first } = await photoRepo('stopped');
    await flipFirstBlobOf(access, 'photo.jpg');
    // The store fails the new index's upload: nothing was deleted before it.
    const noPut: typeof storage = Object.create(storage) as typeof storage;
    noPut.put = async (name, data) => {
      if (name.startsWith('index/')) throw new UnavailableError('the store went away');
      return storage.put(name, data);
    };
    await assert.rejects(check({ ...access, storage: noPut, workers: 1, repair: true }), (e) =>
      hasCode(e, 'UNAVAILABLE'),
    );
    assert.equal([...storage.raw().keys()].filter((k) => k.startsWith('index/')).length, 1);
    // The store fails every index deletion: the new index is written, the old one stays.
    const failing: typeof storage = Object.create(storage) as typeof storage;
    failing.delete = async (name) => {
      if (name.startsWith('index/')) throw new UnavailableError('the store went away');
      return storage.delete(name);
    };
    await assert.rejects(check({ ...access, storage: failing, workers: 1, repair: true }), (e) =>
      hasCode(e, 'UNAVAILABLE'),
    );
    assert.equal([...storage.raw().keys()].filter((k) => k.startsWith('index/')).length, 2);
    // Valid: the same damage as before, nothing else lost, and no lock left behind.
    const partial = await restore({
      ...access,
      target: join(dir, 'stopped-partial'),
      workers: 1,
      partial: true,
    });
    assert.deepEqual(
      partial.damaged.map((d) => d.path),
      ['photo.jpg'],
    );
    assert.ok(![...storage.raw().keys()].some((k) => k.startsWith('locks/')), 'lock left');
    // Run again: it finishes, and a backup heals the first snapshot.
    const c = await check({ ...access, workers: 1, repair: true });
    assert.equal(c.repaired?.blobsDropped, 1);
    assert.equal([...storage.raw().keys()].filter((k) => k.startsWith('index/')).length, 1);
    await backup({ ...access, source: src, workers: 1 });
    const out = join(dir, 'stopped-out');
    await restore({ ...access, target: out, snapshotId: first.snapshotId, workers: 1 });
    assert.deepEqual(await readFile(join(out, 'photo.jpg')), photo);
  });

  it('a lost pack: repair drops its entries, and the next backup stores its content again', async () => {
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const access = { rollbackProtection: false as const, storage, backupKey };
    const src = join(dir, 'lost');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'a.jpg'), randomBytes(150_000));
    const first = await backup({ ...access, source: src, workers: 1, init: true });
    const name = await flipFirstBlobOf(access, 'a.jpg');
    storage.raw().delete(name);
    const c = await check({ ...access, workers: 1, repair: true });
    assert.ok(c.problems.some((p) => p.code === 'MISSING_OBJECT' && p.object === name));
    assert.equal(c.repaired?.packsDropped, 1);
    assert.ok((c.repaired?.blobsDropped ?? 0) >= 1);
    await backup({ ...access, source: src, workers: 1 });
    const out = join(dir, 'lost-out');
    await restore({ ...access, target: out, snapshotId: first.snapshotId, workers: 1 });
    assert.deepEqual(await readFile(join(out, 'a.jpg')), await readFile(join(src, 'a.jpg')));
    assert.deepEqual((await check({ ...access, workers: 1 })).problems, []);
  });
});
