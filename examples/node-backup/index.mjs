// @ts-check
/**
 * Node / Electron: back up the app's chat folder (its SQLite database and media) to a
 * store, protected by a 64-digit key the user writes down; then restore it, as a new device
 * would, and check it came back byte for byte.
 *
 *   node index.mjs CHAT_DIR STORE_DIR RESTORE_DIR [STATE_DIR]
 *
 * STORE_DIR stands for the cloud: a synced folder, or use `S3Storage` / `openStorage('s3://…')`
 * from 'backvault' instead of `LocalStorage`. Only ciphertext and sizes reach it.
 *
 * The app depends on better-sqlite3 (most Node/Electron chat apps already do): with it, the
 * backup reads each SQLite database as one committed state while the app keeps writing.
 * Without it, a backup that meets a database stops with a USAGE error rather than copy a
 * file that may be torn.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  LocalStorage,
  backup,
  formatBackupKey,
  generateBackupKey,
  parseBackupKey,
  restore,
} from 'backvault';

const [chatDir, storeDir, restoreDir, stateDir = storeDir + '.state'] = process.argv.slice(2);
if (!chatDir || !storeDir || !restoreDir) {
  console.error('usage: node index.mjs CHAT_DIR STORE_DIR RESTORE_DIR [STATE_DIR]');
  process.exit(2);
}

// 1. The backup key: 32 random bytes, made on the device. Show it ONCE as 64 digits for the
//    user to write down; keep the bytes in the platform's keystore (Keychain, Keystore,
//    Electron safeStorage) for the next backups. Never log it in a real app.
const backupKey = generateBackupKey();
const written = formatBackupKey(backupKey); // "3f2a 9c01 … " (16 groups of 4)
console.log(`64-digit key (write it down): ${written.slice(0, 9)}… (${written.length} chars)`);

// 2. Back up. `statePath` is a small file in the app's private data: it remembers the newest
//    snapshot this device saw, so a store that serves an older one is caught (ROLLBACK).
//    `init: true` creates the repository on the first backup (later backups must find it).
const storage = new LocalStorage(storeDir);
const done = await backup({
  storage,
  backupKey,
  source: chatDir,
  statePath: join(stateDir, 'device-a.json'),
  init: true,
});
console.log(
  `backup: snapshot ${done.seq}, ${done.files} files, ${done.databases} SQLite database(s), ${done.bytesRead} bytes read`,
);

// 3. A new device: the user types the 64 digits (spaces, dashes and case do not matter).
const typedKey = parseBackupKey(written.toUpperCase().replaceAll(' ', '-'));
const back = await restore({
  storage: new LocalStorage(storeDir),
  backupKey: typedKey,
  target: restoreDir, // must be absent or empty (or pass `force: true`)
  statePath: join(stateDir, 'device-b.json'),
});
console.log(`restore: snapshot ${back.seq}, ${back.files} files, ${back.bytes} bytes`);

// 4. Compare every file, byte for byte (a database's -wal/-shm/-journal are left out of a
//    backup on purpose: their committed content is in the database image).
/** @param {string} root @param {string} [dir] @returns {Promise<Map<string, string>>} path -> SHA-256 */
async function digests(root, dir = root, out = new Map()) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) await digests(root, path, out);
    else if (e.isFile() && !/-(wal|shm|journal)$/.test(e.name))
      out.set(
        relative(root, path),
        createHash('sha256')
          .update(await readFile(path))
          .digest('hex'),
      );
  }
  return out;
}
const [before, after] = await Promise.all([digests(chatDir), digests(restoreDir)]);
const same = before.size === after.size && [...before].every(([p, h]) => after.get(p) === h);
console.log(same ? `restored byte-exact: ${before.size} files` : 'restore DIFFERS from the source');
process.exit(same ? 0 : 1);
