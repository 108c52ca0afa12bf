/**
 * Repository locks: a backup and a prune of the same repository never overlap.
 *
 * Without them a prune that runs while a backup is in progress deletes what that backup
 * relies on: packs it has stored but not yet indexed, and packs it deduplicated against
 * (it read the index before prune rewrote it). The snapshot it then commits names blobs
 * that no longer exist: data the user believes is backed up is gone.
 *
 * Two backups must not overlap either: each chains its snapshot to the head it read at its
 * start, and two snapshots with the same predecessor are a fork, which every later command
 * refuses as a possible rollback (SPEC.md §11). So backups and prunes both take the lock
 * exclusively; shared locks exist in the format for readers that may take them later.
 *
 * A lock is an object `locks/<64 random hex>` sealed under the meta key with
 * AD(lock) (SPEC.md §2, §5): the store learns nothing but that a lock exists. Its plaintext
 * is JSON `{"v":1,"op":string,"exclusive":bool,"host":string,"pid":number,"time":ms since
 * the epoch}`. Taking a lock is: write our lock,
 * then list the others; if any other lock that is not stale conflicts with ours (either is
 * exclusive), delete ours and fail with CONFLICT. Two processes racing both see each other
 * and both back off: never both proceed.
 *
 * Liveness: the holder rewrites its lock with a fresh `time` every LOCK_REFRESH_MS. Another
 * process treats a lock as stale when its `time` is more than LOCK_STALE_MS old by its own
 * clock, or when it was written on this host by a process that no longer exists (a killed
 * backup leaves its lock behind). An exclusive holder deletes the stale locks it ignored.
 * "This host" is the host name and, where both writers know it, the pid space (Linux: boot
 * id and PID namespace, `pidSpace`): host names repeat (two machines both `raspberrypi`, a
 * container run with the host's network), and the pid of a live backup there usually names
 * no process here; judging it dead let a prune run beside that backup.
 *
 * A holder that was stopped longer than that (a laptop suspended in the middle of a
 * backup) may have been declared stale and pruned around. So before its commit point a
 * backup calls {@link RepoLock.assertHeld}: its lock must still exist and its last refresh
 * must be less than LOCK_SELF_STALE_MS ago by its own wall clock. The gap between the two
 * limits (10 minutes) is the clock skew between devices this tolerates.
 */
import {
  ConflictError,
  CorruptBackupError,
  HINTS,
  MissingObjectError,
  throwIfAborted,
} from '../../errors.js';
import { abortableSleep } from '../../storage/retry.js';
import type { CheckProblem } from '../api.js';
import { ObjectKind, PREFIX, objectAd, toHex } from '../../format/index.js';
import { enginePlatform } from '../platform/current.js';
import { open, randomBytes, seal } from './keys.js';
import type { Repo } from './repository.js';

/** What a lock needs of a repository: its store and keys (and how long to wait for one). */
export type LockedRepo = Pick<Repo, 'storage' | 'keys'> & Partial<Pick<Repo, 'lockWait'>>;

/** First pause before trying again for a lock another holds ({@link Repo.lockWait}). */
const LOCK_RETRY_FIRST_MS = 1000;
/** Longest pause between tries. */
const LOCK_RETRY_MAX_MS = 30_000;

/** A holder rewrites its lock this often. */
export const LOCK_REFRESH_MS = 5 * 60 * 1000;
/** Others ignore a lock not rewritten for this long. */
export const LOCK_STALE_MS = 30 * 60 * 1000;
/** A holder whose last refresh is this old no longer trusts its own lock. */
export const LOCK_SELF_STALE_MS = 20 * 60 * 1000;
/**
 * The op of a key-slot change (key-slots.ts). Its locks guard the key-slot manifest only:
 * they conflict with each other and with no other lock, because a key-slot change touches
 * nothing but `keys/`, which backup, prune and forget never touch (SPEC.md §14, §18). A
 * device that predates this rule sees an exclusive lock and waits: the safe direction.
 */
export const KEY_SLOTS_LOCK_OP = 'keys';

