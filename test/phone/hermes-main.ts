/**
 * The device SDK on Hermes (React Native's engine: no WebAssembly, no WebCrypto, no
 * TextEncoder in 0.12), bundled by test/phone/build.ts and run on the `hermes` binary of
 * hermes-engine-cli. Checks, with the pure-JS crypto provider (@noble/*) and nothing of Node:
 *
 *  (a) every vector file of vectors/ decodes and encodes byte for byte: every case of every
 *      case list (arrays of objects, as {@link caseLists} finds them) is checked, and the
 *      PASS line says how many of each (`blobs 5/5, invalid 12/12`); a file with no check
 *      here, or a list not checked in full, FAILs. Compressed blobs are decompressed with
 *      the pure-JS decoders an app plugs in (compression.ts: fflate, brotli); key slots run
 *      on the noble provider (no WebCrypto here);
 *  (b) an in-memory tree of a few MB (a real SQLite database made by Node beforehand, media
 *      bytes) is backed up to a MemoryStorage, restored into another in-memory tree and
 *      compared byte for byte, and `check` is clean — twice, the second backup adding
 *      nothing; a recovery-key slot is added to it and opens it.
 *
 * Prints one line per check (PASS / FAIL; NOTE for what is said, not checked) and a last
 * line `phone: N passed, M failed, K skipped` (K is 0: nothing is skipped). The input
 * (vectors, tree, seed) is set by the build as PHONE_INPUT.
 */
import { installed } from './hermes-polyfills.js';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { BackvaultError } from '#sdk/errors.js';
import { jsCompression } from './compression.js';
import {
  ObjectKind,
  assemblePack,
  blobAd,
  decodeConfig,
  decodeIndex,
  decodeKeySlot,
  decodeKeySlotManifest,
  deriveKeySlotKek,
  encodeKeySlotHeader,
  encodeKeySlotManifest,
  keySlotHash,
  keySlotName,
  openKeySlot,
  openKeySlotManifest,
  recoveryKeySlotId,
  sealKeySlot,
  sealKeySlotManifest,
  verifyKeySlotUnlock,
  KEY_SLOT_MANIFEST_NAME,
  type KeySlotInfo,
  decodePackHeader,
  decodeSnapshot,
  decodeTree,
  encodeConfig,
  encodeIndex,
  encodePackHeader,
  encodeSnapshot,
  encodeTree,
  formatBackupKey,
  fromHex,
  keyCheckMessage,
  NONCE_BYTES,
  objectAd,
  packName,
  packTrailer,
  parseBackupKey,
  SUBKEY_LABELS,
  toHex,
  type BlobKind,
  type BlobRef,
  type CompressionValue,
  type SubkeyLabel,
} from '#sdk/format/index.js';
import {
  MemoryFiles,
  addRecoveryKeySlot,
  backup,
  check,
  listKeySlots,
  listSnapshots,
  memoryHost,
  nobleCrypto,
  restore,
  unlockWithKey,
  useEnginePlatform,
} from '#sdk/backup/engine.js';
import { engineCrypto, enginePlatform } from '#sdk/backup/platform/current.js';
import {
  deriveRepoKeys,
  deriveSubkeyNode,
  hmac,
  keyCheckValueNode,
  open,
  sha256Hex,
} from '#sdk/backup/repository/keys.js';
import { openBlob } from '#sdk/backup/repository/blob-codec.js';
import { gearTable, nextCut, sqliteChunkSize } from '#sdk/backup/archiver/chunker.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import {
  arr,
  bytes,
  caseLists,
  entryFrom,
  keyFor,
  num,
  obj,
  refFrom,
  rejectsWith,
  snapshotFrom,
  str,
  treeEntryFrom,
  type Json,
  type V,
} from '../format/vector-json.js';

interface PhoneInput {
  vectors: Record<string, V>;
  /** The tree to back up: path (POSIX, absolute), base64 bytes, mode, mtime. */
  tree: { path: string; b64: string; mode: number; mtimeNs: string }[];
  /** 32 bytes (hex) from Node's CSPRNG, seeding this run's random bytes. */
  seed: string;
}

const input = (globalThis as unknown as { PHONE_INPUT: PhoneInput }).PHONE_INPUT;

const results = { pass: 0, fail: 0, skip: 0 };
const say = (line: string): void => console.log(line);

