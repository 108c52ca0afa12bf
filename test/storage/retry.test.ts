import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MissingObjectError, UnavailableError, UsageError } from '#sdk/errors.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { withRetry, type RetryOptions } from '#sdk/storage/retry.js';
import type { Storage } from '#sdk/storage/storage.js';
import { runStorageConformance } from './conformance.js';

runStorageConformance('withRetry(memory)', async () => ({
  storage: withRetry(new MemoryStorage()),
  cleanup: async () => undefined,
}));

/** Options that record the waits instead of waiting. */
function recorded(extra: RetryOptions = {}): RetryOptions & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...extra,
  };
}

/** A memory store whose operations fail `failures` times with `make()` first. */
function flaky(failures: number, make: () => Error = () => new UnavailableError('down')) {
  const inner = new MemoryStorage();
  let calls = 0;
  inner.injectFault(() => (++calls <= failures ? make() : undefined));
  return { inner, calls: () => calls };
}

describe('withRetry', () => {
  it('retries UnavailableError with capped exponential backoff and full jitter', async () => {
    const { inner, calls } = flaky(4);
    const opts = recorded({ attempts: 5, baseDelayMs: 100, maxDelayMs: 500, random: () => 0.999 });
    const s = withRetry(inner, opts);
    await s.put('a', new Uint8Array([1]));
    assert.equal(calls(), 5);
    assert.deepEqual(opts.delays, [99, 199, 399, 499]);
    assert.deepEqual(await inner.get('a'), new Uint8Array([1]));
  });

  it('draws each delay uniformly below the cap', async () => {
    const { inner } = flaky(3);
    const opts = recorded({ attempts: 4, baseDelayMs: 1000, random: () => 0 });
    await withRetry(inner, opts).stat('a');
    assert.deepEqual(opts.delays, [0, 0, 0]);
  });

  it('gives up after the last attempt with the UnavailableError', async () => {
    const { inner, calls } = flaky(100);
    const retries: number[] = [];
    const s = withRetry(inner, recorded({ attempts: 3, onRetry: (i) => retries.push(i.attempt) }));
    await assert.rejects(s.get('a'), UnavailableError);
    assert.equal(calls(), 3);
    assert.deepEqual(retries, [1, 2]);
  });

  it('never retries MissingObjectError or other errors', async () => {
    const missing = flaky(0);
    const opts = recorded();
    await assert.rejects(withRetry(missing.inner, opts).get('nope'), MissingObjectError);
    assert.equal(missing.calls(), 1);
    const usage = flaky(100, () => new UsageError('bad'));
    await assert.rejects(withRetry(usage.inner, opts).delete('x'), UsageError);
    assert.equal(usage.calls(), 1);
    const bug = flaky(100, () => new TypeError('bug'));
    await assert.rejects(withRetry(bug.inner, opts).getRange('x', 0, 1), TypeError);
    assert.equal(bug.calls(), 1);
    assert.deepEqual(opts.delays, []);
  });

  it('resumes a listing that fails half-way without repeating names', async () => {
    const inner = new MemoryStorage();
    for (let i = 0; i < 10; i++) await inner.put(`data/${i}`, new Uint8Array(i));
    let listings = 0;
    // The store drops the connection after 4 entries on the first two listings.
    const breaking: Storage = {
      location: inner.location,
      put: (n, d) => inner.put(n, d),
      get: (n) => inner.get(n),
      getRange: (n, o, l) => inner.getRange(n, o, l),
      stat: (n) => inner.stat(n),
      delete: (n) => inner.delete(n),
      close: () => inner.close(),
      async *list(prefix) {
        listings += 1;
        let i = 0;
        for await (const e of inner.list(prefix)) {
          if (listings <= 2 && i++ === 4) throw new UnavailableError('connection reset');
          yield e;
        }
      },
    };
    const names: string[] = [];
    for await (const e of withRetry(breaking, recorded()).list('data/')) names.push(e.name);
    assert.equal(listings, 3);
    assert.equal(names.length, 10);
    assert.equal(new Set(names).size, 10);
  });

  it('passes location and close through and validates options', async () => {
    const inner = new MemoryStorage();
    const s = withRetry(inner);
    assert.equal(s.location, inner.location);
    await s.close();
    assert.throws(() => withRetry(inner, { attempts: 0 }), RangeError);
    assert.throws(() => withRetry(inner, { baseDelayMs: -1 }), RangeError);
  });

  it('waits for real with the default sleep', async () => {
    const { inner } = flaky(1);
    const started = Date.now();
    await withRetry(inner, { baseDelayMs: 60, random: () => 0.999 }).stat('a');
    assert.ok(Date.now() - started >= 50);
  });
});