/** Locks guard one of two independent parts of a repository. */
function scope(info: LockInfo): 'keys' | 'repository' {
  return info.op === KEY_SLOTS_LOCK_OP ? 'keys' : 'repository';
}

/** Whether two live locks may not be held at once. */
export function locksConflict(a: LockInfo, b: LockInfo): boolean {
  return scope(a) === scope(b) && (a.exclusive || b.exclusive);
}

/** Locks are tiny; anything larger is not one of ours. */
const LOCK_MAX_BYTES = 4096;
/**
 * Locks this process holds now. A lock of this host and pid that is not among them was
 * left by an operation of this same process that could not remove it (aborted while the
 * store was unreachable): stale, like the lock of a dead process.
 */
const HELD = new Set<string>();

/** What a lock says about its holder. */
export interface LockInfo {
  /** What the holder does (`backup`, `prune`), for messages. */
  op: string;
  exclusive: boolean;
  host: string;
  pid: number;
  /** Last refresh, milliseconds since the epoch, by the holder's clock. */
  time: number;
  /** Where `pid` is meaningful (EngineHost.pidSpace), when the holder knows it. */
  pidSpace?: string;
}

/** Clock, host and liveness, injectable for tests. */
export interface LockEnv {
  now?: () => number;
  hostname?: string;
  pid?: number;
  isAlive?: (pid: number) => boolean;
  /** `null`: none (a writer that does not know it). */
  pidSpace?: string | null;
}

function encodeLock(info: LockInfo): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: 1, ...info }));
}

/** Decode a lock's plaintext. @throws CorruptBackupError naming `object`. */
export function decodeLock(plain: Uint8Array, object: string): LockInfo {
  let j: unknown;
  try {
    j = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plain));
  } catch {
    throw new CorruptBackupError('lock is not valid JSON', object);
  }
  const o = j as Record<string, unknown>;
  if (
    typeof j !== 'object' ||
    j === null ||
    o.v !== 1 ||
    typeof o.op !== 'string' ||
    typeof o.exclusive !== 'boolean' ||
    typeof o.host !== 'string' ||
    !Number.isSafeInteger(o.pid) ||
    !Number.isSafeInteger(o.time) ||
    (o.pidSpace !== undefined && typeof o.pidSpace !== 'string')
  ) {
    throw new CorruptBackupError('lock has an unknown shape', object);
  }
  return {
    op: o.op,
    exclusive: o.exclusive,
    host: o.host,
    pid: o.pid as number,
    time: o.time as number,
    ...(typeof o.pidSpace === 'string' ? { pidSpace: o.pidSpace } : {}),
  };
}

function describe(info: LockInfo, now: number): string {
  const ago = Math.max(0, Math.round((now - info.time) / 60_000));
  const what =
    info.op === KEY_SLOTS_LOCK_OP
      ? 'a key-slot change'
      : /^[a-z]{1,16}$/.test(info.op)
        ? `a ${info.op}`
        : 'another process';
  const host = info.host.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
  return `${what} on ${host} (pid ${info.pid}, lock refreshed ${ago} min ago)`;
}

/** A lock this process holds on a repository. Release it in a `finally`. */
export class RepoLock {
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastRefresh: number;
  private refreshing: Promise<void> = Promise.resolve();
  private lost = false;
  private released = false;

  private constructor(
    private readonly repo: LockedRepo,
    readonly name: string,
    private readonly info: LockInfo,
    private readonly now: () => number,
  ) {
    this.lastRefresh = info.time;
  }