async function run(name: string, fn: () => Promise<void | string> | void | string): Promise<void> {
  try {
    const note = await fn();
    results.pass += 1;
    say(`PASS ${name}${note ? ` (${note})` : ''}`);
  } catch (e) {
    results.fail += 1;
    const err = e as Error & { code?: string };
    say(`FAIL ${name}: ${err?.code ? `${err.code} ` : ''}${String(err?.message ?? e)}`);
  }
}

function assert(ok: unknown, what: string): asserts ok {
  if (!ok) throw new Error(`assertion failed: ${what}`);
}
function eqHex(a: Uint8Array, hex: Json | undefined, what: string): void {
  const got = toHex(a);
  if (got !== hex) throw new Error(`${what}: ${got.slice(0, 40)}… ≠ ${String(hex).slice(0, 40)}…`);
}
function same(a: unknown, b: unknown, what: string): void {
  // Key order does not matter (a decoder may build its objects in another order).
  const s = (x: unknown): string =>
    JSON.stringify(x, (_k, v: unknown) => {
      if (typeof v === 'bigint') return `${v}n`;
      if (v instanceof Uint8Array) return toHex(v);
      if (v && typeof v === 'object' && !Array.isArray(v))
        return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)));
      return v;
    });
  if (s(a) !== s(b)) throw new Error(`${what}: ${s(a).slice(0, 80)} ≠ ${s(b).slice(0, 80)}`);
}

/** AES-256-GCM with the vector's nonce, through the installed provider. */
function sealWithNonce(key: Uint8Array, ad: Uint8Array, plain: Uint8Array, nonce: Uint8Array) {
  const out = new Uint8Array(NONCE_BYTES + plain.length + 16);
  out.set(nonce, 0);
  engineCrypto().aesGcmSealInto(key, nonce, ad, plain, out, NONCE_BYTES);
  return out;
}

/**
 * Open a blob: its AEAD layer gives the vector's body (compressed as stored), and the whole
 * codec (decompression with the pure-JS decoders, length and id checks) its plaintext.
 */
function openVectorBlob(
  keys: ReturnType<typeof deriveRepoKeys>,
  ref: BlobRef,
  sealed: Uint8Array,
  body: Json | undefined,
  plain: Json | undefined,
  label: string,
): void {
  const key = ref.kind === ObjectKind.DATA_BLOB ? keys.data : keys.meta;
  const opened = open(key, blobAd(ref.kind, keys.repoId, ref.compression, ref.id), sealed);
  if (body !== undefined) eqHex(opened, body, `${label} body`);
  eqHex(openBlob(keys, ref, sealed, 'vector'), plain, label);
}

