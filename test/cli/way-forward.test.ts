/**
 * The documented ways forward from VAULT_MISMATCH (`pin`, after checking the new key) and
 * ROLLBACK (`accept-rollback`, naming the store's latest snapshot), through the real CLI
 * and real vault processes.
 */
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { startVaultProcess, type VaultProcess } from '../client/vault-process.js';
import { CliHarness, parseJsonOutput, stderrLines } from './cli-harness.js';
import { makeTree } from './tree.js';

describe('ways forward from VAULT_MISMATCH and ROLLBACK', () => {
  let h: CliHarness;
  before(async () => {
    h = await CliHarness.create();
    await makeTree(h.path('chat'), 64 * 1024);
  });
  after(async () => h.dispose());

  describe('pin', () => {
    let a: VaultProcess;
    let b: VaultProcess;
    const PASSWORD = 'correct horse 42';
    before(async () => {
      a = await startVaultProcess({ dataDir: h.path('vault-a'), maxAttempts: 3 });
      b = await startVaultProcess({ dataDir: h.path('vault-b'), maxAttempts: 3 });
    });
    after(async () => {
      await a.stop();
      await b.stop();
    });

    it('shows both keys, refuses a key the vault does not present, re-pins a checked one', async () => {
      const env = { BACKVAULT_PASSWORD: PASSWORD };
      const en = await h.run(
        [
          'enable',
          '--device',
          'dev',
          '--repo',
          'cloud',
          '--password',
          '--vault',
          a.url,
          '--account',
          'alice',
        ],
        { env },
      );
      assert.equal(en.code, 0, en.stderr);
      // The operator moved the service to a new deployment with a new key (vault B).
      const profilePath = h.path('dev', 'profile.json');
      const profile = JSON.parse(await readFile(profilePath, 'utf8')) as Record<string, unknown>;
      await writeFile(profilePath, JSON.stringify({ ...profile, vaultUrl: b.url }), {
        mode: 0o600,
      });
      const st = await h.run(['status', '--device', 'dev']);
      assert.match(
        stderrLines(st)[0] ?? '',
        /^VAULT_MISMATCH: .* `backvault pin --device DIR` shows it/,
      );

      const look = await h.run(['pin', '--device', 'dev']);
      assert.equal(look.code, 1);
      assert.deepEqual(look.stdout.split('\n').slice(0, 4), [
        `vault:     ${b.url}`,
        `pinned:    ${a.serverPublicKey}`,
        `presented: ${b.serverPublicKey}`,
        'they differ. Check the presented key with the vault operator (not through this vault), then: backvault pin --device DIR --vault-key KEY',
      ]);
      const wrong = await h.run(['pin', '--device', 'dev', '--vault-key', a.serverPublicKey]);
      assert.equal(wrong.code, 1);
      assert.match(
        stderrLines(wrong)[0] ?? '',
        /^VAULT_MISMATCH: the vault presents another key than the one you gave: nothing was changed/,
      );
      const ok = await h.run([
        'pin',
        '--device',
        'dev',
        `--vault-key=${b.serverPublicKey}`,
        '--json',
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(parseJsonOutput(ok).repinned, true);
      // The new vault has no record yet: status says so, password change registers it.
      const st2 = await h.run(['status', '--device', 'dev']);
      assert.equal(st2.code, 0, st2.stderr);
      assert.match(st2.stdout, /no record at the vault/);
      const pc = await h.run(['password', 'change', '--device', 'dev'], {
        env: { BACKVAULT_NEW_PASSWORD: PASSWORD },
      });
      assert.equal(pc.code, 0, pc.stderr);
      const back = await h.run(['pin', '--device', 'dev']);
      assert.equal(back.code, 0);
      assert.match(back.stdout, /they match: nothing to do/);
    });
  });

  it('accept-rollback takes the store back only when its latest snapshot is named', async () => {
    const env = { BACKVAULT_KEY: (await h.run(['key', 'generate'])).stdout.trim() };
    for (let i = 0; i < 3; i++) {
      await writeFile(h.path('chat', `n${i}.txt`), `note ${i}`);
      const r = await h.run(['backup', 'chat', '--repo', 'cloud-rb', '--init'], { env });
      assert.equal(r.code, 0, r.stderr);
    }
    const list = parseJsonOutput(
      await h.run(['snapshots', '--repo', 'cloud-rb', '--json'], { env }),
    ).snapshots as { id: string; seq: number }[];
    // The store loses the newest snapshot.
    const newest = list.find((s) => s.seq === 3)?.id ?? '';
    assert.ok((await readdir(h.path('cloud-rb', 'snapshots'))).includes(newest));
    await rm(h.path('cloud-rb', 'snapshots', newest));
    const rolled = await h.run(['snapshots', '--repo', 'cloud-rb'], { env });
    assert.equal(rolled.code, 4);
    assert.match(
      stderrLines(rolled)[0] ?? '',
      /^ROLLBACK: .*`backvault accept-rollback --snapshot SEQ`\.$/,
    );

    const notLatest = await h.run(['accept-rollback', '--snapshot', '1', '--repo', 'cloud-rb'], {
      env,
    });
    assert.equal(notLatest.code, 2);
    assert.match(
      stderrLines(notLatest)[0] ?? '',
      /^USAGE: snapshot [0-9a-f]{8} \(seq 1\) is not the store's latest; its latest is [0-9a-f]{8} \(seq 2\)/,
    );
    const missing = await h.run(['accept-rollback', '--repo', 'cloud-rb'], { env });
    assert.equal(missing.code, 2);

    const ok = await h.run(['accept-rollback', '--snapshot', '2', '--repo', 'cloud-rb'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /^this device now takes snapshot [0-9a-f]{8} \(seq 2\) as the latest; it had seen seq 3\n$/,
    );
    const after = await h.run(['snapshots', '--repo', 'cloud-rb', '--json'], { env });
    assert.equal(after.code, 0, after.stderr);
    assert.equal((parseJsonOutput(after).snapshots as unknown[]).length, 2);
    const again = await h.run(['backup', 'chat', '--repo', 'cloud-rb', '--json'], { env });
    assert.equal(parseJsonOutput(again).seq, 3);
  });
});
