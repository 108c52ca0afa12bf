/**
 * The `config` object: the only object stored in the clear. It names the format and the
 * repository and lets a device tell a wrong key from a damaged backup before reading data.
 *
 * Layout (60 bytes, version 1):
 *
 *   offset size field
 *   0      8    magic "BVCONFIG" (ASCII)
 *   8      2    u16 format version = 1
 *   10     2    u16 reserved = 0
 *   12     16   repo id (random, chosen at init)
 *   28     32   key check value = HMAC-SHA256(key-check subkey, keyCheckMessage(version, repoId))
 *
 * keyCheckMessage = "backvault/v1/key-check-value" (ASCII) || u16 version || repo id.
 *
 * What tampering with `config` yields, deterministically:
 * - wrong length, wrong magic, non-zero reserved bytes, unknown version -> CORRUPT
 *   (an unknown version is reported as CORRUPT too: a store must not be able to downgrade
 *   or upgrade the format we speak);
 * - a changed repo id or key check value -> WRONG_KEY. The repo id is the HKDF salt, so a
 *   changed repo id is, by construction, indistinguishable from a wrong key; no data is
 *   read, and since every sealed object binds the repo id in its AD nothing would decrypt.
 *
 * Browser-safe: no `node:` imports.
 */
import { ByteReader, ByteWriter, bytesEqual, utf8 } from './bytes.js';
import { FORMAT_VERSION, ID_BYTES, REPO_ID_BYTES } from './constants.js';

/** ASCII magic at the start of `config`. */
export const CONFIG_MAGIC = utf8('BVCONFIG');

/** Exact length of a version-1 config object. */
export const CONFIG_BYTES = 8 + 2 + 2 + REPO_ID_BYTES + ID_BYTES;

/** Decoded `config`. */
export interface RepoConfig {
  version: number;
  repoId: Uint8Array;
  keyCheck: Uint8Array;
}

/** The message the key check value authenticates. */
export function keyCheckMessage(version: number, repoId: Uint8Array): Uint8Array {
  return new ByteWriter(64)
    .bytes(utf8('backvault/v1/key-check-value'))
    .u16(version)
    .bytes(repoId)
    .finish();
}

/**
 * Encode `config`.
 * @throws TypeError on wrong field lengths (programming errors).
 */
export function encodeConfig(c: RepoConfig): Uint8Array {
  if (c.repoId.length !== REPO_ID_BYTES || c.keyCheck.length !== ID_BYTES) {
    throw new TypeError('bad config field length');
  }
  return new ByteWriter(CONFIG_BYTES)
    .bytes(CONFIG_MAGIC)
    .u16(c.version)
    .u16(0)
    .bytes(c.repoId)
    .bytes(c.keyCheck)
    .finish()
    .slice();
}

/**
 * Decode and validate `config` (everything except the key check itself).
 * @throws CorruptBackupError on any malformed or unsupported content.
 */
export function decodeConfig(bytes: Uint8Array, object = 'config'): RepoConfig {
  const r = new ByteReader(bytes, object);
  if (bytes.length !== CONFIG_BYTES) r.fail(`config must be ${CONFIG_BYTES} bytes`);
  if (!bytesEqual(r.bytes(8), CONFIG_MAGIC)) r.fail('not a backvault config (bad magic)');
  const version = r.u16();
  if (version !== FORMAT_VERSION) r.fail(`unsupported repository format version ${version}`);
  if (r.u16() !== 0) r.fail('reserved config bytes are not zero');
  const repoId = r.bytes(REPO_ID_BYTES).slice();
  const keyCheck = r.bytes(ID_BYTES).slice();
  r.end();
  return { version, repoId, keyCheck };
}
