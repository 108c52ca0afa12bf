/**
 * Spreads accounts over several {@link VaultStore}s — typically several etcd clusters,
 * when one cluster's write rate or size is not enough. Each account lives on exactly one
 * shard, so every per-account guarantee (linearizable reads, one CAS winner per version,
 * durable counters) is the guarantee of that shard's store; nothing spans shards.
 *
 * Mapping (rendezvous / highest-random-weight hashing): for each shard, score =
 * the first 8 bytes, big-endian, of SHA-256(UTF-8 of `shardId` ‖ 0x00 ‖ `accountId`);
 * the account belongs to the shard with the highest score (ties, which need a 64-bit
 * collision, go to the smaller shard id). The result depends only on the set of shard
 * ids, not on their order or on endpoints, so every vault node computes the same
 * mapping from the same list of ids. Adding an (n+1)-th shard moves only the accounts
 * for which the new shard scores highest, about 1/(n+1) of them, and each of those moves
 * to the new shard; removing a shard moves only that shard's accounts.
 *
 * Shard ids are permanent names (e.g. `eu-west-1a`), not URLs or positions: renaming a
 * shard remaps accounts.
 *
 * Changing the shard set requires a migration, because a counter must never be live on
 * two shards at once (two copies = twice the guesses):
 * 1. Compute, with the old and new id sets, the accounts whose shard changes (only
 *    those whose new home is the added shard, or whose old home is the removed one).
 * 2. Drain: stop every vault node (or put them in maintenance so they answer 503); the
 *    counters must not move during the copy.
 * 3. For each moving account: read from the old shard, `compareAndSwap(ABSENT)` the same
 *    data into the new shard, verify by reading back, then `compareAndDelete` it from the
 *    old shard at the version read. Versions differ between shards; that is harmless,
 *    because login states are bound to `credentialId:loginEpoch`, which the copy keeps.
 * 4. Start every node with the new id set. Never run nodes with different id sets.
 * An online variant (no drain) needs a per-account "moving" marker on the old shard that
 * the vault treats as UNAVAILABLE until the copy lands; that variant does not exist yet.
 */
import { createHash } from 'node:crypto';
import { UsageError } from 'backvault/errors';
import { openEtcdStore, parseEtcdEndpoints, type EtcdVaultStoreOptions } from './etcd-store.js';
import type { GetOptions, VaultRecord, VaultRecordData, VaultStore } from './store.js';

/** One shard: a permanent id and the store holding its accounts. */
export interface VaultShard {
  /** Permanent, unique name; part of the hash (never an endpoint or an index). */
  readonly id: string;
  readonly store: VaultStore;
}

function score(shardId: string, accountId: string): bigint {
  const h = createHash('sha256')
    .update(shardId, 'utf8')
    .update(Buffer.from([0]))
    .update(accountId, 'utf8')
    .digest();
  return h.readBigUInt64BE(0);
}

/**
 * The id of the shard that owns `accountId` among `shardIds` (rendezvous hashing, see the
 * module comment). Pure; exported so tools (migration, tests) compute the same mapping.
 * @throws UsageError if `shardIds` is empty.
 */
export function shardIdFor(accountId: string, shardIds: readonly string[]): string {
  let best: string | undefined;
  let bestScore = -1n;
  for (const id of shardIds) {
    const s = score(id, accountId);
    if (s > bestScore || (s === bestScore && best !== undefined && id < best)) {
      best = id;
      bestScore = s;
    }
  }
  if (best === undefined) throw new UsageError('no vault shards configured');
  return best;
}

/** A {@link VaultStore} that routes each account to one of several shard stores. */
export class ShardedVaultStore implements VaultStore {
  readonly #shards: ReadonlyMap<string, VaultStore>;
  readonly #ids: readonly string[];

