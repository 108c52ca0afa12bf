/**
 * The one conformance suite every Storage adapter must pass (memory, local, S3, and any
 * future one). It checks the contract written on the interface in src/storage/storage.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { hasCode, MissingObjectError } from '#sdk/errors.js';
import type { Storage } from '#sdk/storage/storage.js';

/** A fresh, empty store and how to dispose of it. */
export interface StorageFixture {
  storage: Storage;
  cleanup: () => Promise<void>;
}

/** Tuning of the suite for slow adapters. */
export interface ConformanceOptions {
  /** Size of the "large" object (default 3 MiB + 17 bytes). */
  largeSize?: number;
  /** Objects written for the many-objects listing test (default 300). */
  manyCount?: number;
}

/** Random bytes as a plain Uint8Array (not a Buffer), as the engine passes them. */
export function randomData(size: number): Uint8Array {
  return new Uint8Array(randomBytes(size));
}

/** Byte equality with a short message (never a multi-MiB diff). */
export function assertBytes(actual: Uint8Array, expected: Uint8Array, what = 'bytes'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  assert.ok(
    Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(
      Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
    ),
    `${what}: content differs`,
  );
}

async function listAll(storage: Storage, prefix: string): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  for await (const { name, size } of storage.list(prefix)) {
    assert.ok(!found.has(name), `list yielded ${name} twice`);
    found.set(name, size);
  }
  return found;
}

function isMissing(name: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof MissingObjectError, `expected MissingObjectError, got ${String(e)}`);
    assert.ok(hasCode(e, 'MISSING_OBJECT'));
    assert.equal(e.object, name);
    return true;
  };
}

const BAD_NAMES = [
  '',
  '/abs',
  'a//b',
  'a/',
  '../x',
  'a/../b',
  '.',
  '..',
  'a/./b',
  'Upper',
  'sp ace',
  'a\\b',
  'x'.repeat(513),
];

/**
 * Register the conformance tests for one adapter. `makeStorage` is called once per test
 * and must return an empty store; `cleanup` runs after the test, pass or fail.
 */
