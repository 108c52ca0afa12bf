/**
 * Readers beside a prune. restore, check and ls/diff/stats take no lock (read-only
 * credentials must do), so a prune may replace the packs and index they loaded while they
 * run. What they must not do is report a repository as damaged when it is not, nor stop
 * reporting real damage.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  backup,
  check,
  forget,
  listSnapshotTree,
  openInspector,
  restore,
} from '#sdk/backup/index.js';
import { hasCode } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { removeDir, tempDir } from './helpers.js';

/**
 * A view of `inner` whose first reads of objects under `prefix` wait at a gate: `reached`
 * settles when the first one arrives, and they go on once `open()` is called.
 */
class GatedStorage extends MemoryStorage {
  readonly reached: Promise<void>;
  private onReach!: () => void;
  private gate: Promise<void> | undefined;
  open!: () => void;
  constructor(
    private readonly inner: MemoryStorage,
    private readonly prefix = 'data/',
  ) {
    super();
    this.reached = new Promise((r) => (this.onReach = r));
    this.gate = new Promise((r) => (this.open = r));
  }
  private async wait(name: string): Promise<void> {
    if (!name.startsWith(this.prefix) || this.gate === undefined) return;
    this.onReach();
    await this.gate;
    this.gate = undefined;
  }
  override async get(name: string): Promise<Uint8Array> {
    await this.wait(name);
    return this.inner.get(name);
  }
  override async getRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    await this.wait(name);
    return this.inner.getRange(name, offset, length);
  }
  override put(name: string, data: Uint8Array): Promise<void> {
    return this.inner.put(name, data);
  }
  override list(prefix: string) {
    return this.inner.list(prefix);
  }
  override delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }
  override stat(name: string) {
    return this.inner.stat(name);
  }
}

describe('readers beside a prune', () => {
  let dir: string;
  let n = 0;
  const backupKey = generateBackupKey();
  before(async () => {
    dir = await tempDir('bv-beside-prune-');
  });
  after(async () => {
    await removeDir(dir);
  });

  /**
   * Two snapshots; the first one's big file is gone from the second, so once the first is
   * forgotten, the pack that holds both files is mostly unused and a prune rewrites it.
   */
  async function prunable(): Promise<{ storage: MemoryStorage; statePath: string; keep: Buffer }> {
    const storage = new MemoryStorage();
    const src = join(dir, `src${n}`);
    const statePath = join(dir, `state${n++}.json`);
    // keep.bin in a folder of its own: that folder's tree is the same in both snapshots, so
    // it lives in the pack the prune rewrites.
    await mkdir(join(src, 'sub'), { recursive: true });
    const keep = randomBytes(300_000);
    await writeFile(join(src, 'sub', 'keep.bin'), keep);
    await writeFile(join(src, 'gone.bin'), randomBytes(2_000_000));
    await backup({ init: true, storage, backupKey, statePath, source: src, workers: 0 });
    await rm(join(src, 'gone.bin'));
    await backup({ storage, backupKey, statePath, source: src, workers: 0 });
    return { storage, statePath, keep };
  }

  /** Forget the first snapshot and prune, with the reader stopped at its first pack read. */
  async function pruneBeside(storage: MemoryStorage, statePath: string, gated: GatedStorage) {
    await gated.reached;
    const r = await forget({ storage, backupKey, statePath, policy: { last: 1 }, prune: true });
    assert.ok((r.prune?.packsDeleted ?? 0) > 0, 'the prune replaced no pack');
    gated.open();
  }

  for (const [label, extra] of [
    ['a restore', { workers: 0 }],
    ['a partial restore with a worker thread', { workers: 1, partial: true }],
  ] as const) {
    it(`${label} whose pack a prune replaced mid-way restores byte-exact, and says it started again`, async () => {
      const { storage, statePath, keep } = await prunable();
      const gated = new GatedStorage(storage);
      const target = join(dir, `out${n++}`);
      const restoring = restore({ storage: gated, backupKey, statePath, target, ...extra });
      await pruneBeside(storage, statePath, gated);
      const r = await restoring;
      assert.deepEqual(r.damaged, []);
      assert.deepEqual(await readFile(join(target, 'sub', 'keep.bin')), keep);
      assert.ok(
        r.warnings.some((w) => /changed while it was read .*started again/.test(w)),
        r.warnings.join('\n'),
      );
    });
  }

  it('a check whose packs a prune replaced mid-way reports no damage', async () => {
    const { storage, statePath } = await prunable();
    const gated = new GatedStorage(storage);
    const checking = check({ storage: gated, backupKey, statePath });
    await pruneBeside(storage, statePath, gated);
    const r = await checking;
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
  });

  it('ls of a snapshot whose tree a prune moved mid-way lists it all', async () => {
    const { storage, statePath } = await prunable();
    const gated = new GatedStorage(storage);
    const ins = await openInspector({ storage: gated, backupKey, statePath });
    const head = ins.snapshots[ins.snapshots.length - 1]!;
    const listing = listSnapshotTree(ins, head);
    await pruneBeside(storage, statePath, gated);
    assert.deepEqual(
      (await listing).map((e) => e.path),
      ['sub', 'sub/keep.bin'],
    );
  });

  it('restore, check and ls whose index object a prune replaced before they read it go on', async () => {
    const { storage, statePath, keep } = await prunable();
    let gated = new GatedStorage(storage, 'index/');
    const target = join(dir, `out${n++}`);
    const restoring = restore({ storage: gated, backupKey, statePath, target, workers: 0 });
    await pruneBeside(storage, statePath, gated);
    await restoring;
    assert.deepEqual(await readFile(join(target, 'sub', 'keep.bin')), keep);

    const again = await prunable();
    gated = new GatedStorage(again.storage, 'index/');
    const checking = check({ storage: gated, backupKey, statePath: again.statePath });
    await pruneBeside(again.storage, again.statePath, gated);
    assert.deepEqual((await checking).problems, []);

    const third = await prunable();
    gated = new GatedStorage(third.storage, 'index/');
    const opening = openInspector({ storage: gated, backupKey, statePath: third.statePath });
    await pruneBeside(third.storage, third.statePath, gated);
    const ins = await opening;
    const listed = await listSnapshotTree(ins, ins.snapshots[ins.snapshots.length - 1]!);
    assert.deepEqual(
      listed.map((e) => e.path),
      ['sub', 'sub/keep.bin'],
    );
  });

  it('a pack that is really gone is still MISSING_OBJECT, for restore and check', async () => {
    const { storage, statePath } = await prunable();
    const packs = [...storage.raw().keys()].filter((k) => k.startsWith('data/'));
    const big = packs.sort(
      (a, b) => storage.raw().get(b)!.length - storage.raw().get(a)!.length,
    )[0]!;
    await storage.delete(big);
    await assert.rejects(
      restore({ storage, backupKey, statePath, target: join(dir, `out${n++}`), workers: 0 }),
      (e) => hasCode(e, 'MISSING_OBJECT'),
    );
    const r = await check({ storage, backupKey, statePath });
    assert.ok(r.problems.some((p) => p.code === 'MISSING_OBJECT' && p.object === big));
    assert.ok(!r.notes.some((w) => /changed/.test(w)));
  });
});
