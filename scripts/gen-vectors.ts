/**
 * Generates the test vectors of SPEC.md into `vectors/*.json`, deterministically: fixed
 * keys, a fixed repository id and fixed nonces (the WebCrypto sealing of src/format accepts
 * an explicit nonce for exactly this). Every object is built from the exported encoders of
 * src/format, never from the engine, so the vectors say what the format is, and
 * test/format/vectors.test.ts checks that the engine reads them.
 *
 *   node dist/scripts/gen-vectors.js          (writes vectors/*.json at the repository root)
 *
 * The only non-canonical bytes are deflate-raw outputs (another zlib may compress the same
 * plaintext differently); vectors carry the compressed body so a reader only has to inflate.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { brotliCompressSync, constants as zc, deflateRawSync } from 'node:zlib';
import {
  CONFIG_BYTES,
  Compression,
  EntryType,
  FORMAT_VERSION,
  HKDF_INFO_PREFIX,
  ObjectKind,
  SUBKEY_LABELS,
  assemblePack,
  blobAd,
  concatBytes,
  deriveSubkey,
  encodeConfig,
  encodeIndex,
  encodePackHeader,
  encodeSnapshot,
  encodeTree,
  formatBackupKey,
  fromHex,
  hmacSha256,
  keyCheckMessage,
  keyCheckValue,
  objectAd,
  packName,
  sealWeb,
  sha256Hex,
  sortTreeEntries,
  toHex,
  utf8,
  type BlobEntry,
  type BlobKind,
  type CompressionValue,
  type IndexPack,
  type ObjectKindValue,
  type Snapshot,
  type SubkeyLabel,
  type TreeEntry,
} from '../src/format/index.js';
import {
  CDC_AVG,
  CDC_MAX,
  CDC_MIN,
  SQLITE_CHUNK,
  gearTable,
  nextCut,
  sqliteChunkSize,
} from '../src/backup/chunker.js';
import type { RepoKeys } from '../src/backup/crypto.js';

/** A JSON value (what the vector files hold). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The backup key of every positive vector: bytes 00 01 … 1f. */
export const VECTOR_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
/** A well-formed key that is not the repository's: bytes 1f 1e … 00. */
export const VECTOR_WRONG_KEY = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
/** The repository id of every positive vector: bytes f0 f1 … ff. */
export const VECTOR_REPO_ID = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);

/**
 * Deterministic bytes: SHA-256(label || u32be counter) for counter = 0, 1, … concatenated,
 * cut to `n` bytes. Stands in for randomness (nonces, "photos") so vectors are reproducible.
 */
export function detBytes(label: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, off = 0; off < n; i++, off += 32) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(i);
    const h = createHash('sha256').update(label).update(ctr).digest();
    out.set(h.subarray(0, Math.min(32, n - off)), off);
  }
  return out;
}

const nonceOf = (label: string): Uint8Array => detBytes(`backvault-vector-nonce/${label}`, 12);

/** The subkeys of a repository, the engine's shape, derived here through WebCrypto. */
export type VectorKeys = RepoKeys;

async function keysFor(backupKey: Uint8Array, repoId: Uint8Array): Promise<VectorKeys> {
  const d = (l: SubkeyLabel): Promise<Uint8Array> => deriveSubkey(backupKey, repoId, l);
  return {
    repoId,
    keyCheck: await d('keyCheck'),
    blobId: await d('blobId'),
    data: await d('data'),
    meta: await d('meta'),
    chunker: await d('chunker'),
  };
}

/** A blob sealed for a vector, with everything a reader needs to check each step. */
interface VecBlob {
  label: string;
  kind: BlobKind;
  compression: CompressionValue;
  plain: Uint8Array;
  body: Uint8Array;
  id: Uint8Array;
  nonce: Uint8Array;
  ad: Uint8Array;
  sealed: Uint8Array;
}

/**
 * Seal one blob. `adKind` overrides the kind bound in the AD (negative vectors only: a
 * blob listed as one kind but sealed as another).
 */