/** What one vector file's check counted, per case list. */
class Tally {
  private readonly seen = new Map<string, Set<string>>();
  /** Count case `id` (an index or label) of list `list` as checked. */
  add(list: string, id: string | number): void {
    let s = this.seen.get(list);
    if (!s) this.seen.set(list, (s = new Set()));
    s.add(String(id));
  }
  /** `list n/m, …`; throws when a list of the file was not checked in full. */
  complete(v: V): string {
    const parts: string[] = [];
    const short: string[] = [];
    for (const [list, total] of caseLists(v)) {
      const n = this.seen.get(list)?.size ?? 0;
      parts.push(`${list} ${n}/${total}`);
      if (n !== total) short.push(`${list} ${n}/${total}`);
    }
    if (short.length > 0) throw new Error(`partly checked: ${short.join(', ')}`);
    return parts.join(', ');
  }
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function fromBase64(s: string): Uint8Array {
  const clean = s.replace(/=+$/, '');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (let i = 0; i < clean.length; i++) {
    acc = (acc << 6) | B64.indexOf(clean[i] as string);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/**
 * Random bytes for this run: the ChaCha20 keystream under a 32-byte seed that Node's CSPRNG
 * made (the Hermes binary has no random source of its own; an app has
 * crypto.getRandomValues from react-native-get-random-values or react-native-quick-crypto).
 */
function seededRandom(seedHex: string): (n: number) => Uint8Array {
  const key = fromHex(seedHex);
  let counter = 0;
  return (n) => {
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setUint32(8, ++counter, false);
    return chacha20(key, nonce, new Uint8Array(n));
  };
}

/** The pure-JS provider as the format's key slots take it (Hermes has no WebCrypto). */
const fc = () => engineCrypto();

/** One check per vector file; each counts what it checked in its {@link Tally}. */
const checks: Record<string, (v: V, t: Tally) => Promise<void> | void> = {
  'key-encoding': (k, t) => {
    arr(k.valid).forEach((c, i) => {
      eqHex(parseBackupKey(str(c.input)), c.key, str(c.description));
      if (c.description === 'canonical form')
        same(formatBackupKey(bytes(c.key)), c.input, 'format');
      t.add('valid', i);
    });
    arr(k.invalid).forEach((c, i) => {
      try {
        parseBackupKey(str(c.input));
        throw new Error(`${str(c.description)}: parsed`);
      } catch (e) {
        assert(e instanceof BackvaultError && e.code === str(c.code), str(c.description));
        assert((e as Error).message.includes(str(c.messageIncludes)), str(c.description));
      }
      t.add('invalid', i);
    });
  },

  'key-schedule': (ks, t) => {
    arr(ks.cases).forEach((c, i) => {
      const k = bytes(c.backupKey);
      const repoId = bytes(c.repoId);
      const subkeys = obj(c.subkeys);
      for (const label of Object.keys(SUBKEY_LABELS) as SubkeyLabel[])
        eqHex(deriveSubkeyNode(k, repoId, label), obj(subkeys[label]).key, label);
      eqHex(keyCheckMessage(1, repoId), c.keyCheckMessage, 'key check message');
      eqHex(keyCheckValueNode(deriveRepoKeys(k, repoId), 1), c.keyCheckValue, 'key check value');
      eqHex(
        hmac(bytes(obj(subkeys.keyCheck).key), keyCheckMessage(1, repoId)),
        c.keyCheckValue,
        'hmac',
      );
      t.add('cases', i);
    });
  },

  config: async (c, t) => {
    eqHex(
      encodeConfig({
        version: num(c.version),
        repoId: bytes(c.repoId),
        keyCheck: bytes(c.keyCheckValue),
      }),
      c.bytes,
      'config bytes',
    );
    const d = decodeConfig(bytes(c.bytes));
    eqHex(d.repoId, c.repoId, 'repo id');
    const invalid = arr(c.invalid);
    for (let i = 0; i < invalid.length; i++) {
      const bad = invalid[i] as V;
      const storage = new MemoryStorage();
      await storage.put('config', bytes(bad.bytes));
      await rejectsWith(
        () =>
          listSnapshots({ storage, backupKey: bytes(bad.backupKey), rollbackProtection: false }),
        str(bad.code),
        str(bad.description),
      );
      t.add('invalid', i);
    }
  },

  blob: async (b, t) => {
    const keys = deriveRepoKeys(bytes(b.backupKey), bytes(b.repoId));
    eqHex(keys.blobId, obj(b.subkeys).blobId, 'blobId subkey');
    arr(b.blobs).forEach((x, i) => {
      const kind = num(x.kind) as BlobKind;
      const id = hmac(keys.blobId, bytes(x.plaintext));
      eqHex(id, x.id, 'id');
      const ad = blobAd(kind, keys.repoId, num(x.compression) as CompressionValue, id);
      eqHex(ad, x.ad, 'ad');
      eqHex(
        sealWithNonce(keyFor(kind, keys), ad, bytes(x.body), bytes(x.nonce)),
        x.sealed,
        str(x.label),
      );
      const ref = {
        kind,
        compression: num(x.compression) as CompressionValue,
        id,
        rawLength: bytes(x.plaintext).length,
      };
      openVectorBlob(keys, ref, bytes(x.sealed), x.body, x.plaintext, str(x.label));
      t.add('blobs', i);
    });
    const invalid = arr(b.invalid);
    for (let i = 0; i < invalid.length; i++) {
      const c = invalid[i] as V;
      await rejectsWith(
        () => openBlob(keys, refFrom(obj(c.ref)), bytes(c.sealed), 'vector'),
        str(c.code),
        str(c.description),
      );
      t.add('invalid', i);
    }
  },

  pack: async (p, t) => {
    const keys = deriveRepoKeys(bytes(p.backupKey), bytes(p.repoId));
    const blobs = new Map(arr(p.blobs).map((b) => [str(b.label), b]));
    arr(p.packs).forEach((pk, pi) => {
      const entries = arr(pk.entries).map(entryFrom);
      eqHex(encodePackHeader(entries), pk.headerPlaintext, 'header');
      const sealedHeader = sealWithNonce(
        keys.meta,
        objectAd(ObjectKind.PACK_HEADER, keys.repoId),
        bytes(pk.headerPlaintext),
        bytes(pk.headerNonce),
      );
      eqHex(sealedHeader, pk.sealedHeader, 'sealed header');
      const labels = arr(pk.blobs) as unknown as string[];
      const pack = assemblePack(
        labels.map((l) => bytes((blobs.get(l) as V).sealed)),
        sealedHeader,
      );
      eqHex(pack, pk.bytes, 'pack bytes');
      same(sha256Hex(pack), pk.id, 'pack id');
      same(packName(str(pk.id)), pk.name, 'pack name');
      const { headerOffset, headerLength } = packTrailer(
        pack.length,
        pack.subarray(pack.length - 4),
        str(pk.name),
      );
      const plain = open(
        keys.meta,
        objectAd(ObjectKind.PACK_HEADER, keys.repoId),
        pack.subarray(headerOffset, headerOffset + headerLength),
      );
      same(decodePackHeader(plain, headerOffset), entries, 'decoded header');
      entries.forEach((e, i) => {
        const label = labels[i] as string;
        const b = blobs.get(label) as V;
        openVectorBlob(
          keys,
          e,
          pack.subarray(e.offset, e.offset + e.length),
          b.body,
          b.plaintext,
          `pack blob ${label}`,
        );
        t.add('blobs', label);
      });
      t.add('packs', pi);
    });
    arr(p.indexes).forEach((i, ii) => {
      const packs = arr(i.packs).map((x) => ({
        packId: bytes(x.packId),
        blobs: arr(x.entries).map(entryFrom),
      }));
      eqHex(encodeIndex(packs), i.plaintext, 'index');
      same(decodeIndex(bytes(i.plaintext)), packs, 'decoded index');
      const sealed = sealWithNonce(
        keys.meta,
        objectAd(ObjectKind.INDEX, keys.repoId),
        bytes(i.plaintext),
        bytes(i.nonce),
      );
      eqHex(sealed, i.sealed, 'sealed index');
      same('index/' + sha256Hex(sealed), i.name, 'index name');
      eqHex(open(keys.meta, bytes(i.ad), sealed), i.plaintext, 'opened index');
      t.add('indexes', ii);
    });
    const invalid = arr(p.invalidPacks);
    for (let i = 0; i < invalid.length; i++) {
      const c = invalid[i] as V;
      const pack = bytes(c.bytes);
      await rejectsWith(
        () => {
          const { headerOffset, headerLength } = packTrailer(
            pack.length,
            pack.subarray(Math.max(0, pack.length - 4)),
          );
          decodePackHeader(
            open(
              keys.meta,
              objectAd(ObjectKind.PACK_HEADER, keys.repoId),
              pack.subarray(headerOffset, headerOffset + headerLength),
            ),
            headerOffset,
          );
        },
        str(c.code),
        str(c.description),
      );
      t.add('invalidPacks', i);
    }
  },

  tree: async (tr, t) => {
    arr(tr.trees).forEach((x, i) => {
      const entries = arr(x.entries).map(treeEntryFrom);
      eqHex(encodeTree(entries), x.plaintext, str(x.label));
      same(decodeTree(bytes(x.plaintext)), entries, str(x.label));
      t.add('trees', i);
    });
    const invalid = arr(tr.invalid);
    for (let i = 0; i < invalid.length; i++) {
      const c = invalid[i] as V;
      await rejectsWith(() => decodeTree(bytes(c.plaintext)), str(c.code), str(c.description));
      t.add('invalid', i);
    }
  },

  snapshot: async (s, t) => {
    const keys = deriveRepoKeys(bytes(s.backupKey), bytes(s.repoId));
    arr(s.snapshots).forEach((x, i) => {
      const fields = snapshotFrom(obj(x.fields));
      eqHex(encodeSnapshot(fields), x.plaintext, 'snapshot');
      same(decodeSnapshot(bytes(x.plaintext)), fields, 'decoded snapshot');
      eqHex(objectAd(ObjectKind.SNAPSHOT, keys.repoId), x.ad, 'ad');
      const sealed = sealWithNonce(keys.meta, bytes(x.ad), bytes(x.plaintext), bytes(x.nonce));
      eqHex(sealed, x.sealed, 'sealed snapshot');
      same(sha256Hex(sealed), x.id, 'snapshot id');
      t.add('snapshots', i);
    });
    arr(s.layout2).forEach((x, i) => {
      const fields = snapshotFrom(obj(x.fields));
      eqHex(encodeSnapshot(fields), x.plaintext, 'layout 2');
      same(decodeSnapshot(bytes(x.plaintext)), fields, 'decoded layout 2');
      t.add('layout2', i);
    });
    const plains = arr(s.invalidPlaintexts);
    for (let i = 0; i < plains.length; i++) {
      const c = plains[i] as V;
      await rejectsWith(() => decodeSnapshot(bytes(c.plaintext)), str(c.code), str(c.description));
      t.add('invalidPlaintexts', i);
    }
    const sealedCases = arr(s.invalidSealed);
    for (let i = 0; i < sealedCases.length; i++) {
      const c = sealedCases[i] as V;
      await rejectsWith(
        () =>
          decodeSnapshot(
            open(keys.meta, objectAd(ObjectKind.SNAPSHOT, keys.repoId), bytes(c.sealed)),
          ),
        str(c.code),
        str(c.description),
      );
      t.add('invalidSealed', i);
    }
  },

  chunking: (c, t) => {
    const keys = deriveRepoKeys(bytes(c.backupKey), bytes(c.repoId));
    eqHex(keys.chunker, c.chunkerSubkey, 'chunker subkey');
    const gear = gearTable(keys.chunker);
    eqHex(new Uint8Array(gear.buffer), c.gearTable, 'gear table');
    const stream = obj(c.stream);
    const data = new Uint8Array(num(stream.length));
    const label = new TextEncoder().encode(str(stream.label));
    for (let i = 0, off = 0; off < data.length; i++, off += 32) {
      const msg = new Uint8Array(label.length + 4);
      msg.set(label);
      new DataView(msg.buffer).setUint32(label.length, i, false);
      const h = engineCrypto().sha256(msg);
      data.set(h.subarray(0, Math.min(32, data.length - off)), off);
    }
    same(sha256Hex(data), stream.sha256, 'stream');
    const cuts: number[] = [];
    for (let s = 0; s < data.length;) {
      const n = nextCut(gear, data, s, data.length, true);
      cuts.push(n);
      s += n;
    }
    same(cuts, c.cuts, 'cut points');
    arr(obj(c.sqlite).cases).forEach((x, i) => {
      const head = new Uint8Array(100);
      head.set(new TextEncoder().encode('SQLite format 3\0'));
      head[16] = (num(x.headPageField) >> 8) & 0xff;
      head[17] = num(x.headPageField) & 0xff;
      same(sqliteChunkSize(head) ?? null, x.chunk, str(x.description));
      t.add('sqlite.cases', i);
    });
  },

  repository: async (r, t) => {
    const storage = new MemoryStorage();
    for (const [name, h] of Object.entries(obj(r.objects))) storage.raw().set(name, bytes(h));
    const backupKey = parseBackupKey(str(r.backupKeyText));
    eqHex(backupKey, r.backupKey, 'backup key');
    const snaps = await listSnapshots({ storage, backupKey, rollbackProtection: false });
    arr(r.snapshots).forEach((want, i) => {
      const got = snaps[i];
      same(got && { id: got.id, seq: got.seq, prev: got.prev }, want, `snapshot ${i}`);
      t.add('snapshots', i);
    });
    assert(snaps.length === arr(r.snapshots).length, 'snapshot count');
    // check reads every blob (the deflate-raw and Brotli ones through the pure-JS decoders).
    const c = await check({ storage, backupKey, rollbackProtection: false });
    same(c.problems, [], 'check');
    assert(c.ok, 'check ok');
    const restores = arr(r.restores);
    for (let i = 0; i < restores.length; i++) {
      const want = restores[i] as V;
      const files = new MemoryFiles();
      const target = `/restore-${i}`;
      await restore({
        storage,
        backupKey,
        target,
        files,
        snapshotId: str(want.snapshot),
        rollbackProtection: false,
      });
      const root = await files.lstat(target);
      same(root.mode, obj(want.root).mode, 'root mode');
      same(String(root.mtimeNs), obj(want.root).mtimeNs, 'root mtime');
      const got = files.list(target);
      const entries = arr(want.entries);
      same(
        got.map((e) => e.path),
        entries.map((e) => e.path),
        `restore ${i} paths`,
      );
      entries.forEach((e, j) => {
        const g = got[j];
        const what = `restore ${i} ${str(e.path)}`;
        assert(g !== undefined, what);
        same(g.kind, e.type, `${what} type`);
        same(g.mode, e.mode, `${what} mode`);
        same(String(g.mtimeNs), e.mtimeNs, `${what} mtime`);
        if (g.kind === 'file') {
          same(g.data.length, e.size, `${what} size`);
          same(sha256Hex(g.data), e.sha256, `${what} sha256`);
        }
        if (g.kind === 'symlink') same(g.target, e.target, `${what} target`);
      });
      t.add('restores', i);
    }
  },

  'negative-repository': async (n, t) => {
    const base = obj(input.vectors.repository);
    const cases = arr(n.cases);
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i] as V;
      // The rollback cases: this device's state file (in the platform's MemoryFiles) says
      // which head it saw.
      let statePath: string | undefined;
      if (c.seen) {
        statePath = `/state-${i}.json`;
        await enginePlatform().files.out.writeFileAtomic(
          statePath,
          new TextEncoder().encode(
            JSON.stringify({ version: 1, repos: { [str(base.repoId)]: c.seen } }),
          ),
        );
      }
      const storage = new MemoryStorage();
      for (const [name, h] of Object.entries(obj(base.objects))) storage.raw().set(name, bytes(h));
      for (const [name, h] of Object.entries(obj(c.changes))) {
        if (h === null) storage.raw().delete(name);
        else storage.raw().set(name, bytes(h));
      }
      const files = new MemoryFiles();
      const backupKey = bytes(c.backupKey ?? base.backupKey);
      const snapshotId = c.snapshot === undefined ? undefined : str(c.snapshot);
      await rejectsWith(
        () =>
          restore({
            storage,
            backupKey,
            target: '/target',
            files,
            ...(snapshotId ? { snapshotId } : {}),
            ...(statePath ? { statePath } : { rollbackProtection: false }),
          }),
        str(c.expect),
        str(c.name),
      );
      assert(files.list('/').length === 0, `${str(c.name)}: something was written`);
      t.add('cases', i);
    }
  },

  // Key slots on the noble provider: every function of src/format/key-slot.ts that derives,
  // seals, opens or hashes is given the engine's crypto (the default, WebCrypto, is absent).
  'key-slots': async (v, t) => {
    const repoId = bytes(v.repoId);
    const backupKey = bytes(v.backupKey);
    const config = bytes(v.config);
    const m = obj(v.manifest);
    const slots = arr(v.slots);
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i] as V;
      const kind = str(slot.kind) as 'recovery-key' | 'passkey';
      const secret = bytes(slot.secret);
      eqHex(await deriveKeySlotKek(kind, secret, repoId, fc()), slot.kek, `${kind} KEK`);
      if (kind === 'recovery-key')
        eqHex(await recoveryKeySlotId(secret, repoId, fc()), slot.slotId, 'recovery slot id');
      const slotId = bytes(slot.slotId);
      const info: KeySlotInfo =
        kind === 'passkey'
          ? {
              kind,
              slotId,
              created: num(slot.created),
              rpId: str(slot.rpId),
              credentialId: bytes(slot.credentialId),
              prfSalt: bytes(slot.prfSalt),
            }
          : { kind, slotId, created: num(slot.created) };
      eqHex(encodeKeySlotHeader(info), slot.header, `${kind} header`);
      same(keySlotName(slotId), slot.name, `${kind} name`);
      const sealed = await sealKeySlot({
        info,
        backupKey,
        kek: bytes(slot.kek),
        repoId,
        nonce: bytes(slot.nonce),
        crypto: fc(),
      });
      eqHex(sealed, slot.bytes, `${kind} slot bytes`);
      same(decodeKeySlot(bytes(slot.bytes), str(slot.name)).info, info, `${kind} decoded`);
      const opened = await openKeySlot(
        bytes(slot.bytes),
        bytes(slot.kek),
        repoId,
        str(slot.name),
        fc(),
      );
      eqHex(opened.backupKey, v.backupKey, `${kind} unwrapped key`);
      await verifyKeySlotUnlock({
        config,
        manifest: bytes(m.sealed),
        slot: bytes(slot.bytes),
        info,
        backupKey: opened.backupKey,
        crypto: fc(),
      });
      t.add('slots', i);
    }
    same(m.name, KEY_SLOT_MANIFEST_NAME, 'manifest name');
    const decoded = decodeKeySlotManifest(bytes(m.plain));
    same(decoded.seq, m.seq, 'manifest seq');
    eqHex(encodeKeySlotManifest(decoded), m.plain, 'manifest plaintext');
    for (const slot of slots) {
      const e = decoded.entries.find((x) => toHex(x.slotId) === str(slot.slotId));
      assert(e !== undefined, 'every vector slot is listed');
      eqHex(e.hash, toHex(await keySlotHash(bytes(slot.bytes), fc())), 'listed hash');
    }
    eqHex(
      await sealKeySlotManifest(decoded, backupKey, repoId, bytes(m.nonce), fc()),
      m.sealed,
      'sealed manifest',
    );
    same(
      await openKeySlotManifest(bytes(m.sealed), backupKey, repoId, fc()),
      decoded,
      'opened manifest',
    );
    const badSlots = arr(v.invalidSlots);
    for (let i = 0; i < badSlots.length; i++) {
      const c = badSlots[i] as V;
      await rejectsWith(
        () => openKeySlot(bytes(c.slot), bytes(c.kek), repoId, str(c.name), fc()),
        str(c.code),
        str(c.description),
      );
      t.add('invalidSlots', i);
    }
    const badUnlocks = arr(v.invalidUnlocks);
    for (let i = 0; i < badUnlocks.length; i++) {
      const c = badUnlocks[i] as V;
      const slot = bytes(c.slot);
      const opened = await openKeySlot(slot, bytes(c.kek), repoId, str(c.name), fc());
      await rejectsWith(
        () =>
          verifyKeySlotUnlock({
            config,
            manifest: c.manifest === null ? undefined : bytes(c.manifest),
            slot,
            info: opened.info,
            backupKey: opened.backupKey,
            crypto: fc(),
          }),
        str(c.code),
        str(c.description),
      );
      t.add('invalidUnlocks', i);
    }
  },
};

