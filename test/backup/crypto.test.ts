import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { deriveRepoKeys, keyCheckValueNode, open, seal } from '#sdk/backup/repository/keys.js';
import {
  RANDOM_BITS,
  maybeCompress,
  openBlob,
  sampleEntropy,
  sealBlob,
} from '#sdk/backup/repository/blob-codec.js';
import { installedPlatform, useEnginePlatform, type EnginePlatform } from '#sdk/backup/index.js';
import {
  Compression,
  ObjectKind,
  SUBKEY_LABELS,
  blobAd,
  deriveSubkey,
  keyCheckValue,
  objectAd,
  openWeb,
  sealWeb,
  type SubkeyLabel,
} from '#sdk/format/index.js';
import { CorruptBackupError } from '#sdk/errors.js';

describe('node:crypto engine matches the WebCrypto reference of the format', () => {
  it('subkeys and key check value are identical', async () => {
    const key = randomBytes(32);
    const repoId = randomBytes(16);
    const keys = deriveRepoKeys(key, repoId);
    for (const label of Object.keys(SUBKEY_LABELS) as SubkeyLabel[]) {
      assert.deepEqual(keys[label], await deriveSubkey(key, repoId, label), label);
    }
    const labels = Object.keys(SUBKEY_LABELS).map((l) =>
      Buffer.from(keys[l as SubkeyLabel]).toString('hex'),
    );
    assert.equal(new Set(labels).size, labels.length, 'distinct subkeys');
    assert.deepEqual(keyCheckValueNode(keys, 1), await keyCheckValue(key, repoId, 1));
  });

  it('objects sealed by one side open on the other; any changed byte or AD fails as CORRUPT', async () => {
    const keys = deriveRepoKeys(randomBytes(32), randomBytes(16));
    const ad = objectAd(ObjectKind.SNAPSHOT, keys.repoId);
    const plain = randomBytes(1000);
    assert.deepEqual(
      await openWeb(keys.meta, ad, seal(keys.meta, ad, plain)),
      new Uint8Array(plain),
    );
    const web = await sealWeb(keys.meta, ad, plain);
    assert.deepEqual(open(keys.meta, ad, web), new Uint8Array(plain));
    const other = objectAd(ObjectKind.INDEX, keys.repoId);
    assert.throws(() => open(keys.meta, other, web), CorruptBackupError);
    fc.assert(
      fc.property(fc.nat(web.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const m = web.slice();
        m[at] = (m[at] as number) ^ x;
        assert.throws(() => open(keys.meta, ad, m), CorruptBackupError);
      }),
      { numRuns: 200 },
    );
  });

  it('blobs: compression where it pays, verified id, kind and flag bound', () => {
    const keys = deriveRepoKeys(randomBytes(32), randomBytes(16));
    const text = Buffer.from('hello chat message '.repeat(10000));
    const random = randomBytes(200_000);
    assert.notEqual(maybeCompress(text).compression, Compression.NONE);
    assert.equal(maybeCompress(random).compression, Compression.NONE);
    for (const plain of [text, random, new Uint8Array(0)]) {
      const b = sealBlob(keys, ObjectKind.DATA_BLOB, plain, true);
      const ref = {
        kind: ObjectKind.DATA_BLOB,
        compression: b.compression,
        id: b.id,
        rawLength: b.rawLength,
      };
      assert.deepEqual(Buffer.from(openBlob(keys, ref, b.sealed, 'x')), Buffer.from(plain));
      assert.throws(
        () => openBlob(keys, { ...ref, kind: ObjectKind.TREE_BLOB }, b.sealed, 'x'),
        CorruptBackupError,
      );
      assert.throws(
        () => openBlob(keys, { ...ref, compression: b.compression === 0 ? 1 : 0 }, b.sealed, 'x'),
        CorruptBackupError,
      );
      assert.throws(
        () => openBlob(keys, { ...ref, rawLength: ref.rawLength + 1 }, b.sealed, 'x'),
        CorruptBackupError,
      );
      const otherId = randomBytes(32);
      assert.throws(
        () => openBlob(keys, { ...ref, id: otherId }, b.sealed, 'x'),
        CorruptBackupError,
      );
      // A blob sealed under a forged id (by someone with the key) still fails the id check.
      const forged = seal(keys.data, blobAd(ObjectKind.DATA_BLOB, keys.repoId, 0, otherId), plain);
      assert.throws(
        () => openBlob(keys, { ...ref, compression: 0, id: otherId }, forged, 'x'),
        /id does not match/,
      );
    }
  });
});

describe('random-looking chunks are stored without trying to compress them', () => {
  /** Run `fn` with the installed crypto provider, counting its compress calls. */
  function countingCompress(fn: () => void): number {
    const base = installedPlatform() as EnginePlatform;
    const z = base.crypto.compression!;
    let calls = 0;
    useEnginePlatform({
      ...base,
      crypto: {
        ...base.crypto,
        compression: {
          ...z,
          compress: (c, d) => {
            calls += 1;
            return z.compress(c, d);
          },
        },
      },
    });
    try {
      fn();
    } finally {
      useEnginePlatform(base);
    }
    return calls;
  }

  it('estimates entropy: random above the line, text, base64, zeros and SQLite-like pages below', () => {
    for (const n of [512, 1000, 4096, 32768, 1 << 20])
      assert.ok(sampleEntropy(randomBytes(n)) > RANDOM_BITS, `random ${n}`);
    const text = Buffer.from('hello chat message, see you at 7? '.repeat(1000));
    assert.ok(sampleEntropy(text) < 5);
    assert.ok(sampleEntropy(Buffer.from(randomBytes(3000).toString('base64'))) < 6.1);
    assert.equal(sampleEntropy(new Uint8Array(8192)), 0);
    // A page half random, half zeros (a BLOB beside free space): still compressed.
    const page = new Uint8Array(32768);
    page.set(randomBytes(16384));
    assert.ok(sampleEntropy(page) < RANDOM_BITS);
  });

  it('a small random file is not handed to the compressor; text and mixed pages are', () => {
    assert.equal(
      countingCompress(() => {
        for (const n of [600, 1024, 4096, 40_000, 200_000])
          assert.equal(maybeCompress(randomBytes(n)).compression, Compression.NONE);
      }),
      0,
    );
    const page = new Uint8Array(32768);
    page.set(randomBytes(16384));
    const text = Buffer.from('hello chat message '.repeat(200));
    let kept: number[] = [];
    const calls = countingCompress(() => {
      kept = [maybeCompress(page).compression, maybeCompress(text).compression];
    });
    assert.equal(calls, 2);
    assert.deepEqual(kept, [Compression.BROTLI, Compression.BROTLI]);
    // Below RANDOM_MIN the estimate is not trusted: tried, and kept uncompressed.
    assert.equal(
      countingCompress(() => void maybeCompress(randomBytes(400))),
      1,
    );
  });
});