async function sealVecBlob(
  keys: VectorKeys,
  label: string,
  kind: BlobKind,
  plain: Uint8Array,
  compression: CompressionValue,
  adKind: BlobKind = kind,
): Promise<VecBlob> {
  const id = await hmacSha256(keys.blobId, plain);
  const body =
    compression === Compression.DEFLATE_RAW
      ? new Uint8Array(deflateRawSync(plain, { level: 1 }))
      : compression === Compression.BROTLI
        ? new Uint8Array(brotliCompressSync(plain, { params: { [zc.BROTLI_PARAM_QUALITY]: 0 } }))
        : plain;
  const ad = blobAd(adKind, keys.repoId, compression, id);
  const nonce = nonceOf(label);
  const key = adKind === ObjectKind.DATA_BLOB ? keys.data : keys.meta;
  const sealed = await sealWeb(key, ad, body, nonce);
  return { label, kind, compression, plain, body, id, nonce, ad, sealed };
}

async function sealObject(
  keys: VectorKeys,
  label: string,
  kind: ObjectKindValue,
  plain: Uint8Array,
): Promise<{ nonce: Uint8Array; ad: Uint8Array; sealed: Uint8Array; name: string }> {
  const ad = objectAd(kind, keys.repoId);
  const nonce = nonceOf(label);
  const sealed = await sealWeb(keys.meta, ad, plain, nonce);
  const dir =
    kind === ObjectKind.INDEX ? 'index/' : kind === ObjectKind.SNAPSHOT ? 'snapshots/' : '';
  return { nonce, ad, sealed, name: dir + (await sha256Hex(sealed)) };
}

interface VecPack {
  label: string;
  blobs: VecBlob[];
  entries: BlobEntry[];
  headerPlain: Uint8Array;
  headerNonce: Uint8Array;
  sealedHeader: Uint8Array;
  bytes: Uint8Array;
  id: string;
  name: string;
}

async function buildPack(keys: VectorKeys, label: string, blobs: VecBlob[]): Promise<VecPack> {
  let offset = 0;
  const entries: BlobEntry[] = blobs.map((b) => {
    const e: BlobEntry = {
      kind: b.kind,
      compression: b.compression,
      id: b.id,
      offset,
      length: b.sealed.length,
      rawLength: b.plain.length,
    };
    offset += b.sealed.length;
    return e;
  });
  const headerPlain = encodePackHeader(entries);
  const headerNonce = nonceOf(`${label}/header`);
  const sealedHeader = await sealWeb(
    keys.meta,
    objectAd(ObjectKind.PACK_HEADER, keys.repoId),
    headerPlain,
    headerNonce,
  );
  const bytes = assemblePack(
    blobs.map((b) => b.sealed),
    sealedHeader,
  );
  const id = await sha256Hex(bytes);
  return {
    label,
    blobs,
    entries,
    headerPlain,
    headerNonce,
    sealedHeader,
    bytes,
    id,
    name: packName(id),
  };
}

const hex = toHex;
const ns = (v: bigint): string => v.toString();

function entryJson(e: BlobEntry): Json {
  return {
    kind: e.kind,
    compression: e.compression,
    id: hex(e.id),
    offset: e.offset,
    length: e.length,
    rawLength: e.rawLength,
  };
}

function treeEntryJson(e: TreeEntry): Json {
  const base = { name: e.name, type: e.type, mode: e.mode, mtimeNs: ns(e.mtimeNs) };
  if (e.type === EntryType.FILE) return { ...base, size: e.size, chunks: e.chunks.map(hex) };
  if (e.type === EntryType.DIR) return { ...base, subtree: hex(e.subtree) };
  return { ...base, target: e.target };
}

function snapshotJson(s: Snapshot): Json {
  return {
    seq: s.seq,
    prev: s.prev ? hex(s.prev) : null,
    timeMs: s.timeMs,
    hostname: s.hostname,
    rootTree: hex(s.rootTree),
    rootMode: s.rootMode,
    rootMtimeNs: ns(s.rootMtimeNs),
    files: s.files,
    dirs: s.dirs,
    bytes: s.bytes,
    ...(s.partial !== undefined ? { partial: s.partial, skipped: s.skipped ?? 0 } : {}),
  };
}

function blobJson(b: VecBlob): Json {
  return {
    label: b.label,
    kind: b.kind,
    compression: b.compression,
    plaintext: hex(b.plain),
    id: hex(b.id),
    body: hex(b.body),
    nonce: hex(b.nonce),
    ad: hex(b.ad),
    sealed: hex(b.sealed),
  };
}

