/**
 * The replicated {@link VaultStore} on etcd v3 (`etcd3` client, Debian's etcd 3.4).
 *
 * Layout: one key per account, `<prefix>accounts/<encodeURIComponent(accountId)>`, whose
 * value is a versioned binary record ({@link encodeRecordValue}). The record's version is
 * the key's `mod_revision`: etcd revisions are global to the cluster and only grow, so a
 * version is never reused, even across delete and re-create (no ABA).
 *
 * - `get` is a linearizable range (`serializable: false`): etcd confirms leadership with
 *   a quorum (ReadIndex) before answering, so the read reflects every committed CAS.
 *   `get(…, { linearizable: false })`, for reads that a CAS on their version confirms (the
 *   login paths), answers from this store's own recent write or a serializable range.
 *   Measured 2026-11-24 (bench/vault-fleet.ts, 3 nodes + 3 members on one shared 2-core
 *   VM): each etcd RPC costs the vault node ~0.4 ms of CPU in `etcd3`/grpc-js, so the four
 *   RPCs of a login (2 linearizable reads + 2 transactions) cost it more than OPAQUE does.
 *   Now a login is 1 serializable read + 2 transactions: the finish, right after its start
 *   on the same node, reads the record this node just wrote.
 * - `compareAndSwap` is one transaction `if (mod_revision == expected && value is a live
 *   record) then put else range`; it returns only after a majority has the write in
 *   its fsynced log.
 * - Deletion writes a tombstone value instead of deleting the key (see "Why tombstones").
 * - Every call has a deadline (the whole operation, retries included, is bounded by
 *   `deadlineMs`); an outcome that cannot be established throws `UnavailableError`.
 *
 * Why an unknown outcome throws rather than returns false: a `false` tells the caller
 * "nothing was written", so it re-reads and tries again. If the write had in fact
 * committed, the retry would apply the caller's change a second time on top of it (a
 * login start counted twice, a reset applied on a record that changed since). Throwing
 * `UnavailableError` instead makes the caller abandon the request (HTTP 503): no OPAQUE
 * response leaves, and at worst one guess was counted that the user never got to use —
 * the safe direction for a guess limit. Never do we report `true` for a write that did
 * not commit, which would let a guess go uncounted.
 *
 * Why resending is safe (and how most unknown outcomes are resolved): every write
 * carries a random 128-bit write id inside its value. After a timeout or a dropped
 * connection the same transaction — same compares, same bytes — is sent again, to any
 * member. Each compare names a state that, once left, can never come back: a
 * `mod_revision` (revisions only grow) or "key never written" (keys are never deleted,
 * see below). So the original and the resend cannot both apply. If the resend succeeds,
 * it is the one that applied; if it fails and the current value carries our write id,
 * the original applied; otherwise the original either never applied or was overwritten
 * since, which we cannot tell apart, so we throw.
 *
 * Why tombstones: if `compareAndDelete` removed the key, "key absent" would be a state
 * the key can return to, and a delayed create (`mod_revision == 0`) could land after a
 * later delete and resurrect a record. A tombstone is a value with its own revision, so
 * a re-create compares against that revision. A deleted account leaves 17 bytes behind.
 *
 * Old values stay in etcd's MVCC history until compaction: {@link EtcdVaultStore.scrubHistory}
 * compacts it (call it after a lockout, like the SQLite store's WAL scrub); the bytes may
 * linger in free pages of etcd's bbolt file until `etcdctl defrag`, and in raft WAL and
 * snapshot files until they rotate. Every value here is already encrypted (HSM-sealed
 * record, client-encrypted envelope), so history holds ciphertext only.
 *
 * Measured 2026-11-24 on a shared 2-core VM, 3 members on loopback (heartbeat 50 ms), one
 * increment = linearizable get + CAS txn: one client on one key 150–350/s; 16 clients on
 * separate keys 440–620/s, p50 ≈ 25 ms, p99 75–175 ms. Leader killed under that load:
 * no call failed, 4–7 unknown outcomes resolved by write id. (`test/vault/etcd-store.test.ts`
 * prints these.)
 */
import {
  Etcd3,
  isRecoverableError,
  type ICompare,
  type IKeyValue,
  type IOptions,
  type KVClient,
} from 'etcd3';
import { randomBytes } from 'node:crypto';
import {
  BadRequestError,
  CorruptBackupError,
  InternalError,
  UnavailableError,
  UsageError,
} from 'backvault/errors';
import {
  ABSENT,
  type GetOptions,
  type RecordState,
  type VaultRecord,
  type VaultRecordData,
  type VaultStore,
} from './store.js';

