/**
 * Child process of forget-crash.test.ts: runs `forget` (keep-last N, with prune) on a
 * LocalStorage repository and SIGKILLs itself just before its K-th write or delete to the
 * store: a kill -9 at a known step of the deletions or of the prune that follows.
 *
 *   node forget-child.js REPO_DIR STATE_PATH KEEP_LAST KILL_AT
 *
 * KILL_AT 0 never kills; the child then prints the number of writes and deletes it made.
 * The backup key comes from the environment (BACKVAULT_TEST_KEY, 64 hex digits), never argv.
 */
import { forget } from '#sdk/backup/index.js';
import { BackvaultError } from '#sdk/errors.js';
import { parseBackupKey } from '#sdk/format/index.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
import type { Storage } from '#sdk/storage/storage.js';

const [repoDir, statePath, keepLast, killAt] = process.argv.slice(2);
if (!repoDir || !statePath || !keepLast || killAt === undefined) {
  throw new Error('usage: forget-child.js REPO STATE KEEP_LAST KILL_AT');
}
const backupKey = parseBackupKey(process.env.BACKVAULT_TEST_KEY ?? '');
const inner = new LocalStorage(repoDir);
const limit = Number(killAt);
let ops = 0;
/** Count a mutating operation; die before the `limit`-th one. */
const step = (): void => {
  ops += 1;
  if (ops === limit) process.kill(process.pid, 'SIGKILL');
};
const storage: Storage = {
  location: inner.location,
  put: (n, d) => {
    step();
    return inner.put(n, d);
  },
  delete: (n) => {
    step();
    return inner.delete(n);
  },
  get: (n) => inner.get(n),
  getRange: (n, o, l) => inner.getRange(n, o, l),
  stat: (n) => inner.stat(n),
  list: (p) => inner.list(p),
  close: () => inner.close(),
};
try {
  const r = await forget({
    storage,
    backupKey,
    statePath,
    policy: { last: Number(keepLast) },
    prune: true,
  });
  process.stdout.write(`${JSON.stringify({ ops, removed: r.removed, prune: r.prune })}\n`);
} catch (e) {
  process.stderr.write(
    `${e instanceof BackvaultError ? e.code : 'ERROR'}: ${String((e as Error).message)}\n`,
  );
  process.exitCode = 1;
} finally {
  await storage.close();
}