function packJson(p: VecPack): Json {
  return {
    label: p.label,
    name: p.name,
    id: p.id,
    headerPlaintext: hex(p.headerPlain),
    headerNonce: hex(p.headerNonce),
    sealedHeader: hex(p.sealedHeader),
    entries: p.entries.map(entryJson),
    blobs: p.blobs.map((b) => b.label),
    bytes: hex(p.bytes),
  };
}

// ---------------------------------------------------------------------------------------
// The vector repository: two snapshots of a small chat directory.

/** What a restored file system entry must look like (relative path, `/` separated). */
interface ExpectedEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  mtimeNs: string;
  size?: number;
  sha256?: string;
  target?: string;
}

const T0 = 1_700_000_000_000;
const mt = (s: number): bigint => BigInt(T0 + s) * 1_000_000n + 123_456n;

/** Options for negative variants of the repository (forgeries by a key holder). */
interface RepoOptions {
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

interface BuiltRepo {
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

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function buildRepo(
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

const objectsJson = (m: Map<string, Uint8Array>): Json =>
  Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, hex(v)]));

/** Differences from `base` to `variant`: changed/added objects as hex, removed as null. */
function diffObjects(base: Map<string, Uint8Array>, variant: Map<string, Uint8Array>): Json {
  const out: Record<string, Json> = {};
  for (const [k, v] of variant) {
    const b = base.get(k);
    if (!b || hex(b) !== hex(v)) out[k] = hex(v);
  }
  for (const k of base.keys()) if (!variant.has(k)) out[k] = null;
  return out;
}

// ---------------------------------------------------------------------------------------

const header = (about: string): Record<string, Json> => ({
  about,
  spec: 'SPEC.md',
  generator: 'scripts/gen-vectors.ts',
  formatVersion: FORMAT_VERSION,
});

async function keyEncodingVectors(): Promise<Json> {
  const k = VECTOR_KEY;
  const text = formatBackupKey(k);
  const digits = text.replaceAll(' ', '');
  const valid: Json[] = [
    ['canonical form', text],
    ['no separators', digits],
    ['upper case', text.toUpperCase()],
    ['dashes between groups', text.replaceAll(' ', '-')],
    [
      'line breaks, tabs, CRLF and stray separators',
      `\n\t${digits.slice(0, 16)}\r\n${digits.slice(16, 40)}  -- ${digits.slice(40)}\n`,
    ],
    [
      'mixed case, groups of 8',
      digits
        .replace(/(.{8})/g, '$1 ')
        .replace(/[a-f]/g, (c, i: number) => (i % 2 ? c.toUpperCase() : c)),
    ],
  ].map(([description, input]) => ({
    description: description as string,
    input: input as string,
    key: hex(k),
  }));
  const k2 = detBytes('second key', 32);
  valid.push({ description: 'another key, canonical', input: formatBackupKey(k2), key: hex(k2) });
  const invalid: Json[] = [
    ['63 digits', digits.slice(0, 63), 'found 63'],
    ['65 digits', digits + '0', 'found 65'],
    ['empty', '', 'found 0'],
    ['letter g', 'g' + digits.slice(1), "invalid character 'g' (U+0067) at position 1"],
    [
      'letter O for zero',
      digits.slice(0, 4) + ' O' + digits.slice(5),
      "invalid character 'O' (U+004F) at position 6",
    ],
    [
      'no-break space',
      digits.slice(0, 4) + '\u00a0' + digits.slice(4),
      'invalid character U+00A0 at position 5',
    ],
    [
      'en dash',
      digits.slice(0, 4) + '\u2013' + digits.slice(4),
      'invalid character U+2013 at position 5',
    ],
    ['zero-width space', '\u200b' + digits, 'invalid character U+200B at position 1'],
    [
      'emoji (one code point, two UTF-16 units)',
      '\u{1F511}' + digits,
      'invalid character U+1F511 at position 1',
    ],
    [
      'underscore',
      digits.slice(0, 8) + '_' + digits.slice(8),
      "invalid character '_' (U+005F) at position 9",
    ],
    ['full-width digit', '\uff10' + digits.slice(1), 'invalid character U+FF10 at position 1'],
  ].map(([description, input, message]) => ({
    description: description as string,
    input: input as string,
    code: 'INVALID_KEY',
    messageIncludes: message as string,
  }));
  return {
    ...header(
      'The 64-digit key: parseBackupKey(input) gives `key` (hex of 32 bytes); formatBackupKey(key) of a valid vector with description "canonical form" gives `input`. Invalid inputs fail with code INVALID_KEY and a message containing `messageIncludes` (positions count code points from 1).',
    ),
    valid,
    invalid,
  };
}

