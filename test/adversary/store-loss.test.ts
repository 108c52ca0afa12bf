/**
 * Findings about a store that loses data between backups. Marked `todo` while core decides
 * on the fix, so they run and report without failing the suite; remove `todo` once fixed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, restore } from '../../src/backup/index.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { generateBackupKey } from '../../src/format/index.js';
import { assertTreeIs, describeTree } from './fixtures.js';

describe('adversary: a store that loses a pack between backups', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-loss-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(
    'a backup after the store lost a data pack stores the data again (or fails), never reports success for an unrestorable snapshot',
    {
      todo: 'core: backup dedups against index entries without checking that their packs still exist',
    },
    async () => {
      const storage = new MemoryStorage();
      const key = generateBackupKey();
      const statePath = join(dir, 'state.json');
      const src = join(dir, 'src');
      await mkdir(src);
      // More than one pack (16 MiB target): data blobs land in a pack without trees.
      await writeFile(join(src, 'video.mp4'), randomBytes(20_000_000));
      await backup({ storage, backupKey: key, statePath, source: src, workers: 1 });
      const packs = [...storage.raw()]
        .filter(([n]) => n.startsWith('data/'))
        .sort((a, b) => b[1].length - a[1].length);
      assert.ok(packs.length >= 2);
      storage.raw().delete((packs[0] as [string, Uint8Array])[0]);

      await writeFile(join(src, 'new.txt'), 'hello');
      let backedUp = true;
      try {
        await backup({ storage, backupKey: key, statePath, source: src, workers: 1 });
      } catch {
        backedUp = false;
      }
      if (backedUp) {
        // A backup that reported success must restore: the source was fully readable.
        const target = join(dir, 'restored');
        await restore({ storage, backupKey: key, statePath, target, workers: 1 });
        await assertTreeIs(target, await describeTree(src), 'latest snapshot');
      }
    },
  );
});
