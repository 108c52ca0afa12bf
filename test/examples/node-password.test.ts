/**
 * examples/node-password, put into a fresh app with the packed `backvault` and
 * `@backvault/vault` installed (native modules built by npm: a file of its own, so that
 * install has the time it needs): enables a password and recovers on a "new device",
 * against its own in-process dev vault and against a real vault process trusting the
 * sample issuer; and its `// @ts-check` JavaScript type-checks, strict.
 */
import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { VaultClient } from '#sdk/client/index.js';
import type { VaultProcess } from '../vault/vault-process.js';
import { exampleApp, runNode, typeCheck } from './install.js';
import { startIssuerVault, type IssuerVault } from './issuer-vault.js';

describe('examples/node-password', () => {
  let setup: IssuerVault;
  let vault: VaultProcess;
  const issue = (user: string): Promise<{ token: string }> => setup.issue(user);

  before(async () => {
    setup = await startIssuerVault();
    vault = setup.vault;
  });
  after(async () => setup?.stop());

  it('type-checks (strict) against the types the packages ship', async () => {
    const appDir = await exampleApp('node-password');
    try {
      const files = (await readdir(appDir)).filter((f) => f.endsWith('.mjs'));
      assert.ok(files.length > 0);
      const r = await typeCheck(appDir, files);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    } finally {
      await rm(appDir, { recursive: true, force: true });
    }
  });

  describe('runs', () => {
    let appDir: string;
    before(async () => (appDir = await exampleApp('node-password')));
    after(async () => rm(appDir, { recursive: true, force: true }));

    const expectStory = (r: { code: number | null; stdout: string; stderr: string }): void => {
      assert.equal(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      assert.match(r.stdout, /enabled: 10 attempts, vault key /);
      assert.match(r.stdout, /wrong password: WRONG_PASSWORD, 9 attempts left/);
      assert.match(r.stdout, /recovered the same backup key/);
    };

    it('with its own in-process dev vault', async () => {
      expectStory(await runNode(appDir, 'index.mjs'));
    });

    it('with VAULT_URL and a VAULT_TOKEN from the sample issuer', async () => {
      const { token } = await issue('carol');
      expectStory(
        await runNode(appDir, 'index.mjs', [], { VAULT_URL: vault.url, VAULT_TOKEN: token }),
      );
      // The record exists at the vault under the token's subject.
      const status = await new VaultClient({ baseUrl: vault.url, token }).status();
      assert.equal(status.state, 'active');
    });
  });
});
