/**
 * Key slots (SPEC.md §18): the vectors of vectors/key-slots.json are reproduced byte for byte
 * by the format code and cross-checked with node:crypto; every negative vector fails with its
 * code; the decoders take arbitrary bytes without throwing anything but their error; and the
 * store operations of src/backup/repository/key-slots.ts turn every deletion, swap and replay of a slot
 * into a clear error, never a wrong key. The format's key-slot functions give the same bytes
 * and errors on every crypto provider (WebCrypto, node:crypto, @noble), and the engine's key
 * slots run on the noble provider where there is no WebCrypto (Hermes).
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { createHash, hkdfSync, randomBytes as nodeRandomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { repoRoot, type Json } from '../../scripts/gen-vectors.js';
import {
  decodeConfig,
  decodeKeySlot,
  decodeKeySlotManifest,
  encodeKeySlotHeader,
  encodeKeySlotManifest,
  fromHex,
  generateBackupKey,
  keySlotName,
  openKeySlot,
  openKeySlotManifest,
  recoveryKeySlotId,
  deriveKeySlotKek,
  sealKeySlot,
  sealKeySlotManifest,
  toHex,
  verifyKeySlotUnlock,
  webFormatCrypto,
  KEY_SLOT_MANIFEST_NAME,
  type FormatCrypto,
  type KeySlotInfo,
} from '#sdk/format/index.js';
import { BackvaultError, hasCode, type ErrorCode } from '#sdk/errors.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import {
  MemoryFiles,
  backup,
  initRepository,
  installedPlatform,
  memoryHost,
  nodeCrypto,
  restore,
  useEnginePlatform,
  type EnginePlatform,
} from '#sdk/backup/index.js';
import { nobleCrypto } from '#sdk/backup/platform/noble-crypto.js';
import {
  addKeySlot,
  addRecoveryKeySlot,
  listKeySlots,
  readConfigBytes,
  readPasskeySlots,
  removeKeySlot,
  unlockWithKey,
  verifyUnlockedSlot,
} from '#sdk/backup/repository/key-slots.js';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { LocalStorage } from '#sdk/storage/node/local.js';
import { RepoLock } from '#sdk/backup/repository/lock.js';
import { deriveRepoKeys } from '#sdk/backup/repository/keys.js';
import { tmpdir } from 'node:os';

type V = Record<string, Json>;
const s = (v: Json | undefined): string => {
  assert.equal(typeof v, 'string');
  return v as string;
};
const n = (v: Json | undefined): number => {
  assert.equal(typeof v, 'number');
  return v as number;
};

async function vectors(): Promise<V> {
  return JSON.parse(await readFile(join(repoRoot(), 'vectors', 'key-slots.json'), 'utf8')) as V;
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof BackvaultError, `${what}: not a BackvaultError: ${String(e)}`);
    assert.equal(e.code, code, `${what}: ${e.code}: ${e.message}`);
    return true;
  });
}

function infoOf(slot: V): KeySlotInfo {
  const slotId = fromHex(s(slot.slotId));
  return slot.kind === 'passkey'
    ? {
        kind: 'passkey',
        slotId,
        created: n(slot.created),
        rpId: s(slot.rpId),
        credentialId: fromHex(s(slot.credentialId)),
        prfSalt: fromHex(s(slot.prfSalt)),
      }
    : { kind: 'recovery-key', slotId, created: n(slot.created) };
}

describe('key slot vectors (vectors/key-slots.json)', () => {
  it('each kind: KEK, slot id, header and slot reproduced byte for byte, and open to the backup key', async () => {
    const v = await vectors();
    const repoId = fromHex(s(v.repoId));
    const backupKey = fromHex(s(v.backupKey));
    const slots = v.slots as V[];
    assert.deepEqual(
      slots.map((x) => x.kind),
      ['recovery-key', 'passkey'],
    );
    for (const slot of slots) {
      const kind = slot.kind as 'recovery-key' | 'passkey';
      const secret = fromHex(s(slot.secret));
      // Independently of the WebCrypto code: node:crypto's HKDF with the documented info.
      const nodeKek = hkdfSync('sha256', secret, repoId, s(slot.kekInfo), 32);
      assert.equal(toHex(new Uint8Array(nodeKek)), s(slot.kek), `${kind} KEK (node:crypto)`);
      assert.equal(toHex(await deriveKeySlotKek(kind, secret, repoId)), s(slot.kek));
      if (kind === 'recovery-key') {
        const id = hkdfSync('sha256', secret, repoId, s(slot.slotIdInfo), 16);
        assert.equal(toHex(new Uint8Array(id)), s(slot.slotId), 'recovery slot id (node:crypto)');
        assert.equal(toHex(await recoveryKeySlotId(secret, repoId)), s(slot.slotId));
      }
      const info = infoOf(slot);
      assert.equal(toHex(encodeKeySlotHeader(info)), s(slot.header));
      assert.equal(keySlotName(info.slotId), s(slot.name));
      const sealed = await sealKeySlot({
        info,
        backupKey,
        kek: fromHex(s(slot.kek)),
        repoId,
        nonce: fromHex(s(slot.nonce)),
      });
      assert.equal(toHex(sealed), s(slot.bytes), `${kind} slot bytes`);
      const bytes = fromHex(s(slot.bytes));
      const decoded = decodeKeySlot(bytes, s(slot.name));
      assert.deepEqual(decoded.info, info);
      const opened = await openKeySlot(bytes, fromHex(s(slot.kek)), repoId, s(slot.name));
      assert.equal(toHex(opened.backupKey), s(v.backupKey));
      // And the whole unlock check passes with the vector manifest and config.
      const m = v.manifest as V;
      await verifyKeySlotUnlock({
        config: fromHex(s(v.config)),
        manifest: fromHex(s(m.sealed)),
        slot: bytes,
        info,
        backupKey: opened.backupKey,
      });
    }
  });

  it('manifest: plaintext and sealed bytes reproduced; opens with the meta subkey', async () => {
    const v = await vectors();
    const repoId = fromHex(s(v.repoId));
    const backupKey = fromHex(s(v.backupKey));
    const m = v.manifest as V;
    assert.equal(m.name, KEY_SLOT_MANIFEST_NAME);
    const decoded = decodeKeySlotManifest(fromHex(s(m.plain)));
    assert.equal(decoded.seq, n(m.seq));
    assert.equal(toHex(encodeKeySlotManifest(decoded)), s(m.plain));
    const listed = new Map(decoded.entries.map((e) => [toHex(e.slotId), e]));
    for (const slot of v.slots as V[]) {
      const e = listed.get(s(slot.slotId));
      assert.ok(e, 'every vector slot is listed');
      const hash = createHash('sha256')
        .update(fromHex(s(slot.bytes)))
        .digest('hex');
      assert.equal(toHex(e.hash), hash);
      assert.equal(e.kind, slot.kind);
    }
    const resealed = await sealKeySlotManifest(decoded, backupKey, repoId, fromHex(s(m.nonce)));
    assert.equal(toHex(resealed), s(m.sealed));
    assert.deepEqual(await openKeySlotManifest(fromHex(s(m.sealed)), backupKey, repoId), decoded);
  });

  it('negative slots (wrong KEK, swapped id, swapped kind, other repo, truncated, …) fail with their code', async () => {
    const v = await vectors();
    const repoId = fromHex(s(v.repoId));
    const cases = v.invalidSlots as V[];
    assert.ok(cases.length >= 10);
    for (const c of cases) {
      await rejectsWith(
        openKeySlot(fromHex(s(c.slot)), fromHex(s(c.kek)), repoId, s(c.name)),
        s(c.code) as ErrorCode,
        s(c.description),
      );
    }
  });

  it('negative unlocks (manifest missing, not listing, other hash, tampered; wrong key inside) fail with their code', async () => {
    const v = await vectors();
    const repoId = fromHex(s(v.repoId));
    for (const c of v.invalidUnlocks as V[]) {
      const slot = fromHex(s(c.slot));
      const opened = await openKeySlot(slot, fromHex(s(c.kek)), repoId, s(c.name));
      await rejectsWith(
        verifyKeySlotUnlock({
          config: fromHex(s(v.config)),
          manifest: c.manifest === null ? undefined : fromHex(s(c.manifest)),
          slot,
          info: opened.info,
          backupKey: opened.backupKey,
        }),
        s(c.code) as ErrorCode,
        s(c.description),
      );
    }
  });

  it('decoders take any bytes: a slot is KEY_SLOT_CORRUPT, a manifest CORRUPT, nothing else', async () => {
    const v = await vectors();
    const real = (v.slots as V[]).map((x) => fromHex(s(x.bytes)));
    const mutated = fc
      .tuple(fc.constantFrom(...real), fc.nat(), fc.integer({ min: 1, max: 255 }))
      .map(([b, at, x]) => {
        const c = b.slice();
        const i = at % c.length;
        c[i] = (c[i] as number) ^ x;
        return c;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), mutated), (bytes) => {
        try {
          decodeKeySlot(bytes, 'keys/00000000000000000000000000000000');
        } catch (e) {
          assert.ok(hasCode(e, 'KEY_SLOT_CORRUPT'), String(e));
        }
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        try {
          decodeKeySlotManifest(bytes);
        } catch (e) {
          assert.ok(hasCode(e, 'CORRUPT'), String(e));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('key slot encoders and decoders (property tests)', () => {
  const slotInfo = fc.oneof(
    fc.record({
      kind: fc.constant('recovery-key' as const),
      slotId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      created: fc.nat(),
    }),
    fc.record({
      kind: fc.constant('passkey' as const),
      slotId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      created: fc.nat(),
      rpId: fc.domain().filter((d) => d.length <= 253),
      credentialId: fc.uint8Array({ minLength: 1, maxLength: 1023 }),
      prfSalt: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    }),
  );

  it('a sealed slot decodes to its fields and opens with its KEK only', async () => {
    const repoId = generateBackupKey().subarray(0, 16);
    await fc.assert(
      fc.asyncProperty(
        slotInfo,
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        async (info, key, secret) => {
          const kek = await deriveKeySlotKek(info.kind, secret, repoId);
          const slot = await sealKeySlot({ info, backupKey: key, kek, repoId });
          const name = keySlotName(info.slotId);
          // fast-check's records have no prototype; compare plain copies.
          assert.deepEqual(decodeKeySlot(slot, name).info, { ...info });
          assert.deepEqual((await openKeySlot(slot, kek, repoId, name)).backupKey, key);
          const otherKind = info.kind === 'passkey' ? 'recovery-key' : 'passkey';
          await rejectsWith(
            openKeySlot(slot, await deriveKeySlotKek(otherKind, secret, repoId), repoId, name),
            'KEY_SLOT_CORRUPT',
            'KEK of the other kind',
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a manifest encodes and decodes to itself', () => {
    const entry = fc.record({
      slotId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      kind: fc.constantFrom('recovery-key' as const, 'passkey' as const),
      hash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      created: fc.nat(),
      label: fc.string({ maxLength: 40 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.uniqueArray(entry, { maxLength: 8, selector: (e) => toHex(e.slotId) }),
        (seq, entries) => {
          const m = {
            seq,
            entries: entries
              .map((e) => ({ ...e }))
              .sort((a, b) => (toHex(a.slotId) < toHex(b.slotId) ? -1 : 1)),
          };
          assert.deepEqual(decodeKeySlotManifest(encodeKeySlotManifest(m)), m);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('key slots in a store (src/backup/repository/key-slots.ts)', () => {
  async function repo(): Promise<{ storage: MemoryStorage; backupKey: Uint8Array }> {
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    await initRepository({ rollbackProtection: false, storage, backupKey });
    return { storage, backupKey };
  }

  it('a recovery key opens the repository; the backup key still does; another key is WRONG_KEY', async () => {
    const { storage, backupKey } = await repo();
    const { recoveryKey, slot } = await addRecoveryKeySlot(storage, backupKey, {
      label: 'paper copy',
    });
    assert.notEqual(toHex(recoveryKey), toHex(backupKey));
    const viaSlot = await unlockWithKey(storage, recoveryKey);
    assert.equal(toHex(viaSlot.backupKey), toHex(backupKey));
    assert.equal(viaSlot.via, 'recovery-key');
    assert.equal(viaSlot.slotId, slot.slotId);
    const direct = await unlockWithKey(storage, backupKey);
    assert.equal(direct.via, 'backup-key');
    await rejectsWith(unlockWithKey(storage, generateBackupKey()), 'WRONG_KEY', 'random key');
    const listing = await listKeySlots(storage, backupKey);
    assert.equal(listing.manifestSeq, 1);
    assert.deepEqual(
      listing.slots.map((x) => [x.kind, x.label, x.status]),
      [['recovery-key', 'paper copy', 'ok']],
    );
    // Listing and changing slots needs the backup key itself, not a recovery key.
    await rejectsWith(listKeySlots(storage, recoveryKey), 'WRONG_KEY', 'list with recovery key');
  });

  it('losing one protection never locks out while another remains', async () => {
    const { storage, backupKey } = await repo();
    const src = await mkdtemp(join(tmpdir(), 'bv-slots-'));
    try {
      await mkdir(join(src, 'chat'));
      await writeFile(join(src, 'chat', 'msgstore.txt'), 'hello from the chat\n');
      await backup({ rollbackProtection: false, storage, backupKey, source: join(src, 'chat') });
      const a = await addRecoveryKeySlot(storage, backupKey);
      const b = await addRecoveryKeySlot(storage, backupKey);
      // The first recovery key is handed back (revoked): b and the backup key still open.
      await removeKeySlot(storage, backupKey, a.slot.slotId.slice(0, 8));
      await rejectsWith(unlockWithKey(storage, a.recoveryKey), 'WRONG_KEY', 'revoked key');
      // The written-down backup key is lost: b alone restores everything.
      const unlocked = await unlockWithKey(storage, b.recoveryKey);
      const target = join(src, 'restored');
      await restore({ rollbackProtection: false, storage, backupKey: unlocked.backupKey, target });
      assert.equal(await readFile(join(target, 'msgstore.txt'), 'utf8'), 'hello from the chat\n');
      // b is removed too: the backup key (if found again) still opens, without any slot.
      await removeKeySlot(storage, backupKey, b.slot.slotId);
      assert.equal((await unlockWithKey(storage, backupKey)).via, 'backup-key');
      assert.deepEqual((await listKeySlots(storage, backupKey)).slots, []);
    } finally {
      await rm(src, { recursive: true, force: true });
    }
  });

  it('changes from several devices at once all land: the keys lock serializes them, and no backup waits for it', async () => {
    // A real directory store: its async file operations interleave the way two devices'
    // requests do. Without the lock every add reads manifest seq n and writes n + 1: all
    // but one of the new slots would be `unlisted` and open nothing.
    const dir = await mkdtemp(join(tmpdir(), 'bv-slots-race-'));
    try {
      const storage = new LocalStorage(join(dir, 'repo'));
      const backupKey = generateBackupKey();
      await initRepository({ rollbackProtection: false, storage, backupKey });
      const old = await addRecoveryKeySlot(storage, backupKey, { label: 'old' });
      await mkdir(join(dir, 'chat'));
      await writeFile(join(dir, 'chat', 'msgstore.txt'), 'hello\n');
      // A backup holds the repository's exclusive lock throughout the key changes.
      const repoId = decodeConfig(await readConfigBytes(storage)).repoId;
      const holder = await RepoLock.acquire(
        { storage, keys: deriveRepoKeys(backupKey, repoId) },
        'backup',
        true,
      );
      let added: { recoveryKey: Uint8Array; slot: { slotId: string } }[];
      try {
        const results = await Promise.all([
          ...Array.from({ length: 6 }, (_, i) =>
            addRecoveryKeySlot(storage, backupKey, { label: `device ${i}` }),
          ),
          removeKeySlot(storage, backupKey, old.slot.slotId),
        ]);
        added = results.slice(0, 6) as typeof added;
      } finally {
        await holder.release();
      }
      const listing = await listKeySlots(storage, backupKey);
      assert.equal(listing.manifestSeq, 1 + 7, 'one manifest per change');
      assert.deepEqual(
        listing.slots.map((x) => [x.label, x.status]).sort(),
        Array.from({ length: 6 }, (_, i) => [`device ${i}`, 'ok']),
      );
      for (const a of added) {
        const u = await unlockWithKey(storage, a.recoveryKey);
        assert.equal(u.slotId, a.slot.slotId);
      }
      await rejectsWith(unlockWithKey(storage, old.recoveryKey), 'WRONG_KEY', 'removed key');
      // No key-slot lock is left behind, and a backup runs while a key change holds one.
      assert.deepEqual(await readdir(join(dir, 'repo', 'locks')), []);
      const running = addRecoveryKeySlot(storage, backupKey, { label: 'during backup' });
      await backup({ rollbackProtection: false, storage, backupKey, source: join(dir, 'chat') });
      await running;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a store that deletes, swaps or replays slots causes a clear error, never a wrong key', async () => {
    const { storage, backupKey } = await repo();
    const a = await addRecoveryKeySlot(storage, backupKey);
    const b = await addRecoveryKeySlot(storage, backupKey);
    const nameA = keySlotName(a.slot.slotId);
    const nameB = keySlotName(b.slot.slotId);
    const bytesA = await storage.get(nameA);
    const bytesB = await storage.get(nameB);

    // Swapped: b's slot under a's name.
    await storage.put(nameA, bytesB);
    await rejectsWith(unlockWithKey(storage, a.recoveryKey), 'KEY_SLOT_CORRUPT', 'swapped');
    let listing = await listKeySlots(storage, backupKey);
    assert.equal(listing.slots.find((x) => x.slotId === a.slot.slotId)?.status, 'changed');

    // Deleted: the key is not recognised — said so, and nothing is read.
    await storage.delete(nameA);
    await rejectsWith(unlockWithKey(storage, a.recoveryKey), 'WRONG_KEY', 'deleted slot');
    listing = await listKeySlots(storage, backupKey);
    assert.equal(listing.slots.find((x) => x.slotId === a.slot.slotId)?.status, 'missing');

    // Replayed: a removed slot put back by the store is not in the manifest.
    await storage.put(nameA, bytesA);
    await removeKeySlot(storage, backupKey, a.slot.slotId);
    await storage.put(nameA, bytesA);
    await rejectsWith(unlockWithKey(storage, a.recoveryKey), 'KEY_SLOT_MISMATCH', 'replayed');
    listing = await listKeySlots(storage, backupKey);
    assert.equal(listing.slots.find((x) => x.slotId === a.slot.slotId)?.status, 'unlisted');

    // Manifest deleted: no slot is trusted.
    await storage.delete(KEY_SLOT_MANIFEST_NAME);
    await rejectsWith(unlockWithKey(storage, b.recoveryKey), 'KEY_SLOT_MISMATCH', 'no manifest');

    // Manifest tampered: CORRUPT, still never a wrong key.
    await storage.put(KEY_SLOT_MANIFEST_NAME, new Uint8Array(60));
    await rejectsWith(unlockWithKey(storage, b.recoveryKey), 'CORRUPT', 'manifest tampered');

    // The backup key itself needs no slot and opens whatever happened to the slots.
    assert.equal((await unlockWithKey(storage, backupKey)).via, 'backup-key');
  });

  it('a device that saw a newer manifest refuses an older one put back with a removed slot', async () => {
    const { storage, backupKey } = await repo();
    const dir = await mkdtemp(join(tmpdir(), 'bv-slots-state-'));
    try {
      const state = { statePath: join(dir, 'state.json') };
      const a = await addRecoveryKeySlot(storage, backupKey, state);
      const oldManifest = await storage.get(KEY_SLOT_MANIFEST_NAME);
      const name = keySlotName(a.slot.slotId);
      const oldSlot = await storage.get(name);
      await removeKeySlot(storage, backupKey, a.slot.slotId, state);
      // The store replays both the slot and the manifest that listed it.
      await storage.put(KEY_SLOT_MANIFEST_NAME, oldManifest);
      await storage.put(name, oldSlot);
      await rejectsWith(
        unlockWithKey(storage, a.recoveryKey, state),
        'KEY_SLOT_MISMATCH',
        'replayed manifest',
      );
      await rejectsWith(listKeySlots(storage, backupKey, state), 'KEY_SLOT_MISMATCH', 'list');
      // A device without that memory cannot tell (SPEC.md §18, limits): the slot opens.
      assert.equal((await unlockWithKey(storage, a.recoveryKey)).via, 'recovery-key');
      // A manifest deleted after this device saw one is refused too.
      await storage.delete(KEY_SLOT_MANIFEST_NAME);
      await rejectsWith(listKeySlots(storage, backupKey, state), 'KEY_SLOT_MISMATCH', 'deleted');
      assert.deepEqual((await listKeySlots(storage, backupKey)).manifestSeq, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a passkey slot made elsewhere is added, offered, verified and caught when replaced', async () => {
    const { storage, backupKey } = await repo();
    const config = await storage.get('config');
    const repoId = config.subarray(12, 28);
    const prf = generateBackupKey();
    const info: KeySlotInfo = {
      kind: 'passkey',
      slotId: generateBackupKey().subarray(0, 16),
      created: Date.now(),
      rpId: 'localhost',
      credentialId: generateBackupKey(),
      prfSalt: generateBackupKey(),
    };
    const slot = await sealKeySlot({
      info,
      backupKey,
      kek: await deriveKeySlotKek('passkey', prf, repoId),
      repoId,
    });
    const added = await addKeySlot(storage, backupKey, slot, { label: 'phone' });
    assert.equal(added.kind, 'passkey');
    assert.equal(added.rpId, 'localhost');
    const offered = await readPasskeySlots(storage);
    assert.equal(offered.length, 1);
    const opened = await openKeySlot(
      offered[0] as Uint8Array,
      await deriveKeySlotKek('passkey', prf, repoId),
      repoId,
    );
    await verifyUnlockedSlot(storage, offered[0] as Uint8Array, opened.backupKey);
    assert.equal(toHex(opened.backupKey), toHex(backupKey));
    // Re-adding the same slot is refused; replacing it (store) is a mismatch.
    await rejectsWith(addKeySlot(storage, backupKey, slot), 'USAGE', 'twice');
    const other = await sealKeySlot({
      info,
      backupKey,
      kek: await deriveKeySlotKek('passkey', prf, repoId),
      repoId,
    });
    await rejectsWith(
      verifyUnlockedSlot(storage, other, backupKey),
      'KEY_SLOT_MISMATCH',
      'resealed',
    );
  });
});

describe('key slots on any crypto provider (FormatCrypto: WebCrypto, node:crypto, @noble)', () => {
  const noble = nobleCrypto({ randomBytes: (k) => new Uint8Array(nodeRandomBytes(k)) });
  const providers: [string, FormatCrypto][] = [
    ['webFormatCrypto()', webFormatCrypto()],
    ['nodeCrypto', nodeCrypto],
    ['nobleCrypto()', noble],
  ];

  /** Run `fn` with no WebCrypto on globalThis, as on Hermes. */
  async function withoutWebCrypto<T>(fn: () => Promise<T>): Promise<T> {
    const had = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
    try {
      return await fn();
    } finally {
      if (had) Object.defineProperty(globalThis, 'crypto', had);
    }
  }

  it('each provider reproduces the slot and manifest vectors and fails every negative with its code', async () => {
    const v = await vectors();
    const repoId = fromHex(s(v.repoId));
    const backupKey = fromHex(s(v.backupKey));
    const m = v.manifest as V;
    for (const [name, c] of providers) {
      for (const slot of v.slots as V[]) {
        const kind = slot.kind as 'recovery-key' | 'passkey';
        const secret = fromHex(s(slot.secret));
        assert.equal(toHex(await deriveKeySlotKek(kind, secret, repoId, c)), s(slot.kek), name);
        if (kind === 'recovery-key')
          assert.equal(toHex(await recoveryKeySlotId(secret, repoId, c)), s(slot.slotId), name);
        const info = infoOf(slot);
        const sealed = await sealKeySlot({
          info,
          backupKey,
          kek: fromHex(s(slot.kek)),
          repoId,
          nonce: fromHex(s(slot.nonce)),
          crypto: c,
        });
        assert.equal(toHex(sealed), s(slot.bytes), `${name}: ${kind} slot bytes`);
        const opened = await openKeySlot(sealed, fromHex(s(slot.kek)), repoId, s(slot.name), c);
        assert.equal(toHex(opened.backupKey), s(v.backupKey));
        await verifyKeySlotUnlock({
          config: fromHex(s(v.config)),
          manifest: fromHex(s(m.sealed)),
          slot: sealed,
          info,
          backupKey: opened.backupKey,
          crypto: c,
        });
      }
      const decoded = decodeKeySlotManifest(fromHex(s(m.plain)));
      const resealed = await sealKeySlotManifest(
        decoded,
        backupKey,
        repoId,
        fromHex(s(m.nonce)),
        c,
      );
      assert.equal(toHex(resealed), s(m.sealed), `${name}: manifest`);
      assert.deepEqual(await openKeySlotManifest(resealed, backupKey, repoId, c), decoded);
      for (const x of v.invalidSlots as V[])
        await rejectsWith(
          openKeySlot(fromHex(s(x.slot)), fromHex(s(x.kek)), repoId, s(x.name), c),
          s(x.code) as ErrorCode,
          `${name}: ${s(x.description)}`,
        );
      for (const x of v.invalidUnlocks as V[]) {
        const slot = fromHex(s(x.slot));
        const opened = await openKeySlot(slot, fromHex(s(x.kek)), repoId, s(x.name), c);
        await rejectsWith(
          verifyKeySlotUnlock({
            config: fromHex(s(v.config)),
            manifest: x.manifest === null ? undefined : fromHex(s(x.manifest)),
            slot,
            info: opened.info,
            backupKey: opened.backupKey,
            crypto: c,
          }),
          s(x.code) as ErrorCode,
          `${name}: ${s(x.description)}`,
        );
      }
    }
  });

  it('without WebCrypto the default is a clear USAGE error, and a passed provider works', async () => {
    const v = await vectors();
    const repoId = fromHex(s(v.repoId));
    const slot = (v.slots as V[])[0] as V;
    await withoutWebCrypto(async () => {
      assert.throws(
        () => webFormatCrypto(),
        (e: unknown) => hasCode(e, 'USAGE'),
      );
      await rejectsWith(
        deriveKeySlotKek('recovery-key', fromHex(s(slot.secret)), repoId),
        'USAGE',
        'default without WebCrypto',
      );
      assert.equal(
        toHex(await deriveKeySlotKek('recovery-key', fromHex(s(slot.secret)), repoId, noble)),
        s(slot.kek),
      );
    });
  });

  it('the engine’s key slots run on the noble provider without WebCrypto, and open on Node', async () => {
    const node = installedPlatform() as EnginePlatform;
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    await initRepository({ rollbackProtection: false, storage, backupKey });
    const { recoveryKey, slot } = await withoutWebCrypto(async () => {
      useEnginePlatform({ crypto: noble, files: new MemoryFiles(), host: memoryHost() });
      try {
        const added = await addRecoveryKeySlot(storage, backupKey, { label: 'phone' });
        const u = await unlockWithKey(storage, added.recoveryKey);
        assert.equal(toHex(u.backupKey), toHex(backupKey));
        assert.equal(u.via, 'recovery-key');
        const listing = await listKeySlots(storage, backupKey);
        assert.deepEqual(
          listing.slots.map((x) => x.status),
          ['ok'],
        );
        return added;
      } finally {
        useEnginePlatform(node);
      }
    });
    // What the phone wrote opens on Node, and its slot bytes are what the format seals.
    const u = await unlockWithKey(storage, recoveryKey);
    assert.equal(u.slotId, slot.slotId);
    assert.equal(toHex(u.backupKey), toHex(backupKey));
  });
});
