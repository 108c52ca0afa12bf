/**
 * Vectors of SPEC.md §4: the `config` object and its key check.
 */

import {
CONFIG_BYTES,
FORMAT_VERSION,
concatBytes,
encodeConfig,
keyCheckValue
} from '#sdk/format/index.js';

import { type Json,VECTOR_KEY,VECTOR_REPO_ID,VECTOR_WRONG_KEY,header,hex } from './common.js';











export async function configVectors(): Promise<Json> {
  const keyCheck = await keyCheckValue(VECTOR_KEY, VECTOR_REPO_ID, FORMAT_VERSION);
  const bytes = encodeConfig({ version: FORMAT_VERSION, repoId: VECTOR_REPO_ID, keyCheck });
  const mutate = (f: (b: Uint8Array) => Uint8Array): string => hex(f(bytes.slice()));
  const flip = (at: number) => (b: Uint8Array) => {
    b[at] = (b[at] as number) ^ 0x01;
    return b;
  };
  return {
    ...header(
      `The config object (${CONFIG_BYTES} bytes, stored in the clear). Opening with \`backupKey\` succeeds; each invalid case fails with \`code\` (decode errors are CORRUPT; a key check mismatch is WRONG_KEY).`,
    ),
    backupKey: hex(VECTOR_KEY),
    repoId: hex(VECTOR_REPO_ID),
    version: FORMAT_VERSION,
    keyCheckValue: hex(keyCheck),
    bytes: hex(bytes),
    invalid: [
      {
        description: 'opened with another well-formed key',
        bytes: hex(bytes),
        backupKey: hex(VECTOR_WRONG_KEY),
        code: 'WRONG_KEY',
      },
      {
        description: 'key check value changed',
        bytes: mutate(flip(40)),
        backupKey: hex(VECTOR_KEY),
        code: 'WRONG_KEY',
      },
      {
        description: 'repo id changed (changes every subkey)',
        bytes: mutate(flip(12)),
        backupKey: hex(VECTOR_KEY),
        code: 'WRONG_KEY',
      },
      {
        description: 'bad magic',
        bytes: mutate(flip(0)),
        backupKey: hex(VECTOR_KEY),
        code: 'CORRUPT',
      },
      {
        description: 'version 2',
        bytes: mutate((b) => {
          b[8] = 2;
          return b;
        }),
        backupKey: hex(VECTOR_KEY),
        code: 'CORRUPT',
      },
      {
        description: 'reserved bytes not zero',
        bytes: mutate(flip(11)),
        backupKey: hex(VECTOR_KEY),
        code: 'CORRUPT',
      },
      {
        description: 'truncated by one byte',
        bytes: hex(bytes.subarray(0, CONFIG_BYTES - 1)),
        backupKey: hex(VECTOR_KEY),
        code: 'CORRUPT',
      },
      {
        description: 'one byte appended',
        bytes: hex(concatBytes(bytes, new Uint8Array(1))),
        backupKey: hex(VECTOR_KEY),
        code: 'CORRUPT',
      },
      { description: 'empty', bytes: '', backupKey: hex(VECTOR_KEY), code: 'CORRUPT' },
    ],
  };
}
