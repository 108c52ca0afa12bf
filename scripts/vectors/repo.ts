/**
 * The small repository every repository-level vector is cut from (SPEC.md §2, §14):
 * two snapshots of a tree with files, a folder and a symlink, built from the format's
 * encoders alone.
 */

import {
Compression,
EntryType,
FORMAT_VERSION,
ObjectKind,
encodeConfig,
encodeIndex,
encodeSnapshot,
encodeTree,
fromHex,
keyCheckValue,
sortTreeEntries,
utf8,
type BlobKind,
type IndexPack,
type Snapshot,
type TreeEntry
} from '#sdk/format/index.js';

import { VecBlob,VecPack,VectorKeys,buildPack,detBytes,ns,sealObject,sealVecBlob,sha } from './common.js';











// ---------------------------------------------------------------------------------------
// The vector repository: two snapshots of a small chat directory.

/** What a restored file system entry must look like (relative path, `/` separated). */
export interface ExpectedEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  mtimeNs: string;
  size?: number;
  sha256?: string;
  target?: string;
}

export const T0 = 1_700_000_000_000;

export const mt = (s: number): bigint => BigInt(T0 + s) * 1_000_000n + 123_456n;

/** Options for negative variants of the repository (forgeries by a key holder). */
export interface RepoOptions {
  /** Seal the data blob of `a.txt` with a TREE_BLOB associated data (listed as DATA). */
  sealDataAsTree?: boolean;
  /** Give snapshot 2 this seq instead of 2. */
  seq2?: number;
  /** Replace this name in the root tree of snapshot 1 (same length) with another. */
  rootNamePatch?: [string, string];
  /** Add this many bytes to the recorded size of `b.bin`. */
  sizeDelta?: number;
  /** Seal snapshot 1 with the INDEX associated data. */
  snapshotAsIndex?: boolean;
  /**
   * Store the tree of `media/` only as a data blob with the same bytes (and so the same id),
   * as backvault 0.1 did when a file chunk equalled a tree: a reader must not take it.
   */
  mediaTreeAsData?: boolean;
}

export interface BuiltRepo {
  objects: Map<string, Uint8Array>;
  packs: VecPack[];
  indexes: {
    name: string;
    plain: Uint8Array;
    nonce: Uint8Array;
    sealed: Uint8Array;
    packs: IndexPack[];
  }[];
  snapshots: { name: string; id: string; plain: Uint8Array; nonce: Uint8Array; snap: Snapshot }[];
  trees: { label: string; entries: TreeEntry[]; plain: Uint8Array; id: Uint8Array }[];
  expected: ExpectedEntry[][];
  config: Uint8Array;
}

