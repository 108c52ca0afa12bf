/**
 * The local state file: per repository, the highest snapshot seq and its id this device
 * has seen, so a store that later serves an older head (or drops the newest snapshot, or
 * forks the chain) is caught; and per store location, which repository this device saw
 * there, so a repository that vanished (an unmounted cloud drive) or was replaced by a new
 * one is refused instead of silently starting over at seq 1.
 *
 * JSON: { "version": 1, "repos": { "<repo id hex>": { "seq": 7, "snapshot": "<64 hex>" } },
 *         "locations": { "<store location>": "<repo id hex>" } }   (locations: optional)
 *
 * Written atomically (temp file, fsync, rename, fsync of the directory), mode 0600. Not
 * secret, but private: it reveals which repositories this device uses.
 */
import { BackvaultError, UsageError } from '../../errors.js';
import { isLowerHex, utf8 } from '../../format/index.js';
import { enginePlatform } from '../platform/current.js';
import type { TargetFiles } from '../platform/types.js';

/** The file system the state file lives on (the platform's; tests may pass another). */
function out(files: TargetFiles | undefined): TargetFiles {
  return files ?? enginePlatform().files.out;
}

async function save(path: string, s: StateFile, files: TargetFiles | undefined): Promise<void> {
  const fs = out(files);
  await fs.mkdir(fs.path.dirname(path), { recursive: true, mode: 0o700 });
  await fs.writeFileAtomic(path, utf8(JSON.stringify(s, null, 2) + '\n'));
}

/** What the device has seen of one repository. */
export interface SeenHead {
  seq: number;
  snapshot: string;
}

interface StateFile {
  version: 1;
  repos: Record<string, SeenHead>;
  locations?: Record<string, string>;
}

const UNREADABLE_HINT =
  'Restore it from a backup of this device, or move it away to start over (this forgets which snapshots were seen).';

/**
 * The state file at `path` cannot be used: a system error (kept as the cause, so a caller
 * can map EACCES to PERMISSION_DENIED), or bytes that are not a state file — a wrong
 * `statePath` or a damaged file, the user's to fix (USAGE), never "a bug".
 */
function unreadable(path: string, cause?: unknown): BackvaultError {
  if (cause === undefined) {
    return new UsageError(`not a backvault state file, or a damaged one: ${path}`, UNREADABLE_HINT);
  }
  return new BackvaultError(
    'INTERNAL',
    `the local state file is unreadable: ${path}`,
    UNREADABLE_HINT,
    {
      cause,
    },
  );
}