  /**
   * @throws UsageError if there are no shards, or ids are empty or repeated.
   */
  constructor(shards: readonly VaultShard[]) {
    if (shards.length === 0) throw new UsageError('a sharded vault store needs at least one shard');
    const map = new Map<string, VaultStore>();
    for (const s of shards) {
      if (s.id.length === 0) throw new UsageError('a vault shard id must not be empty');
      if (map.has(s.id)) throw new UsageError(`vault shard id ${s.id} is used twice`);
      map.set(s.id, s.store);
    }
    this.#shards = map;
    this.#ids = [...map.keys()];
  }

  /** The shard ids, in configuration order. */
  get shardIds(): readonly string[] {
    return this.#ids;
  }

  /** The id of the shard that owns `accountId`. */
  shardOf(accountId: string): string {
    return shardIdFor(accountId, this.#ids);
  }

  #store(accountId: string): VaultStore {
    const store = this.#shards.get(this.shardOf(accountId));
    // Unreachable: shardOf returns one of the map's keys.
    if (!store) throw new UsageError('vault shard lookup failed');
    return store;
  }

  /** @inheritdoc */
  get(accountId: string, options?: GetOptions): Promise<VaultRecord | undefined> {
    return this.#store(accountId).get(accountId, options);
  }

  /** @inheritdoc */
  compareAndSwap(
    accountId: string,
    expectedVersion: number,
    next: VaultRecordData,
  ): Promise<boolean> {
    return this.#store(accountId).compareAndSwap(accountId, expectedVersion, next);
  }

  /** @inheritdoc */
  compareAndDelete(accountId: string, expectedVersion: number): Promise<boolean> {
    return this.#store(accountId).compareAndDelete(accountId, expectedVersion);
  }

  /**
   * Runs `scrubHistory` on every shard store that has one (etcd), e.g. after a lockout.
   * @throws the first shard's error (UnavailableError) after all have been tried.
   */
  async scrubHistory(): Promise<void> {
    const results = await Promise.allSettled(
      [...this.#shards.values()].map((s) => {
        const scrub = (s as { scrubHistory?: () => Promise<void> }).scrubHistory;
        return typeof scrub === 'function' ? scrub.call(s) : Promise.resolve();
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Closes every shard store (all are attempted; the first failure is rethrown). */
  async close(): Promise<void> {
    const results = await Promise.allSettled([...this.#shards.values()].map((s) => s.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/** One `--etcd-shard` value, parsed. */
export interface EtcdShardSpec {
  readonly id: string;
  readonly endpoints: readonly string[];
}

/**
 * Parses `--etcd-shard ID=URL,URL,…` (repeatable: one per etcd cluster).
 * @throws UsageError on a missing or malformed id or URL list.
 */
export function parseEtcdShardSpec(spec: string): EtcdShardSpec {
  const eq = spec.indexOf('=');
  const id = eq > 0 ? spec.slice(0, eq) : '';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) {
    throw new UsageError(`--etcd-shard: expected ID=URL,URL with a name like eu-1, got ${spec}`);
  }
  return { id, endpoints: parseEtcdEndpoints(spec.slice(eq + 1)) };
}

/**
 * Opens one {@link EtcdVaultStore} per shard (each checked to answer) and routes over them.
 * @throws UsageError on bad specs; UnavailableError if a shard's cluster does not answer
 *   (already opened shards are closed again).
 */
export function openShardedEtcdStore(
  shards: readonly EtcdShardSpec[],
  options: Omit<EtcdVaultStoreOptions, 'endpoints'> = {},
): Promise<ShardedVaultStore> {
  return openShards(shards, (s) => openEtcdStore({ ...options, endpoints: s.endpoints }));
}

/**
 * Opens every shard's store with `open`, in order, and routes over them: all or nothing.
 * @throws what `open` throws, after closing the shards already opened.
 */
export async function openShards(
  shards: readonly EtcdShardSpec[],
  open: (shard: EtcdShardSpec) => Promise<VaultStore>,
): Promise<ShardedVaultStore> {
  const opened: VaultShard[] = [];
  try {
    for (const s of shards) opened.push({ id: s.id, store: await open(s) });
    return new ShardedVaultStore(opened);
  } catch (e) {
    await Promise.allSettled(opened.map((s) => s.store.close()));
    throw e;
  }
}