/** Options of {@link EtcdVaultStore}. */
export interface EtcdVaultStoreOptions {
  /** Client URLs of the cluster's members, e.g. `http://h1:2379`. At least one. */
  readonly endpoints: readonly string[];
  /** Key prefix; ends with `/`. Default `/backvault/v1/`. */
  readonly prefix?: string;
  /** Upper bound on one store call, retries included (ms). Default 3000. */
  readonly deadlineMs?: number;
  /**
   * Deadline of one RPC attempt (ms); a member that cannot commit (partitioned, no
   * quorum) is given up on after this and the call is resent to another. Default
   * `max(250, deadlineMs / 3)`.
   */
  readonly attemptTimeoutMs?: number;
  /**
   * The highest cluster revision this node has seen before (persisted by the caller, see
   * {@link EtcdVaultStore.highestRevision}). etcd revisions only grow; a linearizable
   * answer below it means the cluster was restored from an older snapshot (or is another
   * cluster): every call then fails closed. A tripwire against accidental or naive
   * restores only — see docs/THREAT_MODEL.md. Default 0 (no check beyond this process).
   */
  readonly revisionFloor?: number;
  /**
   * TLS material for `https://` endpoints (refused with `http://` ones): the CA (PEM)
   * that signed the members' certificates — the system's trust store when absent — and,
   * for clusters started with `--client-cert-auth`, this node's client certificate chain
   * and key (PEM, both or neither). `https://` endpoints without it still use TLS, with
   * the system's CAs and no client certificate.
   */
  readonly tls?: EtcdTlsOptions;
}

/** PEM material for TLS to etcd (see {@link EtcdVaultStoreOptions.tls}). */
export interface EtcdTlsOptions {
  readonly ca?: Uint8Array;
  readonly cert?: Uint8Array;
  readonly key?: Uint8Array;
}

/** Counters for tests and metrics: how often the store had to retry or resolve. */
export interface EtcdStoreStats {
  /** RPC attempts that failed and were retried. */
  retries: number;
  /** Writes whose first attempt had an unknown outcome and that were settled by resend. */
  resolved: number;
  /** Calls that threw `UnavailableError`. */
  unavailable: number;
  /** Answers older than a revision already seen (the store went back in time). */
  rollbacks: number;
}

const DEFAULT_PREFIX = '/backvault/v1/';
const DEFAULT_DEADLINE_MS = 3000;

// --- Value format (version 1) -----------------------------------------------------------
// byte 0: kind — 0x00 tombstone, 0x01 record v1 (later formats take 0x02…, all "live")
// bytes 1..16: write id (random per write; resolves unknown outcomes)
// record v1 then: state u8 (0 active, 1 locked) | flags u8 (bit0 sealedRecord,
//   bit1 keyEnvelope, bit2 lastStartAt present) | failures u32 | limit u32 |
//   loginEpoch f64 | lastStartAt f64 | updatedAt f64 | credentialId u16 len + UTF-8 |
//   [sealedRecord u32 len + bytes] | [keyEnvelope u32 len + bytes] |
//   keyProofVerifier u32 len + bytes | [sealedJournal u32 len + bytes, if flag bit3] —
//   and nothing after. Integers big-endian. (bit3 was added with the journal; values
//   without it are exactly the earlier format.)
const KIND_TOMBSTONE = 0x00;
const KIND_RECORD_V1 = 0x01;
const WRITE_ID_BYTES = 16;
const HEADER_BYTES = 1 + WRITE_ID_BYTES;
/**
 * Every tombstone (0x00 + 16 bytes) sorts below this and every record (0x01…) above it,
 * so `value > LIVE_FLOOR` is an etcd compare meaning "a live record".
 */
const LIVE_FLOOR = Buffer.concat([Buffer.from([0x00]), Buffer.alloc(WRITE_ID_BYTES + 1, 0xff)]);
const FLAG_SEALED = 1;
const FLAG_ENVELOPE = 2;
const FLAG_LAST_START = 4;
const FLAG_JOURNAL = 8;

/** A decoded etcd value: a record, or the tombstone a delete leaves. */
export type DecodedValue =
  | { readonly kind: 'record'; readonly writeId: Uint8Array; readonly data: VaultRecordData }
  | { readonly kind: 'tombstone'; readonly writeId: Uint8Array };

function checkInt(name: string, v: number, max: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new InternalError(`vault record field ${name} is out of range`);
  }
}

/**
 * Encodes a record as an etcd value (format v1).
 * @throws InternalError if a field is out of range (a bug in the caller).
 */