async function load(path: string, files?: TargetFiles): Promise<StateFile> {
  let text: string;
  try {
    text = new TextDecoder().decode(await out(files).readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { version: 1, repos: {} };
    if (code === 'ENOTDIR') {
      throw new UsageError(
        `the state file's path goes through a file: ${path}`,
        'Give a state file path whose folders are folders.',
      );
    }
    if (code === 'EISDIR') {
      throw new UsageError(`the state file is a folder: ${path}`, 'Give the path of a file.');
    }
    throw unreadable(path, e);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw unreadable(path);
  }
  const obj = parsed as Partial<StateFile> | null;
  if (!obj || obj.version !== 1 || typeof obj.repos !== 'object' || obj.repos === null)
    throw unreadable(path);
  for (const v of Object.values(obj.repos)) {
    const h = v as Partial<SeenHead> | null;
    if (
      !h ||
      !Number.isSafeInteger(h.seq) ||
      typeof h.snapshot !== 'string' ||
      !isLowerHex(h.snapshot, 32)
    ) {
      throw unreadable(path);
    }
  }
  if (obj.locations !== undefined) {
    if (typeof obj.locations !== 'object' || obj.locations === null) throw unreadable(path);
    for (const v of Object.values(obj.locations))
      if (typeof v !== 'string' || !isLowerHex(v, 16)) throw unreadable(path);
  }
  return obj as StateFile;
}

/**
 * The head last seen for `repoIdHex`, or undefined.
 * @throws BackvaultError (INTERNAL) when the file exists but cannot be parsed.
 */
export async function readSeenHead(
  path: string,
  repoIdHex: string,
  files?: TargetFiles,
): Promise<SeenHead | undefined> {
  const s = await load(path, files);
  return Object.prototype.hasOwnProperty.call(s.repos, repoIdHex) ? s.repos[repoIdHex] : undefined;
}

/**
 * The repository this device last saw at a store `location`, with its seen head.
 * @throws BackvaultError (INTERNAL) when the file exists but cannot be parsed.
 */
export async function readKnownLocation(
  path: string,
  location: string,
  files?: TargetFiles,
): Promise<{ repoIdHex: string; seen: SeenHead | undefined } | undefined> {
  const s = await load(path, files);
  const locs = s.locations ?? {};
  if (!Object.prototype.hasOwnProperty.call(locs, location)) return undefined;
  const repoIdHex = locs[location] as string;
  const seen = Object.prototype.hasOwnProperty.call(s.repos, repoIdHex)
    ? s.repos[repoIdHex]
    : undefined;
  return { repoIdHex, seen };
}

/**
 * Remember that the repository at `location` is now `repoIdHex` (after a deliberate
 * `init --replace-missing`): the one seen there before is no longer expected.
 * @throws BackvaultError (INTERNAL) when the existing file cannot be parsed; fs errors.
 */
export async function recordLocation(
  path: string,
  location: string,
  repoIdHex: string,
  files?: TargetFiles,
): Promise<void> {
  const s = await load(path, files);
  s.locations = { ...(s.locations ?? {}), [location]: repoIdHex };
  await save(path, s, files);
}

/**
 * Remember `head` for `repoIdHex` if it is newer than what is stored, and (given the store's
 * `location`) that this repository lives there.
 * @throws BackvaultError (INTERNAL) when the existing file cannot be parsed; fs errors.
 */
export async function recordSeenHead(
  path: string,
  repoIdHex: string,
  head: SeenHead,
  location?: string,
  files?: TargetFiles,
): Promise<void> {
  const s = await load(path, files);
  const old = Object.prototype.hasOwnProperty.call(s.repos, repoIdHex)
    ? s.repos[repoIdHex]
    : undefined;
  const knownHere = location === undefined || s.locations?.[location] === repoIdHex;
  if (old && old.seq >= head.seq && knownHere) return;
  if (!old || old.seq < head.seq) s.repos[repoIdHex] = { seq: head.seq, snapshot: head.snapshot };
  if (location !== undefined) s.locations = { ...(s.locations ?? {}), [location]: repoIdHex };
  await save(path, s, files);
}

/**
 * The highest key slot manifest seq this device has seen for `repoIdHex` (SPEC.md §18), or
 * undefined. Kept in the same file under `keyManifests` (older builds keep the field when
 * they rewrite the file, and ignore it).
 * @throws BackvaultError (INTERNAL) when the file exists but cannot be parsed.
 */
export async function readSeenKeyManifest(
  path: string,
  repoIdHex: string,
  files?: TargetFiles,
): Promise<number | undefined> {
  const s = (await load(path, files)) as StateFile & { keyManifests?: Record<string, unknown> };
  const v = s.keyManifests?.[repoIdHex];
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v)) throw unreadable(path);
  return v as number;
}

/**
 * Remember key slot manifest `seq` for `repoIdHex` if it is higher than what is stored.
 * @throws BackvaultError (INTERNAL) when the existing file cannot be parsed; fs errors.
 */
export async function recordSeenKeyManifest(
  path: string,
  repoIdHex: string,
  seq: number,
  files?: TargetFiles,
): Promise<void> {
  const s = (await load(path, files)) as StateFile & { keyManifests?: Record<string, number> };
  const old = s.keyManifests?.[repoIdHex];
  if (old !== undefined && old >= seq) return;
  s.keyManifests = { ...(s.keyManifests ?? {}), [repoIdHex]: seq };
  await save(path, s, files);
}

/**
 * Take `head` as the latest snapshot seen for `repoIdHex`, even when it is older than what
 * is stored: the user's deliberate acceptance of a rollback (`acceptRollback`). Everything
 * else in the file is kept.
 * @throws BackvaultError (INTERNAL) when the existing file cannot be parsed; fs errors.
 */
export async function acceptSeenHead(
  path: string,
  repoIdHex: string,
  head: SeenHead,
  files?: TargetFiles,
): Promise<void> {
  const s = await load(path, files);
  s.repos[repoIdHex] = { seq: head.seq, snapshot: head.snapshot };
  await save(path, s, files);
}
