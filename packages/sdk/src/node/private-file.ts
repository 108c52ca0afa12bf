/**
 * Durable, atomic writes of small private files (mode 0600): the device's rollback state,
 * its profile and key file, HSM key files and ceremony bundles. Node-only; imports nothing
 * of ours, so every Node-side folder may use it.
 *
 * The recipe: write a uniquely named temporary file beside the target (O_EXCL, 0600),
 * fsync it, move it into place, fsync the directory so the new name survives a power cut.
 * A reader sees the old file or the new one, never a mix; a crash leaves at most a stray
 * `.NAME.*.tmp` file.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` to `path` atomically with mode 0600.
 * - `exclusive: false` (default): replaces an existing file (rename).
 * - `exclusive: true`: never replaces; returns `false` and writes nothing when `path`
 *   already exists (hard link, which fails with EEXIST), so two processes racing to create
 *   the same secret cannot both win.
 * @returns `true` when `path` now holds `data`.
 * @throws the file system error (ENOENT when the directory does not exist, EACCES, …).
 */
export async function writePrivateFile(
  path: string,
  data: string | Uint8Array,
  options: { exclusive?: boolean } = {},
): Promise<boolean> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    if (options.exclusive) {
      try {
        await link(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      }
    } else {
      await rename(tmp, path);
    }
  } finally {
    // After a rename this is a no-op; after a link it drops the temporary name.
    await rm(tmp, { force: true });
  }
  await fsyncDir(dir);
  return true;
}

/** fsync a directory, so names created or renamed in it survive a crash of the machine. */
export async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, fsConstants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