export function encodeRecordValue(data: VaultRecordData, writeId: Uint8Array): Buffer {
  if (writeId.length !== WRITE_ID_BYTES) throw new InternalError('write id must be 16 bytes');
  checkInt('failures', data.failures, 0xffff_ffff);
  checkInt('limit', data.limit, 0xffff_ffff);
  checkInt('loginEpoch', data.loginEpoch, Number.MAX_SAFE_INTEGER);
  checkInt('updatedAt', data.updatedAt, Number.MAX_SAFE_INTEGER);
  if (data.lastStartAt !== null) checkInt('lastStartAt', data.lastStartAt, Number.MAX_SAFE_INTEGER);
  if (data.state !== 'active' && data.state !== 'locked') {
    throw new InternalError('vault record state is invalid');
  }
  const cred = Buffer.from(data.credentialId, 'utf8');
  if (cred.toString('utf8') !== data.credentialId || cred.length > 0xffff) {
    throw new InternalError('vault record credentialId is not encodable');
  }
  const fixed = Buffer.alloc(HEADER_BYTES + 2 + 4 + 4 + 8 * 3 + 2);
  let o = 0;
  fixed[o++] = KIND_RECORD_V1;
  fixed.set(writeId, o);
  o += WRITE_ID_BYTES;
  fixed[o++] = data.state === 'active' ? 0 : 1;
  fixed[o++] =
    (data.sealedRecord ? FLAG_SEALED : 0) |
    (data.keyEnvelope ? FLAG_ENVELOPE : 0) |
    (data.lastStartAt !== null ? FLAG_LAST_START : 0) |
    (data.sealedJournal ? FLAG_JOURNAL : 0);
  o = fixed.writeUInt32BE(data.failures, o);
  o = fixed.writeUInt32BE(data.limit, o);
  o = fixed.writeDoubleBE(data.loginEpoch, o);
  o = fixed.writeDoubleBE(data.lastStartAt ?? 0, o);
  o = fixed.writeDoubleBE(data.updatedAt, o);
  fixed.writeUInt16BE(cred.length, o);
  const parts: Buffer[] = [fixed, cred];
  const bytes = (b: Uint8Array): void => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, Buffer.from(b));
  };
  if (data.sealedRecord) bytes(data.sealedRecord);
  if (data.keyEnvelope) bytes(data.keyEnvelope);
  bytes(data.keyProofVerifier);
  if (data.sealedJournal) bytes(data.sealedJournal);
  return Buffer.concat(parts);
}

/** Encodes the tombstone a delete writes. */
export function encodeTombstoneValue(writeId: Uint8Array): Buffer {
  if (writeId.length !== WRITE_ID_BYTES) throw new InternalError('write id must be 16 bytes');
  return Buffer.concat([Buffer.from([KIND_TOMBSTONE]), writeId]);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes an etcd value. Returned byte arrays are fresh copies.
 * @throws CorruptBackupError if the value is not a well-formed v1 record or tombstone
 *   (an unknown kind byte included: only this module writes these keys).
 */
export function decodeRecordValue(value: Uint8Array): DecodedValue {
  const bad = (): CorruptBackupError =>
    new CorruptBackupError('vault record in etcd does not parse', 'etcd vault record');
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (b.length < HEADER_BYTES) throw bad();
  const writeId = new Uint8Array(b.subarray(1, HEADER_BYTES));
  if (b[0] === KIND_TOMBSTONE) {
    if (b.length !== HEADER_BYTES) throw bad();
    return { kind: 'tombstone', writeId };
  }
  if (b[0] !== KIND_RECORD_V1) throw bad();
  let o = HEADER_BYTES;
  const need = (n: number): void => {
    if (o + n > b.length) throw bad();
  };
  need(2 + 4 + 4 + 24 + 2);
  const stateByte = b.readUInt8(o++);
  const flags = b.readUInt8(o++);
  if (stateByte > 1 || (flags & ~15) !== 0) throw bad();
  const failures = b.readUInt32BE(o);
  const limit = b.readUInt32BE(o + 4);
  const loginEpoch = b.readDoubleBE(o + 8);
  const lastStart = b.readDoubleBE(o + 16);
  const updatedAt = b.readDoubleBE(o + 24);
  o += 32;
  for (const n of [loginEpoch, lastStart, updatedAt]) {
    if (!Number.isSafeInteger(n) || n < 0) throw bad();
  }
  if (!(flags & FLAG_LAST_START) && lastStart !== 0) throw bad();
  const credLen = b.readUInt16BE(o);
  o += 2;
  need(credLen);
  let credentialId: string;
  try {
    credentialId = utf8.decode(b.subarray(o, o + credLen));
  } catch {
    throw bad();
  }
  o += credLen;
  const bytes = (): Uint8Array => {
    need(4);
    const len = b.readUInt32BE(o);
    o += 4;
    need(len);
    const out = new Uint8Array(b.subarray(o, o + len));
    o += len;
    return out;
  };
  const sealedRecord = flags & FLAG_SEALED ? bytes() : null;
  const keyEnvelope = flags & FLAG_ENVELOPE ? bytes() : null;
  const keyProofVerifier = bytes();
  const sealedJournal = flags & FLAG_JOURNAL ? bytes() : null;
  if (o !== b.length) throw bad();
  const state: RecordState = stateByte === 0 ? 'active' : 'locked';
  return {
    kind: 'record',
    writeId,
    data: {
      state,
      failures,
      limit,
      loginEpoch,
      credentialId,
      sealedRecord,
      keyEnvelope,
      keyProofVerifier,
      lastStartAt: flags & FLAG_LAST_START ? lastStart : null,
      updatedAt,
      sealedJournal,
    },
  };
}

type FaultPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * etcd3's default global policy resends a failed call up to three times on other
 * members — for a transaction whose first attempt timed out after committing, the
 * resend would report "compare failed" and we would wrongly answer false. Calls go out
 * once; this store does its own, outcome-aware resending.
 */
const passThrough = {
  execute: <T>(
    fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T,
    signal?: AbortSignal,
  ): Promise<T> =>
    Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal })),
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
} as unknown as FaultPolicy;

