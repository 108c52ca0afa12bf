/**
 * A restore is durable before it moves into place: where one syncfs is as strong as an fsync
 * per file (Linux ≥ 5.8, a local disk file system), files of 256 KiB or more are fsynced as
 * they finish and one syncfs covers the rest; elsewhere each file and directory is synced;
 * with `durable: false` (the restore drill's scratch restore) nothing is. The restorer's calls
 * are recorded through a wrapper around the real Node files (every call still reaches the
 * disk).
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { release } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  backup,
  installedPlatform,
  restore,
  verify,
  type EnginePlatform,
} from '#sdk/backup/index.js';
import type { EngineFiles, TargetFiles } from '#sdk/backup/platform/types.js';
import { kernelAtLeast, syncError, syncFileSystem } from '#sdk/backup/node/syncfs.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { assertSameTree, removeDir, tempDir } from './helpers.js';

interface Calls {
  bulk: number;
  finishes: (boolean | undefined)[];
  syncs: string[];
}

/**
 * The Node files, recording the durability calls. `bulk`: replace syncFileSystem (undefined:
 * drop it, as a platform without one).
 */
function recording(
  calls: Calls,
  bulk: ((path: string, n: number) => Promise<boolean>) | 'real' | undefined,
): EngineFiles {
  const node = (installedPlatform() as EnginePlatform).files;
  const out: TargetFiles = {
    ...node.out,
    async create(path) {
      const f = await node.out.create(path);
      return {
        handle: f.handle,
        close: () => f.close(),
        finish: (mode, mtimeNs, sync) => {
          calls.finishes.push(sync);
          return f.finish(mode, mtimeNs, sync);
        },
      };
    },
    sync: (path) => {
      calls.syncs.push(path);
      return node.out.sync(path);
    },
  };
  if (bulk === undefined) delete out.syncFileSystem;
  else
    out.syncFileSystem = (path) => {
      calls.bulk += 1;
      return bulk === 'real' ? syncFileSystem(path) : bulk(path, calls.bulk);
    };
  return { ...node, out };
}

describe('a restore is durable before it moves into place', () => {
  let dir: string;
  const storage = new MemoryStorage();
  const key = generateBackupKey();
  const src = (): string => join(dir, 'src');
  const common = () => ({ storage, backupKey: key, rollbackProtection: false as const });
  const fresh = (): Calls => ({ bulk: 0, finishes: [], syncs: [] });

  before(async () => {
    dir = await tempDir('bv-durable-');
    for (let d = 0; d < 4; d++) {
      await mkdir(join(src(), `d${d}`, 'sub'), { recursive: true });
      for (let f = 0; f < 10; f++)
        await writeFile(
          join(src(), `d${d}`, f % 2 ? 'sub' : '', `f${f}.bin`),
          randomBytes(1000 + f),
        );
    }
    // At least 256 KiB: synced as it finishes, its writeback overlapping the rest.
    await writeFile(join(src(), 'd0', 'big.bin'), randomBytes(300 * 1024));
    await backup({ ...common(), source: src(), init: true });
  });
  after(async () => removeDir(dir));

  it('syncs the file system at the start and at the end, and only large files alone', async () => {
    assert.equal(await syncFileSystem(dir), true, 'Linux ≥ 5.8 on a local disk: syncfs');
    const calls = fresh();
    const target = join(dir, 'bulk');
    await restore({ ...common(), target, files: recording(calls, 'real') });
    await assertSameTree(src(), target);
    assert.equal(calls.bulk, 2);
    assert.equal(calls.finishes.length, 41);
    assert.equal(calls.finishes.filter((s) => s === false).length, 40, 'no fsync per small file');
    assert.equal(calls.finishes.filter((s) => s === true).length, 1, 'the large file alone');
    // What is still synced alone is outside the restored tree (the target's parent after
    // the rename): no folder of the tree.
    assert.deepEqual(calls.syncs, [dir]);
  });

  it('syncs each file and folder where the platform has no syncFileSystem', async () => {
    const calls = fresh();
    const target = join(dir, 'each');
    await restore({ ...common(), target, files: recording(calls, undefined) });
    await assertSameTree(src(), target);
    assert.equal(calls.finishes.length, 41);
    assert.ok(calls.finishes.every((s) => s === true));
    // 4 folders, 4 `sub` folders and the root.
    assert.ok(calls.syncs.filter((p) => p.includes('root')).length >= 9, calls.syncs.join(', '));
  });

  it('syncs each file and folder where syncFileSystem says it cannot', async () => {
    const calls = fresh();
    const target = join(dir, 'cannot');
    await restore({ ...common(), target, files: recording(calls, async () => false) });
    await assertSameTree(src(), target);
    assert.equal(calls.bulk, 1, 'asked once');
    assert.ok(calls.finishes.every((s) => s === true));
  });

  it('syncs nothing with durable: false, and the restore drill (verify) asks for that', async () => {
    const calls = fresh();
    const target = join(dir, 'scratch');
    await restore({ ...common(), target, durable: false, files: recording(calls, 'real') });
    await assertSameTree(src(), target);
    assert.equal(calls.bulk, 0);
    assert.equal(calls.finishes.length, 41);
    assert.ok(calls.finishes.every((s) => s === false));
    assert.deepEqual(calls.syncs, [dir], 'only the parent, after the rename');

    const drill = fresh();
    const r = await verify({ ...common(), tempDir: dir, files: recording(drill, 'real') });
    assert.equal(r.ok, true);
    assert.equal(drill.bulk, 0);
    assert.equal(drill.finishes.length, 41);
    assert.ok(drill.finishes.every((s) => s === false));
  });

  it('moves nothing into place when the final sync reports a write error', async () => {
    const calls = fresh();
    const target = join(dir, 'eio');
    const failing = async (path: string, n: number): Promise<boolean> => {
      if (n === 1) return syncFileSystem(path);
      throw Object.assign(new Error('could not make the restored files durable: EIO'), {
        code: 'EIO',
      });
    };
    await assert.rejects(restore({ ...common(), target, files: recording(calls, failing) }), {
      message: /could not make the restored files durable/,
    });
    assert.equal(calls.bulk, 2);
    const left = (await readdir(dir)).filter((n) => n.includes('eio'));
    assert.deepEqual(left, [], 'neither the target nor a temporary folder');
  });
});

