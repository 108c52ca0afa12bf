/**
 * User journeys on a real terminal (a pty from util-linux `script`, see pty.ts): what a
 * person sees — prompts, retries, warnings, the progress bar, Ctrl-C — asserted as exact
 * screen lines, with the exit code. The vault is a real vault process; the full and the
 * read-only disks are real tmpfs mounts (root only).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startVaultProcess, type VaultProcess } from '../client/vault-process.js';
import { CliHarness, parseJsonOutput } from './cli-harness.js';
import { HAS_SCRIPT, Terminal, onTerminal } from './pty.js';
import { treeDigest } from './tree.js';

const IS_ROOT = process.getuid?.() === 0;

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function mount(dir: string, opts: string): void {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir]);
  assert.equal(r.status, 0, r.stderr.toString());
}

describe(
  'journeys on a terminal',
  { skip: HAS_SCRIPT ? false : 'util-linux `script` not installed' },
  () => {
    let h: CliHarness;
    let env: Record<string, string>;
    let key: string;
    const term = (args: string[], answers: [string | RegExp, string][] = [], extra = {}) =>
      onTerminal(args, { cwd: h.dir, env: { ...env, ...extra } }, answers);
    before(async () => {
      h = await CliHarness.create();
      env = { ...h.baseEnv(), TZ: 'UTC' };
      await mkdir(h.path('chat', 'Media'), { recursive: true });
      await writeFile(h.path('chat', 'msgstore.db'), randomBytes(64 * 1024));
      await writeFile(h.path('chat', 'Media', 'a.jpg'), randomBytes(32 * 1024));
      key = (await h.run(['key', 'generate'])).stdout.trim();
      const b = await h.run(['backup', 'chat', '--repo', 'cloud', '--init'], {
        env: { BACKVAULT_KEY: key },
      });
      assert.equal(b.code, 0, b.stderr);
    });
    after(async () => h.dispose());

    it('first contact and typos: each mistake says what to do', async () => {
      const none = await term([]);
      assert.equal(none.code, 2);
      assert.deepEqual(none.screen, [
        'USAGE: no command given — Run `backvault --help` for the list of commands, or `backvault help COMMAND`.',
      ]);
      const typo = await term(['bakup', 'chat']);
      assert.equal(typo.code, 2);
      assert.deepEqual(typo.screen, [
        'USAGE: unknown command "bakup"; did you mean `backup`? — Run `backvault --help` for the list of commands.',
      ]);
      const opt = await term(['backup', 'chat', '--repos', 'cloud']);
      assert.equal(opt.code, 2);
      assert.deepEqual(opt.screen, [
        'USAGE: unknown option --repos (did you mean --repo?) — Run `backvault help backup`.',
      ]);
      const sub = await term(['key', 'gen']);
      assert.equal(sub.code, 2);
      assert.deepEqual(sub.screen, [
        'USAGE: unknown subcommand "key gen"; did you mean `key generate`? — Run `backvault help key`.',
      ]);
      const missing = await term(['snapshots']);
      assert.equal(missing.code, 2);
      assert.deepEqual(missing.screen, [
        'USAGE: missing --repo URL (or set BACKVAULT_REPO) — Run `backvault help snapshots`.',
      ]);
      const src = await term(['backup', 'chta', '--repo', 'cloud'], [], { BACKVAULT_KEY: key });
      assert.equal(src.code, 2);
      assert.deepEqual(src.screen, [
        `NO_SOURCE: the folder to back up does not exist: ${h.path('chta')} — Give the folder to back up; check the spelling of the path.`,
      ]);
      const hh = await term(['help', 'help']);
      assert.equal(hh.code, 0);
      assert.equal(hh.screen[0], 'backvault help — show help');
      const help = await term(['--help']);
      assert.ok(
        help.screen.includes('  7    snapshot saved without some files:'),
        help.screen.join('\n'),
      );
      for (const code of ['CONFLICT', 'VAULT_MISMATCH', 'PARTIAL', 'DISK_FULL', 'INTERRUPTED']) {
        assert.ok(
          help.screen.some((l) => new RegExp(`^ {7}.*\\b${code}\\b`).test(l)),
          code,
        );
      }
    });

    it('key mode on a new device: a mistyped key is explained and asked again', async () => {
      const wrongDigit = key.slice(0, 5) + (key[5] === '0' ? '1' : '0') + key.slice(6);
      const r = await term(
        ['restore', 'new-phone', '--repo', 'cloud', '--device', 'dev-key'],
        [
          ['Backup key', `${key.slice(0, 10)}x${key.slice(11)}\r`],
          ['Backup key', `${wrongDigit}\r`],
          ['Backup key', `${key}\r`],
        ],
      );
      assert.equal(r.code, 0, r.screen.join('\n'));
      assert.deepEqual(r.screen.slice(0, 5), [
        'Backup key (64 digits, input hidden):',
        "INVALID_KEY: typed key: invalid character 'x' (U+0078) at position 11 of the backup key — type it again.",
        'Backup key (64 digits, input hidden):',
        'WRONG_KEY: this key does not open this repository — check the digits and type it again.',
        'Backup key (64 digits, input hidden):',
      ]);
      assert.match(r.screen[5] ?? '', /^restored snapshot [0-9a-f]{8} \(seq 1\) to .*new-phone$/);
      assert.equal(r.screen[6], '  2 files in 1 folder, 96.0 KiB, all verified');
      assert.ok(!r.output.includes(key.slice(0, 9)), 'the key is never echoed');
      assert.deepEqual(await treeDigest(h.path('new-phone')), await treeDigest(h.path('chat')));
      // The new device continues with its own key, without asking.
      const b = await term(['snapshots', '--device', 'dev-key']);
      assert.equal(b.code, 0, b.screen.join('\n'));
      assert.equal(b.screen.at(-1), '1 snapshot');
    });

    describe('password mode, from enable to lockout', () => {
      let vault: VaultProcess;
      const PASSWORD = 'correct horse 42';
      before(async () => {
        vault = await startVaultProcess({ dataDir: h.path('vault'), maxAttempts: 3 });
      });
      after(async () => vault.stop());
      const enableArgs = (): string[] => [
        'enable',
        '--device',
        'dev-pw',
        '--repo',
        'cloud-pw',
        '--password',
        '--vault',
        vault.url,
        '--account',
        'alice',
      ];
      const restoreArgs = (target: string): string[] => [
        'restore',
        target,
        '--repo',
        'cloud-pw',
        '--password',
        '--vault',
        vault.url,
        '--account',
        'alice',
      ];

      it('enable refuses a very common password, asks about a weak one, and checks the limit', async () => {
        const common = await term(enableArgs(), [['New vault password', 'password1\r']]);
        assert.equal(common.code, 2);
        assert.deepEqual(common.screen, [
          'New vault password (input hidden):',
          'WEAK_PASSWORD: this password is among the most common ones: anyone guessing tries it first — Choose another: a few unrelated words work well.',
        ]);
        const weak = await term(enableArgs(), [
          ['New vault password', 'hunter22\r'],
          ['Use it anyway?', 'n\r'],
        ]);
        assert.equal(weak.code, 2);
        assert.deepEqual(weak.screen.slice(1), [
          'This password is weak: it is among the first hundred million guesses. Use it anyway? [y/N] n',
          'WEAK_PASSWORD: weak password not confirmed; nothing was changed — Run the command again with a longer password (a few unrelated words).',
        ]);
        // Without a terminal a weak password needs --allow-weak.
        const scripted = await h.run([...enableArgs(), '--json'], {
          env: { BACKVAULT_PASSWORD: 'hunter22' },
        });
        assert.equal(scripted.code, 2);
        const err = parseJsonOutput(scripted).error as { code: string; hint: string };
        assert.equal(err.code, 'WEAK_PASSWORD');
        assert.match(err.hint, /--allow-weak/);
        const tooMany = await h.run([...enableArgs(), '--max-attempts', '50'], {
          env: { BACKVAULT_PASSWORD: PASSWORD },
        });
        assert.equal(tooMany.code, 2);
        assert.equal(
          tooMany.stderr,
          'USAGE: --max-attempts 50 is more than this vault allows (at most 3) — Choose a number from 1 to 3.\n',
        );
        // A vault that is down is found before a password is asked.
        const port = await closedPort();
        const down = await term([
          ...enableArgs().slice(0, 6),
          '--vault',
          `http://127.0.0.1:${port}`,
          '--account',
          'alice',
        ]);
        assert.equal(down.code, 6);
        assert.deepEqual(down.screen, [
          `UNAVAILABLE: cannot reach the vault at http://127.0.0.1:${port} — Check the network and the service, then retry.`,
        ]);
        const ok = await term(enableArgs(), [
          ['New vault password', `${PASSWORD}\r`],
          ['Type it again', `${PASSWORD}\r`],
        ]);
        assert.equal(ok.code, 0, ok.screen.join('\n'));
        assert.equal(ok.screen[2], `device set up in ${h.path('dev-pw')} (password mode)`);
        assert.ok(!ok.output.includes(PASSWORD), 'the password is never echoed');
        const b = await h.run(['backup', 'chat', '--device', 'dev-pw']);
        assert.equal(b.code, 0, b.stderr);
      });

      it('restore checks everything before a guess: target, repository, vault', async () => {
        await mkdir(h.path('occupied'));
        await writeFile(h.path('occupied', 'x'), 'x');
        const full = await term(restoreArgs('occupied'));
        assert.equal(full.code, 2);
        assert.deepEqual(full.screen, [
          `TARGET_NOT_EMPTY: restore target is not empty: ${h.path('occupied')} — Choose an empty directory or pass --force.`,
        ]);
        const noRepo = await term([
          ...restoreArgs('x1').slice(0, 2),
          '--repo',
          'nowhere',
          ...restoreArgs('x1').slice(4),
        ]);
        assert.equal(noRepo.code, 1);
        assert.match(noRepo.screen[0] ?? '', /^NO_REPOSITORY: no backvault repository at /);
        const down = await term([
          ...restoreArgs('x2').slice(0, 5),
          '--vault',
          `http://127.0.0.1:${await closedPort()}`,
          '--account',
          'alice',
        ]);
        assert.equal(down.code, 6);
        assert.equal(down.screen.length, 1, down.screen.join('\n'));
        assert.match(
          down.screen[0] ?? '',
          /^UNAVAILABLE: cannot reach the vault at http:\/\/127\.0\.0\.1:\d+ — Check the network and the service, then retry\.$/,
        );
        const s = parseJsonOutput(await h.run(['status', '--device', 'dev-pw', '--json']));
        assert.deepEqual(
          s.record,
          { state: 'active', attemptsLeft: 3, maxAttempts: 3 },
          'no guess spent',
        );
      });

      it('the prompt counts down, warns before the last attempt, and the last wrong one is LOCKED', async () => {
        const r = await term(restoreArgs('never'), [
          ['Vault password', 'wrong one 1\r'],
          ['Vault password', 'wrong two 2\r'],
          ['Vault password', 'wrong three 3\r'],
        ]);
        assert.equal(r.code, 5, r.screen.join('\n'));
        assert.deepEqual(r.screen, [
          'Vault password for alice (3 attempts left; input hidden):',
          'wrong password: 2 attempts left. Each retry is a new guess.',
          'Vault password for alice (2 attempts left; input hidden):',
          'wrong password: 1 attempt left. Each retry is a new guess.',
          'warning: this is the LAST attempt — if this password is wrong, the vault destroys the backup key for good',
          'Vault password for alice (1 attempt left; input hidden):',
          'LOCKED: wrong password, and that was the last attempt: the vault destroyed the backup key — The password can no longer recover this backup. Use the 64-digit key if you have one.',
        ]);
        // Locked is reported without asking for a password.
        const again = await term(restoreArgs('never'));
        assert.equal(again.code, 5);
        assert.deepEqual(again.screen, [
          'LOCKED: the vault destroyed the backup key of account alice after too many wrong passwords — The password can no longer recover this backup. Use the 64-digit key if you have one.',
        ]);
        const json = await h.run([...restoreArgs('never'), '--json'], {
          env: { BACKVAULT_PASSWORD: PASSWORD },
        });
        assert.equal(json.code, 5);
        assert.equal((parseJsonOutput(json).error as { code: string }).code, 'LOCKED');
      });

      it('password change keeps the limit; disable needs --yes without a terminal; enable works again', async () => {
        const c = await h.run(['password', 'change', '--device', 'dev-pw', '--json'], {
          env: { BACKVAULT_NEW_PASSWORD: 'brand new staple 7' },
        });
        assert.equal(c.code, 0, c.stderr);
        assert.equal(parseJsonOutput(c).maxAttempts, 3);
        const noYes = await h.run(['disable', '--device', 'dev-pw']);
        assert.equal(noYes.code, 2);
        assert.match(noYes.stderr, /^USAGE: disable needs --yes when it cannot ask/);
        assert.equal((await h.run(['disable', '--device', 'dev-pw', '--yes'])).code, 0);
        const re = await h.run(
          [
            'enable',
            '--device',
            'dev-pw',
            '--password',
            '--vault',
            vault.url,
            '--account',
            'alice',
            '--json',
          ],
          {
            env: { BACKVAULT_PASSWORD: PASSWORD },
          },
        );
        assert.equal(re.code, 0, re.stderr);
        assert.equal(parseJsonOutput(re).mode, 'password');
        const r = await h.run(restoreArgs('back-again'), { env: { BACKVAULT_PASSWORD: PASSWORD } });
        assert.equal(r.code, 0, r.stderr);
      });
    });

    it('--no-progress draws no bar; --quiet prints nothing on success; Ctrl-C at a prompt names the command', async () => {
      const np = await term(['backup', 'chat', '--repo', 'cloud', '--no-progress'], [], {
        BACKVAULT_KEY: key,
      });
      assert.equal(np.code, 0, np.screen.join('\n'));
      assert.ok(!np.output.includes('\x1b[2K'), 'no bar drawn');
      assert.match(np.screen[0] ?? '', /^snapshot [0-9a-f]{8} saved \(seq 2\)$/);
      const q = await term(['backup', 'chat', '--repo', 'cloud', '--quiet'], [], {
        BACKVAULT_KEY: key,
      });
      assert.equal(q.code, 0);
      assert.deepEqual(
        q.screen.filter((l) => l !== ''),
        [],
      );
      const stop = await term(['restore', 'never', '--repo', 'cloud'], [['Backup key', '\x03']]);
      assert.equal(stop.code, 130);
      assert.deepEqual(stop.screen, [
        'Backup key (64 digits, input hidden):',
        'INTERRUPTED: restore stopped by Ctrl-C before completion — Nothing was moved into place: the restore target is as it was. Run the restore again.',
      ]);
    });

    it('ls and diff on a terminal', async () => {
      const ls = await term(['ls', 'latest', 'Media', '--repo', 'cloud'], [], {
        BACKVAULT_KEY: key,
      });
      assert.equal(ls.code, 0, ls.screen.join('\n'));
      assert.match(
        ls.screen[1] ?? '',
        /^-rw-r--r-- {2}32\.0 KiB {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+00:00 {2}Media\/a\.jpg$/,
      );
      assert.equal(ls.screen[2], '1 file, no folders; 32.0 KiB');
      const d = await term(['diff', '1', 'latest', '--repo', 'cloud'], [], { BACKVAULT_KEY: key });
      assert.equal(d.code, 0);
      assert.deepEqual(d.screen.slice(2), ['no differences', '0 added, 0 removed, 0 changed']);
      // One file back, found with ls: only it is restored, and the screen says so.
      const inc = await term(
        ['restore', 'just-a', '--include', 'Media/a.jpg', '--repo', 'cloud', '--no-progress'],
        [],
        { BACKVAULT_KEY: key },
      );
      assert.equal(inc.code, 0, inc.screen.join('\n'));
      assert.match(inc.screen[0] ?? '', /^restored snapshot [0-9a-f]{8} \(seq \d+\) to .*just-a$/);
      assert.match(inc.screen[1] ?? '', /^ {2}1 file in 1 folder, 32\.0 KiB, all verified$/);
      assert.deepEqual(await readdir(h.path('just-a')), ['Media']);
      assert.deepEqual(await readdir(h.path('just-a', 'Media')), ['a.jpg']);
      const none = await term(
        ['restore', 'nothing', '--include', 'Media/b.jpg', '--repo', 'cloud'],
        [],
        {
          BACKVAULT_KEY: key,
        },
      );
      assert.equal(none.code, 1);
      assert.match(none.screen.join(' '), /^NOT_FOUND: the snapshot holds no Media\/b\.jpg/);
    });

    describe('big source: progress and Ctrl-C', () => {
      before(async () => {
        await mkdir(h.path('big'), { recursive: true });
        for (let i = 0; i < 6; i++)
          await writeFile(h.path('big', `VID-${i}.mp4`), randomBytes(8 * 1024 * 1024));
      });

      it('Ctrl-C during a backup names it, keeps the last snapshot, exit 130', async () => {
        const t = new Terminal(['backup', 'big', '--repo', 'cloud-big', '--init'], {
          cwd: h.dir,
          env: { ...env, BACKVAULT_KEY: key },
        });
        // The bar has a total, a percentage and a rate once the scan is done.
        await t.waitFor(/backup \[[#-]+\] +\d+% +[\d.]+ [KMG]?i?B \/ 48\.0 MiB +\d+\/6 files/);
        t.type('\x03');
        assert.equal(await t.exit(), 130);
        // The engine was stopped (the line it showed meanwhile was replaced by the verdict).
        assert.ok(t.output.includes('Stopping… (Ctrl-C again to quit at once)'), t.output);
        assert.deepEqual(
          t.screen().filter((l) => l !== ''),
          [
            'INTERRUPTED: backup stopped by Ctrl-C before completion — Nothing partial was committed: the last complete snapshot is as it was. Run the backup again; it reuses what was already stored.',
          ],
        );
      });

      it('restore shows a bar with its total; Ctrl-C leaves the target as it was', async () => {
        const b = await h.run(['backup', 'big', '--repo', 'cloud-big', '--init'], {
          env: { BACKVAULT_KEY: key },
        });
        assert.equal(b.code, 0, b.stderr);
        // 8 MiB/s: the 48 MiB take ~6 s, so Ctrl-C lands in the middle. Unthrottled, a
        // loaded CI machine once drew its first bar at the end (the 100 % drawn before the
        // move into place) and the Ctrl-C came after the move (clean-clone run, session 14).
        const t = new Terminal(
          ['restore', 'big-out', '--repo', 'cloud-big', '--limit-download', '8192'],
          { cwd: h.dir, env: { ...env, BACKVAULT_KEY: key } },
        );
        await t.waitFor(/restore \[[#-]+\] +\d+% +[\d.]+ [KMG]?i?B \/ 48\.0 MiB +\d+\/6 files/);
        t.type('\x03');
        assert.equal(await t.exit(), 130);
        assert.ok(t.output.includes('Stopping… (Ctrl-C again to quit at once)'), t.output);
        assert.deepEqual(
          t.screen().filter((l) => l !== ''),
          [
            'INTERRUPTED: restore stopped by Ctrl-C before completion — Nothing was moved into place: the restore target is as it was. Run the restore again.',
          ],
        );
        assert.equal((await treeDigest(h.path('big-out')).catch(() => undefined))?.size ?? 0, 0);
        // Stopped by the engine, not killed: its temporary directory is gone too.
        assert.deepEqual(
          (await readdir(h.dir)).filter((n) => n.includes('backvault-restore')),
          [],
        );
      });
    });

    describe(
      'a full disk and a read-only disk (tmpfs)',
      { skip: IS_ROOT ? false : 'needs root to mount tmpfs' },
      () => {
        const mounts: string[] = [];
        before(async () => {
          for (const d of ['full', 'ro']) {
            await mkdir(h.path(d));
            mounts.push(h.path(d));
          }
          mount(h.path('full'), 'size=48k');
          mount(h.path('ro'), 'ro,size=48k');
        });
        after(() => {
          for (const m of mounts) spawnSync('umount', [m]);
        });

        it('backup and restore to a full disk: DISK_FULL, exit 8', async () => {
          const b = await term(['backup', 'chat', '--repo', 'full/repo', '--init'], [], {
            BACKVAULT_KEY: key,
          });
          assert.equal(b.code, 8, b.screen.join('\n'));
          assert.match(
            b.screen.at(-1) ?? '',
            /^DISK_FULL: no space left on the disk holding .*full\/repo.* — Free some space or choose another disk, then run the command again: nothing incomplete was committed\.$/,
          );
          const r = await term(['restore', 'full/out', '--repo', 'cloud'], [], {
            BACKVAULT_KEY: key,
          });
          assert.equal(r.code, 8, r.screen.join('\n'));
          assert.match(
            r.screen.at(-1) ?? '',
            /^DISK_FULL: no space left on the disk holding .*full\/.* — Free some space/,
          );
        });

        it('backup and restore to a read-only disk: READ_ONLY, exit 8', async () => {
          const b = await term(['backup', 'chat', '--repo', 'ro/repo', '--init'], [], {
            BACKVAULT_KEY: key,
          });
          assert.equal(b.code, 8, b.screen.join('\n'));
          assert.match(
            b.screen.at(-1) ?? '',
            /^READ_ONLY: the disk holding .*ro\/repo.* is read-only \(.*\) — Choose a writable location, or remount the disk read-write\.$/,
          );
          const r = await term(['restore', 'ro/out', '--repo', 'cloud'], [], {
            BACKVAULT_KEY: key,
          });
          assert.equal(r.code, 8, r.screen.join('\n'));
          assert.match(r.screen.at(-1) ?? '', /^READ_ONLY: the disk holding .*ro.* is read-only/);
        });
      },
    );
  },
);
