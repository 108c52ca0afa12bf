/**
 * makeDirectories: `mkdir -p` that cannot spin (node/make-dirs.ts). The engine's Node files,
 * the local store, the CLI's state and device folders and the vault's data folder use it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDirectories } from '#sdk/node/make-dirs.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bv-mkdirs-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('makes every missing folder with the mode, and returns the first one made', () =>
  withDir(async (dir) => {
    const deep = join(dir, 'a', 'b', 'c');
    const old = process.umask(0o022);
    try {
      assert.equal(await makeDirectories(deep, 0o700), join(dir, 'a'));
    } finally {
      process.umask(old);
    }
    for (const d of [join(dir, 'a'), join(dir, 'a', 'b'), deep]) {
      const st = await stat(d);
      assert.ok(st.isDirectory());
      assert.equal(st.mode & 0o777, 0o700, d);
    }
    assert.equal(await makeDirectories(deep, 0o700), undefined, 'nothing was missing');
  }));

test('a file on the way is an error, and nothing below it is made', () =>
  withDir(async (dir) => {
    await writeFile(join(dir, 'f'), 'x');
    await assert.rejects(makeDirectories(join(dir, 'f', 'sub', 'deeper')), (e: unknown) =>
      ['ENOTDIR', 'EEXIST'].includes(String((e as NodeJS.ErrnoException).code)),
    );
  }));

test('two callers making the same folders at once both succeed', () =>
  withDir(async (dir) => {
    const deep = join(dir, 'x', 'y', 'z');
    const made = await Promise.all([makeDirectories(deep), makeDirectories(deep)]);
    assert.ok((await stat(deep)).isDirectory());
    assert.ok(made.some((m) => m !== undefined));
  }));

test('a folder that exists but refuses children with ENOENT fails at once', async (t) => {
  // /proc/1 answers mkdir with ENOENT. Node's own recursive mkdir loops there forever.
  if (!existsSync('/proc/1')) return t.skip('no /proc');
  const started = performance.now();
  await assert.rejects(makeDirectories('/proc/1/backvault/deeper'), { code: 'ENOENT' });
  assert.ok(performance.now() - started < 2000);
});
