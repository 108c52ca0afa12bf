/**
 * The walk's lstats are synchronous on Node (node/files.ts: ~4 µs against ~60 µs through
 * libuv's pool), and go through the pool for good once three are slow (a network mount). A
 * walk whose awaits are all settled already must still give the event loop turns: timers,
 * progress, worker replies and an abort need them.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import type { BigIntStats } from 'node:fs';
import { lstat, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryFiles, backup } from '#sdk/backup/index.js';
import { adaptiveLstat, nodeLstat } from '#sdk/backup/node/files.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { removeDir, tempDir } from './helpers.js';

describe('lstat on the calling thread until some are slow', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('bv-lstat-');
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'f'), 'abc');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('gives what the pooled lstat gives, and errors as rejections with their code', async () => {
    const st = await nodeLstat(join(dir, 'f'));
    const ref = await lstat(join(dir, 'f'), { bigint: true });
    assert.deepEqual(
      [st.kind, st.size, st.mtimeNs, st.ctimeNs, st.ino, st.mode],
      ['file', 3n, ref.mtimeNs, ref.ctimeNs, ref.ino, Number(ref.mode) & 0o7777],
    );
    assert.equal((await nodeLstat(join(dir, 'sub'))).kind, 'dir');
    const missing = nodeLstat(join(dir, 'nope'));
    assert.ok(missing instanceof Promise, 'a failed lstat is a rejected promise, not a throw');
    await assert.rejects(missing, (e: unknown) => (e as { code?: string }).code === 'ENOENT');
  });

  it('switches to the pool for good after three calls slower than the limit', async () => {
    let clock = 0;
    const calls: string[] = [];
    const real = (p: string): BigIntStats => {
      calls.push('sync');
      clock += p.endsWith('slow') ? 11 : 1;
      return {
        mode: 0o100644n,
        size: 1n,
        mtimeNs: 0n,
        ctimeNs: 0n,
        ino: 1n,
        uid: 0n,
        isFile: () => true,
      } as unknown as BigIntStats;
    };
    const a = adaptiveLstat(
      real,
      async (p) => {
        calls.push('pool');
        return real(p);
      },
      () => clock,
      10,
    );
    await a.lstat('/a');
    await a.lstat('/1-slow');
    await a.lstat('/b');
    await a.lstat('/2-slow');
    assert.equal(a.pooled(), false, 'two slow calls (a preempted thread) keep it on this thread');
    await a.lstat('/3-slow');
    assert.equal(a.pooled(), true);
    await a.lstat('/c');
    await a.lstat('/d');
    assert.deepEqual(calls, [
      ...['sync', 'sync', 'sync', 'sync', 'sync'],
      ...['pool', 'sync', 'pool', 'sync'],
    ]);
  });
});

describe('the walk gives the event loop turns', () => {
  it('a timer keeps firing during a backup whose every await is settled already', async () => {
    // A MemoryFiles source in the calling thread: no read or lstat ever waits. Without the
    // walk's turns the 2 ms timer below did not fire once in the 0.5-0.7 s the second
    // backup took (30,000 files); with them the longest wait was 25-29 ms.
    const fs = new MemoryFiles();
    for (let i = 0; i < 30_000; i++)
      fs.writeFile(`/src/d${Math.floor(i / 500)}/f${i}`, new Uint8Array([i & 255, 1, 2]));
    const opts = {
      storage: new MemoryStorage(),
      backupKey: new Uint8Array(32).fill(7),
      rollbackProtection: false as const,
      source: '/src',
      files: fs,
    };
    await backup({ ...opts, init: true });
    let last = Date.now();
    let longest = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = Date.now();
      longest = Math.max(longest, now - last);
      last = now;
      ticks += 1;
    }, 2);
    const t0 = Date.now();
    try {
      await backup(opts);
    } finally {
      clearInterval(timer);
    }
    longest = Math.max(longest, Date.now() - last);
    const took = Date.now() - t0;
    assert.ok(ticks >= 3, `the timer fired ${ticks} times in ${took} ms`);
    // Without the turns the longest wait is the whole backup. With them it is short, but a
    // loaded 2-core CI machine (the same backup took 15 s there, not 0.6) can preempt this
    // process for 400+ ms: the bound is a tenth of the backup, at least 400 ms.
    const bound = Math.max(400, took / 10);
    assert.ok(
      longest < bound,
      `the timer waited up to ${longest} ms (backup took ${took} ms; bound ${bound} ms)`,
    );
  });
});
