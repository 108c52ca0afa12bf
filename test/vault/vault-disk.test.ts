/**
 * The vault on a full and on a read-only disk (real tmpfs mounts; needs root). The counter's
 * promise: no OPAQUE response leaves without its guess durably counted. So when the store
 * cannot write, every login start is UNAVAILABLE (503) with no response, nothing is
 * counted, the operator's log says why in SQLite's words, and once the disk takes writes
 * again the vault serves on without a restart.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as opaque from '@serenity-kit/opaque';
import { call, devToken, login, register } from './test-client.js';
import {
  NO_RATE_LIMITS,
  runVaultExpectingFailure,
  startVaultProcess,
  type VaultProcess,
} from './vault-process.js';
import { mountTmpfs, removeDir, tempDir } from '../backup/helpers.js';

const root = process.getuid?.() === 0;

describe(
  'the vault when its disk is full or read-only',
  { skip: !root && 'needs root to mount a tmpfs' },
  () => {
    let dir: string;
    let mnt: string;
    let vault: VaultProcess;
    let token: string;
    const password = 'correct horse battery staple';
    before(async () => {
      dir = await tempDir('bv-vault-disk-');
      mnt = join(dir, 'mnt');
      await mkdir(mnt);
      assert.ok(mountTmpfs(mnt, '4m'), 'mount -t tmpfs failed');
      vault = await startVaultProcess([
        '--data',
        join(mnt, 'data'),
        '--dev-auth',
        '--workers',
        '1',
        '--log-level',
        'warn',
        ...NO_RATE_LIMITS,
      ]);
      await opaque.ready;
      token = await devToken(vault.url, 'alice');
      const r = await register(vault.url, token, password, new Uint8Array(32).fill(3), {
        maxAttempts: 10,
      });
      assert.equal(r.status.status, 200);
    });
    after(async () => {
      await vault?.stop();
      execFileSync('umount', [mnt]);
      await removeDir(dir);
    });

    /** Wrong-password login starts: how many got an OPAQUE response, and the error codes. */
    async function guesses(n: number): Promise<{ responses: number; codes: string[] }> {
      let responses = 0;
      const codes: string[] = [];
      for (let i = 0; i < n; i++) {
        const c = opaque.client.startLogin({ password: `wrong ${i}` });
        const a = await call(
          vault.url,
          'POST',
          '/v1/login/start',
          { startLoginRequest: c.startLoginRequest },
          token,
        );
        if (typeof a.body.loginResponse === 'string') responses++;
        else codes.push(`${a.status} ${a.body.error?.code}`);
      }
      return { responses, codes };
    }

    const attemptsLeft = async (): Promise<unknown> =>
      (await call(vault.url, 'GET', '/v1/record', undefined, token)).body.attemptsLeft;

    it('full: every login start is UNAVAILABLE with no response, nothing is counted, the log says why', async () => {
      await writeFile(join(mnt, 'fill'), Buffer.alloc(8 << 20)).catch(() => undefined);
      try {
        const g = await guesses(5);
        assert.equal(g.responses, 0, 'no OPAQUE response without its durable count');
        assert.deepEqual(g.codes, Array(5).fill('503 UNAVAILABLE'));
        const right = await login(vault.url, token, password);
        assert.equal(!right.ok && `${right.status} ${right.code}`, '503 UNAVAILABLE');
        assert.match(vault.output(), /"cause":"database or disk is full"/);
      } finally {
        await rm(join(mnt, 'fill'));
      }
      assert.equal(await attemptsLeft(), 10);
      // Space again: served without a restart, and the count goes on from where it was.
      assert.equal((await guesses(2)).responses, 2);
      assert.equal(await attemptsLeft(), 8);
      assert.equal((await login(vault.url, token, password)).ok, true);
      assert.equal(await attemptsLeft(), 10);
    });

    it('read-only at start: the vault refuses to serve, saying the disk is read-only', async () => {
      await vault.stop();
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      try {
        const r = await runVaultExpectingFailure([
          '--data',
          join(mnt, 'data'),
          '--dev-auth',
          '--workers',
          '1',
          ...NO_RATE_LIMITS,
        ]);
        assert.notEqual(r.code, 0, r.output);
        assert.match(r.output, /read-?only/i);
      } finally {
        execFileSync('mount', ['-o', 'remount,rw', mnt]);
      }
    });
  },
);