/** Every vector file, each with its check; a file without one FAILs (never left out). */
async function vectors(): Promise<void> {
  for (const name of Object.keys(input.vectors).sort()) {
    const v = obj(input.vectors[name]);
    const check = checks[name];
    await run(`vectors/${name}.json`, async () => {
      if (!check) throw new Error('no check on Hermes for this vector file');
      const t = new Tally();
      await check(v, t);
      return t.complete(v);
    });
  }
}

async function memoryTree(): Promise<void> {
  const src = new MemoryFiles();
  let total = 0;
  for (const f of input.tree) {
    const data = fromBase64(f.b64);
    total += data.length;
    src.writeFile(f.path, data, { mode: f.mode, mtimeNs: BigInt(f.mtimeNs) });
  }
  src.symlink('media/photo-0.jpg', '/chat/latest.jpg');
  const storage = new MemoryStorage();
  const backupKey = new Uint8Array(32).fill(0x42);
  // Rollback detection on, as in an app: the device's state file lives in the platform's
  // (in-memory) files.
  const statePath = '/device/backvault-state.json';
  const mb = (total / 1024 / 1024).toFixed(1);

  await run(
    `in-memory tree (${input.tree.length} files, ${mb} MB, SQLite + media): backup to MemoryStorage`,
    async () => {
      const t = Date.now();
      const b = await backup({
        storage,
        backupKey,
        statePath,
        source: '/chat',
        files: src,
        init: true,
      });
      assert(b.seq === 1 && b.files === input.tree.length, `backup: ${b.files} files`);
      assert(b.workers === 0, 'in the calling thread');
      return `${b.chunksTotal} chunks, ${(b.bytesStoredNew / 1024 / 1024).toFixed(1)} MB stored, ${Date.now() - t} ms`;
    },
  );
  await run('restore into another in-memory tree, byte for byte', async () => {
    const t = Date.now();
    const dst = new MemoryFiles();
    const r = await restore({ storage, backupKey, statePath, target: '/restored', files: dst });
    const a = src.list('/chat');
    const b = dst.list('/restored');
    same(
      b.map((e) => [e.path, e.kind, e.mode]),
      a.map((e) => [e.path, e.kind, e.mode]),
      'entries',
    );
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      const y = b[i];
      if (x?.kind === 'file' && y?.kind === 'file') {
        assert(toHex(x.data) === toHex(y.data), `${x.path}: bytes differ`);
        assert(x.mtimeNs === y.mtimeNs, `${x.path}: mtime`);
      }
      if (x?.kind === 'symlink' && y?.kind === 'symlink') assert(x.target === y.target, 'link');
    }
    return `${r.files} files, ${Date.now() - t} ms`;
  });
  await run('check reads and verifies every blob: clean', async () => {
    const t = Date.now();
    const c = await check({ storage, backupKey, statePath });
    same(c.problems, [], 'problems');
    assert(c.ok, 'ok');
    return `${c.blobs} blobs, ${Date.now() - t} ms`;
  });
  await run('second backup stores nothing new', async () => {
    const b = await backup({ storage, backupKey, statePath, source: '/chat', files: src });
    assert(b.seq === 2 && b.bytesNew === 0, `bytesNew ${b.bytesNew}`);
  });
  await run('a recovery-key slot is added, listed, and opens the repository', async () => {
    const added = await addRecoveryKeySlot(storage, backupKey, { label: 'phone', statePath });
    const listing = await listKeySlots(storage, backupKey, { statePath });
    assert(
      listing.slots.length === 1 && listing.slots[0]?.status === 'ok',
      `listing: ${JSON.stringify(listing.slots)}`,
    );
    const u = await unlockWithKey(storage, added.recoveryKey, { statePath });
    assert(u.via === 'recovery-key' && toHex(u.backupKey) === toHex(backupKey), 'unlocked');
    return `slot ${added.slot.slotId.slice(0, 8)}…, manifest seq ${listing.manifestSeq}`;
  });
  await run('a wrong key is WRONG_KEY before any data is read', async () => {
    await rejectsWith(
      () =>
        restore({
          storage,
          backupKey: new Uint8Array(32),
          statePath,
          target: '/x',
          files: new MemoryFiles(),
        }),
      'WRONG_KEY',
      'wrong key',
    );
  });
}

