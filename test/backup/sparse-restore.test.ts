/**
 * Restore leaves all-zero chunks as holes (SPEC.md §10, "Holes"): a 4 GiB sparse file
 * must not come back as 4 GiB of written zeros. The bytes read back are the same, the size is
 * exact (the last chunk is always written, even when it is zeros), and the disk blocks used
 * are those of the data only. Run through the worker threads and in the calling thread.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, restore } from '#sdk/backup/index.js';
import { allZero } from '#sdk/backup/archiver/chunker.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { removeDir, tempDir } from './helpers.js';

const MiB = 1024 * 1024;

async function sha(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Write `parts` at their offsets into a new file of `size` bytes (the rest are holes). */
async function sparse(path: string, size: number, parts: [number, Buffer][]): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await fh.truncate(size);
    for (const [at, b] of parts) await fh.write(b, 0, b.length, at);
  } finally {
    await fh.close();
  }
}

describe('allZero', () => {
  it('finds a single non-zero byte at any position and alignment', () => {
    const base = new Uint8Array(80 + 8);
    for (let off = 0; off < 5; off++) {
      for (let len = 0; len <= 80; len++) {
        const view = base.subarray(off, off + len);
        assert.equal(allZero(view), true, `zeros off ${off} len ${len}`);
        for (let i = 0; i < len; i++) {
          view[i] = 0x80;
          assert.equal(allZero(view), false, `off ${off} len ${len} at ${i}`);
          view[i] = 0;
        }
      }
    }
  });
});

describe('restore leaves zero chunks as holes', () => {
  let dir: string;
  const storage = new MemoryStorage();
  const key = generateBackupKey();
  const src = (): string => join(dir, 'src');
  before(async () => {
    dir = await tempDir('bv-sparse-');
    await mkdir(src());
    // data, a 64 MiB hole, data at the end
    await sparse(join(src(), 'middle.img'), 68 * MiB + 12345, [
      [0, randomBytes(MiB)],
      [65 * MiB, randomBytes(3 * MiB + 12345)],
    ]);
    // data, then a 40 MiB hole up to the end: the last chunk is zeros
    await sparse(join(src(), 'tail.img'), 41 * MiB, [[0, randomBytes(MiB)]]);
    // nothing but zeros
    await sparse(join(src(), 'zeros.img'), 24 * MiB + 7, []);
    // zeros too short to make a hole, between data (restored byte-exact either way)
    const small = Buffer.concat([randomBytes(5000), Buffer.alloc(3000), randomBytes(100)]);
    await sparse(join(src(), 'small.bin'), small.length, [[0, small]]);
    await backup({ storage, backupKey: key, source: src(), init: true, rollbackProtection: false });
  });
  after(async () => {
    await removeDir(dir);
  });

  for (const workers of [undefined, 0]) {
    it(`restores the same bytes in a fraction of the blocks (workers: ${workers ?? 'default'})`, async () => {
      const target = join(dir, `out-${workers ?? 'd'}`);
      await restore({
        storage,
        backupKey: key,
        target,
        rollbackProtection: false,
        ...(workers === undefined ? {} : { workers }),
      });
      for (const name of ['middle.img', 'tail.img', 'zeros.img', 'small.bin']) {
        const a = await stat(join(src(), name));
        const b = await stat(join(target, name));
        assert.equal(b.size, a.size, `${name}: size`);
        assert.equal(await sha(join(target, name)), await sha(join(src(), name)), name);
      }
      // Written without holes these would use 68, 41 and 24 MiB of blocks. The data is 4, 1
      // and 0 MiB; the chunker's last chunk (≤ 4 MiB, written) and chunk edges add up to a
      // few MiB more.
      const used = async (n: string): Promise<number> =>
        ((await stat(join(target, n))).blocks * 512) / MiB;
      assert.ok(
        (await used('middle.img')) <= 12,
        `middle.img uses ${await used('middle.img')} MiB`,
      );
      assert.ok((await used('tail.img')) <= 6, `tail.img uses ${await used('tail.img')} MiB`);
      assert.ok((await used('zeros.img')) <= 5, `zeros.img uses ${await used('zeros.img')} MiB`);
    });
  }
});
