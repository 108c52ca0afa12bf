/**
 * Key slots in a store (SPEC.md §18): list, add, remove, and unlock a repository with an
 * added recovery key. The byte layouts and crypto are in src/format/key-slot.ts; this module
 * only reads and writes objects through the {@link Storage} interface.
 *
 * Order of writes (crash safety): adding puts the slot object, then the new manifest;
 * removing puts the new manifest, then deletes the slot object. An interruption leaves at
 * worst a slot object the manifest does not list: `key list` shows it as `unlisted`, it is
 * never used to unlock, and `key remove` deletes it.
 *
 * Changes are serialized across devices by a repository lock of op `keys` (lock.ts): the
 * manifest is one object, and two read-modify-writes at the same moment would otherwise
 * lose one change. The lock conflicts only with other key-slot changes, never with a
 * backup, so a settings screen can add a passkey while a backup runs. A change waits up to
 * KEY_LOCK_WAIT_MS for another device's change to finish, then fails with CONFLICT.
 * Callers without an installed engine platform (WebCrypto only) cannot seal a lock and
 * change slots unserialized, as before.
 *
 * With a state file (`statePath`, the one of rollback detection), the highest manifest seq
 * seen is remembered per repository, and an older manifest is refused (KEY_SLOT_MISMATCH):
 * a store cannot put back a removed slot together with the manifest that listed it.
 *
 * Crypto: the engine's installed provider (node:crypto on Node, `nobleCrypto()` on Hermes),
 * else WebCrypto (an app that uses these functions before installing a platform).
 */
import {
  ConflictError,
  KeySlotCorruptError,
  MissingObjectError,
  NoRepositoryError,
  NotFoundError,
  UsageError,
  WrongKeyError,
  HINTS,
} from '../../errors.js';
import {
  KEY_SLOT_MANIFEST_NAME,
  MAX_SLOT_LABEL_BYTES,
  PREFIX,
  assertBackupKey,
  assertManifestNotOlder,
  checkBackupKey,
  decodeConfig,
  decodeKeySlot,
  deriveKeySlotKek,
  keySlotHash,
  keySlotName,
  openKeySlot,
  openKeySlotManifest,
  parseKeySlotName,
  recoveryKeySlotId,
  sealKeySlot,
  sealKeySlotManifest,
  toHex,
  bytesEqual,
  utf8,
  verifyKeySlotUnlock,
  webFormatCrypto,
  type FormatCrypto,
  type KeySlotInfo,
  type KeySlotKindName,
  type KeySlotManifest,
  type KeySlotManifestEntry,
} from '../../format/index.js';
import type { Storage } from '../../storage/storage.js';
import { installedPlatform } from '../platform/current.js';
import { deriveRepoKeys } from './keys.js';
import { KEY_SLOTS_LOCK_OP, RepoLock } from './lock.js';
import { readSeenKeyManifest, recordSeenKeyManifest } from './state.js';

/**
 * How long a key-slot change waits for another one to finish. A change is a few requests
 * (read the manifest, write a slot, write the manifest), well under a second on a
 * reachable store.
 */
const KEY_LOCK_WAIT_MS = 20_000;

/**
 * Run `change` (a read-modify-write of the manifest) under the repository's `keys` lock,
 * waiting with jittered backoff while another device holds it.
 * @throws ConflictError when the lock stays taken for KEY_LOCK_WAIT_MS.
 */
async function underKeySlotLock<T>(
  storage: Storage,
  backupKey: Uint8Array,
  repoId: Uint8Array,
  change: () => Promise<T>,
): Promise<T> {
  if (!installedPlatform()) return change();
  const repo = { storage, keys: deriveRepoKeys(backupKey, repoId) };
  const deadline = Date.now() + KEY_LOCK_WAIT_MS;
  let pause = 25;
  let lock: RepoLock;
  for (;;) {
    try {
      lock = await RepoLock.acquire(repo, KEY_SLOTS_LOCK_OP, true);
      break;
    } catch (e) {
      // Two racers both back off (lock.ts): random waits let one of them through next.
      if (!(e instanceof ConflictError) || Date.now() + pause > deadline) throw e;
      await new Promise((r) => setTimeout(r, pause * (0.5 + Math.random())));
      pause = Math.min(2 * pause, 1000);
    }
  }
  try {
    return await change();
  } finally {
    await lock.release();
  }
}

/** The crypto of key slots: the engine's provider, else WebCrypto. */
function slotCrypto(): FormatCrypto {
  return installedPlatform()?.crypto ?? webFormatCrypto();
}