/** Thrown instead of calling a member whose breaker is open; etcd3 then tries the next. */
class MemberSkippedError extends Error {
  constructor() {
    super('etcd member skipped after repeated failures');
    this.name = 'MemberSkippedError';
  }
}

const BREAKER_FAILURES = 3;
const BREAKER_OPEN_MS = 1000;

/**
 * Per-member breaker: after 3 consecutive transport failures the member is skipped for
 * 1 s, then one call is let through (one more failure re-opens it). etcd3's default
 * waits 5 s, which after quorum returns kept a node answering 503 for ~3 s longer than
 * the cluster needed (measured in the quorum-loss test).
 */
function memberBreaker(): FaultPolicy {
  let failures = 0;
  let openUntil = 0;
  return {
    execute: async <T>(
      fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T,
      signal?: AbortSignal,
    ): Promise<T> => {
      if (Date.now() < openUntil) throw new MemberSkippedError();
      try {
        const r = await fn({ signal: signal ?? new AbortController().signal });
        failures = 0;
        return r;
      } catch (e) {
        if (isTransient(e) && ++failures >= BREAKER_FAILURES) {
          openUntil = Date.now() + BREAKER_OPEN_MS;
          failures = BREAKER_FAILURES - 1;
        }
        throw e;
      }
    },
    onSuccess: () => ({ dispose: () => undefined }),
    onFailure: () => ({ dispose: () => undefined }),
  } as unknown as FaultPolicy;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Result of one conditional write: applied, or definitely not applied (current raw kv). */
type CommitResult =
  | {
      readonly applied: true;
      /** The revision of our put when its answer was received first-hand, else undefined. */
      readonly revision?: number;
    }
  | { readonly applied: false; readonly current?: IKeyValue };

/**
 * How long this node's own last write (or linearizable read) of a record may answer a
 * `get(…, { linearizable: false })` without asking etcd. A login finish follows its start
 * within about a second (the client's key stretching), so the finish's read is free; an
 * entry another node has overtaken costs one failed CAS and a linearizable re-read.
 */
const RECENT_TTL_MS = 2000;
/** Bound on remembered records (each a few hundred bytes of ciphertext). */
const RECENT_MAX = 4096;

interface Recent {
  readonly value: Buffer;
  readonly version: number;
  readonly at: number;
}

/**
 * {@link VaultStore} on an etcd cluster. Open with {@link openEtcdStore} (which checks the
 * cluster answers) or construct directly (connects lazily).
 */
export class EtcdVaultStore implements VaultStore {
  readonly #client: Etcd3;
  readonly #kv: KVClient;
  readonly #prefix: string;
  readonly #deadlineMs: number;
  readonly #endpoints: readonly string[];
  readonly #credentials: IOptions['credentials'] | undefined;
  readonly #attemptMs: number;
  readonly #inflight = new Set<Promise<unknown>>();
  /** Records as this node last wrote or linearizably read them (see {@link RECENT_TTL_MS}). */
  readonly #recent = new Map<string, Recent>();
  #closed = false;
  /** Retry and resolution counters (monotonic, for tests and metrics). */
  readonly stats: EtcdStoreStats = { retries: 0, resolved: 0, unavailable: 0, rollbacks: 0 };
  #highest: number;
  /** Set once the store went back in time; sticky, so later writes cannot heal it. */
  #rollback: string | undefined;

  /**
   * Creates the client; connects lazily.
   * @throws UsageError if no endpoint is given or the prefix is malformed.
   */
  constructor(options: EtcdVaultStoreOptions) {
    if (options.endpoints.length === 0) {
      throw new UsageError('the etcd store needs at least one endpoint (--etcd URL,URL,…)');
    }
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (!prefix.startsWith('/') || !prefix.endsWith('/')) {
      throw new UsageError('the etcd key prefix must start and end with "/"');
    }
    this.#prefix = prefix;
    const secure = endpointsScheme(options.endpoints) === 'https:';
    if (!secure && options.tls) {
      throw new UsageError('etcd TLS options need https:// endpoints');
    }
    if (options.tls && !options.tls.cert !== !options.tls.key) {
      throw new UsageError('an etcd client certificate needs its key, and a key its certificate');
    }
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.#attemptMs = options.attemptTimeoutMs ?? Math.max(250, Math.floor(this.#deadlineMs / 3));
    const fallbackMs = this.#deadlineMs;
    this.#endpoints = [...options.endpoints];
    this.#credentials = options.tls
      ? {
          // gRPC takes null for "the system's roots"; etcd3's type says Buffer.
          rootCertificate: options.tls.ca
            ? Buffer.from(options.tls.ca)
            : (null as unknown as Buffer),
          ...(options.tls.cert ? { certChain: Buffer.from(options.tls.cert) } : {}),
          ...(options.tls.key ? { privateKey: Buffer.from(options.tls.key) } : {}),
        }
      : undefined;
    this.#client = new Etcd3({
      hosts: [...options.endpoints],
      // https:// without options still means TLS: etcd3 then trusts the system's CAs.
      ...(this.#credentials ? { credentials: this.#credentials } : {}),
      // A backstop for any call that slips through without its own deadline.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + fallbackMs }),
      dialTimeout: this.#deadlineMs,
      faultHandling: { global: passThrough, host: () => memberBreaker() },
      // A restarted member should be used again within a second, not after gRPC's
      // default reconnect backoff (up to 2 minutes); a private subchannel pool keeps one
      // store's backoff state from leaking into another's.
      grpcOptions: {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        'grpc.use_local_subchannel_pool': 1,
      },
    });
    this.#kv = this.#client.kv;
    this.#highest = options.revisionFloor ?? 0;
  }

  /**
   * The highest etcd revision seen in an answer so far (at least the floor given). Persist
   * it and pass it back as `revisionFloor` at the next start.
   */
  get highestRevision(): number {
    return this.#highest;
  }

  /**
   * Checks an answer's revision against what was seen before the request was sent (a
   * linearizable answer reflects every revision committed before it was asked; answers to
   * concurrent requests may arrive out of order, hence the floor taken at send time).
   * @throws UnavailableError if the store went back in time (sticky).
   */
  #observe(header: { revision: string }, floorAtSend: number): void {
    const rev = Number(header.revision);
    if (rev < floorAtSend && this.#rollback === undefined) {
      this.stats.rollbacks++;
      this.#rollback =
        `the etcd store went back in time (revision ${rev} < ${floorAtSend} seen before): ` +
        'restored from an old snapshot? Refusing to serve until an operator resolves it (docs/OPERATIONS.md)';
    }
    this.#checkRollback();
    if (rev > this.#highest) this.#highest = rev;
  }

  #checkRollback(): void {
    if (this.#rollback !== undefined) throw this.#unavailable(this.#rollback);
  }

  /**
   * @inheritdoc
   *
   * With `linearizable: false`, in order: the record as this store itself wrote it (or read
   * it linearizably) within the last {@link RECENT_TTL_MS} — no RPC at all; else a
   * serializable range, which the member answers from its own state without the ReadIndex
   * round trip through the leader and a quorum. A serializable answer older than a
   * revision this store has already seen (a lagging member, or a rolled-back cluster) is
   * not used: the read is repeated linearizably, so the rollback tripwire decides exactly
   * as for a linearizable read. Either way the version returned is one the record really
   * had, so a CAS on it fails if anyone wrote since (see {@link GetOptions}).
   */
  get(accountId: string, options?: GetOptions): Promise<VaultRecord | undefined> {
    return this.#track(async () => {
      const key = this.#key(accountId);
      const until = Date.now() + this.#deadlineMs;
      this.#checkRollback();
      if (options?.linearizable === false) {
        const recent = this.#recent.get(accountId);
        if (recent && Date.now() - recent.at <= RECENT_TTL_MS) {
          return recordOf(recent.value, recent.version);
        }
      }
      let floor = this.#highest;
      // Reads change nothing, so any failure may simply be retried until the deadline.
      const fast =
        options?.linearizable === false
          ? await this.#attempt(until, (deadline) =>
              this.#kv.range({ key, serializable: true }, { deadline }),
            )
          : undefined;
      let res = fast;
      if (res === undefined || Number(res.header.revision) < floor) {
        floor = this.#highest;
        res = await this.#attempt(until, (deadline) =>
          this.#kv.range({ key, serializable: false }, { deadline }),
        );
      }
      this.#observe(res.header, floor);
      const kv = res.kvs[0];
      if (!kv) {
        this.#recent.delete(accountId);
        return undefined;
      }
      const version = Number(kv.mod_revision);
      const rec = recordOf(kv.value, version);
      if (res !== fast) this.#remember(accountId, kv.value, version, rec !== undefined);
      return rec;
    });
  }

  /** @inheritdoc */
  compareAndSwap(
    accountId: string,
    expectedVersion: number,
    next: VaultRecordData,
  ): Promise<boolean> {
    return this.#track(async () => {
      const key = this.#key(accountId);
      const writeId = randomBytes(WRITE_ID_BYTES);
      const value = encodeRecordValue(next, writeId);
      const until = Date.now() + this.#deadlineMs;
      if (expectedVersion !== ABSENT) {
        checkVersion(expectedVersion);
        const r = await this.#commit(
          key,
          [modIs(key, expectedVersion), isLive(key)],
          value,
          writeId,
          until,
        ).catch((e: unknown) => {
          this.#recent.delete(accountId);
          throw e;
        });
        this.#remember(accountId, value, r.applied ? r.revision : undefined, true);
        return r.applied;
      }
      // Create: the key is either never written (mod_revision 0) or holds a tombstone,
      // whose own revision is what we compare against.
      let rev = 0;
      this.#recent.delete(accountId);
      for (;;) {
        const r = await this.#commit(key, [modIs(key, rev)], value, writeId, until);
        if (r.applied) {
          this.#remember(accountId, value, r.revision, true);
          return true;
        }
        const cur = r.current;
        if (!cur) {
          rev = 0; // removed outside the vault (an operator); treat as never written
        } else if (decodeRecordValue(cur.value).kind === 'tombstone') {
          const t = Number(cur.mod_revision);
          if (t === rev) throw new InternalError('etcd compare failed on an unchanged tombstone');
          rev = t;
        } else {
          return false;
        }
        if (Date.now() >= until) throw this.#unavailable('etcd create did not settle in time');
      }
    });
  }

  /** @inheritdoc */
  compareAndDelete(accountId: string, expectedVersion: number): Promise<boolean> {
    return this.#track(async () => {
      const key = this.#key(accountId);
      if (expectedVersion === ABSENT) return false;
      checkVersion(expectedVersion);
      const writeId = randomBytes(WRITE_ID_BYTES);
      const until = Date.now() + this.#deadlineMs;
      this.#recent.delete(accountId);
      const r = await this.#commit(
        key,
        [modIs(key, expectedVersion), isLive(key)],
        encodeTombstoneValue(writeId),
        writeId,
        until,
      );
      return r.applied;
    });
  }

  /**
   * Defragments every member's backend (bbolt) file, one member at a time so a quorum
   * keeps serving: compacted values leave the free pages where {@link scrubHistory} left
   * them. Run on the operator's schedule (`--etcd-defrag-interval`); a member blocks its
   * own reads and writes while it defragments (milliseconds for a vault-sized database).
   * @throws UnavailableError naming how many members failed (after trying all).
   */
  async defragment(timeoutMs = 60_000): Promise<void> {
    let failed = 0;
    let last: unknown;
    for (const host of this.#endpoints) {
      const c = new Etcd3({
        hosts: [host],
        ...(this.#credentials ? { credentials: this.#credentials } : {}),
        defaultCallOptions: () => ({ deadline: Date.now() + timeoutMs }),
        dialTimeout: this.#deadlineMs,
      });
      try {
        await c.maintenance.defragment();
      } catch (e) {
        failed++;
        last = e;
      } finally {
        c.close();
      }
    }
    if (failed > 0) {
      throw new UnavailableError(
        `etcd defragmentation failed on ${failed} of ${this.#endpoints.length} members`,
        { cause: last },
      );
    }
  }

  /**
   * Compacts etcd's revision history up to now (physically), so superseded values of a
   * destroyed record are no longer readable through etcd. Called after every destroying
   * write (delete, password change, lockout; see `scrubbing-store.ts`). Bytes may remain
   * in bbolt free pages until {@link defragment}.
   * @throws UnavailableError if the cluster does not answer in time.
   */
  scrubHistory(): Promise<void> {
    return this.#track(async () => {
      const until = Date.now() + this.#deadlineMs;
      const res = await this.#attempt(until, (deadline) =>
        this.#kv.range({ key: Buffer.from(this.#prefix), count_only: true }, { deadline }),
      );
      const revision = res.header.revision;
      try {
        await this.#attempt(until, (deadline) =>
          this.#kv.compact({ revision, physical: true }, { deadline }),
        );
      } catch (e) {
        // Someone (another node, auto-compaction) already compacted past this revision.
        const cause = e instanceof UnavailableError ? e.cause : undefined;
        if (cause instanceof Error && /compacted/i.test(cause.message)) return;
        throw e;
      }
    });
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inflight]);
    this.#recent.clear();
    this.#client.close();
  }

  /**
   * Remembers `value` at `version` as the account's current record, or forgets the account
   * when the version is unknown (an unknown or resolved outcome, a failed CAS) or the value
   * is not a live record.
   */
  #remember(accountId: string, value: Buffer, version: number | undefined, live: boolean): void {
    const known = this.#recent.get(accountId);
    // Answers to concurrent calls may arrive out of order: never replace a newer version.
    if (version !== undefined && known && known.version > version) return;
    this.#recent.delete(accountId);
    if (version === undefined || !live) return;
    this.#recent.set(accountId, { value, version, at: Date.now() });
    if (this.#recent.size > RECENT_MAX) {
      const oldest = this.#recent.keys().next();
      if (!oldest.done) this.#recent.delete(oldest.value);
    }
  }

  #key(accountId: string): Buffer {
    if (accountId.length === 0) throw new BadRequestError('account id is empty');
    let enc: string;
    try {
      // Injective on well-formed strings; throws on lone surrogates instead of mapping
      // two ids to one key as UTF-8 replacement would.
      enc = encodeURIComponent(accountId);
    } catch {
      throw new BadRequestError('account id is not valid Unicode');
    }
    return Buffer.from(`${this.#prefix}accounts/${enc}`, 'utf8');
  }

  #track<T>(f: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new UnavailableError('vault store is closed'));
    const p = f();
    this.#inflight.add(p);
    const done = (): void => {
      this.#inflight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  #unavailable(message: string, cause?: unknown): UnavailableError {
    this.stats.unavailable++;
    return new UnavailableError(message, cause === undefined ? undefined : { cause });
  }

  /**
   * Runs an idempotent RPC, resending on transport and server failures until `until`.
   * @throws UnavailableError when no attempt succeeded in time or the error is permanent.
   */
  async #attempt<T>(until: number, call: (deadline: Date) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (let n = 0; ; n++) {
      const remaining = until - Date.now();
      if (remaining <= 0)
        throw this.#unavailable('etcd did not answer before the deadline', lastError);
      try {
        return await call(new Date(Date.now() + Math.min(remaining, this.#attemptMs)));
      } catch (e) {
        lastError = e;
        if (!retryable(e)) throw this.#unavailable('etcd call failed', e);
        this.stats.retries++;
        await sleep(Math.min(backoff(n), Math.max(0, until - Date.now())));
      }
    }
  }

  /**
   * One conditional put with outcome-aware resending (see the module comment).
   * @throws UnavailableError when the outcome cannot be established before `until`.
   */
  async #commit(
    key: Buffer,
    compare: ICompare[],
    value: Buffer,
    writeId: Uint8Array,
    until: number,
  ): Promise<CommitResult> {
    let uncertain = false;
    let lastError: unknown;
    this.#checkRollback();
    const floor = this.#highest;
    for (let n = 0; ; n++) {
      const remaining = until - Date.now();
      if (remaining <= 0) {
        throw this.#unavailable(
          uncertain
            ? 'etcd write outcome unknown at the deadline'
            : 'etcd did not answer before the deadline',
          lastError,
        );
      }
      try {
        const res = await this.#kv.txn(
          {
            compare,
            success: [{ request_put: { key, value } }],
            failure: [{ request_range: { key, serializable: false } }],
          },
          { deadline: new Date(Date.now() + Math.min(remaining, this.#attemptMs)) },
        );
        this.#observe(res.header, floor);
        if (res.succeeded) {
          if (uncertain) {
            this.stats.resolved++;
            return { applied: true };
          }
          // One put in the transaction: the revision it created is the header's.
          return { applied: true, revision: Number(res.header.revision) };
        }
        const current = res.responses[0]?.response_range?.kvs[0];
        if (!uncertain) return current ? { applied: false, current } : { applied: false };
        if (current && sameWriteId(current.value, writeId)) {
          this.stats.resolved++;
          return { applied: true };
        }
        throw this.#unavailable('etcd write outcome unknown (the record changed since)', lastError);
      } catch (e) {
        if (e instanceof UnavailableError) throw e;
        lastError = e;
        if (!retryable(e)) {
          // A permanent error is a rejection by the server before applying, except that
          // a previous attempt of ours might still have applied: unknown either way.
          throw this.#unavailable(
            isNoSpace(e)
              ? 'etcd is out of space (NOSPACE alarm) and refuses writes'
              : 'etcd write failed',
            e,
          );
        }
        uncertain = true;
        this.stats.retries++;
        await sleep(Math.min(backoff(n), Math.max(0, until - Date.now())));
      }
    }
  }
}

