import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NO_RATE_LIMITS, startVaultProcess, type VaultProcess } from './vault-process.js';
import { devToken, login, register } from './test-client.js';

describe('kill -9 during password change (real process)', () => {
  let dir: string;
  let vault: VaultProcess | undefined;
  const args = () => ['--data', dir, '--dev-auth', '--max-attempts', '10', ...NO_RATE_LIMITS];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-crash-'));
  });
  after(async () => {
    await vault?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('always leaves exactly one working password (old or new)', async () => {
    vault = await startVaultProcess(args());
    const backupKey = randomBytes(32);
    let current = 'initial-password-0';
    assert.equal(
      (await register(vault.url, await devToken(vault.url, 'u'), current, backupKey)).status.status,
      200,
    );
    const outcomes = { old: 0, new: 0 };
    for (let round = 1; round <= 12; round++) {
      const next = `changed-password-${round}`;
      const token = await devToken(vault.url, 'u');
      const v = vault;
      // kill at a random point: before start, between start and finish, or while finish is in flight
      const delayMs = Math.random() * 12;
      const change = register(v.url, token, next, backupKey, { currentBackupKey: backupKey }).catch(
        () => undefined,
      );
      await new Promise((r) => setTimeout(r, delayMs));
      await v.crash();
      await change;
      vault = await startVaultProcess(args());
      const t = await devToken(vault.url, 'u');
      const withNew = await login(vault.url, t, next);
      const withOld = await login(vault.url, t, current);
      assert.equal(
        Number(withNew.ok) + Number(withOld.ok),
        1,
        `round ${round}: exactly one password works`,
      );
      const l = withNew.ok ? withNew : withOld;
      assert.ok(l.ok);
      assert.deepEqual(l.backupKey, backupKey);
      if (withNew.ok) {
        outcomes.new++;
        current = next;
      } else outcomes.old++;
      // a success reset the counter; spend no more than the limit overall
      assert.ok((await login(vault.url, t, current)).ok);
    }
    // Both outcomes should occur over the rounds; report rather than require (timing).
    console.log(`kill -9 outcomes: ${JSON.stringify(outcomes)}`);
  });
});