/** Where this device remembers the manifest seqs it saw (omit: no replay detection). */
export interface KeySlotState {
  /** The local state file (see state.ts). */
  statePath?: string;
}

async function seenSeq(o: KeySlotState, repoId: Uint8Array): Promise<number | undefined> {
  return o.statePath === undefined ? undefined : readSeenKeyManifest(o.statePath, toHex(repoId));
}

async function rememberSeq(o: KeySlotState, repoId: Uint8Array, seq: number): Promise<void> {
  if (o.statePath !== undefined) await recordSeenKeyManifest(o.statePath, toHex(repoId), seq);
}

/** How `key list` sees one slot. */
export type KeySlotStatus =
  /** Listed in the manifest with exactly these bytes: usable. */
  | 'ok'
  /** Listed, but the store has no such object (the store deleted it). */
  | 'missing'
  /** Stored, but not listed (removed earlier and put back, or an interrupted add). */
  | 'unlisted'
  /** Listed, but the stored bytes differ or do not parse (replaced or damaged). */
  | 'changed';

/** One slot as listed. */
export interface KeySlotSummary {
  /** 32 hex digits; what `key remove` takes. */
  readonly slotId: string;
  readonly kind: KeySlotKindName;
  /** ISO 8601, UTC. */
  readonly created: string;
  readonly label: string;
  readonly status: KeySlotStatus;
  /** Passkey slots: the relying-party id. */
  readonly rpId?: string;
  /** Passkey slots: the credential id, base64url. */
  readonly credentialId?: string;
}

/** What {@link listKeySlots} returns. */
export interface KeySlotListing {
  /** The manifest's seq, 0 when the repository has none yet (no slot was ever added). */
  readonly manifestSeq: number;
  readonly slots: readonly KeySlotSummary[];
  /** Objects under `keys/` that are neither a slot nor the manifest. */
  readonly strayObjects: readonly string[];
}

/** How a key opened the repository. */
export interface Unlocked {
  /** The repository's backup key. */
  readonly backupKey: Uint8Array;
  /** `backup-key`: the key given is the backup key; `recovery-key`: it opened a slot. */
  readonly via: 'backup-key' | 'recovery-key';
  /** The slot used (recovery key only). */
  readonly slotId?: string;
}

