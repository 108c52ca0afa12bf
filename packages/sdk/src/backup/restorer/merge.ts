/**
 * Moving a verified, complete restore into a target that already holds files (`--force`)
 * without destroying what the snapshot does not hold.
 *
 * The restore has written and synced the whole snapshot into `root/` beside the target.
 * Then, for every entry of `root/` (depth first):
 *   - absent in the target: renamed into place (a whole directory in one rename);
 *   - a directory in both: merged recursively, then given the snapshot's mode and mtime;
 *   - otherwise (a file or symlink in the target): the target's entry is renamed into
 *     `old/` at the same relative path, then the snapshot's entry is renamed into place.
 * Entries of the target that the snapshot does not hold are never touched ("kept"). A
 * directory in the target where the snapshot has a file or symlink would lose everything
 * inside it, so it is a conflict found before anything moves (unless `--delete`, which
 * replaces the whole target and is not handled here).
 *
 * Every step is a rename on one file system, and the whole merge is idempotent: what was
 * moved is no longer in `root/`, so a merge killed half way is finished by running it again
 * (roll forward; `recoverInterrupted` does that when the `commit` marker is present). The
 * target never holds a half-written file: each file arrives whole, by rename. Symlinks in
 * the target are never followed (lstat everywhere): a link to elsewhere is replaced as an
 * entry, so a restore cannot be steered into writing outside the target.
 *
 * Through the platform's TargetFiles (platform/types.ts): node:fs, or MemoryFiles.
 */
import { HINTS, TargetNotEmptyError } from '../../errors.js';
import type { EngineFiles, EntryInfo, TargetFiles } from '../platform/types.js';

/** The errno-style code of a file error. */
export function codeOf(e: unknown): unknown {
  return (e as { code?: unknown } | undefined)?.code;
}

