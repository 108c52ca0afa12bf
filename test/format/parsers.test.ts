import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  Compression,
  EntryType,
  ObjectKind,
  decodeConfig,
  decodeIndex,
  decodePackHeader,
  decodeSnapshot,
  decodeTree,
  encodeConfig,
  encodeIndex,
  encodePackHeader,
  encodeSnapshot,
  encodeTree,
  encodePackTrailer,
  objectAd,
  openWeb,
  packTrailer,
  parseBackupKey,
  sealWeb,
  sortTreeEntries,
  unsafeNameReason,
  type BlobEntry,
  type Snapshot,
  type TreeEntry,
} from '#sdk/format/index.js';
import { CorruptBackupError, InvalidKeyError, UnsupportedVersionError } from '#sdk/errors.js';
import { deriveRepoKeys, open } from '#sdk/backup/repository/keys.js';
import { openBlob, sealBlob } from '#sdk/backup/repository/blob-codec.js';

const id = fc.uint8Array({ minLength: 32, maxLength: 32 });

/** Run a decoder on `bytes`: it may succeed or throw CorruptBackupError, nothing else. */
function onlyCorrupt(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof CorruptBackupError)) throw e;
  }
}

const decoders: [string, (b: Uint8Array) => unknown][] = [
  ['config', (b) => decodeConfig(b)],
  ['index', (b) => decodeIndex(b)],
  ['pack header', (b) => decodePackHeader(b, 1000)],
  ['snapshot', (b) => decodeSnapshot(b)],
  ['tree', (b) => decodeTree(b)],
  ['pack trailer', (b) => packTrailer(b.length + 100, b.subarray(0, 4))],
];

const plain = <T extends object>(a: fc.Arbitrary<T>): fc.Arbitrary<T> => a.map((x) => ({ ...x }));
const entryArb: fc.Arbitrary<BlobEntry> = plain(
  fc.record({
    kind: fc.constantFrom(ObjectKind.DATA_BLOB, ObjectKind.TREE_BLOB),
    compression: fc.constant(Compression.DEFLATE_RAW),
    id,
    offset: fc.constant(0),
    length: fc.integer({ min: 28, max: 100000 }),
    rawLength: fc.integer({ min: 0, max: 100000 }),
  }),
);

const name = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
  .filter((n) => unsafeNameReason(n) === undefined);
const base = {
  mode: fc.integer({ min: 0, max: 0o7777 }),
  mtimeNs: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
};
const treeEntryArb = plain(
  fc.oneof(
    fc.record({
      ...base,
      name,
      type: fc.constant(EntryType.FILE),
      size: fc.constant(0),
      chunks: fc.constant([] as Uint8Array[]),
    }),
    fc.record({
      ...base,
      name,
      type: fc.constant(EntryType.FILE),
      size: fc.integer({ min: 1, max: 2 ** 40 }),
      chunks: fc.array(id, { minLength: 1, maxLength: 4 }),
    }),
    fc.record({ ...base, name, type: fc.constant(EntryType.DIR), subtree: id }),
    fc.record({
      ...base,
      name,
      type: fc.constant(EntryType.SYMLINK),
      target: fc.string({ minLength: 1 }).filter((t) => !t.includes('\0')),
    }),
  ) as fc.Arbitrary<TreeEntry>,
);

