/**
 * Vectors of SPEC.md §10: tree blobs.
 */

import {
EntryType,
concatBytes,
encodeTree,
utf8,
type TreeEntry
} from '#sdk/format/index.js';

import { type Json,header,hex,treeEntryJson } from './common.js';

import { BuiltRepo } from './repo.js';










export async function treeVectors(repo: BuiltRepo): Promise<Json> {
  const base: TreeEntry = {
    type: EntryType.FILE,
    name: 'aa',
    mode: 0o644,
    mtimeNs: 0n,
    size: 0,
    chunks: [],
  };
  const one = encodeTree([base]);
  const two = encodeTree([base, { ...base, name: 'bb' }]);
  const replaceName = (bytes: Uint8Array, from: string, to: string): string =>
    hex(
      Uint8Array.from(
        Buffer.from(Buffer.from(bytes).toString('latin1').replace(from, to), 'latin1'),
      ),
    );
  const set = (bytes: Uint8Array, at: number, v: number): string => {
    const b = bytes.slice();
    b[at] = v;
    return hex(b);
  };
  // Offsets in `one`: 0 version, 1..4 count, 5..6 name length, 7..8 name, 9 type, 10..13
  // mode, 14..21 mtime, 22..29 size, 30..33 chunk count.
  const invalid: Json[] = [
    { description: 'name ".."', plaintext: replaceName(one, 'aa', '..'), code: 'CORRUPT' },
    {
      description: 'name "."',
      plaintext: hex(
        concatBytes(one.subarray(0, 5), Uint8Array.of(1, 0), utf8('.'), one.subarray(9)),
      ),
      code: 'CORRUPT',
    },
    { description: 'name with "/"', plaintext: replaceName(one, 'aa', 'a/'), code: 'CORRUPT' },
    { description: 'name with NUL', plaintext: replaceName(one, 'aa', 'a\0'), code: 'CORRUPT' },
    {
      description: 'empty name',
      plaintext: hex(concatBytes(one.subarray(0, 5), Uint8Array.of(0, 0), one.subarray(9))),
      code: 'CORRUPT',
    },
    { description: 'name not UTF-8', plaintext: set(one, 7, 0xff), code: 'CORRUPT' },
    { description: 'entries not sorted', plaintext: replaceName(two, 'bb', 'a0'), code: 'CORRUPT' },
    { description: 'duplicate names', plaintext: replaceName(two, 'bb', 'aa'), code: 'CORRUPT' },
    { description: 'unknown entry type 4', plaintext: set(one, 9, 4), code: 'CORRUPT' },
    { description: 'mode above 0o7777', plaintext: set(one, 11, 0x10), code: 'CORRUPT' },
    {
      description: 'empty file with a chunk count of 1',
      plaintext: set(one, 30, 1),
      code: 'CORRUPT',
    },
    { description: 'version 2', plaintext: set(one, 0, 2), code: 'CORRUPT' },
    { description: 'count larger than the entries', plaintext: set(one, 1, 2), code: 'CORRUPT' },
    {
      description: 'trailing byte',
      plaintext: hex(concatBytes(one, new Uint8Array(1))),
      code: 'CORRUPT',
    },
    { description: 'truncated', plaintext: hex(one.subarray(0, one.length - 1)), code: 'CORRUPT' },
  ];
  return {
    ...header(
      'Tree blob plaintexts: decodeTree(plaintext) gives `entries` and encodeTree(entries) gives `plaintext`. mtimeNs are decimal strings (i64).',
    ),
    trees: repo.trees.map((t) => ({
      label: t.label,
      id: hex(t.id),
      entries: t.entries.map(treeEntryJson),
      plaintext: hex(t.plain),
    })),
    invalid,
  };
}
