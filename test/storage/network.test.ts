/**
 * The network wrappers on their own: retry by a deadline (with its events and abort), the
 * failure classification, the bandwidth limiter measured against a real local directory,
 * and the pause gate.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DiskFullError,
  ForbiddenError,
  hasCode,
  MissingObjectError,
  NotFoundError,
  UnavailableError,
} from '#sdk/errors.js';
import { classifyStoreFailure } from '#sdk/storage/failure.js';
import { BackupControl, withGate } from '#sdk/storage/gate.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { parseRateLimit, parseRetryFor, withNetwork } from '#sdk/storage/network.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { withRetry, type StoreEvent } from '#sdk/storage/retry.js';
import type { Storage } from '#sdk/storage/storage.js';
import { ByteRateLimiter, withBandwidthLimit } from '#sdk/storage/throttle.js';
import { removeDir, tempDir } from '../backup/helpers.js';
import { runStorageConformance } from './conformance.js';
import { HeldClock } from './held.js';

const KiB = 1024;
const MiB = 1024 * KiB;

runStorageConformance('withNetwork(memory) with limits and a gate', async () => ({
  storage: withNetwork(new MemoryStorage(), {
    retryFor: '1s',
    limitUpload: 64 * 1024,
    limitDownload: 64 * 1024,
    control: new BackupControl(),
  }),
  cleanup: async () => undefined,
}));

/** A system error as Node makes them. */
function sysError(code: string): Error {
  return Object.assign(new Error(`${code}: failed`), { code, syscall: 'connect' });
}

/** A fake clock whose sleep advances it: deadlines are tested without waiting. */
function fakeTime() {
  let t = 1_700_000_000_000;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
  };
}

