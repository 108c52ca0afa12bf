/**
 * Repositories are created on purpose: a backup never starts a new history by itself, and a
 * device that saw snapshots at a location refuses that location when the repository there
 * vanished (an unmounted cloud drive) or was replaced by a new one.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, initRepository, listSnapshots, restore } from '#sdk/backup/index.js';
import { hasCode } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { openStorage } from '#sdk/storage/node/open.js';
import { removeDir, tempDir } from './helpers.js';

describe('repositories are created on purpose', () => {
  let dir: string;
  let src: string;
  before(async () => {
    dir = await tempDir('bv-purpose-');
    src = join(dir, 'chat');
    await mkdir(src);
    await writeFile(join(src, 'msg.txt'), 'hello\n');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('a backup to a missing repository is NO_REPOSITORY and creates nothing', async () => {
    const where = join(dir, 'typo');
    const storage = await openStorage(where);
    const backupKey = generateBackupKey();
    try {
      await assert.rejects(
        backup({ rollbackProtection: false, storage, backupKey, source: src, workers: 1 }),
        (e: unknown) => hasCode(e, 'NO_REPOSITORY') && /`initRepository\(\)`/.test(e.hint),
      );
      const left = await readdir(where).catch(() => []);
      assert.deepEqual(left, [], 'a refused backup left objects behind');
      // With init it is created, once; a second init opens the same one.
      const r = await backup({
        rollbackProtection: false,
        storage,
        backupKey,
        source: src,
        workers: 1,
        init: true,
      });
      assert.equal(r.created, true);
      const again = await initRepository({ rollbackProtection: false, storage, backupKey });
      assert.equal(again.created, false);
    } finally {
      await storage.close();
    }
  });

  it('a device that saw seq 2 refuses the location when the repository vanished or was replaced', async () => {
    const where = join(dir, 'cloud');
    const statePath = join(dir, 'state.json');
    const backupKey = generateBackupKey();
    let storage = await openStorage(where);
    await initRepository({ storage, backupKey, statePath });
    await backup({ storage, backupKey, statePath, source: src, workers: 1 });
    await writeFile(join(src, 'msg2.txt'), 'more\n');
    await backup({ storage, backupKey, statePath, source: src, workers: 1 });
    await storage.close();

    // The cloud drive is unmounted: the folder is empty.
    await rename(where, join(dir, 'cloud-unmounted'));
    await mkdir(where);
    storage = await openStorage(where);
    const gone = (e: unknown): boolean =>
      hasCode(e, 'NO_REPOSITORY') && /seen snapshot 2/.test(e.message);
    await assert.rejects(
      backup({ storage, backupKey, statePath, source: src, workers: 1, init: true }),
      gone,
    );
    await assert.rejects(initRepository({ storage, backupKey, statePath }), gone);
    await assert.rejects(listSnapshots({ storage, backupKey, statePath }), gone);
    await assert.rejects(
      restore({ storage, backupKey, statePath, target: join(dir, 'out'), workers: 1 }),
      gone,
    );
    assert.deepEqual(await readdir(where), [], 'a refused command wrote to the empty drive');

    // Someone (another device, a script) made a new repository there: not ours.
    const other = await initRepository({
      rollbackProtection: false,
      storage,
      backupKey: generateBackupKey(),
    });
    assert.equal(other.created, true);
    // (Its key is not ours: WRONG_KEY, before anything is read.)
    await assert.rejects(
      backup({ storage, backupKey, statePath, source: src, workers: 1 }),
      (e: unknown) => hasCode(e, 'WRONG_KEY'),
    );
    // Same key, new repository: still not ours.
    await rm(where, { recursive: true });
    await mkdir(where);
    await initRepository({ rollbackProtection: false, storage, backupKey }); // no state: nothing to compare with
    await assert.rejects(
      listSnapshots({ storage, backupKey, statePath }),
      (e: unknown) =>
        hasCode(e, 'ROLLBACK') && /not the one this device backed up to/.test(e.message),
    );
    await storage.close();

    // The drive is mounted again: everything works as before.
    await rm(where, { recursive: true });
    await rename(join(dir, 'cloud-unmounted'), where);
    storage = await openStorage(where);
    assert.equal((await listSnapshots({ storage, backupKey, statePath })).length, 2);
    await storage.close();

    // The user really wants a new repository at an empty place: only on purpose.
    await rename(where, join(dir, 'cloud-old'));
    await mkdir(where);
    storage = await openStorage(where);
    await assert.rejects(initRepository({ storage, backupKey, statePath }), gone);
    const r = await initRepository({ storage, backupKey, statePath }, { replaceMissing: true });
    assert.equal(r.created, true);
    const b = await backup({ storage, backupKey, statePath, source: src, workers: 1 });
    assert.equal(b.seq, 1);
    await storage.close();
  });
});
