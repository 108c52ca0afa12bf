import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasCode, MissingObjectError, UnavailableError } from '#sdk/errors.js';
import { openStorage } from '#sdk/storage/node/open.js';
import { S3Storage, type S3StorageOptions } from '#sdk/storage/node/s3.js';
import { withRetry } from '#sdk/storage/retry.js';
import { assertBytes, randomData, runStorageConformance } from './conformance.js';
import { startS3Proxy, startS3Server, type S3TestServer } from './s3-server.js';

const MiB = 1024 * 1024;

let server: S3TestServer;
let counter = 0;

function s3(overrides: Partial<S3StorageOptions> = {}): S3Storage {
  counter += 1;
  return new S3Storage({
    bucket: server.bucket,
    prefix: `t${counter}-${randomBytes(4).toString('hex')}`,
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: server.credentials,
    timeoutMs: 15_000,
    ...overrides,
  });
}

before(async () => {
  server = await startS3Server();
});
after(() => server?.stop());

runStorageConformance(
  's3 (s3rver)',
  async () => ({ storage: s3({ listPageSize: 50 }), cleanup: async () => undefined }),
  { manyCount: 300 },
);

describe('S3Storage', () => {
  it('uploads a 12 MiB object in 5 MiB parts and reads it back byte-exact', async () => {
    const proxy = await startS3Proxy(server.port);
    const s = s3({ endpoint: proxy.endpoint, multipartThreshold: 5 * MiB, partSize: 5 * MiB });
    try {
      const data = randomData(12 * MiB);
      await s.put('packs/multi', data);
      const parts = proxy.requests.filter((r) => r.method === 'PUT' && /partNumber=/.test(r.url));
      assert.equal(parts.length, 3, 'three parts: 5 + 5 + 2 MiB');
      assert.ok(
        proxy.requests.some((r) => r.method === 'POST' && /uploads/.test(r.url)),
        'create',
      );
      assert.ok(
        proxy.requests.some((r) => r.method === 'POST' && /uploadId=/.test(r.url)),
        'complete',
      );
      assertBytes(await s.get('packs/multi'), data, 'multipart object');
      assert.deepEqual(await s.stat('packs/multi'), { size: 12 * MiB });
      // A range across the first part boundary.
      assertBytes(
        await s.getRange('packs/multi', 5 * MiB - 10, 20),
        data.subarray(5 * MiB - 10, 5 * MiB + 10),
      );
      const small = randomData(5 * MiB);
      const before = proxy.requests.length;
      await s.put('packs/single', small);
      assert.deepEqual(
        proxy.requests.slice(before).map((r) => r.method),
        ['PUT'],
        'at the threshold: one PutObject',
      );
    } finally {
      await s.close();
      await proxy.close();
    }
  });

  it('cleanupTemp: a server without ListMultipartUploads has nothing to clean; other failures surface', async () => {
    // s3rver answers GET ?uploads with 501 NotImplemented: 0 aborted, no error.
    const plain = s3();
    try {
      assert.equal(await plain.cleanupTemp(0), 0);
    } finally {
      await plain.close();
    }
    // A 500 on the same request is not "not implemented": prune must see it.
    const proxy = await startS3Proxy(server.port);
    const s = s3({ endpoint: proxy.endpoint });
    try {
      proxy.set((r) =>
        r.method === 'GET' && /[?&]uploads/.test(r.url)
          ? { status: 500, code: 'InternalError' }
          : 'pass',
      );
      await assert.rejects(s.cleanupTemp(0), UnavailableError);
      assert.ok(
        proxy.requests.some((r) => /[?&]uploads/.test(r.url)),
        'list uploads was sent',
      );
    } finally {
      await s.close();
      await proxy.close();
    }
  });

  it('aborts a multipart upload whose part fails and stores nothing', async () => {
    const proxy = await startS3Proxy(server.port);
    const s = s3({
      endpoint: proxy.endpoint,
      multipartThreshold: 5 * MiB,
      partSize: 5 * MiB,
      multipartConcurrency: 1,
    });
    try {
      proxy.set((r) =>
        r.method === 'PUT' && /partNumber=2/.test(r.url)
          ? { status: 500, code: 'InternalError' }
          : 'pass',
      );
      await assert.rejects(s.put('packs/failed', randomData(11 * MiB)), UnavailableError);
      assert.ok(
        proxy.requests.some((r) => r.method === 'DELETE' && /uploadId=/.test(r.url)),
        'abort sent',
      );
      assert.equal(
        proxy.requests.filter((r) => /partNumber=3/.test(r.url)).length,
        0,
        'no part after the failure',
      );
      assert.equal(await s.stat('packs/failed'), undefined);
    } finally {
      await s.close();
      await proxy.close();
    }
  });

  it('maps 5xx and throttling to UNAVAILABLE, and withRetry recovers from them', async () => {
    const proxy = await startS3Proxy(server.port);
    const raw = s3({ endpoint: proxy.endpoint });
    try {
      await raw.put('config', new Uint8Array([1, 2, 3]));
      proxy.set((_r, i) =>
        i % 2 === 0 ? { status: 503, code: 'SlowDown' } : { status: 500, code: 'InternalError' },
      );
      await assert.rejects(raw.get('config'), (e: unknown) => {
        assert.ok(e instanceof UnavailableError);
        assert.match(e.message, /SlowDown|InternalError/);
        return true;
      });
      const failUntil = proxy.requests.length + 3;
      proxy.set((_r, i) => (i < failUntil ? { status: 503, code: 'SlowDown' } : 'pass'));
      const retries: number[] = [];
      const s = withRetry(raw, {
        attempts: 5,
        baseDelayMs: 10,
        onRetry: (r) => retries.push(r.attempt),
      });
      assert.deepEqual(await s.get('config'), new Uint8Array([1, 2, 3]));
      assert.deepEqual(retries, [1, 2, 3]);
    } finally {
      await raw.close();
      await proxy.close();
    }
  });

  it('fails fast with UNAVAILABLE when the server is silent (timeout, no hang)', async () => {
    const proxy = await startS3Proxy(server.port);
    proxy.set(() => 'hang');
    const s = s3({ endpoint: proxy.endpoint, timeoutMs: 800 });
    try {
      for (const op of [
        () => s.get('config'),
        () => s.put('config', randomData(10)),
        () => s.stat('config'),
      ]) {
        const started = Date.now();
        await assert.rejects(op(), /did not answer in 800 ms/);
        const elapsed = Date.now() - started;
        assert.ok(elapsed < 3000, `took ${elapsed} ms`);
      }
      proxy.set(() => 'stall-body');
      const started = Date.now();
      await assert.rejects(s.get('config'), (e: unknown) => hasCode(e, 'UNAVAILABLE'));
      await assert.rejects(s.getRange('config', 0, 100), (e: unknown) => hasCode(e, 'UNAVAILABLE'));
      assert.ok(Date.now() - started < 5000, 'a stalled body does not hang');
    } finally {
      await s.close();
      await proxy.close();
    }
  });

  it('reports a stopped server as UNAVAILABLE quickly, and withRetry recovers when it returns', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bv-s3-restart-'));
    let own = await startS3Server({ directory: dir, setEnv: false });
    const opts = {
      bucket: own.bucket,
      endpoint: own.endpoint,
      forcePathStyle: true,
      region: own.region,
      credentials: own.credentials,
      timeoutMs: 2000,
    };
    const raw = new S3Storage({ ...opts, prefix: 'restart' });
    try {
      const data = randomData(1000);
      await raw.put('snapshots/0001', data);
      await own.stop();

      const started = Date.now();
      await assert.rejects(raw.get('snapshots/0001'), (e: unknown) => {
        assert.ok(hasCode(e, 'UNAVAILABLE'), String(e));
        assert.match((e as Error).message, /ECONNREFUSED/);
        return true;
      });
      assert.ok(Date.now() - started < 2000, 'connection refused is reported at once');

      let retried = 0;
      const s = withRetry(raw, {
        attempts: 40,
        baseDelayMs: 100,
        maxDelayMs: 250,
        onRetry: () => {
          retried += 1;
        },
      });
      const pending = s.get('snapshots/0001');
      await sleep(600);
      own = await startS3Server({ directory: dir, port: own.port, setEnv: false });
      assertBytes(await pending, data, 'read after the server came back');
      assert.ok(retried >= 1, 'the first attempts failed');
    } finally {
      await raw.close();
      await own.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tells a missing object from a missing bucket and from refused credentials', async () => {
    const s = s3();
    const noBucket = s3({ bucket: 'no-such-bucket' });
    const badKey = s3({ credentials: { accessKeyId: 'WRONG', secretAccessKey: 'hunter2-secret' } });
    try {
      await assert.rejects(s.get('config'), MissingObjectError);
      await assert.rejects(noBucket.put('config', randomData(1)), (e: unknown) =>
        hasCode(e, 'NOT_FOUND'),
      );
      await assert.rejects(badKey.get('config'), (e: unknown) => {
        assert.ok(hasCode(e, 'FORBIDDEN'), String(e));
        assert.doesNotMatch(e.message, /hunter2/);
        return true;
      });
    } finally {
      await Promise.all([s.close(), noBucket.close(), badKey.close()]);
    }
  });

  it('lists more than one page and skips foreign keys under the prefix', async () => {
    const prefix = `paged-${randomBytes(4).toString('hex')}`;
    const s = s3({ listPageSize: 7, prefix });
    const client = new S3Client({
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: server.credentials,
    });
    try {
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          s.put(`data/${String(i).padStart(2, '0')}`, randomData(i)),
        ),
      );
      // Written by something else: not valid object names, so not part of the repository.
      for (const key of [
        `${prefix}/data/Foreign`,
        `${prefix}/data/x y`,
        `${prefix}-other/data/1`,
      ]) {
        await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: key, Body: 'x' }));
      }
      const found = new Map<string, number>();
      for await (const e of s.list('data/')) found.set(e.name, e.size);
      assert.equal(found.size, 30);
      assert.equal(found.get('data/29'), 29);
      assert.equal([...found.keys()].filter((n) => !/^data\/\d\d$/.test(n)).length, 0);
    } finally {
      client.destroy();
      await s.close();
    }
  });

  it('works end to end through openStorage with credentials from the environment', async () => {
    const storage = await openStorage(server.url('via-open'));
    try {
      assert.equal(storage.location, `s3://${server.bucket}/via-open?endpoint=${server.endpoint}`);
      assert.doesNotMatch(storage.location, /S3RVER/);
      const data = randomData(2048);
      await storage.put('config', data);
      assertBytes(await storage.get('config'), data);
      const names: string[] = [];
      for await (const e of storage.list('')) names.push(e.name);
      assert.deepEqual(names, ['config']);
    } finally {
      await storage.close();
    }
  });
});
