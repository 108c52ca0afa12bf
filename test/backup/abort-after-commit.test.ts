/**
 * An abort that comes after an operation's commit point is not honoured: the operation
 * resolves with its result, and what it committed stays. The CLI relies on it (its first
 * Ctrl-C aborts the operation and reports success when it resolves, see
 * packages/cli/src/cli/interrupt.ts): a rejection there would make it say "nothing was
 * committed" beside a new snapshot or a restored target. The abort is sent at the commit
 * point itself, by real files and a real local store that call `abort()` as soon as the
 * committing step returned: the snapshot's `put`, the restore's rename into place, the
 * merge journal's write.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, listSnapshots, restore } from '#sdk/backup/index.js';
import { nodeFiles } from '#sdk/backup/node/files.js';
import type { EngineFiles } from '#sdk/backup/platform/types.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import type { Storage } from '#sdk/storage/storage.js';
import { assertSameTree, makeSampleTree, removeDir, tempDir } from './helpers.js';

/** Node's files, with `abort()` called right after a step of the restore's output returned. */
function abortingAfter(
  step: 'rename' | 'writeNewFile',
  when: (path: string) => boolean,
  ac: AbortController,
): EngineFiles {
  const out = nodeFiles.out;
  return {
    ...nodeFiles,
    out: {
      ...out,
      [step]: async (a: string, b: Uint8Array | string) => {
        await (out[step] as (a: string, b: unknown) => Promise<void>).call(out, a, b);
        if (when(step === 'rename' ? (b as string) : a)) ac.abort();
      },
    },
  };
}

describe('AbortSignal after the commit point: the operation completes', () => {
  let dir: string;
  let src: string;
  let store: LocalStorage;
  let access: { storage: Storage; backupKey: Uint8Array; statePath: string };

  before(async () => {
    dir = await tempDir('bv-abort-late-');
    src = join(dir, 'src');
    await makeSampleTree(src, 256 * 1024);
    store = new LocalStorage(join(dir, 'repo'));
    access = { storage: store, backupKey: generateBackupKey(), statePath: join(dir, 'state') };
    await backup({ ...access, init: true, source: src, workers: 2 });
  });
  after(async () => removeDir(dir));

  it('backup: aborted as its snapshot object is written, it resolves and the snapshot stays', async () => {
    await writeFile(join(src, 'new.txt'), 'one more file\n');
    const ac = new AbortController();
    const storage: Storage = Object.assign(Object.create(store) as Storage, {
      put: async (name: string, data: Uint8Array) => {
        await store.put(name, data);
        if (name.startsWith('snapshots/')) ac.abort();
      },
    });
    const r = await backup({ ...access, storage, source: src, workers: 2, signal: ac.signal });
    assert.equal(ac.signal.aborted, true, 'the abort came');
    const list = await listSnapshots(access);
    assert.equal(list.at(-1)?.id, r.snapshotId);
    assert.equal(list.at(-1)?.seq, 2);
  });

  it('restore into a new directory: aborted as it is renamed into place, it resolves', async () => {
    const target = join(dir, 'out-new');
    const ac = new AbortController();
    const files = abortingAfter('rename', (to) => to === target, ac);
    const r = await restore({ ...access, target, files, workers: 2, signal: ac.signal });
    assert.equal(ac.signal.aborted, true, 'the abort came');
    assert.ok(r.files > 0);
    await assertSameTree(src, target);
  });

  it('restore merged into a full directory: aborted once its journal is written, it resolves', async () => {
    const target = join(dir, 'out-full');
    await mkdir(target);
    await writeFile(join(target, 'mine.txt'), 'not in the snapshot\n');
    const ac = new AbortController();
    const files = abortingAfter('writeNewFile', (p) => p.endsWith('commit'), ac);
    const r = await restore({
      ...access,
      target,
      force: true,
      files,
      workers: 2,
      signal: ac.signal,
    });
    assert.equal(ac.signal.aborted, true, 'the abort came');
    assert.deepEqual(r.kept, ['mine.txt']);
  });
});
