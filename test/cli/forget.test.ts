/**
 * The `forget` journey through the real executable: a dry run that lists kept and removed
 * snapshots (local times with the zone) and changes nothing, `--json` as one object, the
 * real run with `--prune`, usage errors (exit 2) that change nothing, CONFLICT (exit 1)
 * while another process holds the lock, and the device policy: default keep-last 3 after
 * each `backup --device`, `--set-policy`, and a policy that fails after a backup being a
 * warning of a successful backup.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { RepoLock } from '#sdk/backup/repository/lock.js';
import { openRepository } from '#sdk/backup/repository/repository.js';
import { parseBackupKey } from '#sdk/format/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { CliHarness, parseJsonOutput, stderrLines, type CliRun } from './cli-harness.js';
import { makeTree } from './tree.js';

function ok(r: CliRun, what = ''): void {
  assert.equal(r.code, 0, `${what} exit ${r.code}; stderr: ${r.stderr}`);
}

function failed(r: CliRun, exit: number, code: string): string {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  const lines = stderrLines(r);
  assert.equal(lines.length, 1, `one stderr line: ${r.stderr}`);
  assert.ok((lines[0] ?? '').startsWith(`${code}: `), lines[0]);
  return lines[0] ?? '';
}

interface Snap {
  id: string;
  seq: number;
  time: string;
}

describe('backvault forget', () => {
  let h: CliHarness;
  let key: string;
  let env: Record<string, string>;
  let repo: string;

  before(async () => {
    h = await CliHarness.create('backvault-forget-');
    await makeTree(h.path('chat'), 20_000);
    key = (await h.run(['key', 'generate'])).stdout.trim();
    env = { BACKVAULT_KEY: key, TZ: 'UTC' };
    repo = h.path('cloud');
    for (let i = 0; i < 4; i++) {
      await appendFile(h.path('chat', 'settings.json'), `{"n":${i}}\n`);
      ok(await h.run(['backup', 'chat', '--init', '--repo', repo], { env }), 'backup');
    }
  });
  after(async () => h.dispose());

  const snapshots = async (r = repo): Promise<Snap[]> => {
    const run = await h.run(['snapshots', '--repo', r, '--json'], { env });
    ok(run, 'snapshots');
    return (parseJsonOutput(run) as { snapshots: Snap[] }).snapshots;
  };

  it('--dry-run shows the plan in the local zone and deletes nothing', async () => {
    const before = await snapshots();
    const r = await h.run(['forget', '--repo', repo, '--keep-last', '2', '--dry-run'], {
      env: { ...env, TZ: 'Asia/Tokyo' },
    });
    ok(r);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'policy: keep the last 2 snapshots');
    assert.match(lines[1] ?? '', /^ID\s+SEQ\s+TIME \(Asia\/Tokyo\)\s+HOST\s+ACTION\s+REASONS$/);
    for (const s of before) {
      const row = lines.find((l) => l.startsWith(s.id.slice(0, 8)));
      assert.ok(row, `row of seq ${s.seq}`);
      // Tokyo is UTC+9 all year.
      const local = new Date(Date.parse(s.time) + 9 * 3600_000).toISOString();
      assert.ok(row.includes(`${local.slice(0, 10)} ${local.slice(11, 19)}`), row);
      assert.match(row, s.seq <= 2 ? /would remove\s*$/ : /keep\s+last snapshot$/);
    }
    assert.match(r.stdout, /dry run: would remove 2 snapshots and keep 2; nothing was deleted/);
    assert.deepEqual(await snapshots(), before);
  });

  it('--json prints exactly one object with the plan', async () => {
    const r = await h.run(
      ['forget', '--repo', repo, '--keep-daily', '1', '--keep-within', '1d', '--dry-run', '--json'],
      { env },
    );
    ok(r);
    const j = parseJsonOutput(r) as {
      dryRun: boolean;
      timeZone: string;
      policy: unknown;
      keep: { seq: number; reasons: string[] }[];
      remove: unknown[];
      removed: number;
    };
    assert.equal(j.dryRun, true);
    assert.equal(j.timeZone, 'UTC');
    assert.deepEqual(j.policy, { daily: 1, within: '1d' });
    // Four backups within seconds: all within 1d; the newest is also the daily one.
    assert.deepEqual(
      j.keep.map((k) => k.seq),
      [1, 2, 3, 4],
    );
    assert.deepEqual(j.keep[3]?.reasons, ['within 1d', 'daily snapshot']);
    assert.deepEqual(j.remove, []);
    assert.equal(j.removed, 0);
  });

  it('bad policies are usage errors (exit 2) and change nothing', async () => {
    const before = await snapshots();
    const cases: [string[], RegExp][] = [
      [[], /no retention policy given/],
      [['--keep-last', '0'], /keeps nothing/],
      [['--keep-daily', 'seven'], /--keep-daily needs a whole number/],
      [['--keep-weekly', '-1'], /--keep-weekly needs a value|whole number/],
      [['--keep-within', '5w'], /--keep-within: invalid duration "5w": unknown unit "w"/],
      [['--keep-last', '1', '--set-policy'], /--set-policy needs --device/],
    ];
    for (const [args, message] of cases) {
      const r = await h.run(['forget', '--repo', repo, ...args], { env });
      assert.match(failed(r, 2, 'USAGE'), message, args.join(' '));
    }
    const j = await h.run(['forget', '--repo', repo, '--keep-last', '0', '--json'], { env });
    assert.equal(j.code, 2);
    assert.equal((parseJsonOutput(j) as { error: { code: string } }).error.code, 'USAGE');
    assert.deepEqual(await snapshots(), before);
  });

  it('a wrong key is exit 3; a missing repository exit 1 (NO_REPOSITORY)', async () => {
    const other = (await h.run(['key', 'generate'])).stdout.trim();
    const wrong = await h.run(['forget', '--repo', repo, '--keep-last', '1'], {
      env: { ...env, BACKVAULT_KEY: other },
    });
    failed(wrong, 3, 'WRONG_KEY');
    const none = await h.run(['forget', '--repo', h.path('nowhere'), '--keep-last', '1'], { env });
    failed(none, 1, 'NO_REPOSITORY');
    assert.equal((await snapshots()).length, 4);
  });

  it('while another process holds the lock: CONFLICT (exit 1), nothing deleted', async () => {
    const storage = new LocalStorage(repo);
    const lock = await RepoLock.acquire(
      await openRepository({ rollbackProtection: false, storage, backupKey: parseBackupKey(key) }),
      'backup',
      true,
    );
    try {
      const r = await h.run(['forget', '--repo', repo, '--keep-last', '1'], { env });
      assert.match(failed(r, 1, 'CONFLICT'), /locked by a backup/);
      assert.equal((await snapshots()).length, 4);
    } finally {
      await lock.release();
      await storage.close();
    }
  });

  it('forget --prune removes the oldest and frees their data; check passes', async () => {
    const before = await snapshots();
    const r = await h.run(['forget', '--repo', repo, '--keep-last', '2', '--prune'], { env });
    ok(r);
    assert.match(r.stdout, /removed 2 snapshots, kept 2/);
    assert.match(r.stdout, /pruned: \d+ packs? and \d+ index(es)? deleted/);
    assert.deepEqual(
      (await snapshots()).map((s) => s.id),
      before.slice(2).map((s) => s.id),
    );
    const c = await h.run(['check', '--repo', repo], { env });
    ok(c, 'check');
    assert.match(c.stdout, /snapshots 1-2 are not in the repository/);
    const restored = await h.run(['restore', h.path('restored'), '--repo', repo], { env });
    ok(restored, 'restore');
  });

  describe('the device policy', () => {
    const dev = (): string => h.path('dev');
    const devEnv = (): Record<string, string> => ({ TZ: 'UTC' });
    const backupDevice = async (): Promise<Record<string, unknown>> => {
      await appendFile(h.path('chat', 'settings.json'), `{"t":${Date.now()}}\n`);
      const r = await h.run(['backup', 'chat', '--device', dev(), '--json'], { env: devEnv() });
      ok(r, 'backup --device');
      return parseJsonOutput(r);
    };
    const deviceSnapshots = async (): Promise<Snap[]> => {
      // (`snapshots` has no --device yet: the device's key file is a valid --key-file.)
      const run = await h.run(
        [
          'snapshots',
          '--repo',
          h.path('phone-cloud'),
          '--key-file',
          h.path('dev', 'backup-key'),
          '--json',
        ],
        { env: devEnv() },
      );
      ok(run, 'snapshots');
      return (parseJsonOutput(run) as { snapshots: Snap[] }).snapshots;
    };
    const profile = async (): Promise<Record<string, unknown>> =>
      JSON.parse(await readFile(h.path('dev', 'profile.json'), 'utf8')) as Record<string, unknown>;

    before(async () => {
      const r = await h.run(
        ['enable', '--device', dev(), '--repo', h.path('phone-cloud'), '--recovery-key', '--json'],
        { env: devEnv() },
      );
      ok(r, 'enable');
    });

    it('by default keeps the last 3 snapshots after each backup', async () => {
      for (let i = 1; i <= 5; i++) {
        const b = await backupDevice();
        assert.equal(b.seq, i);
        // The policy ran without a warning, and the gaps it leaves are not warnings either
        // (forgotten snapshots are normal; `snapshots` and `check` mention them).
        const w = b.warnings as string[];
        assert.deepEqual(w, []);
        if (i >= 4) assert.equal((b.retention as { removed: string[] }).removed.length, 1);
      }
      assert.deepEqual(
        (await deviceSnapshots()).map((s) => s.seq),
        [3, 4, 5],
      );
      assert.equal((await profile()).retention, undefined);
      // Its data was pruned too: check is clean.
      const c = await h.run(
        ['check', '--repo', h.path('phone-cloud'), '--key-file', h.path('dev', 'backup-key')],
        { env: devEnv() },
      );
      ok(c, 'check');
    });

    it('--set-policy stores a policy (and changes nothing in the repository)', async () => {
      const before = await deviceSnapshots();
      const r = await h.run(['forget', '--device', dev(), '--set-policy', '--keep-last', '1'], {
        env: devEnv(),
      });
      ok(r, 'set-policy');
      assert.match(r.stdout, /device policy saved: keep the last snapshot/);
      assert.deepEqual((await profile()).retention, { last: 1 });
      assert.deepEqual(await deviceSnapshots(), before);
      // forget --device without --keep-* uses it.
      const dry = await h.run(['forget', '--device', dev(), '--dry-run', '--json'], {
        env: devEnv(),
      });
      ok(dry, 'dry run');
      const j = parseJsonOutput(dry) as { policy: unknown; remove: unknown[] };
      assert.deepEqual(j.policy, { last: 1 });
      assert.equal(j.remove.length, 2);
      // The next backup applies it.
      await backupDevice();
      assert.deepEqual(
        (await deviceSnapshots()).map((s) => s.seq),
        [6],
      );
    });

    it('a bad --set-policy is refused and leaves the profile as it was', async () => {
      const before = await readFile(h.path('dev', 'profile.json'), 'utf8');
      const cases: [string[], RegExp][] = [
        [['--keep-last', '0'], /keeps nothing/],
        [[], /--set-policy needs the policy/],
        [['--keep-last', '2', '--dry-run'], /cannot be combined with --dry-run/],
        [['--keep-last', '2', '--prune'], /cannot be combined with --prune/],
      ];
      for (const [args, message] of cases) {
        const r = await h.run(['forget', '--device', dev(), '--set-policy', ...args], {
          env: devEnv(),
        });
        assert.match(failed(r, 2, 'USAGE'), message, args.join(' '));
      }
      assert.equal(await readFile(h.path('dev', 'profile.json'), 'utf8'), before);
    });

    it('a policy that fails after a backup is a warning; the backup is saved (exit 0)', async () => {
      const p = await profile();
      await writeFile(
        h.path('dev', 'profile.json'),
        `${JSON.stringify({ ...p, retention: { last: 0 } }, null, 2)}\n`,
        { mode: 0o600 },
      );
      const b = await backupDevice();
      assert.equal(b.seq, 7);
      const warnings = (b.warnings as string[]).filter((w) => /retention/.test(w));
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0] ?? '',
        /retention policy was not applied \(CORRUPT: device profile is invalid: retention: this retention policy keeps nothing .*the backup is saved/,
      );
      assert.deepEqual(
        (await deviceSnapshots()).map((s) => s.seq),
        [6, 7],
      );
      // Human output shows the warning; forget --device names the problem.
      const human = await h.run(['backup', 'chat', '--device', dev()], { env: devEnv() });
      ok(human, 'backup');
      assert.match(human.stdout, /warning: the device's retention policy was not applied/);
      const f = await h.run(['forget', '--device', dev()], { env: devEnv() });
      failed(f, 4, 'CORRUPT');
    });
  });
});