describe('format decoders', () => {
  for (const [label, decode] of decoders) {
    it(`${label}: random bytes never crash with anything but CorruptBackupError`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 600 }), (b) => onlyCorrupt(() => decode(b))),
        { numRuns: 2000 },
      );
    });
  }

  it('tree: encode/decode round trip, and every mutation decodes or is CORRUPT', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(treeEntryArb, { selector: (e) => e.name, maxLength: 8 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (entries, at, v) => {
          const sorted = sortTreeEntries([...entries]);
          const bytes = encodeTree(sorted);
          assert.deepEqual(decodeTree(bytes), sorted);
          const m = bytes.slice();
          m[at % m.length] = v;
          onlyCorrupt(() => decodeTree(m));
          onlyCorrupt(() => decodeTree(bytes.subarray(0, at % bytes.length)));
        },
      ),
    );
  });

  it('tree: names that could escape the directory are CORRUPT', () => {
    for (const bad of ['..', '.', '', 'a/b', '/etc', 'x\0y']) {
      const e: TreeEntry = {
        type: EntryType.FILE,
        name: 'placeholder',
        mode: 0o644,
        mtimeNs: 0n,
        size: 0,
        chunks: [],
      };
      const bytes = encodeTree([e]);
      // Splice the bad name into an otherwise valid encoding.
      const nb = new TextEncoder().encode(bad);
      const out = new Uint8Array(bytes.length - 11 + nb.length);
      out.set(bytes.subarray(0, 5));
      new DataView(out.buffer).setUint16(5, nb.length, true);
      out.set(nb, 7);
      out.set(bytes.subarray(7 + 11), 7 + nb.length);
      assert.throws(() => decodeTree(out), CorruptBackupError, JSON.stringify(bad));
    }
  });

  it('index and pack header round trip', () => {
    fc.assert(
      fc.property(
        fc.array(plain(fc.record({ packId: id, blobs: fc.array(entryArb, { maxLength: 5 }) })), {
          maxLength: 4,
        }),
        (packs) => {
          assert.deepEqual(decodeIndex(encodeIndex(packs)), packs);
        },
      ),
    );
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 6 }), (entries) => {
        let off = 0;
        const tiled = entries.map((e) => {
          const t = { ...e, offset: off };
          off += e.length;
          return t;
        });
        assert.deepEqual(decodePackHeader(encodePackHeader(tiled), off), tiled);
        assert.throws(() => decodePackHeader(encodePackHeader(tiled), off + 1), CorruptBackupError);
      }),
    );
  });

  it('snapshot round trip and field validation', () => {
    fc.assert(
      fc.property(
        id,
        id,
        fc.integer({ min: 1, max: 1e9 }),
        fc.string({ maxLength: 30 }),
        (root, prev, seq, host) => {
          const s = {
            seq,
            prev: seq === 1 ? null : prev,
            timeMs: 1_700_000_000_000,
            hostname: host,
            rootTree: root,
            rootMode: 0o755,
            rootMtimeNs: 123n,
            files: 3,
            dirs: 1,
            bytes: 99,
          };
          assert.deepEqual(decodeSnapshot(encodeSnapshot(s)), s);
        },
      ),
    );
  });

  it('config: every single-byte change of magic, version or reserved bytes is CORRUPT', () => {
    const c = encodeConfig({
      version: 1,
      repoId: new Uint8Array(16).fill(7),
      keyCheck: new Uint8Array(32).fill(9),
    });
    for (let i = 0; i < 12; i++) {
      const m = c.slice();
      m[i] = (m[i] as number) ^ 1;
      assert.throws(() => decodeConfig(m), CorruptBackupError, `byte ${i}`);
    }
    assert.throws(() => decodeConfig(c.subarray(0, 59)), CorruptBackupError);
    assert.throws(() => decodeConfig(new Uint8Array([...c, 0])), CorruptBackupError);
    assert.equal(decodeConfig(c).version, 1);
  });
});

/** Decoders may succeed or throw CORRUPT / UNSUPPORTED_VERSION; never anything else, never slowly. */
function onlyFormatErrors(fn: () => unknown): void {
  const t0 = performance.now();
  try {
    fn();
  } catch (e) {
    if (!(e instanceof CorruptBackupError) && !(e instanceof UnsupportedVersionError)) throw e;
  }
  // A decoder that loops on a forged count would show here long before the test timeout.
  assert.ok(performance.now() - t0 < 250, 'decoder took too long');
}

/** A mutation of `bytes`: flip, set, delete, insert, truncate or extend. */
const mutation = fc.tuple(
  fc.constantFrom('flip', 'set', 'delete', 'insert', 'truncate', 'extend'),
  fc.nat(),
  fc.integer({ min: 0, max: 255 }),
);
function mutate(bytes: Uint8Array, [op, at, v]: [string, number, number]): Uint8Array {
  const i = bytes.length === 0 ? 0 : at % bytes.length;
  const b = Array.from(bytes);
  if (op === 'flip' && b.length) b[i] = (b[i] as number) ^ (1 << (v % 8));
  else if (op === 'set' && b.length) b[i] = v;
  else if (op === 'delete') b.splice(i, 1);
  else if (op === 'insert') b.splice(i, 0, v);
  else if (op === 'truncate') b.length = i;
  else b.push(...new Array<number>(1 + (v % 64)).fill(v));
  return Uint8Array.from(b);
}

const snapshotArb: fc.Arbitrary<Snapshot> = fc
  .record({
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    prev: id,
    timeMs: fc.integer({ min: -8.64e15, max: 8.64e15 }),
    hostname: fc.string({ maxLength: 40 }),
    rootTree: id,
    rootMode: fc.integer({ min: 0, max: 0o7777 }),
    rootMtimeNs: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    files: fc.nat(),
    dirs: fc.nat(),
    bytes: fc.nat(),
  })
  .map((s) => ({ ...s, prev: s.seq === 1 ? null : s.prev }));

const anyEntryArb: fc.Arbitrary<BlobEntry> = plain(
  fc.record({
    kind: fc.constantFrom(ObjectKind.DATA_BLOB, ObjectKind.TREE_BLOB),
    compression: fc.constantFrom(Compression.NONE, Compression.DEFLATE_RAW, Compression.BROTLI),
    id,
    offset: fc.constant(0),
    length: fc.integer({ min: 28, max: 100000 }),
    rawLength: fc.integer({ min: 0, max: 100000 }),
  }),
).map((e) => (e.compression === Compression.NONE ? { ...e, length: e.rawLength + 28 } : e));

