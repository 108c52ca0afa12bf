/**
 * Vectors of SPEC.md §18: key slots (recovery-key and passkey) and the slot manifest,
 * positive and negative.
 */
import {
FORMAT_VERSION,
concatBytes
} from '#sdk/format/index.js';

import { VECTOR_KEY,VECTOR_REPO_ID,VECTOR_WRONG_KEY,detBytes,header,hex,nonceOf,type Json } from './common.js';

export async function keySlotVectors(): Promise<Json> {
  const f = await import('#sdk/format/index.js');
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

type KeySlotInfoV = import('#sdk/format/index.js').KeySlotInfo;

