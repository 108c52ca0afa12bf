import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { hasCode, UsageError } from '#sdk/errors.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { openStorage, parseS3Url } from '#sdk/storage/node/open.js';

describe('openStorage', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bv-open-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('opens plain relative and absolute paths and file:// URLs as local directories', async () => {
    const rel = await openStorage('some/repo');
    assert.ok(rel instanceof LocalStorage);
    assert.equal(rel.location, path.resolve('some/repo'));
    const abs = await openStorage(path.join(dir, 'r1'));
    assert.equal(abs.location, path.join(dir, 'r1'));
    const url = await openStorage(pathToFileURL(path.join(dir, 'r 2')).href);
    assert.ok(url instanceof LocalStorage);
    assert.equal(url.location, path.join(dir, 'r 2'));
    await url.put('config', new Uint8Array([1]));
    assert.deepEqual(
      await (
        await openStorage(`file://localhost${path.join(dir, 'r 2').replaceAll(' ', '%20')}`)
      ).get('config'),
      new Uint8Array([1]),
    );
  });

  it('rejects a path that is a file, an empty location and unknown schemes', async () => {
    const file = path.join(dir, 'file');
    await writeFile(file, 'x');
    await assert.rejects(openStorage(file), UsageError);
    await assert.rejects(openStorage(''), UsageError);
    await assert.rejects(openStorage('  '), UsageError);
    await assert.rejects(openStorage('ftp://host/x'), /unsupported repository URL scheme "ftp:"/);
    await assert.rejects(openStorage('file://otherhost/x'), UsageError);
    await assert.rejects(openStorage('file:///x?y=1'), UsageError);
  });

  it('opens s3:// URLs wrapped in retries, without credentials in the location', async () => {
    const s = await openStorage(
      's3://my-bucket/backups/alice?endpoint=http://127.0.0.1:9000&region=eu-west-1',
    );
    assert.equal(s.location, 's3://my-bucket/backups/alice?endpoint=http://127.0.0.1:9000');
    await s.close();
    const aws = await openStorage('s3://my-bucket');
    assert.equal(aws.location, 's3://my-bucket');
    await aws.close();
  });

  it('parses s3:// URLs', () => {
    assert.deepEqual(
      parseS3Url('s3://b-1.x/p/q/?endpoint=http://127.0.0.1:9000&region=us-east-1'),
      {
        bucket: 'b-1.x',
        prefix: 'p/q',
        endpoint: 'http://127.0.0.1:9000',
        forcePathStyle: true,
        region: 'us-east-1',
      },
    );
    assert.deepEqual(parseS3Url('s3://bucket'), { bucket: 'bucket', prefix: '' });
    assert.deepEqual(
      parseS3Url('s3://bucket/x?endpoint=https://s3.example.com&forcePathStyle=false'),
      {
        bucket: 'bucket',
        prefix: 'x',
        endpoint: 'https://s3.example.com',
        forcePathStyle: false,
      },
    );
  });

  it('rejects malformed s3:// URLs with UsageError and never echoes credentials', async () => {
    const bad = [
      's3://AKIAEXAMPLE:hunter2-secret@bucket/x',
      's3://bucket/x?endpoint=http://AKIA:hunter2-secret@127.0.0.1:9000',
      's3://Upper/x',
      's3://b/x',
      's3://bucket:9000/x',
      's3:///x',
      's3://bucket/x?foo=1',
      's3://bucket/x?endpoint=ftp://h',
      's3://bucket/x?endpoint=not-a-url',
      's3://bucket/x?region=EU%20WEST',
      's3://bucket/x?forcePathStyle=yes',
      's3://bucket/a%2F..%2Fb',
      's3://bucket/x#frag',
    ];
    for (const url of bad) {
      await assert.rejects(
        openStorage(url),
        (e: unknown) => {
          assert.ok(hasCode(e, 'USAGE'), `${url}: ${String(e)}`);
          assert.doesNotMatch(e.message, /hunter2/);
          return true;
        },
        url,
      );
    }
  });
});