describe('retry by a deadline', () => {
  it('keeps trying for retryFor after the first failure, then says how long it tried', async () => {
    const inner = new MemoryStorage();
    let calls = 0;
    inner.injectFault(() => {
      calls += 1;
      return new UnavailableError('down', { cause: sysError('ECONNREFUSED') });
    });
    const time = fakeTime();
    const events: StoreEvent[] = [];
    const s = withRetry(inner, {
      retryFor: 15 * 60_000,
      now: time.now,
      sleep: time.sleep,
      onEvent: (e) => events.push(e),
    });
    await assert.rejects(s.get('config'), (e: unknown) => {
      assert.ok(hasCode(e, 'UNAVAILABLE'));
      assert.match((e as Error).message, /still unreachable after retrying for 15 min/);
      return true;
    });
    const waited = time.sleeps.reduce((a, b) => a + b, 0);
    assert.equal(waited, 15 * 60_000, 'the last try is at the deadline, not before or after');
    assert.ok(calls > 5, `far more than the old five tries: ${calls}`);
    assert.ok(Math.max(...time.sleeps) <= 15_000, 'each wait is capped');
    const first = events[0];
    assert.ok(first?.type === 'unreachable');
    assert.equal(first.reason, 'ECONNREFUSED');
    assert.equal(first.giveUpAt - first.since, 15 * 60_000);
    assert.equal(events.length, calls - 1, 'one event before every wait');
  });

  it('tells once that the store answers again, with how long it was down', async () => {
    const inner = new MemoryStorage();
    let failures = 3;
    inner.injectFault(() =>
      failures-- > 0 ? new UnavailableError('down', { cause: sysError('ECONNRESET') }) : undefined,
    );
    const time = fakeTime();
    const events: StoreEvent[] = [];
    const s = withRetry(inner, {
      now: time.now,
      sleep: time.sleep,
      onEvent: (e) => events.push(e),
    });
    await s.put('a', new Uint8Array([1]));
    await s.get('a');
    assert.deepEqual(
      events.map((e) => e.type),
      ['unreachable', 'unreachable', 'unreachable', 'reachable'],
    );
    const last = events.at(-1);
    assert.ok(last?.type === 'reachable');
    assert.equal(
      last.downForMs,
      time.sleeps.reduce((a, b) => a + b, 0),
    );
  });

  it('an answer to a request sent before the outage began does not end it', async () => {
    // Two requests in flight when the server goes down: one fails, the other's response was
    // already on its way. That answer says nothing about the store now.
    const inner = new MemoryStorage();
    await inner.put('a', new Uint8Array([2]));
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    let failures = 2;
    const store: Storage = {
      location: inner.location,
      put: (name, data) => inner.put(name, data),
      get: async (name) => {
        if (name === 'held') {
          await held;
          return new Uint8Array([1]);
        }
        if (failures-- > 0) throw new UnavailableError('down', { cause: sysError('ECONNREFUSED') });
        return inner.get(name);
      },
      getRange: (name, o, l) => inner.getRange(name, o, l),
      stat: (name) => inner.stat(name),
      list: (prefix) => inner.list(prefix),
      delete: (name) => inner.delete(name),
      close: () => inner.close(),
    };
    const time = fakeTime();
    let openGate: () => void = () => {};
    const gate = new Promise<void>((r) => (openGate = r));
    const events: StoreEvent[] = [];
    const s = withRetry(store, {
      now: time.now,
      sleep: async (ms) => {
        await time.sleep(ms);
        await gate;
      },
      onEvent: (e) => events.push(e),
    });
    const early = s.get('held');
    await time.sleep(5);
    const a = s.get('a');
    while (!events.some((e) => e.type === 'unreachable')) await new Promise(setImmediate);
    release();
    assert.deepEqual([...(await early)], [1]);
    assert.deepEqual(
      events.filter((e) => e.type === 'reachable'),
      [],
      'the answer to the request sent before did not end the outage',
    );
    openGate();
    assert.deepEqual([...(await a)], [2]);
    const up = events.filter((e) => e.type === 'reachable');
    assert.equal(up.length, 1, 'the retried request ended it');
    assert.ok(up[0]?.type === 'reachable' && up[0].downForMs > 0);
  });

  it('retryFor 0 makes one try', async () => {
    const inner = new MemoryStorage();
    let calls = 0;
    inner.injectFault(() => {
      calls += 1;
      return new UnavailableError('down');
    });
    await assert.rejects(withRetry(inner, { retryFor: 0 }).stat('x'), UnavailableError);
    assert.equal(calls, 1);
  });

  it('an AbortSignal ends the wait at once with its reason; afterwards only a delete reaches the store, once', async () => {
    const inner = new MemoryStorage();
    inner.injectFault(() => new UnavailableError('down', { cause: sysError('ECONNREFUSED') }));
    const ac = new AbortController();
    const s = withRetry(inner, {
      retryFor: 60_000,
      baseDelayMs: 20_000,
      random: () => 0.99,
      signal: ac.signal,
    });
    const pending = s.get('a');
    await sleep(100);
    const started = performance.now();
    ac.abort(new Error('stopped by the app'));
    await assert.rejects(pending, /stopped by the app/);
    assert.ok(performance.now() - started < 100, 'the wait ended at once');
    // Afterwards no new request starts, except a delete (an operation removing its lock),
    // which gets one try.
    let reached = 0;
    inner.injectFault(() => {
      reached += 1;
      return new UnavailableError('down', { cause: sysError('ECONNREFUSED') });
    });
    await assert.rejects(s.put('b', new Uint8Array([1])), /stopped by the app/);
    await assert.rejects(s.stat('b'), /stopped by the app/);
    assert.equal(reached, 0, 'no request after the abort');
    const t = performance.now();
    await assert.rejects(s.delete('b'), UnavailableError);
    assert.equal(reached, 1, 'a delete gets exactly one try');
    assert.ok(performance.now() - t < 100, 'and no wait');
  });

  it('wrapping a retrying store replaces its policy instead of nesting', async () => {
    const inner = new MemoryStorage();
    let calls = 0;
    inner.injectFault(() => {
      calls += 1;
      return new UnavailableError('down');
    });
    const once = withRetry(withRetry(inner, { attempts: 5, sleep: async () => undefined }), {
      retryFor: 0,
    });
    await assert.rejects(once.get('a'), UnavailableError);
    assert.equal(calls, 1);
  });
});