async function keyScheduleVectors(): Promise<Json> {
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

async function configVectors(): Promise<Json> {
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

async function blobVectors(keys: VectorKeys): Promise<Json> {
  const text = utf8(
    Array.from({ length: 64 }, (_, i) => `row ${i}|alice|hi bob, lunch at noon?\n`).join(''),
  );
  const photo = detBytes('blob vector photo', 600);
  const treePlain = encodeTree(
    sortTreeEntries(
      Array.from({ length: 20 }, (_, i): TreeEntry => ({
        type: EntryType.FILE,
        name: `IMG_${String(i).padStart(4, '0')}.jpg`,
        mode: 0o644,
        mtimeNs: mt(i),
        size: 0,
        chunks: [],
      })),
    ),
  );
  const blobs = [
    await sealVecBlob(
      keys,
      'data blob, uncompressed',
      ObjectKind.DATA_BLOB,
      photo,
      Compression.NONE,
    ),
    await sealVecBlob(
      keys,
      'data blob, deflate-raw',
      ObjectKind.DATA_BLOB,
      text,
      Compression.DEFLATE_RAW,
    ),
    await sealVecBlob(
      keys,
      'tree blob, deflate-raw',
      ObjectKind.TREE_BLOB,
      treePlain,
      Compression.DEFLATE_RAW,
    ),
    await sealVecBlob(keys, 'data blob, brotli', ObjectKind.DATA_BLOB, text, Compression.BROTLI),
    await sealVecBlob(
      keys,
      'empty data blob',
      ObjectKind.DATA_BLOB,
      new Uint8Array(0),
      Compression.NONE,
    ),
  ];
  const [b0, b1, b2, b3] = blobs as [VecBlob, VecBlob, VecBlob, VecBlob];
  const ref = (b: VecBlob): Record<string, Json> => ({
    kind: b.kind,
    compression: b.compression,
    id: hex(b.id),
    rawLength: b.plain.length,
  });
  const flipped = b0.sealed.slice();
  flipped[20] = (flipped[20] as number) ^ 0x04;
  const asTree = await sealVecBlob(
    keys,
    'data blob sealed as tree',
    ObjectKind.DATA_BLOB,
    photo,
    Compression.NONE,
    ObjectKind.TREE_BLOB,
  );
  const invalid: Json[] = [
    {
      description: 'one ciphertext bit flipped',
      ref: ref(b0),
      sealed: hex(flipped),
      code: 'CORRUPT',
    },
    {
      description: 'truncated (tag cut)',
      ref: ref(b0),
      sealed: hex(b0.sealed.subarray(0, b0.sealed.length - 1)),
      code: 'CORRUPT',
    },
    {
      description: 'shorter than nonce + tag',
      ref: ref(b0),
      sealed: hex(b0.sealed.subarray(0, 27)),
      code: 'CORRUPT',
    },
    {
      description: 'listed as a tree (AD kind 2, meta key)',
      ref: { ...ref(b0), kind: ObjectKind.TREE_BLOB },
      sealed: hex(b0.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'a data blob sealed with the TREE_BLOB AD, listed as data',
      ref: ref(asTree),
      sealed: hex(asTree.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'compression flag flipped to deflate-raw',
      ref: { ...ref(b0), compression: Compression.DEFLATE_RAW },
      sealed: hex(b0.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'compression flag flipped to none',
      ref: { ...ref(b1), compression: Compression.NONE },
      sealed: hex(b1.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'another blob id',
      ref: { ...ref(b0), id: hex(b1.id) },
      sealed: hex(b0.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'another blob swapped in',
      ref: ref(b0),
      sealed: hex(b1.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'brotli blob listed as deflate-raw',
      ref: { ...ref(b3), compression: Compression.DEFLATE_RAW },
      sealed: hex(b3.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'wrong raw length',
      ref: { ...ref(b1), rawLength: b1.plain.length - 1 },
      sealed: hex(b1.sealed),
      code: 'CORRUPT',
    },
    {
      description: 'tree blob listed as data',
      ref: { ...ref(b2), kind: ObjectKind.DATA_BLOB },
      sealed: hex(b2.sealed),
      code: 'CORRUPT',
    },
  ];
  return {
    ...header(
      'Sealed blobs: id = HMAC-SHA256(subkey blobId, plaintext); body = plaintext (compression 0), its raw deflate (1, RFC 1951) or a Brotli stream (2, RFC 7932); sealed = nonce || AES-256-GCM(key, nonce, body, ad) with tag appended; key = subkey data for kind 1, meta for kind 2. Opening `sealed` with `ref` must yield `plaintext`; each invalid case must fail with `code`.',
    ),
    backupKey: hex(VECTOR_KEY),
    repoId: hex(VECTOR_REPO_ID),
    subkeys: { blobId: hex(keys.blobId), data: hex(keys.data), meta: hex(keys.meta) },
    blobs: blobs.map(blobJson),
    invalid,
  };
}

async function treeVectors(repo: BuiltRepo): Promise<Json> {
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

async function snapshotVectors(keys: VectorKeys, repo: BuiltRepo): Promise<Json> {
  const s0 = repo.snapshots[0] as BuiltRepo['snapshots'][number];
  const p = s0.plain;
  const set = (at: number, v: number): string => {
    const b = p.slice();
    b[at] = v;
    return hex(b);
  };
  const s2 = repo.snapshots[1] as BuiltRepo['snapshots'][number];
  const asIndex = await sealWeb(
    keys.meta,
    objectAd(ObjectKind.INDEX, keys.repoId),
    s0.plain,
    s0.nonce,
  );
  return {
    ...header(
      'Snapshot objects: plaintext = encodeSnapshot(fields); sealed = nonce || AES-256-GCM(meta, nonce, plaintext, ad = objectAd(SNAPSHOT)); name = "snapshots/" + hex SHA-256(sealed), which is also the snapshot id. Time fields: timeMs (i64 ms), rootMtimeNs (i64 ns, decimal string).',
    ),
    backupKey: hex(VECTOR_KEY),
    repoId: hex(VECTOR_REPO_ID),
    // Layout 2: a partial snapshot (flags bit 0) that left 3 source entries out.
    layout2: [
      { ...s0.snap, partial: true, skipped: 3 },
      { ...s0.snap, partial: false, skipped: 1 },
    ].map((snap) => ({ fields: snapshotJson(snap), plaintext: hex(encodeSnapshot(snap)) })),
    snapshots: repo.snapshots.map((s) => ({
      name: s.name,
      id: s.id,
      fields: snapshotJson(s.snap),
      plaintext: hex(s.plain),
      nonce: hex(s.nonce),
      ad: hex(objectAd(ObjectKind.SNAPSHOT, keys.repoId)),
      sealed: hex(repo.objects.get(s.name) as Uint8Array),
    })),
    invalidPlaintexts: [
      { description: 'seq 0', plaintext: set(1, 0), code: 'CORRUPT' },
      {
        description: 'seq 1 with a previous id',
        plaintext: hex(concatBytes(Uint8Array.of(1, 1, 0, 0, 0, 0, 0, 0, 0), s2.plain.subarray(9))),
        code: 'CORRUPT',
      },
      { description: 'seq 2 without a previous id', plaintext: set(1, 2), code: 'CORRUPT' },
      { description: 'previous flag 2', plaintext: set(9, 2), code: 'CORRUPT' },
      {
        description: 'layout 2 without its flags and skipped count',
        plaintext: set(0, 2),
        code: 'CORRUPT',
      },
      {
        description: 'layout 2 with an unknown flag (2)',
        plaintext: hex(
          concatBytes(Uint8Array.of(2), p.subarray(1), Uint8Array.of(2), new Uint8Array(8)),
        ),
        code: 'CORRUPT',
      },
      { description: 'version 3', plaintext: set(0, 3), code: 'CORRUPT' },
      {
        description: 'trailing byte',
        plaintext: hex(concatBytes(p, new Uint8Array(1))),
        code: 'CORRUPT',
      },
      { description: 'truncated', plaintext: hex(p.subarray(0, p.length - 1)), code: 'CORRUPT' },
    ],
    invalidSealed: [
      {
        description: 'snapshot sealed with the INDEX associated data',
        sealed: hex(asIndex),
        code: 'CORRUPT',
      },
      {
        description: 'last byte (tag) flipped',
        sealed: hex(flipLast(repo.objects.get(s0.name) as Uint8Array)),
        code: 'CORRUPT',
      },
    ],
  };
}

function flipLast(b: Uint8Array): Uint8Array {
  const c = b.slice();
  c[c.length - 1] = (c[c.length - 1] as number) ^ 0x01;
  return c;
}

async function packVectors(keys: VectorKeys, repo: BuiltRepo): Promise<Json> {
  const p = repo.packs[0] as VecPack;
  const withTrailer = (n: number): string => {
    const b = p.bytes.slice();
    new DataView(b.buffer).setUint32(b.length - 4, n, true);
    return hex(b);
  };
  return {
    ...header(
      'Packs: sealed blobs || sealed header || u32le sealed header length; name = "data/" + hex[0:2] + "/" + hex, hex = SHA-256 of the pack. Index objects list packs and their entries. Every invalid pack must fail with `code` when its header is read.',
    ),
    backupKey: hex(VECTOR_KEY),
    repoId: hex(VECTOR_REPO_ID),
    packs: repo.packs.map(packJson),
    blobs: repo.packs.flatMap((pk) => pk.blobs).map(blobJson),
    indexes: repo.indexes.map((i) => ({
      name: i.name,
      plaintext: hex(i.plain),
      nonce: hex(i.nonce),
      ad: hex(objectAd(ObjectKind.INDEX, keys.repoId)),
      sealed: hex(repo.objects.get(i.name) as Uint8Array),
      packs: i.packs.map((x) => ({ packId: hex(x.packId), entries: x.blobs.map(entryJson) })),
    })),
    invalidPacks: [
      {
        description: 'trailer length larger than the pack',
        bytes: withTrailer(p.bytes.length),
        code: 'CORRUPT',
      },
      {
        description: 'trailer length too small for a header',
        bytes: withTrailer(10),
        code: 'CORRUPT',
      },
      {
        description: 'trailer length off by one',
        bytes: withTrailer(p.sealedHeader.length + 1),
        code: 'CORRUPT',
      },
      {
        description: 'header byte flipped',
        bytes: hex(flipAt(p.bytes, p.bytes.length - 10)),
        code: 'CORRUPT',
      },
      {
        description: 'a byte removed from the first blob',
        bytes: hex(concatBytes(p.bytes.subarray(0, 5), p.bytes.subarray(6))),
        code: 'CORRUPT',
      },
      { description: 'three bytes only', bytes: hex(p.bytes.subarray(0, 3)), code: 'CORRUPT' },
    ],
  };
}

function flipAt(b: Uint8Array, at: number): Uint8Array {
  const c = b.slice();
  c[at] = (c[at] as number) ^ 0x01;
  return c;
}

async function chunkingVectors(keys: VectorKeys): Promise<Json> {
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

async function repositoryVectors(repo: BuiltRepo): Promise<Json> {
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

async function negativeRepositoryVectors(keys: VectorKeys, repo: BuiltRepo): Promise<Json> {
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

// --- SPEC.md §18: key slots. Self-contained: uses only src/format and detBytes.

async function keySlotVectors(): Promise<Json> {
  const f = await import('../src/format/index.js');
  const repoId = VECTOR_REPO_ID;
  const backupKey = VECTOR_KEY;
  const config = f.encodeConfig({
    version: FORMAT_VERSION,
    repoId,
    keyCheck: await f.keyCheckValue(backupKey, repoId, FORMAT_VERSION),
  });
  const created = 1_700_000_000_000;
  // recovery-key slot
  const recoveryKey = detBytes('key slot: recovery key', 32);
  const recoveryId = await f.recoveryKeySlotId(recoveryKey, repoId);
  const recoveryKek = await f.deriveKeySlotKek('recovery-key', recoveryKey, repoId);
  const recoveryInfo: KeySlotInfoV = { kind: 'recovery-key', slotId: recoveryId, created };
  const recoveryNonce = nonceOf('key slot: recovery key');
  const recoverySlot = await f.sealKeySlot({
    info: recoveryInfo,
    backupKey,
    kek: recoveryKek,
    repoId,
    nonce: recoveryNonce,
  });
  // passkey slot
  const prfOutput = detBytes('key slot: PRF output', 32);
  const passkeyInfo: KeySlotInfoV = {
    kind: 'passkey',
    slotId: detBytes('key slot: passkey slot id', 16),
    created: created + 1000,
    rpId: 'chat.example.com',
    credentialId: detBytes('key slot: credential id', 20),
    prfSalt: detBytes('key slot: PRF salt', 32),
  };
  const passkeyKek = await f.deriveKeySlotKek('passkey', prfOutput, repoId);
  const passkeySlot = await f.sealKeySlot({
    info: passkeyInfo,
    backupKey,
    kek: passkeyKek,
    repoId,
    nonce: nonceOf('key slot: passkey'),
  });
  const entry = async (info: KeySlotInfoV, slot: Uint8Array, label: string) => ({
    slotId: info.slotId,
    kind: info.kind,
    hash: await f.keySlotHash(slot),
    created: info.created,
    label,
  });
  const entries = [
    await entry(recoveryInfo, recoverySlot, 'paper copy at the bank'),
    await entry(passkeyInfo, passkeySlot, ''),
  ].sort((a, b) => (hex(a.slotId) < hex(b.slotId) ? -1 : 1));
  const manifest = { seq: 2, entries };
  const manifestPlain = f.encodeKeySlotManifest(manifest);
  const manifestSealed = await f.sealKeySlotManifest(
    manifest,
    backupKey,
    repoId,
    nonceOf('key slot manifest'),
  );
  const recoveryName = f.keySlotName(recoveryId);
  const passkeyName = f.keySlotName(passkeyInfo.slotId);
  const flip = (b: Uint8Array, at: number): Uint8Array => {
    const c = b.slice();
    const i = at < 0 ? c.length + at : at;
    c[i] = (c[i] as number) ^ 0x01;
    return c;
  };
  const otherRepo = detBytes('key slot: other repo id', 16);
  const otherRepoSlot = await f.sealKeySlot({
    info: recoveryInfo,
    backupKey,
    kek: recoveryKek,
    repoId: otherRepo,
    nonce: recoveryNonce,
  });
  const wrongKeySlot = await f.sealKeySlot({
    info: recoveryInfo,
    backupKey: VECTOR_WRONG_KEY,
    kek: recoveryKek,
    repoId,
    nonce: recoveryNonce,
  });
  const slotCase = (
    description: string,
    name: string,
    slot: Uint8Array,
    kek: Uint8Array,
    code: string,
  ): Json => ({ description, name, slot: hex(slot), kek: hex(kek), code });
  const withoutRecovery = await f.sealKeySlotManifest(
    { seq: 3, entries: entries.filter((e) => hex(e.slotId) !== hex(recoveryId)) },
    backupKey,
    repoId,
    nonceOf('key slot manifest without recovery'),
  );
  const otherHash = await f.sealKeySlotManifest(
    {
      seq: 3,
      entries: entries.map((e) =>
        hex(e.slotId) === hex(recoveryId) ? { ...e, hash: new Uint8Array(32) } : e,
      ),
    },
    backupKey,
    repoId,
    nonceOf('key slot manifest other hash'),
  );
  const unlockCase = (
    description: string,
    manifestBytes: Uint8Array | null,
    slot: Uint8Array,
    code: string,
  ): Json => ({
    description,
    name: recoveryName,
    slot: hex(slot),
    kek: hex(recoveryKek),
    manifest: manifestBytes === null ? null : hex(manifestBytes),
    code,
  });
  return {
    ...header(
      'Key slots (SPEC.md §18). kek = HKDF-SHA256(secret, repoId, kekInfo). Each `slots` entry opens with its `kek` to `backupKey` and decodes to its fields; `manifest.sealed` opens with the meta subkey of `backupKey` to `manifest.plain`. Each `invalidSlots` case fails to open (decode, then AES-256-GCM with AD = objectAd(7, repoId) || header) with `code`; each `invalidUnlocks` case opens, then fails the check against `config` and `manifest` (null = absent) with `code`.',
    ),
    backupKey: hex(backupKey),
    repoId: hex(repoId),
    config: hex(config),
    slots: [
      {
        kind: 'recovery-key',
        secret: hex(recoveryKey),
        secretIs: 'the recovery key (64 digits: ' + f.formatBackupKey(recoveryKey) + ')',
        slotIdInfo: f.RECOVERY_KEY_SLOT_ID_INFO,
        slotId: hex(recoveryId),
        created,
        kekInfo: f.KEY_SLOT_KEK_INFO['recovery-key'],
        kek: hex(recoveryKek),
        nonce: hex(recoveryNonce),
        name: recoveryName,
        header: hex(f.encodeKeySlotHeader(recoveryInfo)),
        bytes: hex(recoverySlot),
      },
      {
        kind: 'passkey',
        secret: hex(prfOutput),
        secretIs: 'the 32-byte WebAuthn PRF output of the credential on prfSalt',
        slotId: hex(passkeyInfo.slotId),
        created: passkeyInfo.created,
        rpId: passkeyInfo.kind === 'passkey' ? passkeyInfo.rpId : '',
        credentialId: passkeyInfo.kind === 'passkey' ? hex(passkeyInfo.credentialId) : '',
        prfSalt: passkeyInfo.kind === 'passkey' ? hex(passkeyInfo.prfSalt) : '',
        kekInfo: f.KEY_SLOT_KEK_INFO.passkey,
        kek: hex(passkeyKek),
        nonce: hex(nonceOf('key slot: passkey')),
        name: passkeyName,
        header: hex(f.encodeKeySlotHeader(passkeyInfo)),
        bytes: hex(passkeySlot),
      },
    ],
    manifest: {
      name: f.KEY_SLOT_MANIFEST_NAME,
      seq: manifest.seq,
      nonce: hex(nonceOf('key slot manifest')),
      plain: hex(manifestPlain),
      sealed: hex(manifestSealed),
    },
    invalidSlots: [
      slotCase(
        'wrong KEK (another PRF output)',
        passkeyName,
        passkeySlot,
        await f.deriveKeySlotKek('passkey', detBytes('key slot: other PRF output', 32), repoId),
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'recovery-key KEK used for the passkey slot (kinds have distinct labels)',
        passkeyName,
        passkeySlot,
        await f.deriveKeySlotKek('recovery-key', prfOutput, repoId),
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'swapped: the recovery slot stored under the passkey slot name',
        passkeyName,
        recoverySlot,
        recoveryKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'slot id in the header changed (and the name with it)',
        f.keySlotName(flip(recoveryId, 0)),
        flip(recoverySlot, 10),
        recoveryKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'kind changed: passkey to recovery-key',
        passkeyName,
        (() => {
          const c = passkeySlot.slice();
          c[9] = 1;
          return c;
        })(),
        passkeyKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'kind 3 (unknown)',
        recoveryName,
        (() => {
          const c = recoverySlot.slice();
          c[9] = 3;
          return c;
        })(),
        recoveryKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'credential id changed',
        passkeyName,
        flip(passkeySlot, 34 + 1 + 16 + 2),
        passkeyKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'PRF salt changed',
        passkeyName,
        flip(passkeySlot, 34 + 1 + 16 + 2 + 20),
        passkeyKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'created time changed',
        recoveryName,
        flip(recoverySlot, 26),
        recoveryKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'slot of another repository (same keys)',
        recoveryName,
        otherRepoSlot,
        recoveryKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'truncated by one byte',
        recoveryName,
        recoverySlot.subarray(0, recoverySlot.length - 1),
        recoveryKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'one byte appended',
        recoveryName,
        concatBytes(recoverySlot, new Uint8Array(1)),
        recoveryKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase(
        'tag changed',
        recoveryName,
        flip(recoverySlot, -1),
        recoveryKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase('bad magic', recoveryName, flip(recoverySlot, 0), recoveryKek, 'KEY_SLOT_CORRUPT'),
      slotCase(
        'version 2',
        recoveryName,
        (() => {
          const c = recoverySlot.slice();
          c[8] = 2;
          return c;
        })(),
        recoveryKek,
        'KEY_SLOT_CORRUPT',
      ),
      slotCase('empty', recoveryName, new Uint8Array(0), recoveryKek, 'KEY_SLOT_CORRUPT'),
    ],
    invalidUnlocks: [
      unlockCase('manifest missing', null, recoverySlot, 'KEY_SLOT_MISMATCH'),
      unlockCase(
        'manifest does not list the slot (removed, then put back by the store)',
        withoutRecovery,
        recoverySlot,
        'KEY_SLOT_MISMATCH',
      ),
      unlockCase(
        'manifest lists another hash for the slot (replaced)',
        otherHash,
        recoverySlot,
        'KEY_SLOT_MISMATCH',
      ),
      unlockCase('manifest tampered', flip(manifestSealed, 20), recoverySlot, 'CORRUPT'),
      unlockCase(
        'slot wraps a key that does not pass the key check',
        manifestSealed,
        wrongKeySlot,
        'KEY_SLOT_CORRUPT',
      ),
    ],
  };
}

type KeySlotInfoV = import('../src/format/index.js').KeySlotInfo;

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
