import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliHarness, MAIN_JS, parseJsonOutput } from './cli-harness.js';
import { makeTree, treeDigest } from './tree.js';

describe('backvault CLI: Ctrl-C', () => {
  let h: CliHarness;
  let env: Record<string, string>;
  before(async () => {
    h = await CliHarness.create();
    await makeTree(h.path('chat'));
    env = { ...h.baseEnv(), BACKVAULT_KEY: (await h.run(['key', 'generate'])).stdout.trim() };
  });
  after(async () => h.dispose());

  it('SIGINT during a backup exits 130 with one line; the previous snapshot still restores', async () => {
    const repo = h.path('cloud');
    const first = await h.run(['backup', 'chat', '--init', '--repo', repo, '--json'], { env });
    assert.equal(first.code, 0, first.stderr);
    // Enough new data that the second backup is still running when the signal arrives.
    await mkdir(h.path('chat', 'Media', 'Video'), { recursive: true });
    for (let i = 0; i < 16; i++) {
      await writeFile(
        h.path('chat', 'Media', 'Video', `VID-${i}.mp4`),
        randomBytes(8 * 1024 * 1024),
      );
    }
    const child = spawn(process.execPath, [MAIN_JS, 'backup', 'chat', '--init', '--repo', repo], {
      cwd: h.dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const closed = new Promise<number | null>((resolve) =>
      child.on('close', (code) => resolve(code)),
    );
    try {
      // Wait until the backup is writing objects (new files appear in the store), then interrupt.
      const before = (await readdir(repo, { recursive: true })).length;
      const deadline = Date.now() + 20_000;
      while (
        Date.now() < deadline &&
        (await readdir(repo, { recursive: true })).length === before
      ) {
        await sleep(5);
      }
      assert.ok(child.pid !== undefined);
      process.kill(child.pid, 'SIGINT');
      const code = await closed;
      assert.equal(code, 130, `exit code; stderr: ${stderr}`);
      const lines = stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, stderr);
      assert.match(lines[0] ?? '', /^INTERRUPTED: /);
    } finally {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }
    const list = await h.run(['snapshots', '--repo', repo, '--json'], { env });
    assert.equal(list.code, 0, list.stderr);
    const { snapshots } = parseJsonOutput(list) as { snapshots: unknown[] };
    assert.equal(snapshots.length, 1, 'the interrupted backup left no snapshot');
    const r = await h.run(['restore', 'restored', '--repo', repo], { env });
    assert.equal(r.code, 0, r.stderr);
    const restored = await treeDigest(h.path('restored'));
    assert.equal(restored.has('Media/Video'), false);
    assert.equal(
      restored.get('settings.json'),
      (await treeDigest(h.path('chat'))).get('settings.json'),
    );
  });
});
