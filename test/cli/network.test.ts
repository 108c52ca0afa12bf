/**
 * The CLI during an outage of a real S3 server: on a terminal the progress line says the
 * store is unreachable and counts down to the next try; without a terminal one line per
 * outage, not one per try. Flags are validated before anything is opened.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startS3Server, type S3TestServer } from '../storage/s3-server.js';
import { CliHarness, parseJsonOutput, stderrLines } from './cli-harness.js';
import { HAS_SCRIPT, Terminal } from './pty.js';
import { treeDigest } from './tree.js';

const MiB = 1024 * 1024;

describe('backvault CLI when the store goes away', () => {
  let h: CliHarness;
  let key: string;
  let server: S3TestServer;
  let s3dir: string;

  async function kill(): Promise<void> {
    try {
      process.kill(server.pid, 'SIGKILL');
    } catch {
      // already gone (an earlier test failed before restarting it)
    }
    await server.stop();
  }
  async function restart(): Promise<void> {
    server = await startS3Server({ directory: s3dir, port: server.port, setEnv: false });
  }

  before(async () => {
    h = await CliHarness.create();
    await mkdir(h.path('chat', 'media'), { recursive: true });
    for (let i = 0; i < 24; i++) {
      await writeFile(h.path('chat', 'media', `p${i}.jpg`), randomBytes(MiB));
    }
    key = (await h.run(['key', 'generate'])).stdout.trim();
    s3dir = h.path('s3');
    await mkdir(s3dir);
    server = await startS3Server({ directory: s3dir, setEnv: false });
  });
  after(async () => {
    await server.stop();
    await h.dispose();
  });

  it('rejects malformed --retry-for and --limit-upload before touching the store', async () => {
    for (const args of [
      ['--retry-for', 'soon'],
      ['--retry-for', '15'],
      ['--limit-upload', 'fast'],
      ['--limit-download', '0'],
    ]) {
      const r = await h.run(['restore', 'out', '--repo', server.url('x'), ...args], {
        env: { ...server.env, BACKVAULT_KEY: key },
      });
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        stderrLines(r)[0] ?? '',
        /^USAGE: invalid --(retry-for|limit-upload|limit-download)/,
      );
    }
  });

  it(
    'on a terminal, the progress line says the store is unreachable and when the next try is',
    { skip: HAS_SCRIPT ? false : 'util-linux `script` not installed' },
    async () => {
      const url = server.url('tty');
      // --limit-upload keeps the 24 MiB upload going for ~6 s, so the kill lands mid-backup.
      const t = new Terminal(
        ['backup', 'chat', '--init', '--repo', url, '--retry-for', '2m', '--limit-upload', '4096'],
        { cwd: h.dir, env: { ...h.baseEnv(), ...server.env, BACKVAULT_KEY: key } },
      );
      await t.waitFor(/backup \[#/, 30_000);
      await sleep(1500);
      await kill();
      // A complete redraw of the line: it ends where the next redraw (\r) or a newline starts.
      const line = new RegExp(
        `${String.fromCharCode(0x1b)}\\[2K(backup store unreachable \\(([A-Z]+)\\) — retrying (?:in \\d+ s|now), giving up at \\d\\d:\\d\\d(?::\\d\\d)?)[\\r\\n]`,
      );
      await t.waitFor(line, 30_000);
      const shown = line.exec(t.output);
      assert.match(shown?.[2] ?? '', /^(ECONNREFUSED|ECONNRESET|EPIPE)$/, shown?.[1]);
      await sleep(4000);
      await restart();
      const code = await t.exit(120_000);
      assert.equal(code, 0, t.screen().join('\n'));
      const screen = t.screen();
      assert.ok(
        screen.some((l) => /snapshot [0-9a-f]{8} saved \(seq 1\)/.test(l)),
        screen.join('\n'),
      );
      assert.ok(!screen.some((l) => l.includes('store unreachable')), 'the line is cleared');
      const r = await h.run(['restore', 'restored-tty', '--repo', url, '--json'], {
        env: { ...server.env, BACKVAULT_KEY: key },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await treeDigest(h.path('restored-tty')), await treeDigest(h.path('chat')));
    },
  );

  it('without a terminal, one line per outage (not per try), and the backup completes', async () => {
    const url = server.url('pipe');
    await kill();
    await sleep(200);
    const running = h.run(
      ['backup', 'chat', '--init', '--repo', url, '--retry-for', '2m', '--json'],
      {
        env: { ...server.env, BACKVAULT_KEY: key },
        timeoutMs: 120_000,
      },
    );
    await sleep(8000); // several tries (200 ms, 400 ms, 800 ms, … backoff) fail meanwhile
    await restart();
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseJsonOutput(r).seq, 1);
    const lines = stderrLines(r);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0] ?? '',
      /^store unreachable \(ECONNREFUSED\) — retrying until \d\d:\d\d(:\d\d)?$/,
    );
  });
});