export async function lstatOrUndefined(
  fs: TargetFiles,
  path: string,
): Promise<EntryInfo | undefined> {
  try {
    return await fs.lstat(path);
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** A target directory where the snapshot has a file or symlink at the same path. */
export class MergeConflictError extends TargetNotEmptyError {
  constructor(
    target: string,
    readonly paths: string[],
  ) {
    super(target);
    this.message = `restore target holds ${paths.length === 1 ? 'a directory' : `${paths.length} directories`} where the snapshot has a file: ${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', …' : ''}`;
    (this as { hint: string }).hint = HINTS.mergeConflict;
  }
}

/**
 * Paths (relative, `/`-separated) where the target has a directory and `root` has another
 * kind of entry: merging would have to delete the directory's content.
 */
export async function findMergeConflicts(
  fs: TargetFiles,
  root: string,
  target: string,
  rel = '',
): Promise<string[]> {
  const { join } = fs.path;
  const out: string[] = [];
  for (const name of await fs.readdir(root)) {
    const r = await fs.lstat(join(root, name));
    const t = await lstatOrUndefined(fs, join(target, name));
    if (!t) continue;
    const path = rel ? `${rel}/${name}` : name;
    if (t.kind === 'dir' && r.kind === 'dir') {
      out.push(...(await findMergeConflicts(fs, join(root, name), join(target, name), path)));
    } else if (t.kind === 'dir') {
      out.push(path);
    }
  }
  return out;
}

const SQLITE_HEADER = 'SQLite format 3\u0000';

/**
 * The `-wal`, `-shm` and `-journal` files of the target (relative paths) that belong to a
 * database the merge replaces: the snapshot has a SQLite database of that name and not the
 * companion. Kept beside the restored database, SQLite would replay the old database's
 * `-wal` over it (found by test/backup/edge-live-db.test.ts: "database disk image is
 * malformed"). A companion of a file that is no database is the user's, and stays.
 */
export async function findStaleCompanions(
  files: Pick<EngineFiles, 'read'> & { out: TargetFiles },
  root: string,
  target: string,
  rel = '',
): Promise<string[]> {
  const fs = files.out;
  const { join } = fs.path;
  const out: string[] = [];
  const names = await fs.readdir(root);
  const inRoot = new Set(names);
  for (const name of names.sort()) {
    const r = await fs.lstat(join(root, name));
    const path = rel ? `${rel}/${name}` : name;
    if (r.kind === 'dir') {
      const t = await lstatOrUndefined(fs, join(target, name));
      if (t?.kind === 'dir')
        out.push(...(await findStaleCompanions(files, join(root, name), join(target, name), path)));
      continue;
    }
    if (r.kind !== 'file' || r.size < 512n) continue;
    let isDb: boolean | undefined;
    for (const suffix of ['-wal', '-shm', '-journal']) {
      if (inRoot.has(name + suffix)) continue;
      if ((await lstatOrUndefined(fs, join(target, name + suffix)))?.kind !== 'file') continue;
      isDb ??=
        new TextDecoder().decode(await files.read(join(root, name), 0, 16)) === SQLITE_HEADER;
      if (isDb) out.push(path + suffix);
    }
  }
  return out;
}

/**
 * Directories of the target (relative, `/`-separated; `''` is the target itself) that the
 * merge would move entries into but no rename from the temporary directory can reach:
 * - one on another file system than `root` (a disk mounted inside the target);
 * - one that refuses `probe`, an empty file in the temporary directory moved in and straight
 *   back (EXDEV, EBUSY): a bind mount of the same file system has its parent's st_dev, so
 *   only trying tells. A directory whose permissions refuse the probe (EACCES, EPERM: an
 *   earlier restore's read-only folder, which the merge opens itself) is not judged. A kill
 *   between the two renames leaves the empty probe there: {@link removeStrayProbe} (the
 *   next restore's recovery) takes it away.
 * The merge failed with EXDEV after its commit journal, so every later restore failed the
 * same way rolling it forward. A directory found is not looked into. Unknown devices are
 * not compared.
 */
export async function findMountPoints(
  fs: TargetFiles,
  root: string,
  target: string,
  probe: string,
  rel = '',
  rootDev?: bigint,
): Promise<string[]> {
  const { join, basename } = fs.path;
  const dev = rootDev ?? (await fs.lstat(root)).dev;
  const inTarget = join(target, basename(probe));
  // Never over a file of the user's (its name has the restore's random tag, but still).
  if ((await lstatOrUndefined(fs, inTarget)) === undefined) {
    try {
      await fs.rename(probe, inTarget);
      await fs.rename(inTarget, probe);
    } catch (e) {
      const c = codeOf(e);
      if (c === 'EXDEV' || c === 'EBUSY') return [rel];
      if (c !== 'EACCES' && c !== 'EPERM') throw e;
    }
  }
  const out: string[] = [];
  for (const name of await fs.readdir(root)) {
    if ((await fs.lstat(join(root, name))).kind !== 'dir') continue;
    const t = await lstatOrUndefined(fs, join(target, name));
    if (t?.kind !== 'dir') continue;
    const path = rel ? `${rel}/${name}` : name;
    if (dev !== undefined && t.dev !== undefined && t.dev !== dev) out.push(path);
    else
      out.push(
        ...(await findMountPoints(fs, join(root, name), join(target, name), probe, path, dev)),
      );
  }
  return out;
}

/**
 * Takes away the probe of {@link findMountPoints} (named `probeName`, with its restore's
 * random tag) where a restore killed between its two renames left it: in a directory of
 * `target` that `root` (the killed restore's snapshot) also has. Only an empty regular file
 * of exactly that name is removed.
 * @returns the path removed (relative, `/`-separated), or undefined.
 */
export async function removeStrayProbe(
  fs: TargetFiles,
  root: string,
  target: string,
  probeName: string,
  rel = '',
): Promise<string | undefined> {
  const { join } = fs.path;
  const probe = join(target, probeName);
  const st = await lstatOrUndefined(fs, probe);
  if (st?.kind === 'file' && st.size === 0n) {
    await fs.rm(probe);
    return rel ? `${rel}/${probeName}` : probeName;
  }
  for (const name of await fs.readdir(root)) {
    if ((await fs.lstat(join(root, name))).kind !== 'dir') continue;
    if ((await lstatOrUndefined(fs, join(target, name)))?.kind !== 'dir') continue;
    const path = rel ? `${rel}/${name}` : name;
    const found = await removeStrayProbe(fs, join(root, name), join(target, name), probeName, path);
    if (found) return found;
  }
  return undefined;
}

/**
 * Paths (relative, `/`-separated) of directories anywhere below `target` on another file
 * system than `dev` (disks mounted inside it). `delete` removes the old target as a whole:
 * the removal went into such a disk, deleting what it held, then failed on its mount point
 * (EBUSY) after the new target was in place. Unknown devices: none.
 */
export async function findMountsBelow(
  fs: TargetFiles,
  target: string,
  dev: bigint | undefined,
  rel = '',
): Promise<string[]> {
  if (dev === undefined) return [];
  const { join } = fs.path;
  const out: string[] = [];
  for (const name of await fs.readdir(target)) {
    const st = await fs.lstat(join(target, name));
    if (st.kind !== 'dir') continue;
    const path = rel ? `${rel}/${name}` : name;
    if (st.dev !== undefined && st.dev !== dev) out.push(path);
    else out.push(...(await findMountsBelow(fs, join(target, name), dev, path)));
  }
  return out;
}

/**
 * Paths (relative) in the target that the snapshot in `root` does not hold: what a merge
 * keeps, or what `delete` removes. A directory wholly absent from the snapshot is listed
 * once, not file by file; so is one where the snapshot has a file or symlink (a merge
 * refuses it as a conflict, and `delete` removes it with all it holds).
 */
export async function listExtras(
  fs: TargetFiles,
  root: string,
  target: string,
  rel = '',
): Promise<string[]> {
  const { join } = fs.path;
  const out: string[] = [];
  let names: string[];
  try {
    names = await fs.readdir(target);
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return out;
    throw e;
  }
  for (const name of names.sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const r = await lstatOrUndefined(fs, join(root, name));
    if (!r) {
      out.push(path);
      continue;
    }
    const t = await fs.lstat(join(target, name));
    if (r.kind === 'dir' && t.kind === 'dir') {
      out.push(...(await listExtras(fs, join(root, name), join(target, name), path)));
    } else if (t.kind === 'dir') {
      out.push(path);
    }
  }
  return out;
}

/** Give directory `path` read, write and search for its owner, if it lacks any. */
async function ownerFullDir(fs: TargetFiles, path: string): Promise<void> {
  const st = await fs.lstat(path);
  if (st.kind === 'dir' && (st.mode & 0o700) !== 0o700)
    await fs.setMeta(path, st.mode | 0o700, st.mtimeNs);
}

/** What a merge did. */
export interface MergeStats {
  /** Entries of the target that the snapshot replaced (moved into `old/`). */
  replaced: number;
}

/**
 * Move everything under `root` into `target` as described above. `old` receives the
 * replaced entries. Directories present in both keep the target's metadata here: moving
 * entries changes both copies' mtimes, so the caller applies the snapshot's directory modes
 * and times afterwards from its own record (the commit journal).
 * @throws file-system errors (the merge can be run again to finish).
 */
export async function mergeInto(
  fs: TargetFiles,
  root: string,
  target: string,
  old: string,
  stats: MergeStats = { replaced: 0 },
): Promise<MergeStats> {
  const { join, dirname } = fs.path;
  // Entries move in and out of both: each needs write and search permission for its owner
  // (an earlier restore's read-only folder, 0555, is in the target); the caller gives every
  // directory of the snapshot its mode afterwards.
  await ownerFullDir(fs, root);
  await ownerFullDir(fs, target);
  for (const name of await fs.readdir(root)) {
    const r = join(root, name);
    const t = join(target, name);
    const rs = await fs.lstat(r);
    const ts = await lstatOrUndefined(fs, t);
    if (!ts) {
      // A directory moved to another parent needs write permission on itself (its `..`).
      if (rs.kind === 'dir') await ownerFullDir(fs, r);
      await fs.rename(r, t);
    } else if (rs.kind === 'dir' && ts.kind === 'dir') {
      await mergeInto(fs, r, t, join(old, name), stats);
      await fs.rmdir(r);
    } else {
      await fs.mkdir(dirname(join(old, name)), { recursive: true, mode: 0o700 });
      await fs.rename(t, join(old, name));
      await fs.rename(r, t);
      stats.replaced += 1;
    }
  }
  return stats;
}
