/**
 * The CPU floor of `make bench` (bench/floor.ts) does the work it claims: every byte read,
 * compressible blocks compressed, random ones not, spread over the threads asked for.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { measureFloor } from '../../bench/floor.js';

describe('bench CPU floor', () => {
  it('reads every byte, compresses only what compresses, on N threads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-floor-'));
    try {
      await mkdir(join(dir, 'media'));
      const text = Buffer.from('hello chat message '.repeat(200_000)); // 3.8 MB, compressible
      await writeFile(join(dir, 'db.sqlite'), text);
      await writeFile(join(dir, 'media', 'a.jpg'), randomBytes(3_000_000));
      await writeFile(join(dir, 'media', 'b.jpg'), randomBytes(1234));
      const m = await measureFloor(dir, 2);
      assert.equal(m.files, 3);
      assert.equal(m.threads, 2);
      assert.equal(m.bytes, text.length + 3_000_000 + 1234);
      assert.equal(m.compressedInput, text.length);
      assert.ok(m.seconds > 0 && m.cpuSeconds > 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
