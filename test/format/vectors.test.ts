/**
 * The SPEC.md test vectors: the checked-in `vectors/*.json` must be exactly what
 * scripts/gen-vectors.ts generates from the current format code (so a format change without
 * a vector update fails here), every positive vector must be reproduced byte for byte by the
 * encoders and read back by the engine, and every negative vector must fail with its code.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { generateVectors, repoRoot, vectorText } from '../../scripts/gen-vectors.js';
import {
  arr,
  bytes,
  entryFrom,
  keyFor,
  num,
  obj,
  refFrom,
  rejectsWith,
  snapshotFrom,
  str,
  treeEntryFrom,
  type V,
} from './vector-json.js';
import {
  ObjectKind,
  SUBKEY_LABELS,
  assemblePack,
  blobAd,
  decodeConfig,
  decodeIndex,
  decodePackHeader,
  decodeSnapshot,
  decodeTree,
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
  openWeb,
  packName,
  packTrailer,
  parseBackupKey,
  sealWeb,
  sha256Hex,
  toHex,
  type BlobKind,
  type CompressionValue,
  type SubkeyLabel,
} from '#sdk/format/index.js';
import {
  deriveRepoKeys,
  deriveSubkeyNode,
  keyCheckValueNode,
  open,
} from '#sdk/backup/repository/keys.js';
import { openBlob } from '#sdk/backup/repository/blob-codec.js';
import { gearTable, nextCut, sqliteChunkSize } from '#sdk/backup/archiver/chunker.js';
import { check, listSnapshots, restore } from '#sdk/backup/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { hasCode, type ErrorCode } from '#sdk/errors.js';

const VECTOR_DIR = join(repoRoot(), 'vectors');

async function loadVector(name: string): Promise<V> {
  return JSON.parse(await readFile(join(VECTOR_DIR, `${name}.json`), 'utf8')) as V;
}

describe('SPEC.md test vectors', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bv-vectors-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('vectors/*.json are exactly what scripts/gen-vectors.ts generates from the current code', async () => {
    const generated = await generateVectors();
    for (const [name, v] of Object.entries(generated)) {
      const onDisk = await readFile(join(VECTOR_DIR, `${name}.json`), 'utf8');
      assert.ok(
        onDisk === vectorText(v),
        `vectors/${name}.json is stale: the format changed. Run node dist/scripts/gen-vectors.js, review the diff and update SPEC.md.`,
      );
    }
  });

  it('key encoding: valid forms parse, invalid ones are INVALID_KEY naming the problem', async () => {
    const v = await loadVector('key-encoding');
    for (const c of arr(v.valid)) {
      assert.equal(toHex(parseBackupKey(str(c.input))), str(c.key), str(c.description));
      if (c.description === 'canonical form')
        assert.equal(formatBackupKey(bytes(c.key)), str(c.input));
    }
    for (const c of arr(v.invalid)) {
      assert.throws(
        () => parseBackupKey(str(c.input)),
        (e: unknown) =>
          hasCode(e, str(c.code) as ErrorCode) &&
          (e as Error).message.includes(str(c.messageIncludes)),
        str(c.description),
      );
    }
  });

  it('key schedule: WebCrypto and node:crypto derive the same subkeys and key check value', async () => {
    const v = await loadVector('key-schedule');
    for (const c of arr(v.cases)) {
      const k = bytes(c.backupKey);
      const repoId = bytes(c.repoId);
      const subkeys = obj(c.subkeys);
      assert.deepEqual(Object.keys(subkeys).sort(), Object.keys(SUBKEY_LABELS).sort());
      for (const label of Object.keys(SUBKEY_LABELS) as SubkeyLabel[]) {
        const s = obj(subkeys[label]);
        assert.equal(str(s.info), 'backvault/v1/' + SUBKEY_LABELS[label]);
        assert.equal(toHex(await deriveSubkey(k, repoId, label)), str(s.key), label);
        assert.equal(toHex(deriveSubkeyNode(k, repoId, label)), str(s.key), label);
      }
      assert.equal(toHex(keyCheckMessage(1, repoId)), str(c.keyCheckMessage));
      assert.equal(toHex(await keyCheckValue(k, repoId, 1)), str(c.keyCheckValue));
      assert.equal(toHex(keyCheckValueNode(deriveRepoKeys(k, repoId), 1)), str(c.keyCheckValue));
      // And from the HMAC definition directly.
      assert.equal(
        toHex(await hmacSha256(bytes(obj(subkeys.keyCheck).key), keyCheckMessage(1, repoId))),
        str(c.keyCheckValue),
      );
    }
  });

  it('config: encodes byte-exactly; tampered configs are CORRUPT or WRONG_KEY', async () => {
    const v = await loadVector('config');
    const repoId = bytes(v.repoId);
    const encoded = encodeConfig({
      version: num(v.version),
      repoId,
      keyCheck: bytes(v.keyCheckValue),
    });
    assert.equal(toHex(encoded), str(v.bytes));
    const d = decodeConfig(bytes(v.bytes));
    assert.equal(d.version, 1);
    assert.equal(toHex(d.repoId), str(v.repoId));
    for (const c of arr(v.invalid)) {
      const storage = new MemoryStorage();
      await storage.put('config', bytes(c.bytes));
      await rejectsWith(
        () => listSnapshots({ rollbackProtection: false, storage, backupKey: bytes(c.backupKey) }),
        str(c.code),
        str(c.description),
      );
    }
  });

  it('blobs: sealed byte-exactly with the vector nonce, opened by the engine; negatives CORRUPT', async () => {
    const v = await loadVector('blob');
    const keys = deriveRepoKeys(bytes(v.backupKey), bytes(v.repoId));
    const sub = obj(v.subkeys);
    assert.equal(toHex(keys.blobId), str(sub.blobId));
    for (const b of arr(v.blobs)) {
      const kind = num(b.kind) as BlobKind;
      const plain = bytes(b.plaintext);
      const id = await hmacSha256(keys.blobId, plain);
      assert.equal(toHex(id), str(b.id));
      const ad = blobAd(kind, keys.repoId, num(b.compression) as CompressionValue, id);
      assert.equal(toHex(ad), str(b.ad));
      const sealed = await sealWeb(keyFor(kind, keys), ad, bytes(b.body), bytes(b.nonce));
      assert.equal(toHex(sealed), str(b.sealed), str(b.label));
      assert.equal(toHex(await openWeb(keyFor(kind, keys), ad, sealed)), str(b.body));
      const ref = {
        kind,
        compression: num(b.compression) as CompressionValue,
        id,
        rawLength: plain.length,
      };
      assert.equal(toHex(openBlob(keys, ref, bytes(b.sealed), 'vector')), str(b.plaintext));
    }
    for (const c of arr(v.invalid)) {
      await rejectsWith(
        () => openBlob(keys, refFrom(obj(c.ref)), bytes(c.sealed), 'vector'),
        str(c.code),
        str(c.description),
      );
    }
  });

  it('packs and indexes: assembled byte-exactly, headers decode, negatives CORRUPT', async () => {
    const v = await loadVector('pack');
    const keys = deriveRepoKeys(bytes(v.backupKey), bytes(v.repoId));
    const blobs = new Map(arr(v.blobs).map((b) => [str(b.label), b]));
    for (const p of arr(v.packs)) {
      const entries = arr(p.entries).map(entryFrom);
      assert.equal(toHex(encodePackHeader(entries)), str(p.headerPlaintext));
      const sealedHeader = await sealWeb(
        keys.meta,
        objectAd(ObjectKind.PACK_HEADER, keys.repoId),
        bytes(p.headerPlaintext),
        bytes(p.headerNonce),
      );
      assert.equal(toHex(sealedHeader), str(p.sealedHeader));
      const sealedBlobs = arr(p.blobs).map((l) =>
        bytes((blobs.get(l as unknown as string) as V).sealed),
      );
      const pack = assemblePack(sealedBlobs, sealedHeader);
      assert.equal(toHex(pack), str(p.bytes));
      assert.equal(await sha256Hex(pack), str(p.id));
      assert.equal(packName(str(p.id)), str(p.name));
      // Read it the way a reader does: trailer, header, then each blob by its entry.
      const { headerOffset, headerLength } = packTrailer(
        pack.length,
        pack.subarray(pack.length - 4),
        str(p.name),
      );
      const plain = open(
        keys.meta,
        objectAd(ObjectKind.PACK_HEADER, keys.repoId),
        pack.subarray(headerOffset, headerOffset + headerLength),
      );
      assert.deepEqual(decodePackHeader(plain, headerOffset), entries);
      for (const e of entries) {
        const label = arr(p.blobs)[entries.indexOf(e)] as unknown as string;
        assert.equal(
          toHex(openBlob(keys, e, pack.subarray(e.offset, e.offset + e.length), 'vector')),
          str((blobs.get(label) as V).plaintext),
        );
      }
    }
    for (const i of arr(v.indexes)) {
      const packs = arr(i.packs).map((p) => ({
        packId: bytes(p.packId),
        blobs: arr(p.entries).map(entryFrom),
      }));
      assert.equal(toHex(encodeIndex(packs)), str(i.plaintext));
      assert.deepEqual(decodeIndex(bytes(i.plaintext)), packs);
      const sealed = await sealWeb(
        keys.meta,
        objectAd(ObjectKind.INDEX, keys.repoId),
        bytes(i.plaintext),
        bytes(i.nonce),
      );
      assert.equal(toHex(sealed), str(i.sealed));
      assert.equal('index/' + (await sha256Hex(sealed)), str(i.name));
      assert.equal(toHex(open(keys.meta, bytes(i.ad), sealed)), str(i.plaintext));
    }
    for (const c of arr(v.invalidPacks)) {
      const pack = bytes(c.bytes);
      await rejectsWith(
        () => {
          const { headerOffset, headerLength } = packTrailer(
            pack.length,
            pack.subarray(Math.max(0, pack.length - 4)),
          );
          const plain = open(
            keys.meta,
            objectAd(ObjectKind.PACK_HEADER, keys.repoId),
            pack.subarray(headerOffset, headerOffset + headerLength),
          );
          decodePackHeader(plain, headerOffset);
        },
        str(c.code),
        str(c.description),
      );
    }
  });

  it('trees: encode/decode byte-exactly; unsafe or malformed trees are CORRUPT', async () => {
    const v = await loadVector('tree');
    for (const t of arr(v.trees)) {
      const entries = arr(t.entries).map(treeEntryFrom);
      assert.equal(toHex(encodeTree(entries)), str(t.plaintext), str(t.label));
      assert.deepEqual(decodeTree(bytes(t.plaintext)), entries);
    }
    for (const c of arr(v.invalid))
      await rejectsWith(() => decodeTree(bytes(c.plaintext)), str(c.code), str(c.description));
  });

  it('snapshots: encode and seal byte-exactly; invalid ones are CORRUPT', async () => {
    const v = await loadVector('snapshot');
    const keys = deriveRepoKeys(bytes(v.backupKey), bytes(v.repoId));
    for (const s of arr(v.snapshots)) {
      const fields = snapshotFrom(obj(s.fields));
      assert.equal(toHex(encodeSnapshot(fields)), str(s.plaintext));
      assert.deepEqual(decodeSnapshot(bytes(s.plaintext)), fields);
      assert.equal(toHex(objectAd(ObjectKind.SNAPSHOT, keys.repoId)), str(s.ad));
      const sealed = await sealWeb(keys.meta, bytes(s.ad), bytes(s.plaintext), bytes(s.nonce));
      assert.equal(toHex(sealed), str(s.sealed));
      assert.equal(await sha256Hex(sealed), str(s.id));
      assert.equal(str(s.name), 'snapshots/' + str(s.id));
    }
    // Layout 2 (partial snapshots): byte-exact, and its fields read back.
    assert.equal(arr(v.layout2).length, 2);
    for (const s of arr(v.layout2)) {
      const fields = snapshotFrom(obj(s.fields));
      assert.equal(toHex(encodeSnapshot(fields)), str(s.plaintext));
      assert.equal(bytes(s.plaintext)[0], 2);
      assert.deepEqual(decodeSnapshot(bytes(s.plaintext)), fields);
    }
    for (const c of arr(v.invalidPlaintexts))
      await rejectsWith(() => decodeSnapshot(bytes(c.plaintext)), str(c.code), str(c.description));
    for (const c of arr(v.invalidSealed)) {
      await rejectsWith(
        () =>
          decodeSnapshot(
            open(keys.meta, objectAd(ObjectKind.SNAPSHOT, keys.repoId), bytes(c.sealed)),
          ),
        str(c.code),
        str(c.description),
      );
    }
  });

  it('chunking: gear table, FastCDC cut points and the SQLite rule', async () => {
    const v = await loadVector('chunking');
    const keys = deriveRepoKeys(bytes(v.backupKey), bytes(v.repoId));
    assert.equal(toHex(keys.chunker), str(v.chunkerSubkey));
    const gear = gearTable(keys.chunker);
    assert.equal(toHex(new Uint8Array(gear.buffer)), str(v.gearTable));
    const stream = obj(v.stream);
    const data = new Uint8Array(num(stream.length));
    for (let i = 0, off = 0; off < data.length; i++, off += 32) {
      const ctr = Buffer.alloc(4);
      ctr.writeUInt32BE(i);
      const h = createHash('sha256').update(str(stream.label)).update(ctr).digest();
      data.set(h.subarray(0, Math.min(32, data.length - off)), off);
    }
    assert.equal(createHash('sha256').update(data).digest('hex'), str(stream.sha256));
    const cuts: number[] = [];
    for (let s = 0; s < data.length;) {
      const n = nextCut(gear, data, s, data.length, true);
      cuts.push(n);
      s += n;
    }
    assert.deepEqual(cuts, v.cuts);
    for (const c of arr(obj(v.sqlite).cases)) {
      const head = new Uint8Array(100);
      head.set(new TextEncoder().encode('SQLite format 3\0'));
      head[16] = (num(c.headPageField) >> 8) & 0xff;
      head[17] = num(c.headPageField) & 0xff;
      assert.equal(sqliteChunkSize(head) ?? null, c.chunk, str(c.description));
    }
  });

  async function storageFrom(objects: V, changes: V = {}): Promise<MemoryStorage> {
    const storage = new MemoryStorage();
    for (const [name, h] of Object.entries(objects)) storage.raw().set(name, fromHex(str(h)));
    for (const [name, h] of Object.entries(changes)) {
      if (h === null) storage.raw().delete(name);
      else storage.raw().set(name, fromHex(str(h)));
    }
    return storage;
  }

  async function assertRestored(target: string, expected: V): Promise<void> {
    const root = obj(expected.root);
    const rst = await lstat(target, { bigint: true });
    assert.equal(Number(rst.mode) & 0o7777, num(root.mode));
    assertTime(rst.mtimeNs, str(root.mtimeNs), 'root');
    for (const e of arr(expected.entries)) {
      const p = join(target, ...str(e.path).split('/'));
      const st = await lstat(p, { bigint: true });
      const what = str(e.path);
      if (e.type === 'symlink') {
        assert.ok(st.isSymbolicLink(), what);
        assert.equal(await readlink(p), str(e.target), what);
        continue;
      }
      assert.equal(Number(st.mode) & 0o7777, num(e.mode), what);
      assertTime(st.mtimeNs, str(e.mtimeNs), what);
      if (e.type === 'dir') assert.ok(st.isDirectory(), what);
      else {
        assert.ok(st.isFile(), what);
        const content = await readFile(p);
        assert.equal(content.length, num(e.size), what);
        assert.equal(createHash('sha256').update(content).digest('hex'), str(e.sha256), what);
      }
    }
  }

  // The engine sets times through a double of seconds: sub-microsecond digits are lost.
  function assertTime(actual: bigint, expected: string, what: string): void {
    const d = actual - BigInt(expected);
    assert.ok(d > -1000n && d < 1000n, `${what}: mtime ${actual} vs ${expected}`);
  }

  it('repository: the engine lists, checks and restores the vector repository exactly', async () => {
    const v = await loadVector('repository');
    const storage = await storageFrom(obj(v.objects));
    const backupKey = parseBackupKey(str(v.backupKeyText));
    assert.equal(toHex(backupKey), str(v.backupKey));
    const snaps = await listSnapshots({ rollbackProtection: false, storage, backupKey });
    assert.deepEqual(
      snaps.map((s) => ({ id: s.id, seq: s.seq, prev: s.prev })),
      v.snapshots,
    );
    const c = await check({ rollbackProtection: false, storage, backupKey, workers: 0 });
    assert.deepEqual(c.problems, []);
    for (const r of arr(v.restores)) {
      const target = join(dir, `restore-${str(r.snapshot).slice(0, 8)}`);
      await restore({
        rollbackProtection: false,
        storage,
        backupKey,
        target,
        snapshotId: str(r.snapshot),
        workers: 0,
      });
      await assertRestored(target, r);
    }
  });

  it('negative repositories: every tampering fails with its code and leaves no target', async () => {
    const base = await loadVector('repository');
    const v = await loadVector('negative-repository');
    let n = 0;
    for (const c of arr(v.cases)) {
      const storage = await storageFrom(obj(base.objects), obj(c.changes));
      const backupKey = bytes(c.backupKey ?? base.backupKey);
      let statePath: string | undefined;
      if (c.seen) {
        statePath = join(dir, `state-${n}.json`);
        await writeFile(
          statePath,
          JSON.stringify({ version: 1, repos: { [str(base.repoId)]: c.seen } }),
        );
      }
      const target = join(dir, `neg-${n++}`);
      const snapshotId = c.snapshot === undefined ? undefined : str(c.snapshot);
      await rejectsWith(
        () =>
          restore({
            storage,
            backupKey,
            ...(statePath ? { statePath } : { rollbackProtection: false }),
            target,
            snapshotId,
            workers: 0,
          }),
        str(c.expect),
        str(c.name),
      );
      await assert.rejects(lstat(target), /ENOENT/, `${str(c.name)}: target exists`);
    }
  });
});
