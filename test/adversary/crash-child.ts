/**
 * Child process of crash.test.ts: runs one engine operation on a LocalStorage repository so
 * the parent can SIGKILL it at any moment.
 *
 *   node crash-child.js backup|prune|restore|restore-merge|restore-selfkill REPO_DIR STATE_PATH SOURCE_OR_TARGET
 *
 * `restore` is a forced restore that makes the target exactly the snapshot (`delete`);
 * `restore-merge` a forced one that keeps what the snapshot does not hold.
 *
 * `restore-selfkill` SIGKILLs its own process at the first progress report with bytes
 * written: a kill -9 in the middle of writing files, at a known moment.
 *
 * The backup key comes from the environment (BACKVAULT_TEST_KEY, 64 hex digits), never argv.
 * Prints one JSON line with the result on success; exit code 1 with the error code on stderr.
 */
import { backup, prune, restore } from '#sdk/backup/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { BackvaultError } from '#sdk/errors.js';
import { parseBackupKey } from '#sdk/format/index.js';

const [op, repoDir, statePath, path] = process.argv.slice(2);
const backupKey = parseBackupKey(process.env.BACKVAULT_TEST_KEY ?? '');
if (!op || !repoDir || !statePath) throw new Error('usage: crash-child.js OP REPO STATE [PATH]');
const storage = new LocalStorage(repoDir);
try {
  const access = { storage, backupKey, statePath };
  process.stdout.write('started\n');
  let result: unknown;
  if (op === 'backup')
    result = await backup({
      init: true,
      ...access,
      source: path as string,
      hostname: 'phone',
      // Small packs (resume.test.ts): many kill points between pack uploads.
      ...(process.env.BACKVAULT_TEST_PACK_SIZE
        ? { packSize: Number(process.env.BACKVAULT_TEST_PACK_SIZE), workers: 2 }
        : {}),
    });
  else if (op === 'prune') result = await prune(access);
  else if (op === 'restore')
    result = await restore({ ...access, target: path as string, force: true, delete: true });
  else if (op === 'restore-merge')
    result = await restore({ ...access, target: path as string, force: true });
  else if (op === 'restore-selfkill')
    result = await restore({
      ...access,
      target: path as string,
      force: true,
      delete: true,
      workers: 1,
      onProgress: (p) => {
        if (p.bytesDone > 0) process.kill(process.pid, 'SIGKILL');
      },
    });
  else throw new Error(`unknown op ${op}`);
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (e) {
  process.stderr.write(
    `${e instanceof BackvaultError ? e.code : 'ERROR'}: ${String((e as Error).message)}\n`,
  );
  process.exitCode = 1;
} finally {
  await storage.close();
}
