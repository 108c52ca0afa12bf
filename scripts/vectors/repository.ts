/**
 * Vectors of SPEC.md §2 and §14-15: whole repositories, and the negative ones (every way a
 * store can damage one, with the error a reader must give).
 */

import {
ObjectKind,
encodeSnapshot,
formatBackupKey,
type BlobEntry
} from '#sdk/format/index.js';

import { type Json,VECTOR_KEY,VECTOR_REPO_ID,VECTOR_WRONG_KEY,VecPack,VectorKeys,diffObjects,flipAt,header,hex,ns,objectsJson,sealObject } from './common.js';

import { BuiltRepo,RepoOptions,buildRepo } from './repo.js';










export async function repositoryVectors(repo: BuiltRepo): Promise<Json> {
  return {
    ...header(
      'A complete repository of two snapshots. Put `objects` (name -> hex bytes) in a store; with `backupKey`, listing gives `snapshots` (oldest first) and restoring each snapshot gives exactly `restores[i]` (paths relative to the target, "/"-separated; mode = permission bits; mtimeNs decimal; symlinks are not followed).',
    ),
    backupKey: hex(VECTOR_KEY),
    backupKeyText: formatBackupKey(VECTOR_KEY),
    repoId: hex(VECTOR_REPO_ID),
    objects: objectsJson(repo.objects),
    snapshots: repo.snapshots.map((s) => ({
      id: s.id,
      seq: s.snap.seq,
      prev: s.snap.prev ? hex(s.snap.prev) : null,
    })),
    restores: repo.expected.map((entries, i) => ({
      snapshot: (repo.snapshots[i] as { id: string }).id,
      root: {
        mode: repo.snapshots[i]?.snap.rootMode ?? 0,
        mtimeNs: ns(repo.snapshots[i]?.snap.rootMtimeNs ?? 0n),
      },
      entries: entries as unknown as Json,
    })),
  };
}

