/**
 * Vectors of SPEC.md §3: the key schedule (HKDF-SHA256 subkeys).
 */

import {
FORMAT_VERSION,
HKDF_INFO_PREFIX,
SUBKEY_LABELS,
deriveSubkey,
keyCheckMessage,
keyCheckValue,
type SubkeyLabel
} from '#sdk/format/index.js';

import { type Json,VECTOR_KEY,VECTOR_REPO_ID,VECTOR_WRONG_KEY,detBytes,header,hex } from './common.js';











export async function keyScheduleVectors(): Promise<Json> {
  const cases: Json[] = [];
  for (const [backupKey, repoId] of [
    [VECTOR_KEY, VECTOR_REPO_ID],
    [VECTOR_WRONG_KEY, VECTOR_REPO_ID],
    [VECTOR_KEY, detBytes('other repo id', 16)],
  ] as const) {
    const subkeys: Record<string, Json> = {};
    for (const label of Object.keys(SUBKEY_LABELS) as SubkeyLabel[]) {
      subkeys[label] = {
        info: HKDF_INFO_PREFIX + SUBKEY_LABELS[label],
        key: hex(await deriveSubkey(backupKey, repoId, label)),
      };
    }
    cases.push({
      backupKey: hex(backupKey),
      repoId: hex(repoId),
      subkeys,
      keyCheckMessage: hex(keyCheckMessage(FORMAT_VERSION, repoId)),
      keyCheckValue: hex(await keyCheckValue(backupKey, repoId, FORMAT_VERSION)),
    });
  }
  return {
    ...header(
      'subkey = HKDF-SHA256(ikm = backupKey, salt = repoId, info = UTF-8 of `info`, L = 32). keyCheckValue = HMAC-SHA256(subkeys.keyCheck, keyCheckMessage).',
    ),
    cases,
  };
}
