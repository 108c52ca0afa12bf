/**
 * `mkdir -p` that cannot spin. Node-only; imports nothing of ours, so every Node-side folder
 * may use it (the local store, the restore target's parent, the CLI's and the vault's own
 * folders).
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Create `dir` and its missing parents, one by one, top down; returns the first folder
 * created (as `mkdir(dir, { recursive: true })` does), or `undefined` when `dir` existed.
 * Node's own recursive mkdir loops forever where a folder exists but refuses children with
 * ENOENT (seen under /proc: ENOENT, then EEXIST for the parent, then ENOENT again; a
 * restore to `/proc/x/target` never returned), which a mounted cloud drive may also do;
 * here that ENOENT is thrown.
 * @param mode - Mode of each folder created (before the umask).
 * @throws the file system error: ENOTDIR or EEXIST when a file is on the way, EACCES, ….
 */
export async function makeDirectories(dir: string, mode?: number): Promise<string | undefined> {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    try {
      if ((await stat(d)).isDirectory()) break;
      // A file on the way: mkdir below says ENOTDIR or EEXIST.
      missing.push(d);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || d === dirname(d)) throw e;
      missing.push(d);
    }
  }
  let first: string | undefined;
  for (const d of missing.reverse()) {
    try {
      await mkdir(d, mode === undefined ? undefined : { mode });
      first ??= d;
    } catch (e) {
      // Another writer made it meanwhile: fine, if it is a folder.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(d)).isDirectory()) throw e;
    }
  }
  return first;
}
