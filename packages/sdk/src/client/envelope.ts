/**
 * The device-side cryptography of the vault protocol (WebCrypto only, browser-safe):
 *
 * - **Key envelope** (client format, opaque to the vault). Version 1, 65 bytes:
 *
 *   | offset | size | field |
 *   |---|---|---|
 *   | 0 | 4 | magic `BVKE` (ASCII) |
 *   | 4 | 1 | version `0x01` |
 *   | 5 | 12 | AES-GCM nonce (random) |
 *   | 17 | 32 | AES-256-GCM ciphertext of the 32-byte backup key |
 *   | 49 | 16 | GCM tag |
 *
 *   Key: `HKDF-SHA-256(ikm = OPAQUE exportKey (64 bytes), salt = empty,
 *   info = "backvault/client/envelope/v1", 32 bytes)`. Associated data: the 5 header bytes,
 *   so the version cannot be swapped without detection. The export key never leaves the
 *   device and is stable for a given password and record, so only a device that knows the
 *   password can open the envelope; a new record (password change) means a new export key.
 *
 * - **Released envelope** (wire doc "Envelope release"): `nonce(12) || ct || tag(16)` under
 *   `HKDF-SHA-256(sessionKey, salt = empty, info = ENVELOPE_RELEASE_INFO)`, AAD = that info.
 *
 * - **Key proof** (wire doc "Key proof"): `HKDF-SHA-256(backupKey, salt = empty,
 *   info = KEY_PROOF_INFO, 32 bytes)`.
 */
import { CorruptBackupError, InvalidKeyError, UnsupportedVersionError } from '../errors.js';
import {
  ENVELOPE_RELEASE_INFO,
  HEAD_RELEASE_INFO,
  KEY_PROOF_INFO,
  SnapshotHead,
} from '../wire/index.js';
import { Value } from '../vendor/typebox.js';
import { utf8Bytes } from './encoding.js';

/** HKDF info (and part of the meaning of the AAD) of the client key envelope. */
export const KEY_ENVELOPE_INFO = 'backvault/client/envelope/v1';
/** The 4 magic bytes that start a key envelope: ASCII `BVKE`. */
export const KEY_ENVELOPE_MAGIC = Uint8Array.of(0x42, 0x56, 0x4b, 0x45);
/** The only key envelope version this build writes and reads. */
export const KEY_ENVELOPE_VERSION = 1;
/** Header length (magic + version). */
export const KEY_ENVELOPE_HEADER_BYTES = 5;
/** Total length of a version-1 envelope around a 32-byte key. */
export const KEY_ENVELOPE_BYTES = KEY_ENVELOPE_HEADER_BYTES + 12 + 32 + 16;

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const BACKUP_KEY_BYTES = 32;
const ENVELOPE_OBJECT = 'vault key envelope';

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (crypto.subtle) is not available in this environment');
  return s;
}

// WebCrypto wants an ArrayBuffer-backed view; a copy also detaches us from caller buffers.
function ab(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** HKDF-SHA-256 with an empty salt, 32 bytes out. */
export async function hkdf32(ikm: Uint8Array, info: string): Promise<Uint8Array> {
  const key = await subtle().importKey('raw', ab(ikm), 'HKDF', false, ['deriveBits']);
  const bits = await subtle().deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: ab(utf8Bytes(info)) },
    key,
    256,
  );
  return new Uint8Array(bits);
}

async function aesKey(raw: Uint8Array, use: 'encrypt' | 'decrypt'): Promise<CryptoKey> {
  return subtle().importKey('raw', ab(raw), 'AES-GCM', false, [use]);
}

function assertBackupKey(backupKey: Uint8Array): void {
  if (backupKey.length !== BACKUP_KEY_BYTES) {
    throw new InvalidKeyError(`a backup key is ${BACKUP_KEY_BYTES} bytes, got ${backupKey.length}`);
  }
}

/**
 * Seals the backup key under the OPAQUE export key (version-1 envelope, 65 bytes).
 * @throws InvalidKeyError when `backupKey` is not 32 bytes.
 */
export async function sealKeyEnvelope(
  exportKey: Uint8Array,
  backupKey: Uint8Array,
): Promise<Uint8Array> {
  assertBackupKey(backupKey);
  const header = new Uint8Array(KEY_ENVELOPE_HEADER_BYTES);
  header.set(KEY_ENVELOPE_MAGIC);
  header[4] = KEY_ENVELOPE_VERSION;
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const k = await aesKey(await hkdf32(exportKey, KEY_ENVELOPE_INFO), 'encrypt');
  const ct = new Uint8Array(
    await subtle().encrypt(
      { name: 'AES-GCM', iv: nonce, additionalData: header, tagLength: 128 },
      k,
      ab(backupKey),
    ),
  );
  const out = new Uint8Array(header.length + nonce.length + ct.length);
  out.set(header, 0);
  out.set(nonce, header.length);
  out.set(ct, header.length + nonce.length);
  return out;
}

