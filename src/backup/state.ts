/**
 * The local state file: per repository, the highest snapshot seq and its id this device
 * has seen, so a store that later serves an older head (or drops the newest snapshot, or
 * forks the chain) is caught.
 *
 * JSON: { "version": 1, "repos": { "<repo id hex>": { "seq": 7, "snapshot": "<64 hex>" } } }
 *
 * Written atomically (temp file, fsync, rename, fsync of the directory), mode 0600. Not
 * secret, but private: it reveals which repositories this device uses.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BackvaultError } from '../errors.js';
import { writePrivateFile } from '../node/private-file.js';
import { isLowerHex } from '../format/index.js';

/** What the device has seen of one repository. */
export interface SeenHead {
  seq: number;
  snapshot: string;
}

interface StateFile {
  version: 1;
  repos: Record<string, SeenHead>;
}

function unreadable(path: string): BackvaultError {
  return new BackvaultError(
    'INTERNAL',
    `the local state file is unreadable: ${path}`,
    'Restore it from a backup of this device, or move it away to start over (this forgets which snapshots were seen).',
  );
}

async function load(path: string): Promise<StateFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, repos: {} };
    throw unreadable(path);
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
  return obj as StateFile;
}

/**
 * The head last seen for `repoIdHex`, or undefined.
 * @throws BackvaultError (INTERNAL) when the file exists but cannot be parsed.
 */
export async function readSeenHead(path: string, repoIdHex: string): Promise<SeenHead | undefined> {
  const s = await load(path);
  return Object.prototype.hasOwnProperty.call(s.repos, repoIdHex) ? s.repos[repoIdHex] : undefined;
}

/**
 * Remember `head` for `repoIdHex` if it is newer than what is stored.
 * @throws BackvaultError (INTERNAL) when the existing file cannot be parsed; fs errors.
 */
export async function recordSeenHead(
  path: string,
  repoIdHex: string,
  head: SeenHead,
): Promise<void> {
  const s = await load(path);
  const old = Object.prototype.hasOwnProperty.call(s.repos, repoIdHex)
    ? s.repos[repoIdHex]
    : undefined;
  if (old && old.seq >= head.seq) return;
  s.repos[repoIdHex] = { seq: head.seq, snapshot: head.snapshot };
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writePrivateFile(path, JSON.stringify(s, null, 2) + '\n');
}