function tile(entries: BlobEntry[]): { entries: BlobEntry[]; end: number } {
  let off = 0;
  const out = entries.map((e) => {
    const t = { ...e, offset: off };
    off += e.length;
    return t;
  });
  return { entries: out, end: off };
}

describe('format decoders: mutations of valid encodings', () => {
  it('snapshot: round trip, and every mutation decodes or is CORRUPT', () => {
    fc.assert(
      fc.property(snapshotArb, mutation, (s, m) => {
        const bytes = encodeSnapshot(s);
        assert.deepEqual(decodeSnapshot(bytes), s);
        onlyFormatErrors(() => decodeSnapshot(mutate(bytes, m)));
      }),
      { numRuns: 1000 },
    );
  });

  it('index: round trip with both compressions, and every mutation decodes or is CORRUPT', () => {
    fc.assert(
      fc.property(
        fc.array(plain(fc.record({ packId: id, blobs: fc.array(anyEntryArb, { maxLength: 5 }) })), {
          maxLength: 4,
        }),
        mutation,
        (packs, m) => {
          const bytes = encodeIndex(packs);
          assert.deepEqual(decodeIndex(bytes), packs);
          onlyFormatErrors(() => decodeIndex(mutate(bytes, m)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('pack header and trailer: every mutation decodes or is CORRUPT', () => {
    fc.assert(
      fc.property(
        fc.array(anyEntryArb, { minLength: 1, maxLength: 6 }),
        mutation,
        fc.nat(),
        (raw, m, size) => {
          const { entries, end } = tile(raw);
          const bytes = encodePackHeader(entries);
          assert.deepEqual(decodePackHeader(bytes, end), entries);
          onlyFormatErrors(() => decodePackHeader(mutate(bytes, m), end));
          const trailer = encodePackTrailer(bytes.length + 28);
          onlyFormatErrors(() => packTrailer(size, mutate(trailer, m)));
          assert.deepEqual(packTrailer(end + bytes.length + 32, trailer), {
            headerOffset: end,
            headerLength: bytes.length + 28,
          });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('config: round trip, and every mutation decodes or is CORRUPT', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        id,
        mutation,
        (repoId, keyCheck, m) => {
          const bytes = encodeConfig({ version: 1, repoId, keyCheck });
          assert.deepEqual(decodeConfig(bytes), { version: 1, repoId, keyCheck });
          onlyFormatErrors(() => decodeConfig(mutate(bytes, m)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('tree: random mutations of larger trees decode or are CORRUPT', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(treeEntryArb, { selector: (e) => e.name, maxLength: 12 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (entries, ms) => {
          let bytes = encodeTree(sortTreeEntries([...entries]));
          for (const m of ms) bytes = mutate(bytes, m);
          onlyFormatErrors(() => decodeTree(bytes));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('forged counts cannot make a decoder allocate or loop without bound', () => {
    const huge = Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff);
    for (const decode of [decodeIndex, decodeTree, (b: Uint8Array) => decodePackHeader(b, 0)]) {
      onlyFormatErrors(() => decode(huge));
      assert.throws(() => decode(huge), CorruptBackupError);
    }
  });

  it('sealed objects: any mutation of a sealed snapshot, index or blob fails authentication as CORRUPT', async () => {
    const keys = deriveRepoKeys(new Uint8Array(32).fill(1), new Uint8Array(16).fill(2));
    await fc.assert(
      fc.asyncProperty(snapshotArb, mutation, fc.boolean(), async (s, m, web) => {
        const ad = objectAd(ObjectKind.SNAPSHOT, keys.repoId);
        const sealed = await sealWeb(keys.meta, ad, encodeSnapshot(s));
        const bad = mutate(sealed, m);
        if (bad.length === sealed.length && bad.every((x, i) => x === sealed[i])) return;
        if (web) await assert.rejects(openWeb(keys.meta, ad, bad), CorruptBackupError);
        else assert.throws(() => open(keys.meta, ad, bad), CorruptBackupError);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        mutation,
        fc.boolean(),
        (data, m, compress) => {
          const blob = sealBlob(keys, ObjectKind.DATA_BLOB, data, compress);
          const ref = {
            kind: ObjectKind.DATA_BLOB,
            compression: blob.compression,
            id: blob.id,
            rawLength: blob.rawLength,
          } as const;
          assert.deepEqual(openBlob(keys, ref, blob.sealed, 'x'), data);
          const bad = mutate(blob.sealed, m);
          if (bad.length === blob.sealed.length && bad.every((x, i) => x === blob.sealed[i]))
            return;
          assert.throws(() => openBlob(keys, ref, bad, 'x'), CorruptBackupError);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('key parsing: any string parses or is INVALID_KEY, nothing else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          fc.string({ unit: 'binary', maxLength: 100 }),
          fc.stringMatching(/^[0-9a-fA-F \-\n]{60,80}$/),
        ),
        (s) => {
          try {
            assert.equal(parseBackupKey(s).length, 32);
          } catch (e) {
            assert.ok(e instanceof InvalidKeyError, String(e));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
