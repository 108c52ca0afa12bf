/**
 * Key slots: more ways into one repository without changing its backup key (SPEC.md §18).
 *
 * A key slot (object `keys/<32 hex>`) wraps the 32-byte backup key for one protector under a
 * key-encryption key (KEK) that only that protector can produce:
 *
 *   KEK = HKDF-SHA256(ikm = protector secret, salt = repo id,
 *                     info = "backvault/v1/key-slot/" || kind label, L = 32)
 *
 * - `recovery-key`: the secret is an additional random 64-digit key (like a second LUKS
 *   passphrase, but 256 random bits: nothing to guess offline). Its slot id is derived from
 *   it, so the slot is found without trying every slot.
 * - `passkey`: the secret is the 32-byte WebAuthn PRF output of one credential on a random
 *   32-byte salt stored in the slot; it never leaves the authenticator's device.
 *
 * Slot object = header (clear) || nonce (12) || wrapped key (32) || tag (16), sealed with
 * AES-256-GCM under the KEK with AD = objectAd(KEY_SLOT, repo id) || header, so the slot's
 * id, kind, repository, credential id, relying party and salt cannot be changed or moved.
 *
 * The manifest (object `keys/manifest`) is sealed under the backup key's `meta` subkey and
 * lists every slot (id, kind, SHA-256 of the slot object, creation time, label). A slot is
 * used only when the manifest lists it with exactly its bytes, and the key it unwraps passes
 * the config's key check (constant time): so a store that deletes, swaps or puts back a slot
 * causes a clear error (NO_KEY_SLOT, KEY_SLOT_CORRUPT, KEY_SLOT_MISMATCH), never a wrong key.
 *
 * There is deliberately no password slot: a slot under a password-derived KEK could be
 * guessed offline by anyone who reads the store, which is what the vault exists to prevent.
 *
 * Crypto: every function that derives, seals, opens or hashes takes a {@link FormatCrypto}
 * as its last (optional) argument — WebCrypto where the engine has it, by default; the
 * engine passes its own provider (`nodeCrypto`, or `nobleCrypto()` on Hermes, which has no
 * WebCrypto). No `node:` imports. The key check compares in constant style ({@link macEqual}).
 */
import {
  BackvaultError,
  CorruptBackupError,
  KeySlotCorruptError,
  KeySlotMismatchError,
  WrongKeyError,
} from '../errors.js';
import {
  ByteReader,
  ByteWriter,
  bytesEqual,
  concatBytes,
  isLowerHex,
  toHex,
  utf8,
} from './bytes.js';
import { decodeConfig } from './config.js';
import {
  FORMAT_VERSION,
  NONCE_BYTES,
  ObjectKind,
  PREFIX,
  REPO_ID_BYTES,
  TAG_BYTES,
} from './constants.js';
import { BACKUP_KEY_BYTES } from './key-encoding.js';
import {
  deriveSubkey,
  keyCheckValue,
  macEqual,
  openWeb,
  sealWeb,
  webFormatCrypto,
  type FormatCrypto,
} from './key-schedule.js';
import { objectAd } from './sealed.js';

/** ASCII magic at the start of every key slot object. */
export const KEY_SLOT_MAGIC = utf8('BVKEYSLT');
/** Bytes of a slot id (32 hex digits in the object name). */
export const KEY_SLOT_ID_BYTES = 16;
/** Bytes of a passkey slot's PRF salt. */
export const PRF_SALT_BYTES = 32;
/** Bytes of a WebAuthn PRF output (and of every slot secret). */
export const SLOT_SECRET_BYTES = 32;
/** Bytes of the sealed wrapped key at the end of every slot: nonce, key, tag. */
export const WRAPPED_KEY_BYTES = NONCE_BYTES + BACKUP_KEY_BYTES + TAG_BYTES;
/** Longest credential id WebAuthn allows (bytes). */
export const MAX_CREDENTIAL_ID_BYTES = 1023;
/** Longest relying-party id (a DNS name, bytes). */
export const MAX_RP_ID_BYTES = 253;
/** Longest label of a manifest entry (UTF-8 bytes). */
export const MAX_SLOT_LABEL_BYTES = 200;
/** Most slots one manifest lists. */
export const MAX_KEY_SLOTS = 1024;
/** Object name of the manifest. */
export const KEY_SLOT_MANIFEST_NAME = `${PREFIX.keys}manifest`;