/**
 * Opens a key envelope with the OPAQUE export key and returns the 32-byte backup key.
 * @throws UnsupportedVersionError for an envelope of a newer version.
 * @throws CorruptBackupError when the envelope is malformed or does not authenticate (after
 *   a successful OPAQUE login this means the vault returned damaged or foreign data).
 */
export async function openKeyEnvelope(
  exportKey: Uint8Array,
  envelope: Uint8Array,
): Promise<Uint8Array> {
  if (
    envelope.length < KEY_ENVELOPE_HEADER_BYTES ||
    KEY_ENVELOPE_MAGIC.some((b, i) => envelope[i] !== b)
  ) {
    throw new CorruptBackupError('the key envelope is not a backvault envelope', ENVELOPE_OBJECT);
  }
  if (envelope[4] !== KEY_ENVELOPE_VERSION) {
    throw new UnsupportedVersionError(
      `key envelope version ${envelope[4] ?? '?'} is not supported (this build reads version ${KEY_ENVELOPE_VERSION})`,
    );
  }
  if (envelope.length !== KEY_ENVELOPE_BYTES) {
    throw new CorruptBackupError('the key envelope has the wrong length', ENVELOPE_OBJECT);
  }
  const header = envelope.subarray(0, KEY_ENVELOPE_HEADER_BYTES);
  const nonce = envelope.subarray(
    KEY_ENVELOPE_HEADER_BYTES,
    KEY_ENVELOPE_HEADER_BYTES + NONCE_BYTES,
  );
  const k = await aesKey(await hkdf32(exportKey, KEY_ENVELOPE_INFO), 'decrypt');
  try {
    const key = new Uint8Array(
      await subtle().decrypt(
        { name: 'AES-GCM', iv: ab(nonce), additionalData: ab(header), tagLength: 128 },
        k,
        ab(envelope.subarray(KEY_ENVELOPE_HEADER_BYTES + NONCE_BYTES)),
      ),
    );
    assertBackupKey(key);
    return key;
  } catch (e) {
    if (e instanceof InvalidKeyError) throw e;
    throw new CorruptBackupError('the key envelope does not authenticate', ENVELOPE_OBJECT);
  }
}

/**
 * Opens the envelope as released by login finish (encrypted under the OPAQUE session key).
 * @throws CorruptBackupError when it is too short or does not authenticate.
 */
export async function openReleasedEnvelope(
  sessionKey: Uint8Array,
  released: Uint8Array,
): Promise<Uint8Array> {
  if (released.length < NONCE_BYTES + TAG_BYTES + 1) {
    throw new CorruptBackupError('the released key envelope is too short', ENVELOPE_OBJECT);
  }
  const info = utf8Bytes(ENVELOPE_RELEASE_INFO);
  const k = await aesKey(await hkdf32(sessionKey, ENVELOPE_RELEASE_INFO), 'decrypt');
  try {
    return new Uint8Array(
      await subtle().decrypt(
        {
          name: 'AES-GCM',
          iv: ab(released.subarray(0, NONCE_BYTES)),
          additionalData: ab(info),
          tagLength: 128,
        },
        k,
        ab(released.subarray(NONCE_BYTES)),
      ),
    );
  } catch {
    throw new CorruptBackupError(
      'the released key envelope does not authenticate',
      ENVELOPE_OBJECT,
    );
  }
}

/**
 * Opens the snapshot head the vault released with the envelope (wire doc "Snapshot
 * head"): `nonce(12) || AES-256-GCM(HKDF(sessionKey, HEAD_RELEASE_INFO), JSON) || tag`.
 * @throws CorruptBackupError if it does not authenticate or is not a head.
 */
export async function openReleasedHead(
  sessionKey: Uint8Array,
  released: Uint8Array,
): Promise<SnapshotHead> {
  const bad = (what: string): CorruptBackupError =>
    new CorruptBackupError(`the released snapshot head ${what}`, 'vault snapshot head');
  if (released.length < NONCE_BYTES + TAG_BYTES + 1) throw bad('is too short');
  const k = await aesKey(await hkdf32(sessionKey, HEAD_RELEASE_INFO), 'decrypt');
  let plain: Uint8Array;
  try {
    plain = new Uint8Array(
      await subtle().decrypt(
        {
          name: 'AES-GCM',
          iv: ab(released.subarray(0, NONCE_BYTES)),
          additionalData: ab(utf8Bytes(HEAD_RELEASE_INFO)),
          tagLength: 128,
        },
        k,
        ab(released.subarray(NONCE_BYTES)),
      ),
    );
  } catch {
    throw bad('does not authenticate');
  }
  let head: unknown;
  try {
    head = JSON.parse(new TextDecoder().decode(plain));
  } catch {
    throw bad('does not parse');
  }
  if (!Value.Check(SnapshotHead, head)) throw bad('does not parse');
  return { seq: head.seq, snapshotId: head.snapshotId };
}

/**
 * The key proof the vault checks before replacing or deleting a record.
 * @throws InvalidKeyError when `backupKey` is not 32 bytes.
 */
export async function deriveKeyProof(backupKey: Uint8Array): Promise<Uint8Array> {
  assertBackupKey(backupKey);
  return hkdf32(backupKey, KEY_PROOF_INFO);
}
