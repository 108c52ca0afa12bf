/**
 * Metadata at the edges of what a snapshot holds: mtimes beyond the format's i64
 * nanoseconds (after 2262-04-11, possible on ext4, XFS and Btrfs), and symlink targets
 * that are not UTF-8. Each is either restored exactly or named in the backup's warnings —
 * never silently restored as something else.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import {
  lstat,
  mkdir,
  readFile,
  readdir,
  readlink,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, restore } from '#sdk/backup/index.js';
import { ByteWriter } from '#sdk/format/bytes.js';
import { removeDir, tempDir, freshAccess } from './helpers.js';

/** The latest time a snapshot can hold: 2^63 - 1 ns after the epoch (2262-04-11). */
const I64_MAX = 2n ** 63n - 1n;

describe('metadata a snapshot cannot hold as is', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('bv-edge-meta-');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('the tree encoder never wraps an i64 around', () => {
    assert.throws(() => new ByteWriter().i64(I64_MAX + 1n), RangeError);
    assert.throws(() => new ByteWriter().i64(-(2n ** 63n) - 1n), RangeError);
    assert.equal(new ByteWriter().i64(I64_MAX).finish().length, 8);
  });

  it('an mtime after 2262 is kept as the latest time a snapshot holds, with a warning — never wrapped to 1677', async (t) => {
    const src = join(dir, 'future');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'sub', 'far.txt'), 'from the future');
    await writeFile(join(src, 'near.txt'), 'from 2100');
    const year2300 = Date.UTC(2300, 0, 1) / 1000;
    await utimes(join(src, 'sub', 'far.txt'), year2300, year2300);
    await utimes(join(src, 'near.txt'), Date.UTC(2100, 0, 1) / 1000, Date.UTC(2100, 0, 1) / 1000);
    await utimes(join(src, 'sub'), year2300, year2300);
    const set = (await lstat(join(src, 'sub', 'far.txt'), { bigint: true })).mtimeNs;
    if (set <= I64_MAX) return t.skip('this file system cannot hold a time after 2262');
    const access = freshAccess();
    const r = await backup({ ...access, source: src, init: true });
    for (const p of [join(src, 'sub', 'far.txt'), join(src, 'sub')])
      assert.ok(
        r.warnings.some((w) => w.endsWith(p) && /2262/.test(w)),
        `a warning names ${p}: ${JSON.stringify(r.warnings)}`,
      );
    assert.equal(r.warnings.length, 2, JSON.stringify(r.warnings));
    const out = join(dir, 'future-out');
    await restore({ ...access, target: out });
    assert.equal(await readFile(join(out, 'sub', 'far.txt'), 'utf8'), 'from the future');
    // At the last time a snapshot can hold. Restored times are exact to the microsecond up
    // to 2106 (SPEC.md §10); in 2262 a double of seconds resolves ~2 µs.
    const us = (p: string): Promise<bigint> =>
      lstat(p, { bigint: true }).then((s) => s.mtimeNs / 1000n);
    for (const p of [join(out, 'sub', 'far.txt'), join(out, 'sub')]) {
      const d = (await us(p)) - I64_MAX / 1000n;
      assert.ok(d >= -2n && d <= 2n, `${p}: ${d} µs from 2262-04-11T23:47:16.854775Z`);
    }
    assert.equal(await us(join(out, 'near.txt')), await us(join(src, 'near.txt')));
    // The next backup of the unchanged tree is not told about a change that never was.
    const r2 = await backup({ ...access, source: src });
    assert.equal(r2.warnings.length, 2, JSON.stringify(r2.warnings));
    assert.equal(r2.partial, false);
    assert.deepEqual((await readdir(out)).sort(), ['near.txt', 'sub']);
  });

  it('a symlink whose target is not UTF-8 is skipped and named (partial), never restored pointing elsewhere', async () => {
    const src = join(dir, 'links');
    await mkdir(src);
    await writeFile(join(src, 'caf\u00e9.txt'), 'utf-8 name');
    await symlink(Buffer.from('caf\xe9.txt', 'latin1'), join(src, 'latin1-link'));
    await symlink('caf\u00e9.txt', join(src, 'utf8-link'));
    const access = freshAccess();
    const r = await backup({ ...access, source: src, init: true });
    assert.equal(r.partial, true);
    assert.equal(r.filesSkipped, 1);
    assert.ok(
      r.warnings.some(
        (w) => w.endsWith(join(src, 'latin1-link')) && /caf\\xe9\.txt/.test(w) && /UTF-8/.test(w),
      ),
      JSON.stringify(r.warnings),
    );
    const out = join(dir, 'links-out');
    await restore({ ...access, target: out });
    assert.deepEqual((await readdir(out)).sort(), ['caf\u00e9.txt', 'utf8-link']);
    assert.equal(await readlink(join(out, 'utf8-link')), 'caf\u00e9.txt');
  });
});
