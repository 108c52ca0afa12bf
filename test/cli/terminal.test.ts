/**
 * Behaviour on a real terminal: the hidden key prompt and the progress bar. A pseudo-terminal
 * comes from util-linux `script`, which runs the CLI with its stdin/stdout/stderr on a pty.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliHarness, MAIN_JS } from './cli-harness.js';
import { makeTree, treeDigest } from './tree.js';

const hasScript = spawnSync('script', ['--version']).status === 0;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Run the CLI on a pty; `typed` is sent as keystrokes once the prompt had time to appear. */
async function onTerminal(
  h: CliHarness,
  args: string[],
  env: Record<string, string>,
  typed?: string,
): Promise<{ code: number | null; output: string }> {
  const cmd = [process.execPath, MAIN_JS, ...args].map(shellQuote).join(' ');
  const child = spawn('script', ['-qec', cmd, '/dev/null'], {
    cwd: h.dir,
    env: { ...env, TERM: 'xterm', COLUMNS: '100' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  const timer = setTimeout(
    () => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'),
    40_000,
  );
  const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  if (typed !== undefined) {
    const deadline = Date.now() + 10_000;
    while (!output.includes('Backup key') && Date.now() < deadline) await sleep(20);
    child.stdin.write(typed);
  }
  // Keep stdin open until the end: closing it would end the pty session early.
  const code = await closed;
  clearTimeout(timer);
  child.stdin.destroy();
  return { code, output };
}

describe(
  'backvault CLI on a terminal',
  { skip: hasScript ? false : 'util-linux `script` not installed' },
  () => {
    let h: CliHarness;
    let key: string;
    before(async () => {
      h = await CliHarness.create();
      await makeTree(h.path('chat'), 2 * 1024 * 1024);
      key = (await h.run(['key', 'generate'])).stdout.trim();
    });
    after(async () => h.dispose());

    it('draws a progress bar on stderr and clears it', async () => {
      const r = await onTerminal(h, ['backup', 'chat', '--init', '--repo', 'cloud'], {
        ...h.baseEnv(),
        BACKVAULT_KEY: key,
      });
      assert.equal(r.code, 0, r.output);
      assert.ok(r.output.includes('\r\x1b[2K'), 'the bar was drawn and cleared');
      assert.match(r.output, /(scan|backup) .*files/);
      assert.match(r.output, /snapshot [0-9a-f]{8} saved/);
    });

    it('restore asks for the key with hidden input', async () => {
      const r = await onTerminal(
        h,
        ['restore', 'restored', '--repo', 'cloud'],
        h.baseEnv(),
        `${key}\r`,
      );
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /Backup key \(64 digits, input hidden\): /);
      assert.ok(!r.output.includes(key.slice(0, 9)), 'the key is not echoed');
      assert.deepEqual(await treeDigest(h.path('restored')), await treeDigest(h.path('chat')));
    });

    it('backup never prompts: without a key it is a usage error even on a terminal', async () => {
      const r = await onTerminal(h, ['backup', 'chat', '--init', '--repo', 'cloud'], h.baseEnv());
      assert.equal(r.code, 2, r.output);
      assert.match(r.output, /^USAGE: no backup key given/m);
    });
  },
);