/** A stored value as a record at `version`, or undefined for a tombstone. */
function recordOf(value: Uint8Array, version: number): VaultRecord | undefined {
  const decoded = decodeRecordValue(value);
  return decoded.kind === 'tombstone' ? undefined : { ...decoded.data, version };
}

function checkVersion(v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new BadRequestError('store version is invalid');
}

function modIs(key: Buffer, revision: number): ICompare {
  return { key, target: 'Mod', result: 'Equal', mod_revision: String(revision) };
}

function isLive(key: Buffer): ICompare {
  return { key, target: 'Value', result: 'Greater', value: LIVE_FLOOR };
}

function sameWriteId(value: Buffer, writeId: Uint8Array): boolean {
  return value.length >= HEADER_BYTES && value.subarray(1, HEADER_BYTES).equals(writeId);
}

/** Transport, timeout and "try another member" failures; not client bugs. */
function retryable(e: unknown): boolean {
  // MemberSkippedError: every member's breaker is open (all failed recently).
  return isTransient(e) || e instanceof MemberSkippedError;
}

/**
 * A failure of the member or the link that resending may cure — etcd3's recoverable
 * errors, except etcd's NOSPACE alarm: the backend reached its quota, and the cluster
 * refuses every write (before applying it) until an operator frees space, compacts,
 * defragments and disarms the alarm (docs/OPERATIONS.md, "When etcd is full"). etcd3
 * files that gRPC RESOURCE_EXHAUSTED under recoverable, like etcd's transient "too many
 * requests"; resending cannot help, and counting it against the member would trip the
 * breaker of a member that still serves reads.
 */
