import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  CDC_MAX,
  CDC_MIN,
  SQLITE_CHUNK,
  gearTable,
  nextCut,
  scanCut,
  sqliteChunkSize,
} from '#sdk/backup/archiver/chunker.js';
import { backup, restore } from '#sdk/backup/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { assertSameTree, removeDir, tempDir, writeChatDb } from './helpers.js';

function cuts(gear: Uint32Array, data: Uint8Array): number[] {
  const out: number[] = [];
  let s = 0;
  while (s < data.length) {
    const c = nextCut(gear, data, s, data.length, true);
    assert.ok(c > 0);
    out.push(c);
    s += c;
  }
  return out;
}

describe('chunking', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await removeDir(dir);
  });

  it('detects SQLite page sizes (1 means 65536) and rejects non-SQLite headers', () => {
    const head = new Uint8Array(100);
    head.set(new TextEncoder().encode('SQLite format 3\0'));
    for (const [raw, page] of [
      [4096, 4096],
      [512, 512],
      [1, 65536],
    ] as const) {
      head[16] = raw >> 8;
      head[17] = raw & 0xff;
      assert.equal(sqliteChunkSize(head), Math.max(page, SQLITE_CHUNK));
    }
    head[16] = 0x0f;
    head[17] = 0xff; // not a power of two
    assert.equal(sqliteChunkSize(head), undefined);
    assert.equal(sqliteChunkSize(new Uint8Array(100)), undefined);
    assert.equal(sqliteChunkSize(head.subarray(0, 50)), undefined);
  });

  it('content-defined cuts respect min/max, depend on the key, and resynchronise after an insertion', () => {
    const data = randomBytes(24 * 1024 * 1024);
    const g1 = gearTable(new Uint8Array(32).fill(1));
    const g2 = gearTable(new Uint8Array(32).fill(2));
    const a = cuts(g1, data);
    assert.equal(
      a.reduce((x, y) => x + y, 0),
      data.length,
    );
    for (const c of a.slice(0, -1)) assert.ok(c >= CDC_MIN && c <= CDC_MAX, `cut ${c}`);
    assert.notDeepEqual(cuts(g2, data), a, 'the gear table is keyed');
    // Insert 100 bytes near the start: all but the first few chunks are unchanged.
    const shifted = Buffer.concat([data.subarray(0, 1000), randomBytes(100), data.subarray(1000)]);
    const b = cuts(g1, shifted);
    const tailA = new Set(a.map((_, i) => a.slice(0, i + 1).reduce((x, y) => x + y, 0)));
    const sameEnds = b
      .map((_, i) => b.slice(0, i + 1).reduce((x, y) => x + y, 0) - 100)
      .filter((e) => tailA.has(e));
    assert.ok(sameEnds.length >= a.length - 3, `${sameEnds.length} of ${a.length} boundaries kept`);
  });

  it('a window of zeros is cut exactly where the gear scan cuts it, next to any data', () => {
    // nextCut skips the scan over zeros (sparse files); the cut must not move. Windows of
    // random data with zero runs starting and ending around CDC_MIN, the zero window's cut
    // and CDC_MAX, and single non-zero bytes planted in a run. Over zeros the gear hash
    // settles at -gear[0] within 32 bytes, so a zero window is cut at CDC_MAX for nearly
    // every key; gear[0] = 0 and = -1024 (which only the easier mask after CDC_AVG accepts)
    // make tables whose zero windows cut at CDC_MIN + 1 and CDC_AVG + 1.
    const gears = [gearTable(randomBytes(32))];
    for (const g0 of [0, 0xfffffc00]) {
      const g = gearTable(randomBytes(32));
      g[0] = g0;
      gears.push(g);
    }
    const zeroCuts = gears.map((g) => scanCut(g, new Uint8Array(CDC_MAX), 0, CDC_MAX));
    assert.deepEqual(zeroCuts.slice(1), [CDC_MIN + 1, 1024 * 1024 + 1]);
    const size = CDC_MAX + CDC_MIN + 4096;
    let checked = 0;
    for (const [g, gear] of gears.entries()) {
      const z = zeroCuts[g] as number;
      const edges = [...new Set([0, CDC_MIN - 1, CDC_MIN, CDC_MIN + 1, z - 1, z, z + 1, CDC_MAX])];
      const base = randomBytes(size);
      for (const from of edges) {
        for (const to of [...edges, size]) {
          if (to <= from) continue;
          for (const plant of [-1, CDC_MIN, z - 1]) {
            const b = Uint8Array.from(base);
            b.fill(0, from, to);
            if (plant >= 0) b[plant] = 1 + (plant % 255);
            const runs: [number, boolean][] =
              plant < 0
                ? [
                    [0, true],
                    [7, false],
                  ]
                : [[0, true]];
            for (const [start, final] of runs) {
              assert.equal(
                nextCut(gear, b, start, size, final),
                scanCut(gear, b, start, size),
                `zeros ${from}..${to}, byte at ${plant}, start ${start}, zero cut ${z}`,
              );
              checked += 1;
            }
          }
        }
      }
    }
    assert.ok(checked > 300, String(checked));
  });

  it('a SQLite database that grows by a few messages stores only a few new chunks', async () => {
    const src = join(dir, 'db-src');
    await mkdir(src);
    const db = join(src, 'msgstore.db');
    writeChatDb(db, 60_000);
    await writeFile(join(src, 'photo.jpg'), randomBytes(2_000_000));
    const access = { storage: new MemoryStorage(), backupKey: generateBackupKey() };
    const r1 = await backup({
      rollbackProtection: false,
      init: true,
      ...access,
      source: src,
      workers: 2,
    });
    assert.ok(r1.bytesRead > 3_000_000, `db+photo ${r1.bytesRead}`);

    // 100 new messages in two chats touch a handful of pages (table tail, two index
    // leaves, the header page) of a ~4 MB file of 32 KiB chunks.
    writeChatDb(db, 100, 60_000, 2);
    const r2 = await backup({
      rollbackProtection: false,
      init: true,
      ...access,
      source: src,
      workers: 2,
    });
    assert.ok(r2.chunksNew >= 1 && r2.chunksNew <= 10, `chunksNew ${r2.chunksNew}`);
    assert.ok(r2.bytesNew <= 10 * SQLITE_CHUNK, `bytesNew ${r2.bytesNew}`);
    assert.ok(r2.bytesStoredNew < 200_000, `stored ${r2.bytesStoredNew}`);

    const out = join(dir, 'db-out');
    await restore({ rollbackProtection: false, ...access, target: out });
    await assertSameTree(src, out);
    const check = new Database(join(out, 'msgstore.db'), { readonly: true });
    assert.equal(
      (check.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n,
      60_100,
    );
    check.close();
  });
});
