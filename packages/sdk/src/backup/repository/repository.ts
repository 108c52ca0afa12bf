/**
 * A repository over the Storage contract: creating it, opening it (config and key check,
 * the location memory), and reading its sealed objects. Every other room reaches the store
 * through these functions and the ones beside them (indexes.ts, packs.ts, snapshots.ts).
 */

import {
  BackvaultError,
  CorruptBackupError,
  InvalidKeyError,
  MissingObjectError,
  HINTS,
  NoRepositoryError,
  RollbackError,
  UsageError,
  WrongKeyError,
} from '../../errors.js';
import {
  CONFIG_BYTES,
  FORMAT_VERSION,
  ObjectKind,
  PREFIX,
  REPO_ID_BYTES,
  decodeConfig,
  encodeConfig,
  fromHex,
  objectAd,
  parsePackName,
  toHex,
} from '../../format/index.js';
import type { Storage } from '../../storage/storage.js';
import type { CheckProblem, LockWait, RepoAccess } from '../api.js';
import { retryForMs } from '../../storage/network.js';
import {
  bytesEqual,
  deriveRepoKeys,
  keyCheckValueNode,
  open,
  randomBytes,
  sha256Hex,
  type RepoKeys,
} from './keys.js';
import { readKnownLocation, recordLocation } from './state.js';

export type { IndexedBlob } from './blob-index.js';

/** An opened repository. */
export interface Repo {
  storage: Storage;
  keys: RepoKeys;
  repoIdHex: string;
  statePath: string | undefined;
  /** How long taking the lock waits for another's (RepoAccess.retryLock); absent: not. */
  lockWait?: RepoLockWait;
}