export async function buildRepo(
  keys: VectorKeys,
  backupKey: Uint8Array,
  opt: RepoOptions = {},
): Promise<BuiltRepo> {
  const files = {
    a: utf8('hello, backvault\n'),
    b: detBytes('photo b.bin', 1000),
    c: detBytes('photo c.bin', 1000),
    chat: utf8(
      Array.from({ length: 150 }, (_, i) => `message ${i}: see you tomorrow at ${i % 24}h\n`).join(
        '',
      ),
    ),
    d: utf8('second backup\n'),
  };
  const chat0 = files.chat.subarray(0, 4096);
  const chat1 = files.chat.subarray(4096);
  const aKind: BlobKind = opt.sealDataAsTree ? ObjectKind.TREE_BLOB : ObjectKind.DATA_BLOB;
  const bA = await sealVecBlob(
    keys,
    'a.txt',
    ObjectKind.DATA_BLOB,
    files.a,
    Compression.NONE,
    aKind,
  );
  const bB = await sealVecBlob(keys, 'b.bin', ObjectKind.DATA_BLOB, files.b, Compression.NONE);
  const bC = await sealVecBlob(keys, 'c.bin', ObjectKind.DATA_BLOB, files.c, Compression.NONE);
  const bChat0 = await sealVecBlob(
    keys,
    'chat.txt#0',
    ObjectKind.DATA_BLOB,
    chat0,
    Compression.DEFLATE_RAW,
  );
  const bChat1 = await sealVecBlob(
    keys,
    'chat.txt#1',
    ObjectKind.DATA_BLOB,
    chat1,
    Compression.BROTLI,
  );
  const bD = await sealVecBlob(keys, 'd.txt', ObjectKind.DATA_BLOB, files.d, Compression.NONE);

  const trees: BuiltRepo['trees'] = [];
  const treeBlob = async (
    label: string,
    entries: TreeEntry[],
    patch?: [string, string],
  ): Promise<VecBlob> => {
    let plain = encodeTree(sortTreeEntries(entries));
    if (patch) {
      const h = Buffer.from(plain).toString('latin1').replace(patch[0], patch[1]);
      plain = Uint8Array.from(Buffer.from(h, 'latin1'));
    }
    const blob = await sealVecBlob(keys, label, ObjectKind.TREE_BLOB, plain, Compression.NONE);
    trees.push({ label, entries, plain, id: blob.id });
    return blob;
  };
  const file = (
    name: string,
    mode: number,
    s: number,
    chunks: VecBlob[],
    extra = 0,
  ): TreeEntry => ({
    type: EntryType.FILE,
    name,
    mode,
    mtimeNs: mt(s),
    size: chunks.reduce((n, c) => n + c.plain.length, 0) + extra,
    chunks: chunks.map((c) => c.id),
  });
  const media = await treeBlob('tree media/', [file('c.bin', 0o644, 3, [bC])]);
  const rootEntries1: TreeEntry[] = [
    file('a.txt', 0o644, 1, [bA]),
    file('b.bin', 0o600, 2, [bB], opt.sizeDelta ?? 0),
    file('chat.txt', 0o640, 4, [bChat0, bChat1]),
    file('empty', 0o644, 5, []),
    { type: EntryType.SYMLINK, name: 'link', mode: 0o777, mtimeNs: mt(6), target: 'a.txt' },
    { type: EntryType.DIR, name: 'media', mode: 0o750, mtimeNs: mt(7), subtree: media.id },
  ];
  const root1 = await treeBlob('tree root (snapshot 1)', rootEntries1, opt.rootNamePatch);
  const root2 = await treeBlob('tree root (snapshot 2)', [
    ...rootEntries1,
    file('d.txt', 0o644, 86_400_001, [bD]),
  ]);

  const p1 = await buildPack(keys, 'pack 1', [bA, bB, bChat0, bChat1]);
  const mediaStored = opt.mediaTreeAsData
    ? await sealVecBlob(keys, 'media/ tree bytes as data', ObjectKind.DATA_BLOB, media.plain, 0)
    : media;
  const p2 = await buildPack(keys, 'pack 2', [bC, mediaStored, root1]);
  const p3 = await buildPack(keys, 'pack 3', [bD, root2]);
  const packsOf = (ps: VecPack[]): IndexPack[] =>
    ps.map((p) => ({ packId: fromHex(p.id), blobs: p.entries }));
  const indexes: BuiltRepo['indexes'] = [];
  for (const [label, ps] of [
    ['index 1', [p1, p2]],
    ['index 2', [p3]],
  ] as const) {
    const packs = packsOf([...ps]);
    const plain = encodeIndex(packs);
    const s = await sealObject(keys, label, ObjectKind.INDEX, plain);
    indexes.push({ name: s.name, plain, nonce: s.nonce, sealed: s.sealed, packs });
  }

  const snapshots: BuiltRepo['snapshots'] = [];
  const s1: Snapshot = {
    seq: 1,
    prev: null,
    timeMs: T0 + 10_000,
    hostname: 'vector-host',
    rootTree: root1.id,
    rootMode: 0o755,
    rootMtimeNs: mt(8),
    files: 5,
    dirs: 1,
    bytes: files.a.length + files.b.length + files.c.length + files.chat.length,
  };
  const s1plain = encodeSnapshot(s1);
  const s1sealed = await sealObject(
    keys,
    'snapshot 1',
    opt.snapshotAsIndex ? ObjectKind.INDEX : ObjectKind.SNAPSHOT,
    s1plain,
  );
  const s1name = 'snapshots/' + s1sealed.name.slice(s1sealed.name.indexOf('/') + 1);
  snapshots.push({
    name: s1name,
    id: s1name.slice(10),
    plain: s1plain,
    nonce: s1sealed.nonce,
    snap: s1,
  });
  const s2: Snapshot = {
    ...s1,
    seq: opt.seq2 ?? 2,
    prev: fromHex(snapshots[0]?.id as string),
    timeMs: T0 + 86_410_000,
    rootTree: root2.id,
    rootMtimeNs: mt(86_400_002),
    files: 6,
    bytes: s1.bytes + files.d.length,
  };
  const s2plain = encodeSnapshot(s2);
  const s2sealed = await sealObject(keys, 'snapshot 2', ObjectKind.SNAPSHOT, s2plain);
  snapshots.push({
    name: s2sealed.name,
    id: s2sealed.name.slice(10),
    plain: s2plain,
    nonce: s2sealed.nonce,
    snap: s2,
  });

  const version = FORMAT_VERSION;
  const config = encodeConfig({
    version,
    repoId: keys.repoId,
    keyCheck: await keyCheckValue(backupKey, keys.repoId, version),
  });
  const objects = new Map<string, Uint8Array>();
  objects.set('config', config);
  for (const p of [p1, p2, p3]) objects.set(p.name, p.bytes);
  for (const i of indexes) objects.set(i.name, i.sealed);
  objects.set(s1name, s1sealed.sealed);
  objects.set(s2sealed.name, s2sealed.sealed);

  const mtStr = (s: number): string => ns(mt(s));
  const expected1: ExpectedEntry[] = [
    {
      path: 'a.txt',
      type: 'file',
      mode: 0o644,
      mtimeNs: mtStr(1),
      size: files.a.length,
      sha256: sha(files.a),
    },
    {
      path: 'b.bin',
      type: 'file',
      mode: 0o600,
      mtimeNs: mtStr(2),
      size: files.b.length,
      sha256: sha(files.b),
    },
    {
      path: 'chat.txt',
      type: 'file',
      mode: 0o640,
      mtimeNs: mtStr(4),
      size: files.chat.length,
      sha256: sha(files.chat),
    },
    {
      path: 'empty',
      type: 'file',
      mode: 0o644,
      mtimeNs: mtStr(5),
      size: 0,
      sha256: sha(new Uint8Array()),
    },
    { path: 'link', type: 'symlink', mode: 0o777, mtimeNs: mtStr(6), target: 'a.txt' },
    { path: 'media', type: 'dir', mode: 0o750, mtimeNs: mtStr(7) },
    {
      path: 'media/c.bin',
      type: 'file',
      mode: 0o644,
      mtimeNs: mtStr(3),
      size: files.c.length,
      sha256: sha(files.c),
    },
  ];
  const expected2: ExpectedEntry[] = [
    ...expected1.slice(0, 3),
    {
      path: 'd.txt',
      type: 'file',
      mode: 0o644,
      mtimeNs: mtStr(86_400_001),
      size: files.d.length,
      sha256: sha(files.d),
    },
    ...expected1.slice(3),
  ];
  return {
    objects,
    packs: [p1, p2, p3],
    indexes,
    snapshots,
    trees,
    expected: [expected1, expected2],
    config,
  };
}
