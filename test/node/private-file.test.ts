import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writePrivateFile } from '#sdk/node/private-file.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bv-private-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('replace mode writes 0600 and replaces, leaving no temporary file', () =>
  withDir(async (dir) => {
    const path = join(dir, 'state.json');
    assert.equal(await writePrivateFile(path, 'one'), true);
    assert.equal(await writePrivateFile(path, new TextEncoder().encode('two')), true);
    assert.equal(await readFile(path, 'utf8'), 'two');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['state.json']);
  }));

test('exclusive mode never replaces an existing file and says so', () =>
  withDir(async (dir) => {
    const path = join(dir, 'keys.json');
    await writeFile(path, 'theirs', { mode: 0o600 });
    assert.equal(await writePrivateFile(path, 'mine', { exclusive: true }), false);
    assert.equal(await readFile(path, 'utf8'), 'theirs');
    assert.deepEqual(await readdir(dir), ['keys.json']);
  }));

test('of many concurrent exclusive creators exactly one wins', () =>
  withDir(async (dir) => {
    const path = join(dir, 'keys.json');
    const wins = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        writePrivateFile(path, `writer ${i}`, { exclusive: true }),
      ),
    );
    assert.equal(wins.filter(Boolean).length, 1);
    assert.equal(await readFile(path, 'utf8'), `writer ${wins.indexOf(true)}`);
    assert.deepEqual(await readdir(dir), ['keys.json']);
  }));

test('a missing directory is an error, not a silent success', () =>
  withDir(async (dir) => {
    await assert.rejects(writePrivateFile(join(dir, 'nope', 'f'), 'x'), { code: 'ENOENT' });
  }));