function isTransient(e: unknown): boolean {
  return e instanceof Error && isRecoverableError(e) && !isNoSpace(e);
}

function isNoSpace(e: unknown): boolean {
  return e instanceof Error && e.message.includes('database space exceeded');
}

function backoff(n: number): number {
  return Math.min(250, 20 * 2 ** n) * (0.5 + Math.random() / 2);
}

/**
 * Parses the value of `--etcd`: comma-separated client URLs (`http(s)://host:port`).
 * @throws UsageError on an empty list, a malformed URL, or a list that mixes `http://`
 *   and `https://` (etcd across sites must use TLS; see docs/OPERATIONS.md).
 */
export function parseEtcdEndpoints(list: string): string[] {
  const urls = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (urls.length === 0) throw new UsageError('--etcd needs at least one URL');
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new UsageError(`--etcd: not a URL: ${u}`);
    }
    const scheme = parsed.protocol === 'http:' || parsed.protocol === 'https:';
    if (!scheme || !parsed.port || parsed.pathname !== '/' || parsed.search) {
      throw new UsageError(`--etcd: expected http(s)://host:port, got ${u}`);
    }
  }
  endpointsScheme(urls);
  return urls;
}

/**
 * The one scheme of a cluster's endpoints.
 * @throws UsageError if they mix http:// and https:// (a member reached in clear text
 *   would defeat TLS to the others).
 */
function endpointsScheme(urls: readonly string[]): 'http:' | 'https:' {
  const secure = urls.filter((u) => u.startsWith('https://')).length;
  if (secure !== 0 && secure !== urls.length) {
    throw new UsageError('--etcd: use https:// for every member or for none');
  }
  return secure ? 'https:' : 'http:';
}

/**
 * Opens the etcd store and checks, within the deadline, that the cluster answers a
 * linearizable read (so `vault serve` fails fast on a wrong `--etcd`).
 * @throws UnavailableError if no quorum answers before the deadline; UsageError on bad
 *   options.
 */
export async function openEtcdStore(options: EtcdVaultStoreOptions): Promise<EtcdVaultStore> {
  const store = new EtcdVaultStore(options);
  try {
    await store.get('\u0000probe');
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}
