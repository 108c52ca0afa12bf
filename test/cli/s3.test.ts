import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startS3Server } from '../storage/s3-server.js';
import { CliHarness, parseJsonOutput, stderrLines } from './cli-harness.js';
import { makeTree, treeDigest } from './tree.js';

/** A loopback port that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const address = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  assert.ok(address && typeof address === 'object');
  return address.port;
}

const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_REGION: 'us-east-1',
};

describe('backvault CLI against S3', () => {
  let h: CliHarness;
  let key: string;
  let s3: Awaited<ReturnType<typeof startS3Server>> | undefined;

  before(async () => {
    h = await CliHarness.create();
    await makeTree(h.path('chat'));
    key = (await h.run(['key', 'generate'])).stdout.trim();
  });
  after(async () => {
    await s3?.stop();
    await h.dispose();
  });

  it('an unreachable endpoint with --retry-for 0 is UNAVAILABLE at once (exit 6)', async () => {
    const port = await closedPort();
    const url = `s3://bucket/chat?endpoint=http://127.0.0.1:${port}&region=us-east-1`;
    const started = Date.now();
    const secret = 'unreachable-test-secret-7f3a';
    const r = await h.run(['backup', 'chat', '--init', '--repo', url, '--retry-for', '0'], {
      env: { ...AWS_ENV, AWS_SECRET_ACCESS_KEY: secret, BACKVAULT_KEY: key },
    });
    assert.equal(r.code, 6, r.stderr);
    const lines = stderrLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? '', /^UNAVAILABLE: /);
    assert.ok(!r.stderr.includes(secret), 'no credentials in the message');
    // No retry: one connection refused is the answer (the CLI itself starts in ~1 s).
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  });

  it('round trip through a real S3-compatible server', async () => {
    s3 = await startS3Server({ setEnv: false });
    const url = s3.url('backvault/chat');
    const env = { ...s3.env, BACKVAULT_KEY: key };
    const b = await h.run(['backup', 'chat', '--init', '--repo', url, '--json'], { env });
    assert.equal(b.code, 0, b.stderr);
    assert.equal(parseJsonOutput(b).seq, 1);
    const r = await h.run(['restore', 'restored', '--repo', url, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await treeDigest(h.path('restored')), await treeDigest(h.path('chat')));
    const c = await h.run(['check', '--repo', url, '--json'], { env });
    assert.equal(c.code, 0, c.stderr);
    assert.equal(parseJsonOutput(c).ok, true);
  });
});