/** Kinds of key slot and their byte values. */
export const KeySlotKind = {
  'recovery-key': 1,
  passkey: 2,
} as const;

/** The name of a key slot kind. */
export type KeySlotKindName = keyof typeof KeySlotKind;

/** HKDF info of each kind's KEK. */
export const KEY_SLOT_KEK_INFO: Readonly<Record<KeySlotKindName, string>> = {
  'recovery-key': 'backvault/v1/key-slot/recovery-key',
  passkey: 'backvault/v1/key-slot/passkey',
};

/** HKDF info of the slot id derived from a recovery key. */
export const RECOVERY_KEY_SLOT_ID_INFO = 'backvault/v1/key-slot-id/recovery-key';

/** The clear fields of a slot, by kind. */
export type KeySlotInfo =
  | {
      readonly kind: 'recovery-key';
      readonly slotId: Uint8Array;
      /** Milliseconds since the Unix epoch. */
      readonly created: number;
    }
  | {
      readonly kind: 'passkey';
      readonly slotId: Uint8Array;
      readonly created: number;
      /** WebAuthn relying-party id the credential is scoped to (e.g. `example.com`). */
      readonly rpId: string;
      /** The credential's raw id. */
      readonly credentialId: Uint8Array;
      /** The PRF input (`prf.eval.first`) whose output derives the KEK. */
      readonly prfSalt: Uint8Array;
    };

/** A decoded (not yet opened) slot object. */
export interface DecodedKeySlot {
  readonly info: KeySlotInfo;
  /** The clear header bytes (bound into the AD). */
  readonly header: Uint8Array;
  /** nonce || wrapped key || tag. */
  readonly wrapped: Uint8Array;
}

/** One manifest entry. */
export interface KeySlotManifestEntry {
  readonly slotId: Uint8Array;
  readonly kind: KeySlotKindName;
  /** SHA-256 of the slot object's stored bytes. */
  readonly hash: Uint8Array;
  readonly created: number;
  /** A name for people (`key add --label`); may be empty. */
  readonly label: string;
}

/** The decoded manifest. */
export interface KeySlotManifest {
  /** 1 for the first manifest, +1 on every change. */
  readonly seq: number;
  /** Sorted by slot id, strictly ascending. */
  readonly entries: readonly KeySlotManifestEntry[];
}

function kindName(v: number): KeySlotKindName | undefined {
  for (const [name, value] of Object.entries(KeySlotKind)) {
    if (value === v) return name as KeySlotKindName;
  }
  return undefined;
}

async function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string,
  bytes: number,
  crypto: FormatCrypto,
): Promise<Uint8Array> {
  return crypto.hkdfSha256(ikm, salt, utf8(info), bytes);
}

function checkRepoId(repoId: Uint8Array): void {
  if (repoId.length !== REPO_ID_BYTES) throw new TypeError('repo id must be 16 bytes');
}

/** Object name of a slot: `keys/` and its id as 32 lowercase hex digits. */
export function keySlotName(slotId: Uint8Array | string): string {
  const hex = typeof slotId === 'string' ? slotId : toHex(slotId);
  if (!isLowerHex(hex, KEY_SLOT_ID_BYTES)) throw new TypeError('a slot id is 16 bytes');
  return PREFIX.keys + hex;
}

/** The slot id (hex) of a slot object name, or `undefined` when it is not one. */
export function parseKeySlotName(name: string): string | undefined {
  if (!name.startsWith(PREFIX.keys)) return undefined;
  const hex = name.slice(PREFIX.keys.length);
  return isLowerHex(hex, KEY_SLOT_ID_BYTES) ? hex : undefined;
}