describe('failure classification', () => {
  const where = '/repo';
  it('retries connection failures, timeouts, 5xx, 408, 429 and S3 throttling', () => {
    const s3 = (status: number, Code: string) =>
      new UnavailableError('s3', {
        cause: { name: Code, Code, $metadata: { httpStatusCode: status } },
      });
    for (const [e, reason] of [
      [new UnavailableError('x', { cause: sysError('ECONNREFUSED') }), 'ECONNREFUSED'],
      [new UnavailableError('x', { cause: sysError('EIO') }), 'EIO'],
      [s3(503, 'SlowDown'), 'SlowDown, HTTP 503'],
      [s3(500, 'InternalError'), 'HTTP 500'],
      [s3(400, 'RequestTimeout'), 'RequestTimeout, HTTP 400'],
      [s3(429, 'TooManyRequests'), 'TooManyRequests, HTTP 429'],
      [new UnavailableError('S3 did not answer in 800 ms'), 'timeout'],
    ] as const) {
      assert.deepEqual(classifyStoreFailure(e, where), { retry: true, reason });
    }
  });

  it('never retries what cannot succeed, each with its own code', () => {
    const wrapped = (code: string) =>
      new UnavailableError(`cannot write x in /repo: ${code}`, { cause: sysError(code) });
    const verdict = (e: unknown) => classifyStoreFailure(e, where);
    for (const [code, expected] of [
      ['ENOSPC', 'DISK_FULL'],
      ['EDQUOT', 'DISK_FULL'],
      ['EROFS', 'READ_ONLY'],
      ['EACCES', 'PERMISSION_DENIED'],
      ['EPERM', 'PERMISSION_DENIED'],
    ] as const) {
      const v = verdict(wrapped(code));
      assert.equal(v.retry, false);
      assert.ok(!v.retry && hasCode(v.error, expected), code);
    }
    assert.ok(verdict(wrapped('ENOSPC')).retry === false);
    const full = verdict(wrapped('ENOSPC'));
    assert.ok(!full.retry && full.error instanceof DiskFullError && full.error.path === where);
    for (const e of [
      wrapped('ENOTDIR'),
      new UnavailableError('S3 could not read', {
        cause: Object.assign(new Error('Could not load credentials'), {
          name: 'CredentialsProviderError',
        }),
      }),
      wrapped('ENAMETOOLONG'),
      new ForbiddenError('S3 refused: SignatureDoesNotMatch'),
      new NotFoundError('S3 bucket does not exist: x'),
      new MissingObjectError('data/ab'),
      new TypeError('bug'),
      new UnavailableError('s3', {
        cause: { Code: 'InvalidArgument', $metadata: { httpStatusCode: 400 } },
      }),
    ]) {
      const v = verdict(e);
      assert.ok(!v.retry && v.error === e, String(e));
    }
  });
});

describe('durations and limits', () => {
  it('parses --retry-for durations', () => {
    assert.equal(parseRetryFor('0'), 0);
    assert.equal(parseRetryFor('30s'), 30_000);
    assert.equal(parseRetryFor('15m'), 900_000);
    assert.equal(parseRetryFor('1h'), 3_600_000);
    assert.equal(parseRetryFor('1h30m'), 5_400_000);
    assert.equal(parseRetryFor('250ms'), 250);
    for (const bad of ['', '15', '-1s', '1d', 'soon', '1.5h', '25h'])
      assert.throws(
        () => parseRetryFor(bad),
        (e: unknown) => hasCode(e, 'USAGE'),
        bad,
      );
    assert.equal(parseRateLimit('--limit-upload', '2048'), 2048);
    for (const bad of ['0', '-5', 'fast', '1e3', ''])
      assert.throws(
        () => parseRateLimit('--limit-upload', bad),
        (e: unknown) => hasCode(e, 'USAGE'),
        bad,
      );
  });
});