async function main(): Promise<void> {
  say(
    `engine: Hermes (${typeof (globalThis as { HermesInternal?: unknown }).HermesInternal === 'object' ? 'HermesInternal present' : 'not Hermes?'}); WebAssembly ${typeof (globalThis as { WebAssembly?: unknown }).WebAssembly}, crypto.subtle ${typeof (globalThis as { crypto?: { subtle?: unknown } }).crypto?.subtle}`,
  );
  say(`polyfilled here: ${installed.join(', ') || 'nothing'}`);
  useEnginePlatform({
    // Compression as an app plugs it in (compression.ts: fflate writes and reads deflate-raw,
    // brotli reads the Brotli blobs a desktop wrote), capped at each blob's raw length.
    crypto: nobleCrypto({ randomBytes: seededRandom(input.seed), compression: jsCompression }),
    files: new MemoryFiles(),
    host: memoryHost({ hostname: 'hermes' }),
  });
  say(
    `crypto provider: ${engineCrypto().name} (pure JS; compression: fflate deflate-raw, brotli decoder), files: MemoryFiles, store: MemoryStorage`,
  );
  await vectors();
  await memoryTree();
  say(
    'NOTE vectors needing OPAQUE (WebAssembly): none in vectors/ (OPAQUE runs in the client; react-native-opaque on a phone, not tested here)',
  );
  say(`phone: ${results.pass} passed, ${results.fail} failed, ${results.skip} skipped`);
}

main().catch((e: unknown) => {
  say(`FAIL harness: ${String((e as Error)?.stack ?? e)}`);
  say(`phone: ${results.pass} passed, ${results.fail + 1} failed, ${results.skip} skipped`);
});
