/**
 * Fixtures of the forget tests: a repository of versions that each hold data no other
 * version holds, the tree each snapshot was made from, and a full consistency check (check
 * clean, every stored snapshot restores byte-exact).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backup, check, listSnapshots, restore } from '#sdk/backup/index.js';
import { generateBackupKey } from '#sdk/format/index.js';
import type { Storage } from '#sdk/storage/storage.js';
import { describeTree, removeDir } from './helpers.js';

/** Every object of a store: name -> SHA-256 of its bytes. */
export async function objectMap(storage: Storage): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const o of storage.list('')) {
    out.set(
      o.name,
      createHash('sha256')
        .update(await storage.get(o.name))
        .digest('hex'),
    );
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

export async function storedBytes(storage: Storage): Promise<number> {
  let n = 0;
  for await (const o of storage.list('')) n += o.size;
  return n;
}

export async function snapshotNames(storage: Storage): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list('snapshots/')) out.push(o.name.slice('snapshots/'.length));
  return out.sort();
}

/**
 * A source directory whose content changes per version: new incompressible bytes that no
 * other version holds (90 KB each), so forgetting a version frees them.
 */
export class Source {
  constructor(readonly dir: string) {}
  private n = 0;
  async next(): Promise<void> {
    this.n += 1;
    await mkdir(join(this.dir, 'media'), { recursive: true });
    await writeFile(join(this.dir, 'chat.txt'), `version ${this.n}\n`.repeat(50));
    await rm(join(this.dir, 'media', `photo-${this.n - 1}.jpg`), { force: true });
    await writeFile(join(this.dir, 'media', `photo-${this.n}.jpg`), randomBytes(60_000));
    await writeFile(join(this.dir, 'media', 'current.bin'), randomBytes(30_000));
  }
}

export interface Fixture {
  storage: Storage;
  key: Uint8Array;
  statePath: string;
  /** Snapshot id -> the source tree it holds. */
  trees: Map<string, Awaited<ReturnType<typeof describeTree>>>;
  src: Source;
  dir: string;
}

export async function makeRepo(storage: Storage, dir: string, versions: number): Promise<Fixture> {
  const f: Fixture = {
    storage,
    key: generateBackupKey(),
    statePath: join(dir, 'state.json'),
    trees: new Map(),
    src: new Source(join(dir, 'src')),
    dir,
  };
  for (let i = 0; i < versions; i++) await backupOnce(f);
  return f;
}

export async function backupOnce(f: Fixture, storage: Storage = f.storage): Promise<string> {
  await f.src.next();
  const r = await backup({
    init: true,
    storage,
    backupKey: f.key,
    statePath: f.statePath,
    source: f.src.dir,
    workers: 1,
    hostname: 'phone',
  });
  f.trees.set(r.snapshotId, await describeTree(f.src.dir));
  return r.snapshotId;
}

/** Every stored snapshot restores to exactly the tree it was made from; check is clean. */
export async function assertConsistent(f: Fixture): Promise<void> {
  const access = { storage: f.storage, backupKey: f.key, statePath: f.statePath };
  const c = await check({ ...access, workers: 1 });
  assert.equal(c.ok, true, JSON.stringify(c.problems));
  assert.deepEqual(c.problems, []);
  const list = await listSnapshots(access);
  for (const s of list) {
    const target = join(f.dir, `restore-${s.seq}-${Math.random().toString(16).slice(2)}`);
    await restore({ ...access, target, snapshotId: s.id, workers: 1 });
    assert.deepEqual(await describeTree(target), f.trees.get(s.id), `snapshot ${s.seq}`);
    await removeDir(target);
  }
}
