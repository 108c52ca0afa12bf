/**
 * kill -9 during `forget --prune` (a child process that SIGKILLs itself just before its
 * K-th write or delete, for every K of the run): afterwards every remaining snapshot
 * restores byte-exact, `check` is clean, the head is never lost, the snapshots gone are
 * only ever the oldest (a prefix of those to remove), and a second forget finishes the job.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { forget, listSnapshots, prune } from '#sdk/backup/index.js';
import { toHex } from '#sdk/format/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { assertConsistent, makeRepo, snapshotNames, type Fixture } from './forget-fixtures.js';
import { removeDir, tempDir } from './helpers.js';

const CHILD = fileURLToPath(new URL('./forget-child.js', import.meta.url));

function runChild(
  args: string[],
  keyHex: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], {
      env: { ...process.env, BACKVAULT_TEST_KEY: keyHex },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('kill -9 during forget --prune', () => {
  let dir: string;
  let pristine: string;
  let f: Fixture;
  let keyHex: string;
  /** Snapshot ids oldest first. */
  let ids: string[];
  const KEEP = 2;
  const VERSIONS = 6;

  before(async () => {
    dir = await tempDir('bv-forget-crash-');
    pristine = join(dir, 'pristine');
    await mkdir(dir, { recursive: true });
    f = await makeRepo(new LocalStorage(pristine), dir, VERSIONS);
    keyHex = toHex(f.key);
    ids = (
      await listSnapshots({ rollbackProtection: false, storage: f.storage, backupKey: f.key })
    ).map((s) => s.id);
  });
  after(async () => removeDir(dir));

  /** A copy of the pristine repository and a fresh state file, as a fixture. */
  const copy = async (name: string): Promise<Fixture> => {
    const repoDir = join(dir, name);
    await rm(repoDir, { recursive: true, force: true });
    await cp(pristine, repoDir, { recursive: true });
    return { ...f, storage: new LocalStorage(repoDir), statePath: join(dir, `${name}.state`) };
  };

  it('at every write and delete of the run, the repository stays whole', async (t) => {
    // A run without a kill counts the steps (deletions of snapshots, prune's writes and
    // deletions) and shows what a complete run leaves.
    const full = await copy('full');
    const clean = await runChild([join(dir, 'full'), full.statePath, String(KEEP), '0'], keyHex);
    assert.equal(clean.code, 0, clean.stderr);
    const { ops, removed } = JSON.parse(clean.stdout) as { ops: number; removed: number };
    assert.equal(removed, VERSIONS - KEEP);
    assert.ok(ops > removed + 2, `${ops} steps: deletions and a prune`);
    t.diagnostic(`${ops} kill points`);
    assert.deepEqual(await snapshotNames(full.storage), ids.slice(-KEEP).sort());
    await assertConsistent(full);

    for (let k = 1; k <= ops; k++) {
      const c = await copy('victim');
      const run = await runChild(
        [join(dir, 'victim'), c.statePath, String(KEEP), String(k)],
        keyHex,
      );
      assert.equal(run.signal, 'SIGKILL', `killed before step ${k}: ${run.stderr}`);
      // What is left: the newest snapshots, down to an oldest one; never a hole in the middle
      // of what the policy removes, and always the ones it keeps.
      const left = await snapshotNames(c.storage);
      const gone = ids.filter((id) => !left.includes(id));
      assert.deepEqual(gone, ids.slice(0, gone.length), `step ${k}: oldest first`);
      assert.ok(gone.length <= Math.min(k - 1, VERSIONS - KEEP), `step ${k}: ${gone.length}`);
      for (const id of ids.slice(-KEEP)) assert.ok(left.includes(id), `step ${k}: kept`);
      // Every remaining snapshot restores byte-exact; check is clean (the dead process's
      // lock and prune's leftovers are not problems).
      await assertConsistent(c);
      // Forget again (its lock: the dead process's is recognised as dead) finishes the job.
      const again = await forget({
        storage: c.storage,
        backupKey: c.key,
        statePath: c.statePath,
        policy: { last: KEEP },
        prune: true,
      });
      assert.equal(again.removed, VERSIONS - KEEP - gone.length, `step ${k}`);
      assert.ok(again.prune, 'the second run prunes even with nothing left to forget');
      assert.deepEqual(await snapshotNames(c.storage), ids.slice(-KEEP).sort());
      await assertConsistent(c);
      // ... and its prune finished what the killed one started: nothing is left to free.
      const rest = await prune({ rollbackProtection: false, storage: c.storage, backupKey: c.key });
      assert.deepEqual([rest.packsDeleted, rest.bytesFreed], [0, 0], `step ${k}`);
      await c.storage.close();
    }
  });
});