  /**
   * Take a lock for `op` (`backup`, `prune`, `forget`, or {@link KEY_SLOTS_LOCK_OP}):
   * exclusive, or shared with other shared ones, among the locks of the same part of the
   * repository ({@link locksConflict}).
   * With `repo.lockWait` (RepoAccess.retryLock) a conflict is tried again, with pauses
   * from 1 s doubling up to 30 s (jittered), until that long after the first try.
   * @throws ConflictError when another live process holds a conflicting lock (ours is
   *   removed again; nothing else was written), after the wait if any.
   * @throws CorruptBackupError when a lock object does not open or decode (it names it).
   * @throws UnavailableError from the store.
   * @throws the signal's reason when it aborts a wait.
   */
  static async acquire(
    repo: LockedRepo,
    op: string,
    exclusive: boolean,
    env: LockEnv = {},
  ): Promise<RepoLock> {
    const wait = repo.lockWait;
    if (!wait) return RepoLock.tryAcquire(repo, op, exclusive, env);
    const now = env.now ?? Date.now;
    const giveUpAt = now() + wait.forMs;
    for (let pause = LOCK_RETRY_FIRST_MS; ; pause = Math.min(pause * 2, LOCK_RETRY_MAX_MS)) {
      throwIfAborted(wait.signal);
      try {
        return await RepoLock.tryAcquire(repo, op, exclusive, env);
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
        const t = now();
        if (t >= giveUpAt) throw e;
        const ms = Math.min(pause * (0.8 + 0.4 * Math.random()), giveUpAt - t);
        wait.onWait?.({ message: e.message, nextTryAt: t + ms, giveUpAt });
        await abortableSleep(ms, wait.signal);
      }
    }
  }

  /** One try of {@link RepoLock.acquire}. */
  private static async tryAcquire(
    repo: LockedRepo,
    op: string,
    exclusive: boolean,
    env: LockEnv,
  ): Promise<RepoLock> {
    const now = env.now ?? Date.now;
    const host = env.hostname ?? enginePlatform().host.hostname();
    const alive = env.isAlive ?? ((pid: number) => enginePlatform().host.isProcessAlive(pid));
    const pidSpace =
      env.pidSpace === null ? undefined : (env.pidSpace ?? enginePlatform().host.pidSpace);
    const info: LockInfo = {
      op,
      exclusive,
      host,
      pid: env.pid ?? enginePlatform().host.pid,
      time: now(),
      ...(pidSpace !== undefined ? { pidSpace } : {}),
    };
    const name = PREFIX.locks + toHex(randomBytes(32));
    const lock = new RepoLock(repo, name, info, now);
    HELD.add(name);
    try {
      await lock.write();
      const stale: string[] = [];
      for (const other of await listLocks(repo)) {
        if (other.name === name) continue;
        const t = now();
        // Its pid means something here only if it was written here: same host name, and the
        // same pid space when both know theirs (an older writer or another system's does not).
        const here =
          other.info.host === host &&
          (other.info.pidSpace === undefined ||
            pidSpace === undefined ||
            other.info.pidSpace === pidSpace);
        const isStale =
          t - other.info.time > LOCK_STALE_MS ||
          (here && !alive(other.info.pid)) ||
          (here && other.info.pid === info.pid && !HELD.has(other.name));
        if (isStale) {
          // Only ours to clear when it guards the same part of the repository.
          if (scope(other.info) === scope(info)) stale.push(other.name);
          continue;
        }
        if (locksConflict(info, other.info)) {
          throw new ConflictError(
            `the repository is locked by ${describe(other.info, t)}`,
            `Retry when it has finished. A lock of a process that died expires ${LOCK_STALE_MS / 60_000} min after its last refresh (${other.name}).`,
          );
        }
      }
      // Only an exclusive holder clears stale locks: their holders, should they wake up,
      // find their lock gone and refuse to commit (assertHeld).
      if (exclusive) for (const s of stale) await repo.storage.delete(s);
    } catch (e) {
      HELD.delete(name);
      await repo.storage.delete(name).catch(() => undefined);
      throw e;
    }
    lock.timer = setInterval(() => {
      lock.refreshing = lock.refresh();
    }, LOCK_REFRESH_MS);
    // Node: the refresh must not keep the process alive (elsewhere timers are plain ids).
    (lock.timer as { unref?: () => void }).unref?.();
    return lock;
  }

  private async write(): Promise<void> {
    const sealed = seal(
      this.repo.keys.meta,
      objectAd(ObjectKind.LOCK, this.repo.keys.repoId),
      encodeLock(this.info),
    );
    await this.repo.storage.put(this.name, sealed);
  }

