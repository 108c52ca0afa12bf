/**
 * Vectors of SPEC.md §12: the keyed content-defined chunker and SQLite page chunks.
 */

import '#sdk/backup/node/install.js';
import {
CDC_AVG,
CDC_MAX,
CDC_MIN,
SQLITE_CHUNK,
gearTable,
nextCut,
sqliteChunkSize,
} from '#sdk/backup/archiver/chunker.js';
import {
utf8
} from '#sdk/format/index.js';

import { type Json,VECTOR_KEY,VECTOR_REPO_ID,VectorKeys,detBytes,header,hex,sha } from './common.js';











export async function chunkingVectors(keys: VectorKeys): Promise<Json> {
  const gear = gearTable(keys.chunker);
  const data = detBytes('chunking vector stream', 9 * 1024 * 1024 + 12345);
  const cuts: number[] = [];
  for (let start = 0; start < data.length;) {
    const n = nextCut(gear, data, start, data.length, true);
    cuts.push(n);
    start += n;
  }
  const sqliteHead = (page: number): Uint8Array => {
    const h = new Uint8Array(100);
    h.set(utf8('SQLite format 3\0'));
    h[16] = (page >> 8) & 0xff;
    h[17] = page & 0xff;
    return h;
  };
  return {
    ...header(
      'Chunking (writer side only; readers never need it). gear[i] = u32le at 4i of HMAC-SHA256(chunker, "gear" || u8 j) for j = 0..31 concatenated. `cuts` are the FastCDC chunk lengths of `stream` = detBytes("chunking vector stream", streamLength) where detBytes(label, n) = first n bytes of SHA-256(label || u32be 0) || SHA-256(label || u32be 1) || ….',
    ),
    backupKey: hex(VECTOR_KEY),
    repoId: hex(VECTOR_REPO_ID),
    chunkerSubkey: hex(keys.chunker),
    gearTable: hex(new Uint8Array(gear.buffer)),
    fastcdc: { min: CDC_MIN, avg: CDC_AVG, max: CDC_MAX, normalization: 2 },
    stream: { label: 'chunking vector stream', length: data.length, sha256: sha(data) },
    cuts,
    sqlite: {
      chunkBytes: SQLITE_CHUNK,
      cases: [
        {
          description: 'page 4096',
          headPageField: 4096,
          chunk: sqliteChunkSize(sqliteHead(4096)) ?? null,
        },
        {
          description: 'page 65536 (field value 1)',
          headPageField: 1,
          chunk: sqliteChunkSize(sqliteHead(1)) ?? null,
        },
        {
          description: 'page 512',
          headPageField: 512,
          chunk: sqliteChunkSize(sqliteHead(512)) ?? null,
        },
        {
          description: 'page 1000 (not a power of two): not SQLite',
          headPageField: 1000,
          chunk: sqliteChunkSize(sqliteHead(1000)) ?? null,
        },
        {
          description: 'page 256 (too small): not SQLite',
          headPageField: 256,
          chunk: sqliteChunkSize(sqliteHead(256)) ?? null,
        },
      ],
    },
  };
}
