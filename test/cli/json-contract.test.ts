/**
 * `--json` prints exactly one JSON object on stdout for every command, errors included,
 * wherever `--json` stands (before the command too), and for every form of help.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { COMMANDS } from '#cli/cli/commands/index.js';
import { CliHarness, parseJsonOutput } from './cli-harness.js';

describe('--json: one object on stdout, always', () => {
  let h: CliHarness;
  before(async () => {
    h = await CliHarness.create();
  });
  after(async () => h.dispose());

  for (const c of COMMANDS) {
    const name = c.path.join(' ');
    it(`${name}: a mistake and a bare call each give one JSON object`, async () => {
      const bad = await h.run([...c.path, '--bogus', '--json']);
      assert.equal(bad.code, 2, bad.stderr);
      const e = parseJsonOutput(bad).error as { code: string; hint: string };
      assert.equal(e.code, 'USAGE');
      assert.equal(e.hint, `Run \`backvault help ${name}\`.`);
      // Bare: whatever the command answers (a result or an error), it is one object.
      // A bare `vault serve` or `ui` starts a server (ui's --json is tested in test/ui).
      if (name === 'vault serve' || name === 'ui') return;
      const bare = await h.run(['--json', ...c.path], { timeoutMs: 20_000 });
      const out = parseJsonOutput(bare);
      assert.equal(bare.code === 0, !('error' in out), bare.stdout);
    });
  }

  it('an s3:// repository without credentials says so: NO_CREDENTIALS, exit 2', async () => {
    const r = await h.run(
      [
        'snapshots',
        '--repo',
        's3://bucket/chat?endpoint=http://127.0.0.1:9&region=us-east-1',
        '--json',
      ],
      { env: { BACKVAULT_KEY: '0'.repeat(64), AWS_EC2_METADATA_DISABLED: 'true' } },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(parseJsonOutput(r).error, {
      code: 'NO_CREDENTIALS',
      message: 'no S3 credentials found for s3://bucket/chat',
      hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), then run the command again.',
    });
  });

  it('vault serve on a port another process holds: PORT_IN_USE, exit 8, before starting', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      for (const workers of ['1', '2']) {
        const r = await h.run(
          [
            'vault',
            'serve',
            '--dev-auth',
            '--port',
            String(port),
            '--workers',
            workers,
            '--data',
            h.path('vd'),
            '--json',
          ],
          { timeoutMs: 20_000 },
        );
        assert.equal(r.code, 8, r.stderr);
        assert.deepEqual(parseJsonOutput(r).error, {
          code: 'PORT_IN_USE',
          message: `another process is already listening on 127.0.0.1:${port}`,
          hint: 'Stop that process, or choose another --port.',
        });
      }
    } finally {
      holder.close();
    }
  });

  it('help in every form takes --json', async () => {
    const main = parseJsonOutput(await h.run(['help', '--json']));
    assert.ok(Array.isArray(main.commands));
    assert.ok(Array.isArray(main.exitCodes));
    const one = parseJsonOutput(await h.run(['--json', 'help', 'restore']));
    assert.equal(one.command, 'restore');
    assert.ok((one.options as { name: string }[]).some((o) => o.name === '--snapshot'));
    const hh = parseJsonOutput(await h.run(['help', 'help', '--json']));
    assert.match(String(hh.help), /backvault help help/);
    const group = parseJsonOutput(await h.run(['help', 'key', '--json']));
    assert.deepEqual(group.group, 'key');
    const cmdHelp = parseJsonOutput(await h.run(['ls', '--help', '--json']));
    assert.equal(cmdHelp.command, 'ls');
  });

  it('--json before the command is the same as after it', async () => {
    const a = await h.run(['--json', 'key', 'generate']);
    assert.equal(a.code, 0);
    assert.match(String(parseJsonOutput(a).key), /^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);
    const alone = await h.run(['--json']);
    assert.equal(alone.code, 2);
    assert.equal((parseJsonOutput(alone).error as { code: string }).code, 'USAGE');
    const b = await h.run(['--json', 'snapshots']);
    assert.equal(b.code, 2);
    assert.equal((parseJsonOutput(b).error as { code: string }).code, 'USAGE');
  });
});
