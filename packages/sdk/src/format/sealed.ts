/**
 * Associated data (AD) of sealed objects, and the sealed envelope layout.
 *
 * Every stored object except `config` is sealed with AES-256-GCM:
 *
 *   sealed = nonce (12 random bytes) || ciphertext || tag (16 bytes)
 *
 * and the AD binds what the object is, so that a store cannot move it:
 *
 *   AD = "backvault" (9 ASCII bytes) || u8 format version (1) || u8 object kind
 *        || repo id (16 bytes)
 *        [ || u8 compression || blob id (32 bytes) ]     -- blobs only
 *
 * Object kinds are in {@link ObjectKind}. Data blobs are sealed under the `data` subkey,
 * everything else under the `meta` subkey. For blobs the AD includes the compression flag
 * and the blob id, so swapping two blobs, or flipping a blob's compression flag in a pack
 * header or index, fails authentication.
 *
 * Browser-safe: no `node:` imports. The crypto itself is in `key-schedule.ts` (WebCrypto)
 * and in the Node engine (node:crypto); both produce identical bytes.
 */
import { ByteWriter, utf8 } from './bytes.js';
import {
  FORMAT_VERSION,
  ID_BYTES,
  ObjectKind,
  REPO_ID_BYTES,
  type BlobKind,
  type CompressionValue,
  type ObjectKindValue,
} from './constants.js';

const AD_MAGIC = utf8('backvault');

/**
 * AD of a non-blob object (pack header, index, snapshot).
 * @throws TypeError on a wrong-length repo id or a blob kind (programming errors).
 */
export function objectAd(kind: ObjectKindValue, repoId: Uint8Array): Uint8Array {
  if (kind === ObjectKind.DATA_BLOB || kind === ObjectKind.TREE_BLOB) {
    throw new TypeError('blob AD needs compression and id: use blobAd');
  }
  if (repoId.length !== REPO_ID_BYTES) throw new TypeError('repo id must be 16 bytes');
  return new ByteWriter(32).bytes(AD_MAGIC).u8(FORMAT_VERSION).u8(kind).bytes(repoId).finish();
}

/**
 * AD of a blob.
 * @throws TypeError on wrong-length ids (programming errors).
 */
export function blobAd(
  kind: BlobKind,
  repoId: Uint8Array,
  compression: CompressionValue,
  id: Uint8Array,
): Uint8Array {
  if (repoId.length !== REPO_ID_BYTES) throw new TypeError('repo id must be 16 bytes');
  if (id.length !== ID_BYTES) throw new TypeError('blob id must be 32 bytes');
  return new ByteWriter(64)
    .bytes(AD_MAGIC)
    .u8(FORMAT_VERSION)
    .u8(kind)
    .bytes(repoId)
    .u8(compression)
    .bytes(id)
    .finish();
}
