/**
 * Restore from a local directory store: the worker threads read pack ranges from the pack
 * files themselves (Storage.localPath), not through getRange. These tests prove that path is
 * the one taken, and that it keeps getRange's error contract: a flipped byte is CORRUPT, a
 * truncated pack is CORRUPT, a deleted pack is MISSING_OBJECT, and the target is never
 * created by a failed restore.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, restore } from '#sdk/backup/index.js';
import { hasCode } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { withRetry } from '#sdk/storage/retry.js';
import { removeDir, tempDir } from './helpers.js';

describe('restore from a local store reads packs in the workers', () => {
  let dir: string;
  let repo: string;
  let pristine: Map<string, Buffer>;
  const key = generateBackupKey();
  const files = new Map<string, Buffer>();
  let n = 0;

  before(async () => {
    dir = await tempDir('bv-restore-local-');
    const src = join(dir, 'src');
    await mkdir(join(src, 'media'), { recursive: true });
    for (let i = 0; i < 6; i++) files.set(`media/f${i}.bin`, randomBytes(300_000 + i * 1000));
    files.set('notes.txt', Buffer.from('hello\n'.repeat(5000)));
    for (const [name, data] of files) await writeFile(join(src, name), data);
    repo = join(dir, 'repo');
    const storage = new LocalStorage(repo);
    await backup({
      init: true,
      storage,
      backupKey: key,
      statePath: join(dir, 'state.json'),
      source: src,
      workers: 2,
    });
    await storage.close();
    pristine = new Map();
    for (const name of await readdir(join(repo, 'data'), { recursive: true })) {
      if (/^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(name)) {
        pristine.set(join(repo, 'data', name), await readFile(join(repo, 'data', name)));
      }
    }
    assert.ok(pristine.size > 0, 'no pack files found');
  });
  after(async () => {
    await removeDir(dir);
  });

  async function restoreTo(): Promise<{ target: string; result: Promise<unknown> }> {
    const target = join(dir, `out${n++}`);
    const storage = withRetry(new LocalStorage(repo), { attempts: 1 });
    const result = restore({
      storage,
      backupKey: key,
      statePath: join(dir, `state-r${n}.json`),
      target,
      workers: 2,
    }).finally(() => storage.close());
    return { target, result };
  }

  async function undo(): Promise<void> {
    for (const [p, b] of pristine) await writeFile(p, b);
  }

  it('restores byte-identically with file data never read through getRange', async () => {
    const storage = new LocalStorage(repo);
    let rangeBytes = 0;
    const orig = storage.getRange.bind(storage);
    storage.getRange = (name, offset, length) => {
      rangeBytes += length;
      return orig(name, offset, length);
    };
    const target = join(dir, 'ok');
    await restore({
      storage: withRetry(storage),
      backupKey: key,
      statePath: join(dir, 'state-ok.json'),
      target,
      workers: 2,
    });
    await storage.close();
    for (const [name, data] of files) {
      assert.ok((await readFile(join(target, name))).equals(data), name);
    }
    // Only the tree blobs (a few hundred bytes) are read through getRange, for planning.
    assert.ok(rangeBytes < 16 * 1024, `${rangeBytes} bytes went through getRange`);
  });

  it('a flipped byte in any pack is CORRUPT and leaves no target', async () => {
    for (const [p, b] of pristine) {
      const bad = Buffer.from(b);
      const at = 40; // inside the first blob's ciphertext (12-byte nonce first)
      bad[at] = (bad[at] as number) ^ 0x01;
      await writeFile(p, bad);
      const { target, result } = await restoreTo();
      await assert.rejects(result, (e) => hasCode(e, 'CORRUPT'), p);
      await assert.rejects(readdir(target), /ENOENT/);
      await undo();
    }
  });

  it('a truncated pack is CORRUPT and leaves no target', async () => {
    for (const [p] of pristine) {
      await truncate(p, 100);
      const { target, result } = await restoreTo();
      await assert.rejects(result, (e) => hasCode(e, 'CORRUPT') || hasCode(e, 'MISSING_OBJECT'));
      await assert.rejects(readdir(target), /ENOENT/);
      await undo();
    }
  });

  it('a deleted pack is MISSING_OBJECT and leaves no target', async () => {
    for (const [p] of pristine) {
      await rm(p);
      const { target, result } = await restoreTo();
      await assert.rejects(result, (e) => hasCode(e, 'MISSING_OBJECT'), p);
      await assert.rejects(readdir(target), /ENOENT/);
      await undo();
    }
  });
});
