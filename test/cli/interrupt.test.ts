import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startS3Proxy, startS3Server, type S3TestServer } from '../storage/s3-server.js';
import { CliHarness, MAIN_JS, parseJsonOutput } from './cli-harness.js';
import { HAS_SCRIPT, Terminal } from './pty.js';
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

/**
 * The first Ctrl-C stops the engine rather than the process, so the screen says what really
 * happened. The moments are made certain by a real S3 server behind a recording proxy that
 * holds chosen requests: a backup's lock is released (a DELETE) only after its snapshot was
 * written (the commit point), and holding that DELETE keeps the backup in its final step for
 * as long as the test needs; a prune's deletes, which an abort lets through (an aborted
 * operation must still remove its lock), keep it from stopping.
 */
describe(
  'backvault CLI: Ctrl-C on a terminal, against S3',
  { skip: HAS_SCRIPT ? false : 'util-linux `script` not installed' },
  () => {
    let h: CliHarness;
    let env: Record<string, string>;
    let s3: S3TestServer;
    let proxy: Awaited<ReturnType<typeof startS3Proxy>>;
    const repoUrl = (prefix: string): string =>
      `s3://${s3.bucket}/${prefix}?endpoint=${proxy.endpoint}&region=${s3.region}`;
    before(async () => {
      h = await CliHarness.create();
      await makeTree(h.path('chat'));
      s3 = await startS3Server({ setEnv: false });
      proxy = await startS3Proxy(s3.port);
      const key = (await h.run(['key', 'generate'])).stdout.trim();
      env = { ...h.baseEnv(), ...s3.env, BACKVAULT_KEY: key };
    });
    after(async () => {
      proxy.set(() => 'pass');
      await proxy.close();
      await s3.stop();
      await h.dispose();
    });

    it('a Ctrl-C after the snapshot was written reports the backup as done, exit 0', async () => {
      let release = (): void => {};
      const held = new Promise<void>((r) => (release = r));
      const from = proxy.requests.length;
      const committed = (): boolean =>
        proxy.requests
          .slice(from)
          .some((r) => r.method === 'PUT' && /\/late\/snapshots\//.test(r.url));
      // The lock's release, once the snapshot is written: the backup's last storage request.
      proxy.set((r) =>
        r.method === 'DELETE' && /\/late\/locks\//.test(r.url) && committed()
          ? { hold: held }
          : 'pass',
      );
      const t = new Terminal(['backup', 'chat', '--init', '--repo', repoUrl('late')], {
        cwd: h.dir,
        env,
      });
      try {
        const deadline = Date.now() + 30_000;
        while (
          !proxy.requests
            .slice(from)
            .some((r) => r.method === 'DELETE' && /\/late\/locks\//.test(r.url) && committed())
        ) {
          assert.ok(Date.now() < deadline, `the backup never released its lock:\n${t.output}`);
          await sleep(10);
        }
        // The snapshot exists: a Ctrl-C now must not say that nothing was committed.
        t.type('\x03');
        // The first Ctrl-C stops the operation; the process waits for its outcome.
        await t.waitFor('Stopping… (Ctrl-C again to quit at once)');
      } finally {
        release();
      }
      assert.equal(await t.exit(), 0, t.screen().join('\n'));
      const screen = t.screen().filter((l) => l !== '');
      assert.equal(screen[0], 'Ctrl-C came after the backup was complete; it was kept.');
      assert.match(screen[1] ?? '', /^created repository; snapshot [0-9a-f]{8} saved \(seq 1\)$/);
      assert.ok(!screen.some((l) => l.startsWith('INTERRUPTED')), screen.join('\n'));
      proxy.set(() => 'pass');
      const list = await h.run(['snapshots', '--repo', repoUrl('late'), '--json'], { env });
      assert.equal(list.code, 0, list.stderr);
      assert.equal((parseJsonOutput(list) as { snapshots: unknown[] }).snapshots.length, 1);
    });

    it('--json, no terminal: a SIGINT after the snapshot was written gives the result object, exit 0', async () => {
      let release = (): void => {};
      const held = new Promise<void>((r) => (release = r));
      const from = proxy.requests.length;
      const seen = (method: string, what: RegExp): boolean =>
        proxy.requests.slice(from).some((r) => r.method === method && what.test(r.url));
      const committed = (): boolean => seen('PUT', /\/json\/snapshots\//);
      proxy.set((r) =>
        r.method === 'DELETE' && /\/json\/locks\//.test(r.url) && committed()
          ? { hold: held }
          : 'pass',
      );
      const child = spawn(
        process.execPath,
        [MAIN_JS, 'backup', 'chat', '--init', '--repo', repoUrl('json'), '--json'],
        { cwd: h.dir, env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const closed = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      try {
        const deadline = Date.now() + 30_000;
        while (!(committed() && seen('DELETE', /\/json\/locks\//))) {
          assert.ok(Date.now() < deadline, `the backup never released its lock: ${stderr}`);
          await sleep(10);
        }
        assert.ok(child.pid !== undefined);
        process.kill(child.pid, 'SIGINT');
        // Not a terminal: no "Stopping…" line; the process waits for the outcome.
        await sleep(300);
        assert.equal(child.exitCode, null, 'still running after the first SIGINT');
      } finally {
        release();
      }
      assert.equal(await closed, 0, stderr);
      assert.equal(stderr, 'Ctrl-C came after the backup was complete; it was kept.\n');
      const r = parseJsonOutput({ code: 0, signal: null, stdout, stderr });
      assert.equal(r.seq, 1);
      assert.equal(r.error, undefined);
    });

    it('a second Ctrl-C in the last step of a backup exits at once, saying the snapshot is kept', async () => {
      let release = (): void => {};
      const held = new Promise<void>((r) => (release = r));
      const from = proxy.requests.length;
      const seen = (method: string, what: RegExp): boolean =>
        proxy.requests.slice(from).some((r) => r.method === method && what.test(r.url));
      const committed = (): boolean => seen('PUT', /\/twice\/snapshots\//);
      proxy.set((r) =>
        r.method === 'DELETE' && /\/twice\/locks\//.test(r.url) && committed()
          ? { hold: held }
          : 'pass',
      );
      const url = repoUrl('twice');
      const t = new Terminal(['backup', 'chat', '--init', '--repo', url], { cwd: h.dir, env });
      try {
        const deadline = Date.now() + 30_000;
        while (!(committed() && seen('DELETE', /\/twice\/locks\//))) {
          assert.ok(Date.now() < deadline, `the backup never released its lock:\n${t.output}`);
          await sleep(10);
        }
        t.type('\x03');
        await t.waitFor('Stopping… (Ctrl-C again to quit at once)');
        const pressed = Date.now();
        t.type('\x03');
        assert.equal(await t.exit(), 130);
        assert.ok(Date.now() - pressed < 5000, `took ${Date.now() - pressed} ms`);
      } finally {
        release();
      }
      assert.deepEqual(
        t.screen().filter((l) => l !== ''),
        [
          'INTERRUPTED: backup was complete when Ctrl-C stopped it — The new snapshot is kept; only the steps after it (e.g. retention, --verify) did not finish.',
        ],
      );
      proxy.set(() => 'pass');
      const list = await h.run(['snapshots', '--repo', url, '--json'], { env });
      assert.equal(list.code, 0, list.stderr);
      assert.equal((parseJsonOutput(list) as { snapshots: unknown[] }).snapshots.length, 1);
    });

    it('a Ctrl-C after the backup, during its --verify, exits at once saying the snapshot is kept', async () => {
      const url = repoUrl('drill');
      const from = proxy.requests.length;
      const released = (): boolean =>
        proxy.requests
          .slice(from)
          .some((r) => r.method === 'DELETE' && /\/drill\/locks\//.test(r.url));
      // Once the backup released its lock (it is complete), the drill's requests hang.
      proxy.set((r) => (/\/drill\//.test(r.url) && released() ? 'hang' : 'pass'));
      const t = new Terminal(['backup', 'chat', '--init', '--verify', '--repo', url], {
        cwd: h.dir,
        env,
      });
      const deadline = Date.now() + 30_000;
      let heldAt = -1;
      while (heldAt < 0) {
        assert.ok(Date.now() < deadline, `the drill never started:\n${t.output}`);
        await sleep(10);
        const all = proxy.requests.slice(from);
        const lock = all.findIndex((r) => r.method === 'DELETE' && /\/drill\/locks\//.test(r.url));
        if (lock >= 0 && all.length > lock + 1) heldAt = lock + 1;
      }
      t.type('\x03');
      assert.equal(await t.exit(), 130);
      assert.equal(
        t
          .screen()
          .filter((l) => l !== '')
          .at(-1),
        'INTERRUPTED: backup was complete when Ctrl-C stopped it — The new snapshot is kept; only the steps after it (e.g. retention, --verify) did not finish.',
      );
      proxy.set(() => 'pass');
      const list = await h.run(['snapshots', '--repo', url, '--json'], { env });
      assert.equal((parseJsonOutput(list) as { snapshots: unknown[] }).snapshots.length, 1);
    });

    it('a second Ctrl-C exits at once while the operation does not stop', async () => {
      // Something for prune to delete: a file that only forgotten snapshots hold.
      const url = repoUrl('stuck');
      proxy.set(() => 'pass');
      assert.equal((await h.run(['backup', 'chat', '--init', '--repo', url], { env })).code, 0);
      await writeFile(h.path('chat', 'gone.bin'), randomBytes(256 * 1024));
      assert.equal((await h.run(['backup', 'chat', '--repo', url], { env })).code, 0);
      await rm(h.path('chat', 'gone.bin'));
      assert.equal((await h.run(['backup', 'chat', '--repo', url], { env })).code, 0);
      const f = await h.run(['forget', '--keep-last', '1', '--repo', url], { env });
      assert.equal(f.code, 0, f.stderr);
      // Every delete but the lock's hangs: an abort lets deletes through, so prune is stuck.
      const from = proxy.requests.length;
      proxy.set((r) =>
        r.method === 'DELETE' && /\/stuck\//.test(r.url) && !/\/locks\//.test(r.url)
          ? 'hang'
          : 'pass',
      );
      const t = new Terminal(['prune', '--repo', url], { cwd: h.dir, env });
      const deadline = Date.now() + 30_000;
      while (!proxy.requests.slice(from).some((r) => r.method === 'DELETE')) {
        assert.ok(Date.now() < deadline, `prune never deleted anything:\n${t.output}`);
        await sleep(10);
      }
      t.type('\x03');
      await t.waitFor('Stopping… (Ctrl-C again to quit at once)');
      // Well past the ~1 s an abort takes: the operation is still stuck in its delete.
      await sleep(1500);
      assert.equal(
        t
          .screen()
          .filter((l) => l !== '')
          .at(-1),
        'Stopping… (Ctrl-C again to quit at once)',
      );
      const pressed = Date.now();
      t.type('\x03');
      assert.equal(await t.exit(), 130);
      assert.ok(Date.now() - pressed < 5000, `took ${Date.now() - pressed} ms`);
      assert.deepEqual(
        t.screen().filter((l) => l !== ''),
        [
          'INTERRUPTED: prune stopped by Ctrl-C before completion — Nothing in use was deleted; run prune again to finish.',
        ],
      );
      proxy.set(() => 'pass');
    });
  },
);