export async function negativeRepositoryVectors(keys: VectorKeys, repo: BuiltRepo): Promise<Json> {
  const base = repo.objects;
  const [p1, p2, p3] = repo.packs as [VecPack, VecPack, VecPack];
  const [i1, i2] = repo.indexes as [BuiltRepo['indexes'][number], BuiltRepo['indexes'][number]];
  const [s1, s2] = repo.snapshots as [
    BuiltRepo['snapshots'][number],
    BuiltRepo['snapshots'][number],
  ];
  const cases: Json[] = [];
  const add = (
    name: string,
    description: string,
    variant: Map<string, Uint8Array>,
    expect: string,
    extra: Record<string, Json> = {},
  ): void => {
    cases.push({ name, description, changes: diffObjects(base, variant), expect, ...extra });
  };
  const v = (f: (m: Map<string, Uint8Array>) => void): Map<string, Uint8Array> => {
    const m = new Map(base);
    f(m);
    return m;
  };
  const cfg = base.get('config') as Uint8Array;

  add('wrong-key', 'a well-formed key that is not the repository key', base, 'WRONG_KEY', {
    backupKey: hex(VECTOR_WRONG_KEY),
  });
  add(
    'config-key-check-flipped',
    'a byte of the key check value changed',
    v((m) => m.set('config', flipAt(cfg, 50))),
    'WRONG_KEY',
  );
  add(
    'config-repo-id-flipped',
    'a byte of the repo id changed',
    v((m) => m.set('config', flipAt(cfg, 20))),
    'WRONG_KEY',
  );
  add(
    'config-version-2',
    'config claims format version 2',
    v((m) =>
      m.set(
        'config',
        Uint8Array.from(cfg, (x, i) => (i === 8 ? 2 : x)),
      ),
    ),
    'CORRUPT',
  );
  add(
    'config-truncated',
    'config cut to 40 bytes',
    v((m) => m.set('config', cfg.subarray(0, 40))),
    'CORRUPT',
  );
  add(
    'config-deleted',
    'no config object',
    v((m) => m.delete('config')),
    'NO_REPOSITORY',
  );
  add(
    'snapshot-truncated',
    'latest snapshot object cut by one byte',
    v((m) => m.set(s2.name, (base.get(s2.name) as Uint8Array).subarray(0, -1))),
    'CORRUPT',
  );
  add(
    'snapshot-flipped',
    'one byte of the latest snapshot changed',
    v((m) => m.set(s2.name, flipAt(base.get(s2.name) as Uint8Array, 30))),
    'CORRUPT',
  );
  add(
    'snapshot-renamed',
    'a snapshot stored under a name that is not its SHA-256',
    v((m) => {
      m.delete(s2.name);
      m.set('snapshots/' + '0'.repeat(64), base.get(s2.name) as Uint8Array);
    }),
    'CORRUPT',
  );
  add(
    'index-flipped',
    'one byte of index 1 changed',
    v((m) => m.set(i1.name, flipAt(base.get(i1.name) as Uint8Array, 40))),
    'CORRUPT',
  );
  add(
    'index-truncated',
    'index 2 cut by 16 bytes',
    v((m) => m.set(i2.name, (base.get(i2.name) as Uint8Array).subarray(0, -16))),
    'CORRUPT',
  );
  add(
    'pack-blob-flipped',
    'one byte inside the sealed blob of d.txt (pack 3)',
    v((m) => m.set(p3.name, flipAt(p3.bytes, 20))),
    'CORRUPT',
  );
  add(
    'pack-truncated',
    'pack 1 cut in half',
    v((m) => m.set(p1.name, p1.bytes.subarray(0, p1.bytes.length >> 1))),
    'CORRUPT',
  );
  add(
    'pack-deleted',
    'pack 2 (with the root tree) deleted',
    v((m) => m.delete(p2.name)),
    'MISSING_OBJECT',
  );
  add(
    'index-deleted',
    'index 1 deleted',
    v((m) => m.delete(i1.name)),
    'MISSING_OBJECT',
  );
  // An older snapshot's loss costs only itself: the latest still restores (a gap, reported
  // as a warning), but asking for the lost one is MISSING_OBJECT, and for a damaged one
  // (that the latest names as its previous) CORRUPT.
  add(
    'first-snapshot-deleted',
    'snapshot 1 deleted, then restored by its id: snapshot 2 names it as previous',
    v((m) => m.delete(s1.name)),
    'MISSING_OBJECT',
    { snapshot: s1.id },
  );
  add(
    'first-snapshot-flipped',
    'one byte of snapshot 1 changed, then restored by its id',
    v((m) => m.set(s1.name, flipAt(base.get(s1.name) as Uint8Array, 30))),
    'CORRUPT',
    { snapshot: s1.id },
  );
  {
    // Swap the sealed blobs of b.bin (pack 1) and c.bin (pack 2): same length, different ids.
    const eB = p1.entries[1] as BlobEntry;
    const eC = p2.entries[0] as BlobEntry;
    const n1 = p1.bytes.slice();
    const n2 = p2.bytes.slice();
    n1.set(p2.bytes.subarray(eC.offset, eC.offset + eC.length), eB.offset);
    n2.set(p1.bytes.subarray(eB.offset, eB.offset + eB.length), eC.offset);
    add(
      'blob-swapped-between-packs',
      'the sealed blobs of b.bin (pack 1) and c.bin (pack 2) exchanged, pack names kept',
      v((m) => {
        m.set(p1.name, n1);
        m.set(p2.name, n2);
      }),
      'CORRUPT',
    );
  }
  add(
    'packs-swapped',
    'the contents of pack 1 and pack 2 exchanged under their names',
    v((m) => {
      m.set(p1.name, p2.bytes);
      m.set(p2.name, p1.bytes);
    }),
    'CORRUPT',
  );
  add(
    'replayed-older-snapshot-set',
    'the store serves the repository as it was after snapshot 1, to a device that saw snapshot 2',
    v((m) => {
      m.delete(s2.name);
      m.delete(i2.name);
      m.delete(p3.name);
    }),
    'ROLLBACK',
    { seen: { seq: 2, snapshot: s2.id } },
  );
  add(
    'latest-snapshot-dropped',
    'the newest snapshot deleted, to a device that saw it',
    v((m) => m.delete(s2.name)),
    'ROLLBACK',
    {
      seen: { seq: 2, snapshot: s2.id },
    },
  );

  // Forgeries that need the key: they check the reader's rules, not the store's powers.
  const fork = await sealObject(
    keys,
    'snapshot 2 fork',
    ObjectKind.SNAPSHOT,
    encodeSnapshot({ ...s2.snap, timeMs: s2.snap.timeMs + 1 }),
  );
  add(
    'forked-chain',
    'two snapshots with seq 2 and the same previous',
    v((m) => m.set(fork.name, fork.sealed)),
    'ROLLBACK',
  );
  add(
    'history-rewritten',
    'snapshot 2 replaced by another seq 2, to a device that saw the original',
    v((m) => {
      m.delete(s2.name);
      m.set(fork.name, fork.sealed);
    }),
    'ROLLBACK',
    { seen: { seq: 2, snapshot: s2.id } },
  );
  const forged = async (opt: RepoOptions): Promise<BuiltRepo> => buildRepo(keys, VECTOR_KEY, opt);
  add(
    'data-blob-sealed-as-tree',
    'the data blob of a.txt sealed with the TREE_BLOB associated data but listed as data',
    (await forged({ sealDataAsTree: true })).objects,
    'CORRUPT',
  );
  add('seq-gap', 'snapshot 2 has seq 3', (await forged({ seq2: 3 })).objects, 'CORRUPT');
  const escapes = await forged({ rootNamePatch: ['empty', '../..'] });
  add(
    'tree-name-escapes',
    'the root tree of snapshot 1 names an entry "../.."',
    escapes.objects,
    'CORRUPT',
    {
      snapshot: escapes.snapshots[0]?.id ?? '',
    },
  );
  const sizeMismatch = await forged({ sizeDelta: 1 });
  add(
    'file-size-mismatch',
    'the tree of snapshot 1 records b.bin one byte longer than its chunks',
    sizeMismatch.objects,
    'CORRUPT',
    {
      snapshot: sizeMismatch.snapshots[0]?.id ?? '',
    },
  );
  add(
    'tree-stored-only-as-data',
    'the tree of media/ is listed only as a data blob with the same bytes and id (SPEC §6: blobs are identified by kind and id)',
    (await forged({ mediaTreeAsData: true })).objects,
    'MISSING_OBJECT',
  );
  const asIndex = await forged({ snapshotAsIndex: true });
  add(
    'snapshot-sealed-as-index',
    'snapshot 1 sealed with the INDEX associated data, restored by its id',
    asIndex.objects,
    'CORRUPT',
    { snapshot: asIndex.snapshots[0]?.id ?? '' },
  );
  return {
    ...header(
      'Negative repository vectors: start from repository.json objects, apply `changes` (name -> new hex, or null = delete), then restore (the snapshot with id `snapshot` when given, else the latest) with `backupKey` (default: repository.json backupKey) and, when `seen` is given, a local state that has seen that snapshot. The operation must fail with `expect` and leave the target absent.',
    ),
    cases,
  };
}