/**
 * The key-encryption key of a slot of `kind` from its protector's 32-byte secret (the
 * recovery key, or the passkey's PRF output).
 * @throws TypeError on wrong lengths (programming errors).
 */
export async function deriveKeySlotKek(
  kind: KeySlotKindName,
  secret: Uint8Array,
  repoId: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<Uint8Array> {
  checkRepoId(repoId);
  if (secret.length !== SLOT_SECRET_BYTES) throw new TypeError('a slot secret is 32 bytes');
  return hkdf(secret, repoId, KEY_SLOT_KEK_INFO[kind], 32, crypto);
}

/**
 * The slot id of a recovery key in a repository: the first 16 bytes of
 * HKDF-SHA256(recovery key, repo id, "backvault/v1/key-slot-id/recovery-key").
 * @throws TypeError on wrong lengths (programming errors).
 */
export async function recoveryKeySlotId(
  recoveryKey: Uint8Array,
  repoId: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<Uint8Array> {
  checkRepoId(repoId);
  if (recoveryKey.length !== BACKUP_KEY_BYTES) throw new TypeError('a recovery key is 32 bytes');
  return hkdf(recoveryKey, repoId, RECOVERY_KEY_SLOT_ID_INFO, KEY_SLOT_ID_BYTES, crypto);
}

/**
 * The clear header of a slot.
 * @throws TypeError on out-of-range fields (programming errors).
 */
export function encodeKeySlotHeader(info: KeySlotInfo): Uint8Array {
  if (info.slotId.length !== KEY_SLOT_ID_BYTES) throw new TypeError('a slot id is 16 bytes');
  if (!Number.isSafeInteger(info.created) || info.created < 0) {
    throw new TypeError('created must be a non-negative integer');
  }
  const w = new ByteWriter(128)
    .bytes(KEY_SLOT_MAGIC)
    .u8(FORMAT_VERSION)
    .u8(KeySlotKind[info.kind])
    .bytes(info.slotId)
    .u64(info.created);
  if (info.kind === 'passkey') {
    const rp = utf8(info.rpId);
    if (rp.length < 1 || rp.length > MAX_RP_ID_BYTES) throw new TypeError('bad rp id length');
    const cid = info.credentialId;
    if (cid.length < 1 || cid.length > MAX_CREDENTIAL_ID_BYTES) {
      throw new TypeError('bad credential id length');
    }
    if (info.prfSalt.length !== PRF_SALT_BYTES) throw new TypeError('a PRF salt is 32 bytes');
    w.u8(rp.length).bytes(rp).u16(cid.length).bytes(cid).bytes(info.prfSalt);
  }
  return w.finish().slice();
}

/** AD of a slot: objectAd(KEY_SLOT, repo id) || header. */
export function keySlotAd(repoId: Uint8Array, header: Uint8Array): Uint8Array {
  return concatBytes(objectAd(ObjectKind.KEY_SLOT, repoId), header);
}

/**
 * Seal a slot: wrap `backupKey` under `kek` for the slot described by `info`.
 * `nonce` is for test vectors only; default random. `crypto`: default WebCrypto.
 * @returns the slot object's bytes.
 * @throws TypeError on wrong lengths (programming errors).
 */
export async function sealKeySlot(o: {
  info: KeySlotInfo;
  backupKey: Uint8Array;
  kek: Uint8Array;
  repoId: Uint8Array;
  nonce?: Uint8Array;
  crypto?: FormatCrypto;
}): Promise<Uint8Array> {
  checkRepoId(o.repoId);
  if (o.backupKey.length !== BACKUP_KEY_BYTES) throw new TypeError('a backup key is 32 bytes');
  const header = encodeKeySlotHeader(o.info);
  const wrapped = await sealWeb(
    o.kek,
    keySlotAd(o.repoId, header),
    o.backupKey,
    o.nonce,
    o.crypto ?? webFormatCrypto(),
  );
  return concatBytes(header, wrapped);
}

/**
 * Decode a slot object's clear fields (nothing is authenticated yet).
 * @param object - the object name, for messages; when it is a slot name, the id inside must
 *   equal the id in the name (a slot moved under another name is swapped).
 * @throws KeySlotCorruptError on anything malformed or moved.
 */
export function decodeKeySlot(bytes: Uint8Array, object?: string): DecodedKeySlot {
  try {
    const r: ByteReader = new ByteReader(bytes, object);
    if (!bytesEqual(r.bytes(8), KEY_SLOT_MAGIC)) r.fail('not a key slot (bad magic)');
    const version = r.u8();
    if (version !== FORMAT_VERSION) r.fail(`unsupported key slot version ${version}`);
    const kind = kindName(r.u8());
    if (kind === undefined) r.fail('unknown key slot kind');
    const slotId = r.bytes(KEY_SLOT_ID_BYTES).slice();
    const created = r.u64();
    let info: KeySlotInfo;
    if (kind === 'passkey') {
      const rpLen = r.u8();
      if (rpLen < 1 || rpLen > MAX_RP_ID_BYTES) r.fail('bad relying-party id length');
      const rpId = r.utf8(rpLen);
      const cidLen = r.u16();
      if (cidLen < 1 || cidLen > MAX_CREDENTIAL_ID_BYTES) r.fail('bad credential id length');
      const credentialId = r.bytes(cidLen).slice();
      const prfSalt = r.bytes(PRF_SALT_BYTES).slice();
      info = { kind, slotId, created, rpId, credentialId, prfSalt };
    } else {
      info = { kind, slotId, created };
    }
    if (r.remaining !== WRAPPED_KEY_BYTES) r.fail('wrapped key has the wrong length');
    const headerLength = bytes.length - WRAPPED_KEY_BYTES;
    const named = object === undefined ? undefined : parseKeySlotName(object);
    if (named !== undefined && named !== toHex(slotId)) {
      r.fail('slot is stored under another slot id (swapped)');
    }
    return {
      info,
      header: bytes.slice(0, headerLength),
      wrapped: bytes.slice(headerLength),
    };
  } catch (e) {
    if (e instanceof CorruptBackupError) {
      throw new KeySlotCorruptError(e.message.replace(/ \([^)]*\)$/, ''), object);
    }
    throw e;
  }
}

/**
 * Open a slot with its KEK: the wrapped backup key. The caller still checks the key against
 * the config ({@link checkBackupKey}) and the slot against the manifest.
 * @throws KeySlotCorruptError when the slot is malformed, moved, or fails authentication
 *   (damaged, swapped, of another repository, or opened with another KEK).
 */
export async function openKeySlot(
  bytes: Uint8Array,
  kek: Uint8Array,
  repoId: Uint8Array,
  object?: string,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<{ info: KeySlotInfo; backupKey: Uint8Array }> {
  const slot = decodeKeySlot(bytes, object);
  try {
    const backupKey = await openWeb(
      kek,
      keySlotAd(repoId, slot.header),
      slot.wrapped,
      object,
      crypto,
    );
    return { info: slot.info, backupKey };
  } catch (e) {
    if (e instanceof CorruptBackupError) {
      throw new KeySlotCorruptError(
        'key slot does not open: damaged, swapped, of another repository, or not this protector’s slot',
        object,
      );
    }
    throw e;
  }
}

/**
 * True when `backupKey` passes the key check of `config` (compared in constant style).
 * @throws CorruptBackupError when `config` is malformed.
 */
export async function checkBackupKey(
  backupKey: Uint8Array,
  config: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<boolean> {
  if (backupKey.length !== BACKUP_KEY_BYTES) return false;
  const c = decodeConfig(config);
  return macEqual(await keyCheckValue(backupKey, c.repoId, c.version, crypto), c.keyCheck);
}

/**
 * The manifest's plaintext.
 * @throws TypeError on out-of-range fields, unsorted or duplicate ids (programming errors).
 */
export function encodeKeySlotManifest(m: KeySlotManifest): Uint8Array {
  if (!Number.isSafeInteger(m.seq) || m.seq < 1) throw new TypeError('seq must be >= 1');
  if (m.entries.length > MAX_KEY_SLOTS) throw new TypeError('too many key slots');
  const w = new ByteWriter(64 + m.entries.length * 80)
    .u8(FORMAT_VERSION)
    .u64(m.seq)
    .u32(m.entries.length);
  let prev: string | undefined;
  for (const e of m.entries) {
    const id = toHex(e.slotId);
    if (e.slotId.length !== KEY_SLOT_ID_BYTES || e.hash.length !== 32) {
      throw new TypeError('bad manifest entry length');
    }
    if (prev !== undefined && id <= prev) throw new TypeError('manifest entries must be sorted');
    prev = id;
    const label = utf8(e.label);
    if (label.length > MAX_SLOT_LABEL_BYTES) throw new TypeError('label too long');
    w.bytes(e.slotId).u8(KeySlotKind[e.kind]).bytes(e.hash).u64(e.created);
    w.u16(label.length).bytes(label);
  }
  return w.finish().slice();
}

/**
 * Decode the manifest's plaintext.
 * @throws CorruptBackupError on anything malformed, unsorted or duplicated.
 */
export function decodeKeySlotManifest(
  plain: Uint8Array,
  object = KEY_SLOT_MANIFEST_NAME,
): KeySlotManifest {
  const r: ByteReader = new ByteReader(plain, object);
  const version = r.u8();
  if (version !== FORMAT_VERSION) r.fail(`unsupported manifest version ${version}`);
  const seq = r.u64();
  if (seq < 1) r.fail('manifest seq must be at least 1');
  const count = r.u32();
  if (count > MAX_KEY_SLOTS) r.fail('too many key slots');
  const entries: KeySlotManifestEntry[] = [];
  let prev: string | undefined;
  for (let i = 0; i < count; i++) {
    const slotId = r.bytes(KEY_SLOT_ID_BYTES).slice();
    const id = toHex(slotId);
    if (prev !== undefined && id <= prev) r.fail('manifest entries are not sorted or repeat');
    prev = id;
    const kind = kindName(r.u8());
    if (kind === undefined) r.fail('unknown key slot kind in manifest');
    const hash = r.bytes(32).slice();
    const created = r.u64();
    const labelLen = r.u16();
    if (labelLen > MAX_SLOT_LABEL_BYTES) r.fail('label too long');
    entries.push({ slotId, kind, hash, created, label: r.utf8(labelLen) });
  }
  r.end();
  return { seq, entries };
}

/**
 * Seal the manifest under the backup key's `meta` subkey, AD objectAd(KEY_MANIFEST, repo id).
 * `nonce` is for test vectors only.
 */
export async function sealKeySlotManifest(
  m: KeySlotManifest,
  backupKey: Uint8Array,
  repoId: Uint8Array,
  nonce?: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<Uint8Array> {
  const meta = await deriveSubkey(backupKey, repoId, 'meta', crypto);
  return sealWeb(
    meta,
    objectAd(ObjectKind.KEY_MANIFEST, repoId),
    encodeKeySlotManifest(m),
    nonce,
    crypto,
  );
}

/**
 * Open and decode the manifest.
 * @throws CorruptBackupError when it fails authentication or does not parse.
 */
export async function openKeySlotManifest(
  sealed: Uint8Array,
  backupKey: Uint8Array,
  repoId: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<KeySlotManifest> {
  const meta = await deriveSubkey(backupKey, repoId, 'meta', crypto);
  const plain = await openWeb(
    meta,
    objectAd(ObjectKind.KEY_MANIFEST, repoId),
    sealed,
    KEY_SLOT_MANIFEST_NAME,
    crypto,
  );
  return decodeKeySlotManifest(plain);
}

/** SHA-256 of a slot object (what the manifest records). */
export async function keySlotHash(
  slot: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<Uint8Array> {
  return crypto.sha256(slot);
}

/**
 * Check that the manifest lists this slot, with its kind and exactly these bytes.
 * @throws KeySlotMismatchError otherwise.
 */
export async function assertSlotListed(
  manifest: KeySlotManifest,
  info: KeySlotInfo,
  slot: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<KeySlotManifestEntry> {
  const id = toHex(info.slotId);
  const entry = manifest.entries.find((e) => toHex(e.slotId) === id);
  if (!entry) {
    throw new KeySlotMismatchError(
      `key slot ${id} is not in the manifest: it was removed, or the store put it back`,
    );
  }
  if (entry.kind !== info.kind) {
    throw new KeySlotMismatchError(`key slot ${id} has another kind than the manifest lists`);
  }
  if (!bytesEqual(entry.hash, await keySlotHash(slot, crypto))) {
    throw new KeySlotMismatchError(`key slot ${id} is not the slot the manifest lists (replaced)`);
  }
  return entry;
}

/**
 * Everything that makes an unwrapped key usable, in order: it passes the config's key check,
 * and the manifest (opened with it) lists the slot with exactly these bytes, and is not
 * older than one this device saw. The one check every unlock through a slot goes through
 * (CLI, engine, browser SDK).
 * @param o - `manifest`: the stored `keys/manifest`, or `undefined` when the store has none.
 *   `seenManifestSeq`: the highest manifest seq this device saw, if it keeps one: an
 *   older manifest may list a slot removed since (a replay). `crypto`: default WebCrypto.
 * @returns the slot's manifest entry and the manifest's seq (to remember).
 * @throws KeySlotCorruptError when the key does not pass the key check.
 * @throws KeySlotMismatchError when the manifest is missing, older than seen, or does not
 *   list this slot.
 * @throws CorruptBackupError when config or manifest are malformed or fail authentication.
 */
export async function verifyKeySlotUnlock(o: {
  config: Uint8Array;
  manifest: Uint8Array | undefined;
  slot: Uint8Array;
  info: KeySlotInfo;
  backupKey: Uint8Array;
  seenManifestSeq?: number;
  crypto?: FormatCrypto;
}): Promise<{ entry: KeySlotManifestEntry; manifestSeq: number }> {
  const crypto = o.crypto ?? webFormatCrypto();
  const name = keySlotName(o.info.slotId);
  if (!(await checkBackupKey(o.backupKey, o.config, crypto))) {
    throw new KeySlotCorruptError('the key in this slot does not open the repository', name);
  }
  if (o.manifest === undefined) {
    throw new KeySlotMismatchError(
      `the key slot manifest (${KEY_SLOT_MANIFEST_NAME}) is missing, so slot ${toHex(o.info.slotId)} cannot be trusted`,
    );
  }
  const repoId = decodeConfig(o.config).repoId;
  const m = await openKeySlotManifest(o.manifest, o.backupKey, repoId, crypto);
  assertManifestNotOlder(m.seq, o.seenManifestSeq);
  return { entry: await assertSlotListed(m, o.info, o.slot, crypto), manifestSeq: m.seq };
}

/**
 * @throws KeySlotMismatchError when `seq` is below the highest manifest seq this device saw.
 */
export function assertManifestNotOlder(seq: number, seen: number | undefined): void {
  if (seen !== undefined && seq < seen) {
    throw new KeySlotMismatchError(
      `the store serves an older key slot manifest (seq ${seq}) than this device saw (seq ${seen}): a removed slot may have been put back`,
    );
  }
}

/**
 * Throws `WrongKeyError` unless `backupKey` passes the config's key check.
 * @throws WrongKeyError, CorruptBackupError (malformed config).
 */
export async function assertBackupKey(
  backupKey: Uint8Array,
  config: Uint8Array,
  crypto: FormatCrypto = webFormatCrypto(),
): Promise<void> {
  if (!(await checkBackupKey(backupKey, config, crypto))) throw new WrongKeyError();
}

/** True when `e` is one of the key-slot errors (for callers that fall through to others). */
export function isKeySlotError(e: unknown): e is BackvaultError {
  return (
    e instanceof BackvaultError &&
    (e.code === 'NO_KEY_SLOT' || e.code === 'KEY_SLOT_CORRUPT' || e.code === 'KEY_SLOT_MISMATCH')
  );
}