/** {@link RepoAccess.retryLock} resolved, for lock.ts. */
export interface RepoLockWait {
  forMs: number;
  signal?: AbortSignal;
  onWait?: (wait: LockWait) => void;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Run `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(runners);
  return out;
}

/** Collect an async iterable. */
export async function listAll(
  storage: Storage,
  prefix: string,
): Promise<{ name: string; size: number }[]> {
  const out: { name: string; size: number }[] = [];
  for await (const o of storage.list(prefix)) out.push(o);
  return out;
}

/**
 * One listing of `data/`: pack id (hex) -> size. Names that are not pack names are left out
 * (`check` reports them).
 * @throws UnavailableError from the store.
 */
export async function listPacks(storage: Storage): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of storage.list(PREFIX.data)) {
    const id = parsePackName(o.name);
    if (id) out.set(id, o.size);
  }
  return out;
}

/** True when the store holds a repository (a `config` object). */
export async function repositoryExists(storage: Storage): Promise<boolean> {
  return (await storage.stat(PREFIX.config)) !== undefined;
}

function checkKeyLength(backupKey: Uint8Array): void {
  if (!(backupKey instanceof Uint8Array) || backupKey.length !== 32) {
    throw new InvalidKeyError('a backup key is 32 bytes (64 hexadecimal digits)');
  }
}

/**
 * Read `config` and verify the key check value. Nothing else is read before the key is
 * known to be right.
 * @throws UsageError on a malformed `retryLock` (before the store is touched).
 * @throws NoRepositoryError when there is no `config`.
 * @throws CorruptBackupError when `config` is malformed (see format/config.ts).
 * @throws WrongKeyError when the key check value does not match.
 * @throws UnavailableError from the store.
 */
export async function openRepository(access: RepoAccess): Promise<Repo> {
  requireRollbackChoice(access);
  checkKeyLength(access.backupKey);
  const lockMs = access.retryLock === undefined ? 0 : retryForMs(access.retryLock, 'retryLock');
  let bytes: Uint8Array;
  try {
    bytes = await access.storage.get(PREFIX.config);
  } catch (e) {
    if (e instanceof MissingObjectError) {
      await refuseVanished(access);
      throw new NoRepositoryError(access.storage.location);
    }
    throw e;
  }
  const config = decodeConfig(bytes);
  const keys = deriveRepoKeys(access.backupKey, config.repoId);
  const expected = keyCheckValueNode(keys, config.version);
  if (!bytesEqual(expected, config.keyCheck)) {
    throw new WrongKeyError();
  }
  await refuseReplaced(access, toHex(config.repoId));
  return {
    storage: access.storage,
    keys,
    repoIdHex: toHex(config.repoId),
    statePath: access.statePath,
    ...(lockMs > 0
      ? {
          lockWait: {
            forMs: lockMs,
            ...(access.signal ? { signal: access.signal } : {}),
            ...(access.onLockWait ? { onWait: access.onLockWait } : {}),
          },
        }
      : {}),
  };
}

/**
 * Rollback detection is on unless the app turns it off by name: without `statePath`, every
 * operation needs `rollbackProtection: false` (see docs/ARCHITECTURE.md "Rollback detection
 * by default"). Checked before the store is touched.
 * @throws UsageError naming both options.
 */
export function requireRollbackChoice(
  access: Pick<RepoAccess, 'statePath' | 'rollbackProtection'>,
): void {
  const hasState = access.statePath !== undefined && access.statePath !== '';
  if (hasState && access.rollbackProtection === false) {
    throw new UsageError(
      'statePath and rollbackProtection: false contradict each other',
      'Give `statePath` to keep rollback detection on, or `rollbackProtection: false` without it to turn it off.',
    );
  }
  if (hasState || access.rollbackProtection === false) return;
  throw new UsageError(
    'statePath is required: it is where this device remembers the latest snapshot it saw, so that a store serving an older one is caught',
    "Pass `statePath` (a file in the app's private data directory, one per device), or `rollbackProtection: false` to turn rollback detection off (tests and throwaway repositories only).",
  );
}

/**
 * A device that has seen snapshots in a repository at this location refuses to treat it as
 * absent: the repository vanished (an unmounted cloud drive, a mistyped path that happens to
 * exist elsewhere) and starting over at seq 1 would hide that.
 * @throws NoRepositoryError saying what this device saw there.
 */
async function refuseVanished(access: RepoAccess): Promise<void> {
  if (!access.statePath) return;
  const known = await readKnownLocation(access.statePath, access.storage.location);
  if (!known?.seen) return;
  throw new NoRepositoryError(
    access.storage.location,
    `this device has seen snapshot ${known.seen.seq} in a repository here, and it is gone`,
    HINTS.vanishedRepository,
  );
}

/**
 * A device that has seen snapshots of one repository at this location refuses another one
 * found there (a new, empty repository created over a vanished one): it is a rollback to
 * nothing.
 * @throws RollbackError.
 */
async function refuseReplaced(access: RepoAccess, repoIdHex: string): Promise<void> {
  if (!access.statePath) return;
  const known = await readKnownLocation(access.statePath, access.storage.location);
  if (!known?.seen || known.repoIdHex === repoIdHex) return;
  throw new RollbackError(
    `the repository at ${access.storage.location} is not the one this device backed up to (it had seen snapshot ${known.seen.seq} there); the old repository was replaced`,
  );
}

/**
 * Create a repository (a new random repo id and `config`), or open the existing one.
 * @param opts - `replaceMissing`: create one even where this device saw a repository that is
 *   gone (the user checked it is not merely unmounted); `repoId`: the new repository's id
 *   (backup() derives its keys and starts its workers before anything is written).
 * @throws WrongKeyError when a repository exists and the key does not open it.
 * @throws NoRepositoryError when this device saw a repository at this location that is
 *   gone, without `replaceMissing`.
 * @throws UnavailableError from the store.
 */
export async function initRepository(
  access: RepoAccess,
  opts: { replaceMissing?: boolean; repoId?: Uint8Array } = {},
): Promise<{ repoId: string; created: boolean }> {
  requireRollbackChoice(access);
  checkKeyLength(access.backupKey);
  if (await repositoryExists(access.storage)) {
    const repo = await openRepository(access);
    return { repoId: repo.repoIdHex, created: false };
  }
  if (!opts.replaceMissing) await refuseVanished(access);
  const repoId = opts.repoId ?? randomBytes(REPO_ID_BYTES);
  const keys = deriveRepoKeys(access.backupKey, repoId);
  const config = encodeConfig({
    version: FORMAT_VERSION,
    repoId,
    keyCheck: keyCheckValueNode(keys, FORMAT_VERSION),
  });
  if (config.length !== CONFIG_BYTES) throw new Error('config length');
  await access.storage.put(PREFIX.config, config);
  if (access.statePath)
    await recordLocation(access.statePath, access.storage.location, toHex(repoId));
  return { repoId: toHex(repoId), created: true };
}

/**
 * Read, verify (name = SHA-256 of the bytes) and open a sealed metadata object.
 * @throws CorruptBackupError / MissingObjectError / UnavailableError.
 */
export async function readSealedObject(
  repo: Repo,
  name: string,
  kind: typeof ObjectKind.INDEX | typeof ObjectKind.SNAPSHOT,
): Promise<{ plain: Uint8Array; size: number }> {
  const hex = name.slice(name.lastIndexOf('/') + 1);
  const bytes = await repo.storage.get(name);
  if (!HEX64.test(hex) || sha256Hex(bytes) !== hex) {
    throw new CorruptBackupError('object content does not match its name', name);
  }
  return {
    plain: open(repo.keys.meta, objectAd(kind, repo.keys.repoId), bytes, name),
    size: bytes.length,
  };
}

/**
 * Read, verify and open every object under `prefix` (`index/` or `snapshots/`: names are
 * the prefix and 64 hex digits), 8 at a time, and hand each plaintext to `use`.
 * @param onProblem - when given, an object that is CORRUPT or MISSING_OBJECT (in `use` too) is
 *   reported and skipped instead of thrown.
 */
export async function forEachSealed(
  repo: Repo,
  prefix: typeof PREFIX.index | typeof PREFIX.snapshots,
  kind: typeof ObjectKind.INDEX | typeof ObjectKind.SNAPSHOT,
  onProblem: ((p: CheckProblem) => void) | undefined,
  use: (name: string, plain: Uint8Array) => void,
): Promise<void> {
  const name64 = new RegExp(`^${prefix}[0-9a-f]{64}$`);
  await mapLimit(await listAll(repo.storage, prefix), 8, async ({ name }) => {
    try {
      if (!name64.test(name)) throw new CorruptBackupError('unexpected object name', name);
      const { plain } = await readSealedObject(repo, name, kind);
      use(name, plain);
    } catch (e) {
      if (
        onProblem &&
        e instanceof BackvaultError &&
        (e.code === 'CORRUPT' || e.code === 'MISSING_OBJECT')
      ) {
        onProblem({ code: e.code, object: name, message: e.message });
      } else throw e;
    }
  });
}

/** Bytes of a hex id (for ids already validated as 64 lowercase hex). */
export function idBytes(hex: string): Uint8Array {
  return fromHex(hex);
}
