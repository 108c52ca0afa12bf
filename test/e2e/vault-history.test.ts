/**
 * Issue 15 through the real `backvault` executable and a real vault process: `backup
 * --device` records the snapshot head at the vault; a restore on a new device from a
 * rolled-back copy of the repository is refused (ROLLBACK, naming the vault's seq) unless
 * the user says so; `status` and `restore` say the account's events plainly, and a paced
 * login says when the next try is possible.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CliHarness, type CliRun } from '../cli/cli-harness.js';
import { startVaultProcess, type VaultProcess } from '../client/vault-process.js';

const PASSWORD = 'history password 42';
// Long enough that the paced login below lands inside the window on a loaded machine (the
// three wrong logins and two status runs before it take several seconds there). The test
// checks the window's length on the vault's clock, so a wide one proves as much as 3 s did.
const DELAY_S = 12;

describe('backvault CLI: vault head, events and pacing', () => {
  let h: CliHarness;
  let vault: VaultProcess;

  before(async () => {
    h = await CliHarness.create('backvault-history-');
    // Pacing as by default (3 free), with a delay a test can wait for.
    vault = await startVaultProcess({
      dataDir: h.path('vault'),
      extraArgs: ['--pacing', `3:${DELAY_S}`],
    });
    await mkdir(h.path('chat'), { recursive: true });
    await writeFile(join(h.path('chat'), 'm.txt'), 'first\n');
  });
  after(async () => {
    await vault?.stop();
    await h?.dispose();
  });

  const ok = (r: CliRun, what: string): void =>
    assert.equal(r.code, 0, `${what} failed: ${r.stderr}`);
  const restore = (target: string, repo: string, pw: string, extra: string[] = []) =>
    h.run(
      [
        'restore',
        target,
        '--repo',
        repo,
        '--password',
        '--vault',
        vault.url,
        '--account',
        'hist',
        ...extra,
      ],
      { env: { BACKVAULT_PASSWORD: pw } },
    );

  test('backup records the head; a new device refuses an older repository', async () => {
    ok(
      await h.run(
        [
          'enable',
          '--device',
          'dev',
          '--repo',
          'cloud',
          '--password',
          '--vault',
          vault.url,
          '--account',
          'hist',
        ],
        { env: { BACKVAULT_PASSWORD: PASSWORD } },
      ),
      'enable',
    );
    ok(await h.run(['backup', 'chat', '--device', 'dev']), 'backup 1');
    await cp(h.path('cloud'), h.path('cloud-rolled-back'), { recursive: true });
    await writeFile(join(h.path('chat'), 'm.txt'), 'second\n');
    const b2 = await h.run(['backup', 'chat', '--device', 'dev']);
    ok(b2, 'backup 2');
    assert.doesNotMatch(b2.stderr, /warning/);

    const refused = await restore('phone-1', 'cloud-rolled-back', PASSWORD);
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /ROLLBACK: .*seq 1.*vault recorded snapshot [0-9a-f]{8} \(seq 2\)/,
    );

    const forced = await restore('phone-2', 'cloud-rolled-back', PASSWORD, [
      '--accept-older-than-vault',
    ]);
    ok(forced, 'restore accepting an older repository');
    assert.match(forced.stdout, /warning: the repository's latest snapshot is seq 1/);

    const good = await restore('phone-3', 'cloud', PASSWORD);
    ok(good, 'restore of the current repository');
    assert.match(good.stdout, /no wrong passwords were tried since your last restore/);
  });

  test('status and restore say the events plainly; a paced login says when to try again', async () => {
    for (const pw of ['wrong one 1', 'wrong two 2', 'wrong three 3']) {
      const r = await restore('nowhere', 'cloud', pw);
      assert.equal(r.code, 3, r.stderr);
    }
    const st = await h.run(['status', '--device', 'dev']);
    ok(st, 'status');
    assert.match(
      st.stdout,
      /history: +3 wrong passwords were tried since your last restore, the last on \d{4}-\d\d-\d\d \d\d:\d\d UTC/,
    );
    assert.match(
      st.stdout,
      /wrong passwords are paced: next try after (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC/,
    );

    const sj = await h.run(['status', '--device', 'dev', '--json']);
    const { events, record } = JSON.parse(sj.stdout) as {
      events: { kind: string; outcome?: string; at: string }[];
      record: { nextTryAt?: string };
    };
    assert.deepEqual(
      events.slice(-3).map((e) => `${e.kind}:${e.outcome ?? ''}`),
      ['guess:wrong', 'guess:wrong', 'guess:pending'],
    );
    // The pacing window, as the vault keeps it: from the third wrong guess, exactly the
    // configured delay. Measured on the vault's own clock, so the window can be wide enough
    // for a loaded machine (the runs before the paced login take seconds there) and still
    // pin the delay to the millisecond; the paced login below must fall inside it, and the
    // login after it must pass within half a second of its end.
    assert.ok(record.nextTryAt, `a paced record says when: ${sj.stdout}`);
    const windowEnds = Date.parse(record.nextTryAt);
    const thirdGuess = Date.parse(events.at(-1)!.at);
    assert.equal(windowEnds - thirdGuess, DELAY_S * 1000, 'paced for exactly the delay');

    const paced = await restore('phone-4', 'cloud', PASSWORD);
    assert.notEqual(paced.code, 0);
    assert.match(
      paced.stderr,
      /RATE_LIMITED: wrong passwords are paced to protect your key: next try after (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC/,
    );

    assert.ok(Date.now() < windowEnds, 'the paced login ran inside the pacing window');
    await new Promise((r) => setTimeout(r, Math.max(0, windowEnds - Date.now()) + 500));
    const back = await restore('phone-4', 'cloud', PASSWORD);
    ok(back, 'restore after the pacing delay');
    assert.match(
      back.stdout,
      /3 wrong passwords were tried since your last restore, the last on \d{4}-\d\d-\d\d \d\d:\d\d UTC/,
    );
    const after = await h.run(['status', '--device', 'dev']);
    assert.match(after.stdout, /history: +no wrong passwords were tried since your last restore/);
  });
});