describe('syncFileSystem', () => {
  it('declines a file system where syncfs is not known to be as strong as fsync', async () => {
    // procfs: not a local disk file system (and nothing there to sync).
    assert.equal(await syncFileSystem('/proc'), false);
  });

  it('rejects, with the errno sync names, when the file system reports an error', async () => {
    const dir = await tempDir('bv-syncfs-');
    const server = createServer();
    try {
      assert.equal(await syncFileSystem(dir), true, 'finds the binary');
      // A socket: statfs sees ext4, but `sync -f` cannot open it (ENXIO) and exits 1.
      const sock = join(dir, 'sock');
      await new Promise<void>((resolve) => server.listen(sock, resolve));
      await assert.rejects(syncFileSystem(sock), (e: NodeJS.ErrnoException) => {
        assert.match(e.message, /^could not make the restored files durable: .*sock/);
        assert.equal(e.code, 'EIO');
        assert.equal(e.syscall, 'syncfs');
        return true;
      });
    } finally {
      server.close();
      await removeDir(dir);
    }
  });

  it("maps the text of sync's error to its errno", () => {
    const at = '/x';
    const code = (text: string): unknown =>
      (syncError(`sync: error syncing '/x': ${text}`, at) as NodeJS.ErrnoException).code;
    assert.equal(code('No space left on device'), 'ENOSPC');
    assert.equal(code('Disk quota exceeded'), 'EDQUOT');
    assert.equal(code('Read-only file system'), 'EROFS');
    assert.equal(code('Input/output error'), 'EIO');
    assert.equal(code('Something else'), 'EIO');
  });

  it('reads the kernel version', () => {
    assert.equal(kernelAtLeast('6.1.0-18-amd64', 5, 8), true);
    assert.equal(kernelAtLeast('5.8.0', 5, 8), true);
    assert.equal(kernelAtLeast('5.7.19', 5, 8), false);
    assert.equal(kernelAtLeast('4.19.0', 5, 8), false);
    assert.equal(kernelAtLeast('10.0', 5, 8), true);
    assert.equal(kernelAtLeast('weird', 5, 8), false);
    assert.equal(kernelAtLeast(release(), 5, 8), true, 'this machine');
  });
});
