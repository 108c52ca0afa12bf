/**
 * Full flows through the real `backvault` executable against real vault processes on
 * 127.0.0.1 (one started with `backvault vault serve`, one with serve.js), each stopped by
 * its PID. The CLI talks to vault A through a recording loopback proxy, so the test sees
 * every request body; afterwards no body, no byte of the vault's data directory and no vault
 * log line may hold a password or a backup key. Uses the real Argon2id stretching.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CliHarness, parseJsonOutput, type CliRun } from '../cli/cli-harness.js';
import {
  startRecordingProxy,
  startVaultProcess,
  type RecordingProxy,
  type VaultProcess,
} from '../client/vault-process.js';

const PASSWORD = 'correct horse 42';
const NEW_PASSWORD = 'brand new staple 7';
const BOB_PASSWORD = 'bobs secret 99';

async function treeOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out[p.slice(dir.length)] = (await readFile(p)).toString('base64');
  }
  return out;
}

function firstErrorLine(r: CliRun): string {
  return r.stderr.split('\n').find((l) => /^[A-Z_]+: /.test(l)) ?? '';
}

describe('backvault CLI with a real vault', () => {
  let h: CliHarness;
  let vaultA: VaultProcess;
  let vaultB: VaultProcess | undefined;
  let proxy: RecordingProxy;
  let chat: string;
  const keys: string[] = [];

  const ok = (r: CliRun, what: string): void =>
    assert.equal(r.code, 0, `${what} failed: ${r.stderr}`);

  before(async () => {
    h = await CliHarness.create('backvault-e2e-');
    vaultA = await startVaultProcess({ dataDir: h.path('vault-a'), maxAttempts: 4, via: 'cli' });
    proxy = await startRecordingProxy(vaultA.url);
    chat = h.path('chat');
    await mkdir(join(chat, 'media'), { recursive: true });
    await writeFile(join(chat, 'messages.txt'), 'meet me at the usual place at nine\n'.repeat(50));
    await writeFile(join(chat, 'media', 'photo.jpg'), randomBytes(200_000));
  });

  after(async () => {
    await proxy?.close();
    await vaultB?.stop();
    await vaultA?.stop();
    await h?.dispose();
  });

  const restoreWithPassword = (
    target: string,
    password: string,
    extra: string[] = [],
    account = 'alice',
  ): Promise<CliRun> =>
    h.run(
      [
        'restore',
        target,
        '--repo',
        'cloud',
        '--password',
        '--vault',
        proxy.url,
        '--account',
        account,
        ...extra,
      ],
      { env: { BACKVAULT_PASSWORD: password } },
    );

  test('enable with a password, back up with the device, status', async () => {
    const en = await h.run(
      [
        'enable',
        '--device',
        'dev-a',
        '--repo',
        'cloud',
        '--password',
        '--vault',
        proxy.url,
        '--account',
        'alice',
        '--json',
      ],
      { env: { BACKVAULT_PASSWORD: PASSWORD } },
    );
    ok(en, 'enable');
    const j = parseJsonOutput(en);
    assert.equal(j.mode, 'password');
    assert.equal(j.serverPublicKey, vaultA.serverPublicKey);
    assert.equal(j.attemptsLeft, 4);
    keys.push(await readFile(h.path('dev-a', 'backup-key'), 'utf8'));

    ok(await h.run(['backup', 'chat', '--device', 'dev-a']), 'backup');
    const st = await h.run(['status', '--device', 'dev-a', '--json']);
    ok(st, 'status');
    const s = parseJsonOutput(st);
    assert.equal(s.mode, 'password');
    assert.equal((s.lastBackup as { seq: number }).seq, 1);
    assert.deepEqual(s.record, { state: 'active', attemptsLeft: 4, maxAttempts: 4 });
    const human = await h.run(['status', '--device', 'dev-a']);
    assert.match(human.stdout, /attempts: +4 of 4 left/);
    assert.match(human.stdout, /last backup: snapshot [0-9a-f]{8} \(seq 1\)/);

    // Enabling twice on the same directory is refused.
    const again = await h.run(['enable', '--device', 'dev-a', '--repo', 'cloud', '--recovery-key']);
    assert.equal(again.code, 2, again.stderr);
  });

  test('restore on a new device with the password sets the device up', async () => {
    const r = await restoreWithPassword('new-phone', PASSWORD, ['--device', 'dev-b']);
    ok(r, 'restore');
    assert.deepEqual(await treeOf(h.path('new-phone')), await treeOf(chat));
    const profile = JSON.parse(await readFile(h.path('dev-b', 'profile.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(profile.mode, 'password');
    assert.equal(profile.serverPublicKey, vaultA.serverPublicKey);
    assert.equal(await readFile(h.path('dev-b', 'backup-key'), 'utf8'), keys[0]);
    // The new device continues the chain.
    const b = await h.run(['backup', 'new-phone', '--device', 'dev-b', '--json']);
    ok(b, 'backup from the new device');
    assert.equal(parseJsonOutput(b).seq, 2);
  });

  test('wrong passwords count down (exit 3); a success resets the count', async () => {
    const lines: string[] = [];
    for (const guess of ['not my password', 'still wrong 1']) {
      const r = await restoreWithPassword('never-1', guess);
      assert.equal(r.code, 3, r.stderr);
      lines.push(firstErrorLine(r));
    }
    assert.match(lines[0] ?? '', /^WRONG_PASSWORD: 3 attempts left/);
    assert.match(lines[1] ?? '', /^WRONG_PASSWORD: 2 attempts left/);
    ok(await restoreWithPassword('restored-2', PASSWORD), 'correct password');
    const s = parseJsonOutput(await h.run(['status', '--device', 'dev-a', '--json']));
    assert.deepEqual(s.record, { state: 'active', attemptsLeft: 4, maxAttempts: 4 });
  });

  test('lockout: exit 5 LOCKED, and the right password no longer helps', async () => {
    await mkdir(h.path('bob-chat'));
    await writeFile(h.path('bob-chat', 'm.txt'), 'bob');
    ok(
      await h.run(
        [
          'enable',
          '--device',
          'dev-bob',
          '--repo',
          'cloud-bob',
          '--password',
          '--vault',
          proxy.url,
          '--account',
          'bob',
          '--max-attempts',
          '2',
        ],
        { env: { BACKVAULT_PASSWORD: BOB_PASSWORD } },
      ),
      'enable bob',
    );
    keys.push(await readFile(h.path('dev-bob', 'backup-key'), 'utf8'));
    ok(await h.run(['backup', 'bob-chat', '--device', 'dev-bob']), 'backup bob');
    const bobRestore = (pw: string): Promise<CliRun> =>
      h.run(
        [
          'restore',
          'bob-out',
          '--repo',
          'cloud-bob',
          '--password',
          '--vault',
          proxy.url,
          '--account',
          'bob',
        ],
        { env: { BACKVAULT_PASSWORD: pw } },
      );
    const r1 = await bobRestore('guess one 1');
    const r2 = await bobRestore('guess two 2');
    // The guess that reaches the limit answers LOCKED (exit 5), never "0 attempts left".
    assert.deepEqual([r1.code, r2.code], [3, 5]);
    assert.match(firstErrorLine(r1), /^WRONG_PASSWORD: 1 attempt left/);
    assert.match(
      firstErrorLine(r2),
      /^LOCKED: wrong password, and that was the last attempt: the vault destroyed the backup key/,
    );
    const r3 = await bobRestore('guess three 3');
    assert.equal(r3.code, 5, r3.stderr);
    assert.match(firstErrorLine(r3), /^LOCKED: /);
    const r4 = await bobRestore(BOB_PASSWORD);
    assert.equal(r4.code, 5, r4.stderr);
    assert.match(firstErrorLine(r4), /^LOCKED: /);
    const st = await h.run(['status', '--device', 'dev-bob']);
    ok(st, 'status of a locked record');
    assert.match(st.stdout, /LOCKED/);
  });

  test('password change: the old password fails, the new one works', async () => {
    const c = await h.run(['password', 'change', '--device', 'dev-b'], {
      env: { BACKVAULT_NEW_PASSWORD: NEW_PASSWORD },
    });
    ok(c, 'password change');
    const weak = await h.run(['password', 'change', '--device', 'dev-b'], {
      env: { BACKVAULT_NEW_PASSWORD: '123456' },
    });
    assert.equal(weak.code, 2, weak.stderr);
    assert.match(firstErrorLine(weak), /^WEAK_PASSWORD: /);
    const old = await restoreWithPassword('never-2', PASSWORD);
    assert.equal(old.code, 3, old.stderr);
    assert.match(firstErrorLine(old), /^WRONG_PASSWORD: 3 attempts left/);
    ok(await restoreWithPassword('restored-3', NEW_PASSWORD), 'restore with the new password');
  });

  test('a different vault is refused: VAULT_MISMATCH', async () => {
    vaultB = await startVaultProcess({ dataDir: h.path('vault-b'), maxAttempts: 4 });
    assert.notEqual(vaultB.serverPublicKey, vaultA.serverPublicKey);
    // Vault B has its own record for "alice" (an impostor that knows the account).
    ok(
      await h.run(
        [
          'enable',
          '--device',
          'dev-imp',
          '--repo',
          'cloud-imp',
          '--password',
          '--vault',
          vaultB.url,
          '--account',
          'alice',
        ],
        { env: { BACKVAULT_PASSWORD: NEW_PASSWORD } },
      ),
      'enable on vault B',
    );
    const r = await h.run(
      [
        'restore',
        'never-3',
        '--repo',
        'cloud',
        '--password',
        '--vault',
        vaultB.url,
        '--account',
        'alice',
        '--vault-key',
        vaultA.serverPublicKey,
      ],
      { env: { BACKVAULT_PASSWORD: NEW_PASSWORD } },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(firstErrorLine(r), /^VAULT_MISMATCH: /);
    // A device whose vault URL now leads to another vault (DNS hijack, wrong config).
    const p = h.path('dev-b', 'profile.json');
    const original = await readFile(p, 'utf8');
    const profile = JSON.parse(original) as Record<string, unknown>;
    await writeFile(p, JSON.stringify({ ...profile, vaultUrl: vaultB.url }), { mode: 0o600 });
    const st = await h.run(['status', '--device', 'dev-b']);
    assert.equal(st.code, 1, st.stderr);
    assert.match(firstErrorLine(st), /^VAULT_MISMATCH: /);
    const dis = await h.run(['disable', '--device', 'dev-b', '--yes']);
    assert.equal(dis.code, 1, dis.stderr);
    assert.match(firstErrorLine(dis), /^VAULT_MISMATCH: /);
    await writeFile(p, original, { mode: 0o600 });
  });

  test('disable deletes the record, prints the 64-digit key, which still restores', async () => {
    // Without a terminal, disable needs --yes.
    const noYes = await h.run(['disable', '--device', 'dev-b', '--json']);
    assert.equal(noYes.code, 2, noYes.stderr);
    assert.match(firstErrorLine(noYes), /^USAGE: disable needs --yes when it cannot ask/);
    const d = await h.run(['disable', '--device', 'dev-b', '--json', '--yes']);
    ok(d, 'disable');
    const j = parseJsonOutput(d);
    assert.equal(j.mode, 'recovery-key');
    assert.equal(`${j.recoveryKey as string}\n`, keys[0]);
    const human = await h.run(['status', '--device', 'dev-b']);
    assert.match(human.stdout, /mode: +64-digit key/);
    const gone = await restoreWithPassword('never-4', NEW_PASSWORD);
    assert.equal(gone.code, 1, gone.stderr);
    assert.match(firstErrorLine(gone), /^NOT_FOUND: /);
    await writeFile(h.path('typed-key.txt'), `${(j.recoveryKey as string).toUpperCase()}\n`);
    ok(
      await h.run(['restore', 'with-key', '--repo', 'cloud', '--key-file', 'typed-key.txt']),
      'restore with the 64-digit key',
    );
    assert.deepEqual(await treeOf(h.path('with-key')), await treeOf(h.path('new-phone')));
  });

  test('no password or backup key in any request body, vault byte or vault log', async () => {
    assert.ok(proxy.requests.length > 15, `saw ${proxy.requests.length} requests`);
    const bodies = Buffer.concat(proxy.requests.map((r) => r.body));
    const dataFiles: Buffer[] = [];
    for (const e of await readdir(h.path('vault-a'), { recursive: true, withFileTypes: true })) {
      if (e.isFile()) dataFiles.push(await readFile(join(e.parentPath, e.name)));
    }
    assert.ok(dataFiles.length >= 2);
    const needles: Buffer[] = [];
    for (const pw of [PASSWORD, NEW_PASSWORD, BOB_PASSWORD]) needles.push(Buffer.from(pw));
    for (const k of keys) {
      const hex = k.replace(/\s/g, '');
      const raw = Buffer.from(hex, 'hex');
      needles.push(Buffer.from(k.trim()), Buffer.from(hex), raw);
      needles.push(Buffer.from(raw.toString('base64url')), Buffer.from(raw.toString('base64')));
    }
    for (const n of needles) {
      assert.ok(!bodies.includes(n), 'a secret appears in a request body');
      for (const f of dataFiles) assert.ok(!f.includes(n), 'a secret appears in the vault data');
      assert.ok(!Buffer.from(vaultA.logs()).includes(n), 'a secret appears in the vault logs');
    }
    // Tokens travel in headers only, never in bodies or logs.
    assert.ok(proxy.requests.some((r) => r.headers.includes('Bearer ')));
    assert.ok(!vaultA.logs().includes('Bearer '));
  });

  test('`backvault vault serve` stops cleanly on SIGTERM', async () => {
    await proxy.close();
    assert.equal(await vaultA.stop(), 0);
  });
});