  /**
   * Rewrite the lock with a fresh time, unless it was removed by someone else meanwhile, or
   * went unrefreshed so long (this process was stopped) that others may already be treating
   * it as stale: rewriting it then could resurrect a lock a prune has just cleared.
   */
  private async refresh(): Promise<void> {
    if (this.released || this.lost) return;
    if (this.now() - this.lastRefresh >= LOCK_SELF_STALE_MS) {
      this.lost = true;
      return;
    }
    try {
      if ((await this.repo.storage.stat(this.name)) === undefined) {
        this.lost = true;
        return;
      }
      const t = this.now();
      this.info.time = t;
      await this.write();
      this.lastRefresh = t;
    } catch {
      // A store that fails now fails the operation soon; assertHeld catches a long outage.
    }
  }

  /**
   * Before a commit point: the lock must still be ours and fresh.
   * @throws ConflictError when it was removed (a prune declared it stale) or not refreshed
   *   for LOCK_SELF_STALE_MS (this process was stopped, or the store unreachable).
   */
  async assertHeld(): Promise<void> {
    await this.refreshing;
    if (!this.lost && this.now() - this.lastRefresh < LOCK_SELF_STALE_MS) {
      if ((await this.repo.storage.stat(this.name)) !== undefined) return;
    }
    this.lost = true;
    throw new ConflictError(
      'this operation lost its repository lock (it was stopped or cut off for too long, and another process may have pruned since)',
      'Run it again; nothing was committed.',
    );
  }

  /** Remove the lock. Idempotent; never throws (a lock left behind expires). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    HELD.delete(this.name);
    if (this.timer) clearInterval(this.timer);
    await this.refreshing;
    await this.repo.storage.delete(this.name).catch(() => undefined);
  }
}

/**
 * Every lock in the repository, opened and decoded.
 * @throws CorruptBackupError naming an object under `locks/` that is not a lock written
 *   with this key, with the hint that says how to clear it ({@link lockProblems} lists all).
 */
export async function listLocks(repo: LockedRepo): Promise<{ name: string; info: LockInfo }[]> {
  const out: { name: string; info: LockInfo }[] = [];
  for await (const o of repo.storage.list(PREFIX.locks)) {
    const info = await readLock(repo, o);
    if (info) out.push({ name: o.name, info });
  }
  return out;
}

/** One listed lock object, opened and decoded; undefined when it vanished meanwhile. */
async function readLock(
  repo: LockedRepo,
  o: { name: string; size: number },
): Promise<LockInfo | undefined> {
  try {
    if (!/^locks\/[0-9a-f]{64}$/.test(o.name) || o.size > LOCK_MAX_BYTES) {
      throw new CorruptBackupError('not a lock', o.name);
    }
    let sealed: Uint8Array;
    try {
      sealed = await repo.storage.get(o.name);
    } catch (e) {
      if (e instanceof MissingObjectError) return undefined; // released meanwhile
      throw e;
    }
    const plain = open(repo.keys.meta, objectAd(ObjectKind.LOCK, repo.keys.repoId), sealed, o.name);
    return decodeLock(plain, o.name);
  } catch (e) {
    // Every backup, prune and forget stops here until the object is gone: say how.
    if (e instanceof CorruptBackupError) (e as { hint: string }).hint = HINTS.damagedLock;
    throw e;
  }
}

/**
 * For `check`: every object under `locks/` that is not a lock written with this key (each
 * makes every backup, prune and forget fail with CORRUPT until it is deleted).
 * @throws UnavailableError from the store.
 */
export async function lockProblems(repo: LockedRepo): Promise<CheckProblem[]> {
  const out: CheckProblem[] = [];
  for await (const o of repo.storage.list(PREFIX.locks)) {
    try {
      await readLock(repo, o);
    } catch (e) {
      if (!(e instanceof CorruptBackupError)) throw e;
      out.push({
        code: 'CORRUPT',
        object: o.name,
        message: `${e.message}: every backup, prune and forget refuses to run until it is deleted`,
      });
    }
  }
  return out;
}