export function runStorageConformance(
  name: string,
  makeStorage: () => Promise<StorageFixture>,
  options: ConformanceOptions = {},
): void {
  const largeSize = options.largeSize ?? 3 * 1024 * 1024 + 17;
  const manyCount = options.manyCount ?? 300;

  const withStore = async (fn: (s: Storage) => Promise<void>): Promise<void> => {
    const { storage, cleanup } = await makeStorage();
    try {
      await fn(storage);
    } finally {
      await storage.close();
      await cleanup();
    }
  };

  describe(`Storage conformance: ${name}`, () => {
    it('has a location', () =>
      withStore(async (s) => {
        assert.equal(typeof s.location, 'string');
        assert.ok(s.location.length > 0);
      }));

    it('round-trips small, empty and multi-MiB objects', () =>
      withStore(async (s) => {
        const small = randomData(100);
        const empty = new Uint8Array(0);
        const large = randomData(largeSize);
        await s.put('config', small);
        await s.put('keys/empty', empty);
        await s.put('data/ab/abcdef', large);
        assertBytes(await s.get('config'), small, 'small');
        assertBytes(await s.get('keys/empty'), empty, 'empty');
        assertBytes(await s.get('data/ab/abcdef'), large, 'large');
        assert.deepEqual(await s.stat('keys/empty'), { size: 0 });
        assert.deepEqual(await s.stat('data/ab/abcdef'), { size: largeSize });
      }));

    it('accepts every name character and deep names', () =>
      withStore(async (s) => {
        const names = [
          'a',
          'a-b_c.d',
          '.hidden',
          'x/y/z/w/v/u/t',
          `deep/${'f'.repeat(200)}`,
          '0/1/2',
        ];
        for (const [i, n] of names.entries()) await s.put(n, new Uint8Array([i, 1, 2]));
        for (const [i, n] of names.entries())
          assertBytes(await s.get(n), new Uint8Array([i, 1, 2]), n);
        assert.deepEqual([...(await listAll(s, '')).keys()].sort(), [...names].sort());
      }));

    it('overwrites with longer and shorter content, and re-puts idempotently', () =>
      withStore(async (s) => {
        const a = randomData(1000);
        const b = randomData(5000);
        const c = randomData(10);
        await s.put('index/latest', a);
        await s.put('index/latest', b);
        assertBytes(await s.get('index/latest'), b, 'after longer overwrite');
        await s.put('index/latest', c);
        assertBytes(await s.get('index/latest'), c, 'after shorter overwrite');
        await s.put('index/latest', c);
        assertBytes(await s.get('index/latest'), c, 'after identical put');
        assert.deepEqual(await s.stat('index/latest'), { size: 10 });
        assert.deepEqual([...(await listAll(s, 'index/')).entries()], [['index/latest', 10]]);
      }));

    it('reads ranges: start, middle, end, across the end, beyond the end, empty', () =>
      withStore(async (s) => {
        const data = randomData(10_000);
        await s.put('packs/p1', data);
        assertBytes(await s.getRange('packs/p1', 0, 100), data.subarray(0, 100), 'start');
        assertBytes(await s.getRange('packs/p1', 4321, 1234), data.subarray(4321, 5555), 'middle');
        assertBytes(await s.getRange('packs/p1', 9_990, 10), data.subarray(9_990), 'at end');
        assertBytes(await s.getRange('packs/p1', 9_995, 100), data.subarray(9_995), 'across end');
        assertBytes(await s.getRange('packs/p1', 0, 10_000), data, 'whole');
        assert.equal((await s.getRange('packs/p1', 10_000, 10)).length, 0, 'at size');
        assert.equal((await s.getRange('packs/p1', 20_000, 10)).length, 0, 'beyond end');
        assert.equal((await s.getRange('packs/p1', 5, 0)).length, 0, 'zero length');
        await s.put('packs/empty', new Uint8Array(0));
        assert.equal((await s.getRange('packs/empty', 0, 10)).length, 0, 'empty object');
      }));

    it('reads a range of a large object', () =>
      withStore(async (s) => {
        const data = randomData(largeSize);
        await s.put('packs/big', data);
        const off = largeSize - 1_000_003;
        assertBytes(await s.getRange('packs/big', off, 500_000), data.subarray(off, off + 500_000));
      }));

    it('stats existing, empty and missing objects', () =>
      withStore(async (s) => {
        await s.put('a/b', randomData(77));
        assert.deepEqual(await s.stat('a/b'), { size: 77 });
        assert.equal(await s.stat('a/c'), undefined);
        assert.equal(await s.stat('nothing'), undefined);
        assert.equal(await s.stat('a'), undefined, 'a "directory" is not an object');
      }));

    it('lists by prefix with sizes', () =>
      withStore(async (s) => {
        await s.put('config', randomData(1));
        await s.put('data/aa/1', randomData(2));
        await s.put('data/ab/2', randomData(3));
        await s.put('data/b0/3', randomData(4));
        await s.put('database', randomData(5));
        await s.put('snapshots/0001', randomData(6));
        assert.deepEqual([...(await listAll(s, 'data/')).entries()].sort(), [
          ['data/aa/1', 2],
          ['data/ab/2', 3],
          ['data/b0/3', 4],
        ]);
        assert.deepEqual([...(await listAll(s, 'data/a')).keys()].sort(), [
          'data/aa/1',
          'data/ab/2',
        ]);
        assert.deepEqual([...(await listAll(s, 'data/aa/')).keys()], ['data/aa/1']);
        assert.deepEqual([...(await listAll(s, 'data')).keys()].sort(), [
          'data/aa/1',
          'data/ab/2',
          'data/b0/3',
          'database',
        ]);
        assert.equal((await listAll(s, '')).size, 6);
        assert.deepEqual([...(await listAll(s, 'snapshots/')).entries()], [['snapshots/0001', 6]]);
        assert.equal((await listAll(s, 'nothing/')).size, 0);
        assert.equal((await listAll(s, 'data/zz/')).size, 0);
      }));

    it(`lists many objects (${manyCount}) exactly once each`, () =>
      withStore(async (s) => {
        const expected = new Map<string, number>();
        const names = Array.from({ length: manyCount }, (_, i) => {
          const hex = i.toString(16).padStart(4, '0');
          return `data/${hex.slice(2)}/${hex}`;
        });
        for (let i = 0; i < names.length; i += 32) {
          await Promise.all(
            names.slice(i, i + 32).map(async (n, j) => {
              const size = (i + j) % 7;
              expected.set(n, size);
              await s.put(n, randomData(size));
            }),
          );
        }
        await s.put('other', randomData(1));
        const found = await listAll(s, 'data/');
        assert.equal(found.size, manyCount);
        assert.deepEqual([...found.entries()].sort(), [...expected.entries()].sort());
      }));

    it('deletes idempotently', () =>
      withStore(async (s) => {
        await s.put('data/x/1', randomData(10));
        await s.put('data/x/2', randomData(10));
        await s.delete('data/x/1');
        await assert.rejects(s.get('data/x/1'), isMissing('data/x/1'));
        assert.equal(await s.stat('data/x/1'), undefined);
        assert.deepEqual([...(await listAll(s, '')).keys()], ['data/x/2']);
        await s.delete('data/x/1');
        await s.delete('never/existed');
        assertBytes(await s.get('data/x/2'), (await s.get('data/x/2')).slice(), 'neighbour kept');
        await s.put('data/x/1', new Uint8Array([9]));
        assertBytes(await s.get('data/x/1'), new Uint8Array([9]), 'put after delete');
      }));

    it('reports a missing object as MISSING_OBJECT on get and getRange', () =>
      withStore(async (s) => {
        await assert.rejects(s.get('snapshots/none'), isMissing('snapshots/none'));
        await assert.rejects(s.getRange('snapshots/none', 0, 10), isMissing('snapshots/none'));
        await assert.rejects(s.getRange('snapshots/none', 0, 0), isMissing('snapshots/none'));
        await s.put('snapshots/other', randomData(3));
        await assert.rejects(s.get('snapshots/none'), isMissing('snapshots/none'));
        await assert.rejects(s.get('snapshots'), isMissing('snapshots'));
      }));

    it('rejects invalid names and prefixes without touching the store', () =>
      withStore(async (s) => {
        for (const bad of BAD_NAMES) {
          const label = JSON.stringify(bad.slice(0, 20));
          await assert.rejects(s.put(bad, randomData(1)), TypeError, `put ${label}`);
          await assert.rejects(s.get(bad), TypeError, `get ${label}`);
          await assert.rejects(s.getRange(bad, 0, 1), TypeError, `getRange ${label}`);
          await assert.rejects(s.stat(bad), TypeError, `stat ${label}`);
          await assert.rejects(s.delete(bad), TypeError, `delete ${label}`);
        }
        for (const bad of ['/', '../', 'a//', 'Data/']) {
          await assert.rejects(listAll(s, bad), TypeError, `list ${JSON.stringify(bad)}`);
        }
        await s.put('ok', randomData(1));
        await assert.rejects(s.getRange('ok', -1, 1), RangeError);
        await assert.rejects(s.getRange('ok', 0, -1), RangeError);
        await assert.rejects(s.getRange('ok', 0.5, 1), RangeError);
        assert.deepEqual([...(await listAll(s, '')).keys()], ['ok']);
      }));

    it('is not affected by callers mutating their buffers', () =>
      withStore(async (s) => {
        const data = randomData(4096);
        const copy = data.slice();
        await s.put('keys/k', data);
        data.fill(0);
        assertBytes(await s.get('keys/k'), copy, 'after mutating the put buffer');
        const got = await s.get('keys/k');
        got.fill(1);
        assertBytes(await s.get('keys/k'), copy, 'after mutating a get result');
        const range = await s.getRange('keys/k', 10, 100);
        range.fill(2);
        assertBytes(await s.get('keys/k'), copy, 'after mutating a range result');
        // A view into a larger buffer stores only the view.
        const backing = randomData(1000);
        await s.put('keys/view', backing.subarray(100, 200));
        assertBytes(await s.get('keys/view'), backing.slice(100, 200), 'subarray');
      }));

    it('handles concurrent puts of different names', () =>
      withStore(async (s) => {
        const objects = Array.from({ length: 40 }, (_, i) => ({
          name: `data/c${i % 4}/obj-${i}`,
          data: randomData(1 + ((i * 7919) % 70_000)),
        }));
        await Promise.all(objects.map((o) => s.put(o.name, o.data)));
        const read = await Promise.all(objects.map((o) => s.get(o.name)));
        for (const [i, o] of objects.entries())
          assertBytes(read[i] ?? new Uint8Array(), o.data, o.name);
        assert.equal((await listAll(s, 'data/')).size, objects.length);
      }));

    it('keeps one whole version under concurrent puts of the same name', () =>
      withStore(async (s) => {
        const versions = Array.from({ length: 8 }, () => randomData(50_000));
        await Promise.all(versions.map((v) => s.put('index/same', v)));
        const got = await s.get('index/same');
        assert.ok(
          versions.some((v) => Buffer.from(v).equals(Buffer.from(got))),
          'the object is exactly one of the written versions',
        );
      }));
  });
}