function base64url(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function getOrUndefined(storage: Storage, name: string): Promise<Uint8Array | undefined> {
  try {
    return await storage.get(name);
  } catch (e) {
    if (e instanceof MissingObjectError) return undefined;
    throw e;
  }
}

/**
 * The `config` object's bytes.
 * @throws NoRepositoryError when there is none; UnavailableError from the store.
 */
export async function readConfigBytes(storage: Storage): Promise<Uint8Array> {
  const c = await getOrUndefined(storage, PREFIX.config);
  if (c === undefined) throw new NoRepositoryError(storage.location);
  return c;
}

/** The repo id after checking the backup key. */
async function openWithBackupKey(storage: Storage, backupKey: Uint8Array): Promise<Uint8Array> {
  const config = await readConfigBytes(storage);
  await assertBackupKey(backupKey, config, slotCrypto());
  return decodeConfig(config).repoId;
}

/** The manifest, refused when older than seen (a missing one is seq 0: also refused then). */
async function readManifest(
  storage: Storage,
  backupKey: Uint8Array,
  repoId: Uint8Array,
  o: KeySlotState,
): Promise<KeySlotManifest | undefined> {
  const sealed = await getOrUndefined(storage, KEY_SLOT_MANIFEST_NAME);
  const m =
    sealed === undefined
      ? undefined
      : await openKeySlotManifest(sealed, backupKey, repoId, slotCrypto());
  assertManifestNotOlder(m?.seq ?? 0, await seenSeq(o, repoId));
  if (m) await rememberSeq(o, repoId, m.seq);
  return m;
}

async function writeManifest(
  storage: Storage,
  backupKey: Uint8Array,
  repoId: Uint8Array,
  m: KeySlotManifest,
  o: KeySlotState,
): Promise<void> {
  await storage.put(
    KEY_SLOT_MANIFEST_NAME,
    await sealKeySlotManifest(m, backupKey, repoId, undefined, slotCrypto()),
  );
  await rememberSeq(o, repoId, m.seq);
}

function summary(
  info: KeySlotInfo | undefined,
  entry: KeySlotManifestEntry | undefined,
  slotId: string,
  status: KeySlotStatus,
): KeySlotSummary {
  const kind = (info?.kind ?? entry?.kind) as KeySlotKindName;
  const created = info?.created ?? entry?.created ?? 0;
  return {
    slotId,
    kind,
    created: new Date(created).toISOString(),
    label: entry?.label ?? '',
    status,
    ...(info?.kind === 'passkey'
      ? { rpId: info.rpId, credentialId: base64url(info.credentialId) }
      : {}),
  };
}

/**
 * Every key slot of the repository, compared with the manifest.
 * @throws WrongKeyError when `backupKey` is not the repository's backup key.
 * @throws CorruptBackupError when the manifest fails authentication.
 * @throws KeySlotMismatchError when the manifest is older than this device saw (`statePath`).
 * @throws NoRepositoryError, UnavailableError.
 */
export async function listKeySlots(
  storage: Storage,
  backupKey: Uint8Array,
  state: KeySlotState = {},
): Promise<KeySlotListing> {
  const repoId = await openWithBackupKey(storage, backupKey);
  const manifest = await readManifest(storage, backupKey, repoId, state);
  const stored = new Map<string, string>();
  const strayObjects: string[] = [];
  for await (const o of storage.list(PREFIX.keys)) {
    if (o.name === KEY_SLOT_MANIFEST_NAME) continue;
    const id = parseKeySlotName(o.name);
    if (id === undefined) strayObjects.push(o.name);
    else stored.set(id, o.name);
  }
  const slots: KeySlotSummary[] = [];
  const listed = new Map((manifest?.entries ?? []).map((e) => [toHex(e.slotId), e]));
  for (const [id, entry] of listed) {
    if (!stored.has(id)) {
      slots.push(summary(undefined, entry, id, 'missing'));
      continue;
    }
    const bytes = await getOrUndefined(storage, keySlotName(id));
    if (bytes === undefined) {
      slots.push(summary(undefined, entry, id, 'missing'));
      continue;
    }
    let info: KeySlotInfo | undefined;
    try {
      info = decodeKeySlot(bytes, keySlotName(id)).info;
    } catch {
      slots.push(summary(undefined, entry, id, 'changed'));
      continue;
    }
    const same =
      bytesEqual(await keySlotHash(bytes, slotCrypto()), entry.hash) && info.kind === entry.kind;
    slots.push(summary(info, entry, id, same ? 'ok' : 'changed'));
  }
  for (const id of stored.keys()) {
    if (listed.has(id)) continue;
    const bytes = await getOrUndefined(storage, keySlotName(id));
    if (bytes === undefined) continue;
    try {
      slots.push(summary(decodeKeySlot(bytes, keySlotName(id)).info, undefined, id, 'unlisted'));
    } catch {
      strayObjects.push(keySlotName(id));
    }
  }
  slots.sort((a, b) => a.created.localeCompare(b.created) || a.slotId.localeCompare(b.slotId));
  return { manifestSeq: manifest?.seq ?? 0, slots, strayObjects };
}

function checkLabel(label: string): void {
  if (utf8(label).length > MAX_SLOT_LABEL_BYTES) {
    throw new UsageError(`a slot label is at most ${MAX_SLOT_LABEL_BYTES} bytes`);
  }
}

/**
 * Store a slot object and list it in a new manifest (slot first, then manifest).
 * @throws KeySlotCorruptError when `slot` does not decode; UsageError when it is listed already.
 */
async function putSlot(
  storage: Storage,
  backupKey: Uint8Array,
  repoId: Uint8Array,
  slot: Uint8Array,
  label: string,
  o: KeySlotState,
): Promise<KeySlotSummary> {
  checkLabel(label);
  const { info } = decodeKeySlot(slot);
  return underKeySlotLock(storage, backupKey, repoId, () =>
    putListedSlot(storage, backupKey, repoId, slot, info, label, o),
  );
}

async function putListedSlot(
  storage: Storage,
  backupKey: Uint8Array,
  repoId: Uint8Array,
  slot: Uint8Array,
  info: KeySlotInfo,
  label: string,
  o: KeySlotState,
): Promise<KeySlotSummary> {
  const id = toHex(info.slotId);
  const manifest = await readManifest(storage, backupKey, repoId, o);
  if (manifest?.entries.some((e) => toHex(e.slotId) === id)) {
    throw new UsageError(`key slot ${id} is in the repository already`);
  }
  await storage.put(keySlotName(id), slot);
  const entry: KeySlotManifestEntry = {
    slotId: info.slotId,
    kind: info.kind,
    hash: await keySlotHash(slot, slotCrypto()),
    created: info.created,
    label,
  };
  const entries = [...(manifest?.entries ?? []), entry].sort((a, b) =>
    toHex(a.slotId) < toHex(b.slotId) ? -1 : 1,
  );
  await writeManifest(storage, backupKey, repoId, { seq: (manifest?.seq ?? 0) + 1, entries }, o);
  return summary(info, entry, id, 'ok');
}

/**
 * Add a recovery-key slot: a new random 64-digit key that opens the repository (it unwraps
 * the backup key) and can later be removed without changing the backup key.
 * @returns the new key (show it once; it is stored nowhere) and its slot.
 * @throws WrongKeyError when `backupKey` is not the repository's backup key.
 * @throws UsageError on a label over 200 bytes; NoRepositoryError, UnavailableError.
 * @throws ConflictError when another device's key-slot change holds the lock for 20 s.
 */
export async function addRecoveryKeySlot(
  storage: Storage,
  backupKey: Uint8Array,
  o: { label?: string; now?: number } & KeySlotState = {},
): Promise<{ recoveryKey: Uint8Array; slot: KeySlotSummary }> {
  checkLabel(o.label ?? '');
  const repoId = await openWithBackupKey(storage, backupKey);
  const crypto = slotCrypto();
  const recoveryKey = crypto.randomBytes(32);
  const slot = await sealKeySlot({
    info: {
      kind: 'recovery-key',
      slotId: await recoveryKeySlotId(recoveryKey, repoId, crypto),
      created: o.now ?? Date.now(),
    },
    backupKey,
    kek: await deriveKeySlotKek('recovery-key', recoveryKey, repoId, crypto),
    repoId,
    crypto,
  });
  return {
    recoveryKey,
    slot: await putSlot(storage, backupKey, repoId, slot, o.label ?? '', o),
  };
}

/**
 * Add a slot made elsewhere — a passkey slot from the browser SDK's `createPasskeySlot` —
 * after checking that it is well-formed.
 * @throws WrongKeyError when `backupKey` is not the repository's backup key.
 * @throws KeySlotCorruptError when `slot` does not decode; UsageError when already listed.
 * @throws ConflictError when another device's key-slot change holds the lock for 20 s.
 */
export async function addKeySlot(
  storage: Storage,
  backupKey: Uint8Array,
  slot: Uint8Array,
  o: { label?: string } & KeySlotState = {},
): Promise<KeySlotSummary> {
  const repoId = await openWithBackupKey(storage, backupKey);
  return putSlot(storage, backupKey, repoId, slot, o.label ?? '', o);
}

/**
 * Remove a slot (given by its id or a unique prefix of at least 4 hex digits): the manifest
 * stops listing it first, then its object is deleted. Also removes unlisted slot objects.
 * @throws WrongKeyError when `backupKey` is not the repository's backup key.
 * @throws NotFoundError when no slot matches; UsageError when the prefix is ambiguous.
 * @throws ConflictError when another device's key-slot change holds the lock for 20 s.
 */
export async function removeKeySlot(
  storage: Storage,
  backupKey: Uint8Array,
  slotIdOrPrefix: string,
  o: KeySlotState = {},
): Promise<KeySlotSummary> {
  const want = slotIdOrPrefix.trim().toLowerCase();
  if (!/^[0-9a-f]{4,32}$/.test(want)) {
    throw new UsageError('a slot id is 4 to 32 hexadecimal digits (as `listKeySlots()` shows it)');
  }
  const repoId = await openWithBackupKey(storage, backupKey);
  return underKeySlotLock(storage, backupKey, repoId, () =>
    removeListedSlot(storage, backupKey, repoId, want, o),
  );
}

async function removeListedSlot(
  storage: Storage,
  backupKey: Uint8Array,
  repoId: Uint8Array,
  want: string,
  o: KeySlotState,
): Promise<KeySlotSummary> {
  const listing = await listKeySlots(storage, backupKey, o);
  const matches = listing.slots.filter((s) => s.slotId.startsWith(want));
  if (matches.length === 0) {
    throw new NotFoundError(`no key slot ${want} in this repository`, HINTS.keySlotSee);
  }
  if (matches.length > 1) {
    throw new UsageError(`slot id ${want} is ambiguous: give more digits`);
  }
  const target = matches[0] as KeySlotSummary;
  const manifest = await readManifest(storage, backupKey, repoId, o);
  if (manifest?.entries.some((e) => toHex(e.slotId) === target.slotId)) {
    const entries = manifest.entries.filter((e) => toHex(e.slotId) !== target.slotId);
    await writeManifest(storage, backupKey, repoId, { seq: manifest.seq + 1, entries }, o);
  }
  await storage.delete(keySlotName(target.slotId));
  return target;
}

/**
 * Open the repository with a 64-digit key that is either the backup key or an added
 * recovery key: the key check first, then the recovery-key slot derived from the key, its
 * unwrapped key checked against the config (constant time) and the manifest.
 * @throws NoRepositoryError when there is no repository.
 * @throws WrongKeyError when the key is neither the backup key nor a recovery key here.
 * @throws KeySlotCorruptError / KeySlotMismatchError when its slot was damaged, swapped or
 *   is no longer listed (never a wrong key).
 * @throws CorruptBackupError (malformed config or manifest), UnavailableError.
 */
export async function unlockWithKey(
  storage: Storage,
  key: Uint8Array,
  o: KeySlotState = {},
): Promise<Unlocked> {
  const config = await readConfigBytes(storage);
  const crypto = slotCrypto();
  if (await checkBackupKey(key, config, crypto)) return { backupKey: key, via: 'backup-key' };
  const repoId = decodeConfig(config).repoId;
  const slotId = await recoveryKeySlotId(key, repoId, crypto);
  const name = keySlotName(slotId);
  const slot = await getOrUndefined(storage, name);
  if (slot === undefined) {
    throw new WrongKeyError(
      'this key does not open this repository (it is neither its backup key nor an added recovery key)',
    );
  }
  const { info, backupKey } = await openKeySlot(
    slot,
    await deriveKeySlotKek('recovery-key', key, repoId, crypto),
    repoId,
    name,
    crypto,
  );
  if (info.kind !== 'recovery-key') {
    throw new KeySlotCorruptError('slot is not a recovery-key slot', name);
  }
  await verifyAndRemember(storage, o, { config, repoId, slot, info, backupKey });
  return { backupKey, via: 'recovery-key', slotId: toHex(slotId) };
}

/**
 * Check an unwrapped key against the config and the manifest (and, with a state file, the
 * highest manifest seq this device saw), then remember the manifest's seq.
 * @throws KeySlotCorruptError, KeySlotMismatchError, CorruptBackupError.
 */
async function verifyAndRemember(
  storage: Storage,
  o: KeySlotState,
  u: {
    config: Uint8Array;
    repoId: Uint8Array;
    slot: Uint8Array;
    info: KeySlotInfo;
    backupKey: Uint8Array;
  },
): Promise<void> {
  const { manifestSeq } = await verifyKeySlotUnlock({
    config: u.config,
    manifest: await getOrUndefined(storage, KEY_SLOT_MANIFEST_NAME),
    slot: u.slot,
    info: u.info,
    backupKey: u.backupKey,
    crypto: slotCrypto(),
    ...(o.statePath !== undefined ? { seenManifestSeq: await seenSeq(o, u.repoId) } : {}),
  });
  await rememberSeq(o, u.repoId, manifestSeq);
}

/**
 * The bytes of every passkey slot in the store, for the browser SDK's `openPasskeySlot`
 * (which slot opens is decided by the user's passkey; the manifest is checked after).
 * Slot objects that do not decode are left out.
 * @throws UnavailableError.
 */
export async function readPasskeySlots(storage: Storage): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const o of storage.list(PREFIX.keys)) {
    if (parseKeySlotName(o.name) === undefined) continue;
    const bytes = await getOrUndefined(storage, o.name);
    if (bytes === undefined) continue;
    try {
      if (decodeKeySlot(bytes, o.name).info.kind === 'passkey') out.push(bytes);
    } catch {
      // A damaged slot cannot be offered to a passkey; `key list` reports it.
    }
  }
  return out;
}

/**
 * After a slot was opened elsewhere (a passkey in the browser): check the unwrapped key
 * against this store's config and manifest.
 * @throws KeySlotCorruptError, KeySlotMismatchError, CorruptBackupError, NoRepositoryError.
 */
export async function verifyUnlockedSlot(
  storage: Storage,
  slot: Uint8Array,
  backupKey: Uint8Array,
  o: KeySlotState = {},
): Promise<void> {
  const { info } = decodeKeySlot(slot);
  const config = await readConfigBytes(storage);
  const repoId = decodeConfig(config).repoId;
  await verifyAndRemember(storage, o, { config, repoId, slot, info, backupKey });
}
