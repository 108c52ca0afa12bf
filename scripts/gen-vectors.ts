/**
 * Generates the test vectors of SPEC.md into `vectors/*.json`, deterministically: fixed
 * keys, a fixed repository id and fixed nonces (the WebCrypto sealing of src/format accepts
 * an explicit nonce for exactly this). Every object is built from the exported encoders of
 * src/format, never from the engine, so the vectors say what the format is, and
 * test/format/vectors.test.ts checks that the engine reads them. One file per SPEC.md
 * section under scripts/vectors/; this one runs them all and writes the files.
 *
 *   node dist/scripts/gen-vectors.js          (writes vectors/*.json at the repository root)
 *
 * The only non-canonical bytes are deflate-raw outputs (another zlib may compress the same
 * plaintext differently); vectors carry the compressed body so a reader only has to inflate.
 */

import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { Json, VECTOR_KEY, VECTOR_REPO_ID, keysFor } from './vectors/common.js';

import { buildRepo } from './vectors/repo.js';

import { keyEncodingVectors } from './vectors/key-encoding.js';

import { keyScheduleVectors } from './vectors/key-schedule.js';

import { configVectors } from './vectors/config.js';

import { blobVectors } from './vectors/blobs.js';

import { packVectors } from './vectors/packs.js';

import { treeVectors } from './vectors/trees.js';

import { snapshotVectors } from './vectors/snapshots.js';

import { chunkingVectors } from './vectors/chunking.js';

import { keySlotVectors } from './vectors/key-slots.js';
import { negativeRepositoryVectors, repositoryVectors } from './vectors/repository.js';

export type { Json } from './vectors/common.js';

// --- SPEC.md §18: key slots. Self-contained: uses only src/format and detBytes.

/** Every vector file, by file name (without `.json`). */
export async function generateVectors(): Promise<Record<string, Json>> {
  const keys = await keysFor(VECTOR_KEY, VECTOR_REPO_ID);
  const repo = await buildRepo(keys, VECTOR_KEY);
  return {
    'key-encoding': await keyEncodingVectors(),
    'key-schedule': await keyScheduleVectors(),
    config: await configVectors(),
    blob: await blobVectors(keys),
    pack: await packVectors(keys, repo),
    tree: await treeVectors(repo),
    snapshot: await snapshotVectors(keys, repo),
    chunking: await chunkingVectors(keys),
    repository: await repositoryVectors(repo),
    'negative-repository': await negativeRepositoryVectors(keys, repo),
    'key-slots': await keySlotVectors(),
  };
}

/** The repository root: the nearest ancestor of this file holding package.json. */
export function repoRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + from);
    dir = up;
  }
  return dir;
}

/** Stable JSON text of a vector file. */
export function vectorText(v: Json): string {
  return JSON.stringify(v, null, 2) + '\n';
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = join(repoRoot(), 'vectors');
  await mkdir(out, { recursive: true });
  for (const [name, v] of Object.entries(await generateVectors())) {
    await writeFile(join(out, `${name}.json`), vectorText(v));
    console.log(`vectors/${name}.json`);
  }
}