describe('bandwidth limit against a real local directory', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('bv-limit-');
  });
  after(async () => removeDir(dir));

  // Four workers share the budget, as a backup's pack uploads do. The limit's promise is the
  // upper bound, on wall time: bytes handed to put() / (last put resolved − first put
  // called). The lower bound (the limit, not something else, sets the pace) is on the time
  // the limiter held requests back (held.ts): wall time on a starved machine also counts
  // slow fsyncs and a slow CPU while the limiter had nothing to hold.
  it('holds 2 MiB/s within 10 % over a 20 MiB upload by four concurrent workers', async () => {
    const limit = 2 * MiB;
    const local = new LocalStorage(`${dir}/up`);
    const held = new HeldClock();
    const probed = Object.assign(Object.create(local) as LocalStorage, {
      put: (name: string, data: Uint8Array) => {
        held.leave();
        return local.put(name, data);
      },
    });
    const s = withBandwidthLimit(probed, { limitUpload: limit / KiB });
    const objects = Array.from({ length: 40 }, (_, i) => ({
      name: `data/${i}`,
      data: randomBytes(512 * KiB),
    }));
    const total = objects.reduce((n, o) => n + o.data.length, 0);
    assert.equal(total, 20 * MiB);
    const done: { at: number; bytes: number }[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < objects.length) {
          const o = objects[next++] as { name: string; data: Uint8Array };
          held.enter();
          await s.put(o.name, o.data);
          done.push({ at: performance.now(), bytes: o.data.length });
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const rate = total / seconds;
    const { heldMs, periods } = held.result();
    const heldRate = total / (heldMs / 1000);
    console.log(
      `# upload limit 2 MiB/s: measured ${(rate / MiB).toFixed(3)} MiB/s over ${seconds.toFixed(2)} s, ` +
        `${(heldRate / MiB).toFixed(3)} MiB/s over the ${(heldMs / 1000).toFixed(2)} s the limiter held requests (${periods} busy periods)`,
    );
    assert.ok(rate <= 1.1 * limit, `measured ${(rate / MiB).toFixed(3)} MiB/s`);
    assert.ok(
      heldRate >= 0.9 * limit,
      `the limiter held requests too long: ${(heldRate / MiB).toFixed(3)} MiB/s while it held them`,
    );
    // Smooth, not bursty: no one-second window completes more than the budget plus one
    // object in flight.
    for (const a of done) {
      const inWindow = done
        .filter((b) => b.at >= a.at && b.at < a.at + 1000)
        .reduce((n, b) => n + b.bytes, 0);
      assert.ok(inWindow <= limit + 512 * KiB, `${inWindow} bytes in one second`);
    }
  });

  it('limits downloads the same way (8 MiB at 4 MiB/s, ranges and whole objects)', async () => {
    const local = new LocalStorage(`${dir}/down`);
    for (let i = 0; i < 4; i++) await local.put(`data/${i}`, randomBytes(2 * MiB));
    // Held by the limiter: a range from the call until the store is asked (it pays first),
    // a whole object from its arrival until the caller has it (it pays after). Each request
    // is its own busy period, ending with a timer that a starved machine fires late (~15 ms
    // with 4 busy loops on the test's core): four 2 MiB requests, not eight of 1 MiB, keep
    // that lateness to a few percent of the time held.
    const held = new HeldClock();
    const probed = Object.assign(Object.create(local) as LocalStorage, {
      getRange: (name: string, offset: number, length: number) => {
        held.leave();
        return local.getRange(name, offset, length);
      },
      get: async (name: string) => {
        const data = await local.get(name);
        held.enter();
        return data;
      },
    });
    const s = withBandwidthLimit(probed, { limitDownload: 4096 });
    assert.equal(s.localPath, undefined, 'a limited download never bypasses the store');
    const started = performance.now();
    for (let i = 0; i < 2; i++) {
      held.enter();
      await s.getRange(`data/${i}`, 0, 2 * MiB);
    }
    for (let i = 2; i < 4; i++) {
      await s.get(`data/${i}`);
      held.leave();
    }
    // The last whole-object get pays after it arrived, so the window includes its wait.
    const rate = (8 * MiB) / ((performance.now() - started) / 1000);
    const { heldMs } = held.result();
    const heldRate = (8 * MiB) / (heldMs / 1000);
    console.log(
      `# download limit 4 MiB/s: measured ${(rate / MiB).toFixed(3)} MiB/s, ` +
        `${(heldRate / MiB).toFixed(3)} MiB/s over the ${(heldMs / 1000).toFixed(2)} s the limiter held requests`,
    );
    assert.ok(rate <= 1.1 * 4 * MiB, `measured ${(rate / MiB).toFixed(3)} MiB/s`);
    assert.ok(
      heldRate >= 0.9 * 4 * MiB,
      `the limiter held requests too long: ${(heldRate / MiB).toFixed(3)} MiB/s while it held them`,
    );
  });

  it('a shared limiter gives idle time no credit', async () => {
    const limiter = new ByteRateLimiter(MiB);
    await sleep(300);
    const started = performance.now();
    await limiter.take(256 * KiB);
    assert.ok(performance.now() - started >= 240, 'no burst after idling');
  });
});

describe('pause gate', () => {
  it('holds every request while paused; in-flight ones finish; resume lets them go', async () => {
    const inner = new MemoryStorage();
    let reached = 0;
    inner.injectFault(() => {
      reached += 1;
      return undefined;
    });
    const control = new BackupControl();
    const s = withGate(inner, control);
    await s.put('a', new Uint8Array([1]));
    assert.equal(reached, 1);
    control.pause();
    assert.equal(control.paused, true);
    const waiting = [s.put('b', new Uint8Array([2])), s.get('a'), s.stat('a'), s.delete('x')];
    await sleep(300);
    assert.equal(reached, 1, 'nothing reached the store while paused');
    control.resume();
    await Promise.all(waiting);
    assert.equal(reached, 5);
  });

  it('an abort ends a wait at the gate', async () => {
    const control = new BackupControl();
    control.pause();
    const ac = new AbortController();
    const s = withGate(new MemoryStorage(), control, ac.signal);
    const pending = s.get('a');
    ac.abort(new Error('app gave up'));
    await assert.rejects(pending, /app gave up/);
  });
});
