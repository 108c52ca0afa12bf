/**
 * Issue 16, "destroyed means gone from the disk too" (SQLite store): after a record delete
 * (`disable`), a password change and a lockout, NO file of the data directory holds any
 * byte string that was destroyed (the key envelope the client sent, the HSM-sealed OPAQUE
 * record the vault stored). Before the destroying event the same scan finds them, so the
 * scan itself is proven able to fail. Also: files 0600, and a data directory others can
 * read or write is refused at start.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { call, devToken, keyProofOf, login, register } from './test-client.js';
import { runVaultExpectingFailure, startVaultProcess, type VaultProcess } from './vault-process.js';

/** Every file under `dir` (recursively) whose bytes contain `needle`. */
export async function filesHolding(dir: string, needle: Uint8Array): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const bytes = await readFile(p).catch(() => undefined); // gone meanwhile
    if (bytes?.includes(Buffer.from(needle))) out.push(p);
  }
  return out;
}

/** The sealed OPAQUE record the vault stores for `account` (read-only peek at the file). */
function sealedRecordOf(data: string, account: string): Buffer {
  const db = new Database(join(data, 'vault.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const row = db
      .prepare<[string], { sealed_record: Buffer | null }>(
        'SELECT sealed_record FROM records WHERE account = ?',
      )
      .get(account);
    assert.ok(row?.sealed_record, `a sealed record is stored for ${account}`);
    return row.sealed_record;
  } finally {
    db.close();
  }
}

describe('vault remnants: destroyed bytes leave every file of the data directory', () => {
  let dir: string;
  let data: string;
  let vault: VaultProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-remnants-'));
    data = join(dir, 'data');
    vault = await startVaultProcess([
      '--data',
      data,
      '--dev-auth',
      '--workers',
      '2',
      '--max-attempts',
      '3',
    ]);
  });
  after(async () => {
    await vault?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Registers `account`, spends `wrong` guesses, returns the destroyable byte strings. */
  async function setUp(account: string, password: string, backupKey: Buffer, wrong = 1) {
    const t = await devToken(vault.url, account);
    const r = await register(vault.url, t, password, backupKey);
    assert.equal(r.status.status, 200);
    for (let i = 0; i < wrong; i++) {
      assert.equal((await login(vault.url, t, `${password}-wrong`)).ok, false);
    }
    const secrets = {
      envelope: Buffer.from(r.finishBody.keyEnvelope as string, 'base64url'),
      sealed: sealedRecordOf(data, account),
    };
    // The scan can fail: right now the bytes are on disk (in the WAL or the main file).
    for (const [name, bytes] of Object.entries(secrets)) {
      assert.ok((await filesHolding(data, bytes)).length > 0, `${name} is on disk before`);
    }
    return { token: t, secrets };
  }

  async function assertGone(what: string, secrets: Record<string, Buffer>): Promise<void> {
    for (const [name, bytes] of Object.entries(secrets)) {
      assert.deepEqual(await filesHolding(data, bytes), [], `${what}: ${name} left on disk`);
    }
  }

  it('after disable (record delete)', async () => {
    const bk = randomBytes(32);
    const { token, secrets } = await setUp('del', 'delete-me-pw-1', bk);
    const d = await call(
      vault.url,
      'POST',
      '/v1/record/delete',
      { keyProof: keyProofOf(bk) },
      token,
    );
    assert.equal(d.status, 200);
    await assertGone('delete', secrets);
  });

  it('after a password change', async () => {
    const bk = randomBytes(32);
    const { token, secrets } = await setUp('chg', 'change-me-pw-1', bk);
    const r = await register(vault.url, token, 'changed-pw-2', bk, { currentBackupKey: bk });
    assert.equal(r.status.status, 200);
    await assertGone('password change', secrets);
    // The new record is there and works.
    assert.ok((await login(vault.url, token, 'changed-pw-2')).ok);
  });

  it('after a lockout', async () => {
    const { token, secrets } = await setUp('lck', 'lock-me-pw-1', randomBytes(32), 0);
    let last;
    for (let i = 0; i < 3; i++) last = await login(vault.url, token, 'wrong-pw-x1');
    assert.equal(last?.ok, false);
    assert.equal((await login(vault.url, token, 'lock-me-pw-1')).ok, false);
    await assertGone('lockout', secrets);
  });

  it('every file of the data directory is 0600, the directory 0700', async () => {
    assert.equal((await stat(data)).mode & 0o777, 0o700);
    const entries = await readdir(data, { withFileTypes: true });
    assert.ok(entries.some((e) => e.name === 'vault.sqlite'));
    for (const e of entries) {
      if (!e.isFile()) continue;
      assert.equal((await stat(join(data, e.name))).mode & 0o777, 0o600, e.name);
    }
  });
});

describe('vault data directory permissions at start', () => {
  for (const mode of [0o755, 0o750, 0o707, 0o770]) {
    it(`refuses a data directory with mode ${mode.toString(8)} and says how to fix it`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bv-perm-'));
      try {
        const data = join(dir, 'data');
        await mkdir(data);
        await chmod(data, mode);
        const r = await runVaultExpectingFailure(['--data', data, '--dev-auth', '--workers', '1']);
        assert.equal(r.code, 2, r.output);
        assert.match(r.output, /accessible by group or others/);
        assert.ok(r.output.includes(`chmod 700 ${data}`), r.output);
        assert.deepEqual(await readdir(data), [], 'nothing was written');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('a data directory whose path goes through a file is a USAGE error (exit 2), not a crash', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-perm-'));
    try {
      await writeFile(join(dir, 'afile'), 'not a folder\n');
      const data = join(dir, 'afile', 'data');
      const r = await runVaultExpectingFailure(['--data', data, '--dev-auth', '--workers', '1']);
      assert.equal(r.code, 2, r.output);
      assert.match(
        r.output,
        /USAGE: cannot create the data directory .*: a part of that path is a file/,
      );
      assert.doesNotMatch(r.output, /INTERNAL/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('resets an existing world-readable database file to 0600', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-perm-'));
    try {
      const data = join(dir, 'data');
      const v = await startVaultProcess(['--data', data, '--dev-auth', '--workers', '1']);
      await v.stop();
      await chmod(join(data, 'vault.sqlite'), 0o644);
      const v2 = await startVaultProcess(['--data', data, '--dev-auth', '--workers', '2']);
      await v2.stop();
      assert.equal((await stat(join(data, 'vault.sqlite'))).mode & 0o777, 0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
