/**
 * Key slots in the settings screen (SPEC.md §18): the passkey protection's server side. The
 * page runs the WebAuthn ceremony and the SDK's `createPasskeySlot` / `openPasskeySlot`, so
 * the passkey's PRF output never leaves the page; this module only moves public slot bytes
 * and, when enabling, the backup key the device (or the setup in progress) already holds.
 *
 * | route                                 | does                                              |
 * |---------------------------------------|---------------------------------------------------|
 * | `GET  /api/slots`                     | the device repository's slots (`key list`)        |
 * | `POST /api/slots/prepare`             | repo id + passkey user name for a pending setup   |
 * | `POST /api/slots/remove`              | removes one key slot (`key remove`)               |
 * | `POST /api/repository/passkey-slots`  | a repository's passkey slots, config and manifest |
 * |                                       | (public bytes), for a restore on a new device     |
 *
 * Storing the slot the page made is `POST /api/enable/finish` with `protection: 'passkey'`
 * ({@link finishPasskey}).
 *
 * Node-only.
 */
import { hostname } from 'node:os';
import {
  BadRequestError,
  ConflictError,
  MissingObjectError,
  NotFoundError,
  UsageError,
} from 'backvault/errors';
import { createDevice, deviceStatePath, loadDevice } from '../device/profile.js';
import { KEY_SLOT_MANIFEST_NAME, decodeConfig, decodeKeySlot, toHex } from 'backvault/format';
import { absoluteRepo } from '../cli/device-source.js';
import { loadEngine } from '../cli/command.js';
import { createDeviceRepository } from '../cli/repo-create.js';
import type { Storage } from 'backvault/storage';
import { pending } from './pending.js';
import type { UiConfig } from './config.js';

type Body = Record<string, unknown>;

/** The label a slot added in the settings screen gets in the manifest (`key list` shows it). */
export const UI_SLOT_LABEL = 'passkey added in backvault ui';

async function withStorage<T>(repo: string, f: (s: Storage) => Promise<T>): Promise<T> {
  const { openStorage } = await import('backvault/node');
  const storage = await openStorage(repo);
  try {
    return await f(storage);
  } finally {
    await storage.close();
  }
}

function text(body: Body, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v === '') throw new BadRequestError(`missing ${name}`);
  return v;
}

/** Slot bytes sent by the page as base64url; only passkey slots are taken. */
function passkeySlotOf(body: Body): Uint8Array {
  const s = text(body, 'slot');
  if (!/^[A-Za-z0-9_-]+$/.test(s)) throw new BadRequestError('slot must be base64url');
  const bytes = new Uint8Array(Buffer.from(s, 'base64url'));
  // KeySlotCorruptError (a clear code) for bytes that are not a slot.
  if (decodeKeySlot(bytes).info.kind !== 'passkey') {
    throw new BadRequestError('only a passkey slot can be added here');
  }
  return bytes;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function pendingOf(body: Body) {
  const id = text(body, 'pendingId');
  const p = pending.get(id);
  if (!p) throw new ConflictError('this setup expired or was already finished', 'Start again.');
  return { id, p };
}

/**
 * `POST /api/slots/prepare` `{ pendingId }`: what `createPasskeySlot` needs besides the key
 * the page already has: the repository's id (a new device's repository is created here,
 * once: the slot is bound to its id) and the passkey's user name (the vault account, else
 * this computer's name).
 */
export async function preparePasskey(config: UiConfig, body: Body): Promise<unknown> {
  const { p } = pendingOf(body);
  if (!p.existing && !p.repoCreated) {
    await createDeviceRepository(p.repo, p.backupKey, config.deviceDir);
    // A failed passkey (no PRF, cancelled) may be followed by another protection: enable/start
    // then reuses this repository with the same key (see api.ts).
    p.repoCreated = true;
  }
  const repoId = await withStorage(p.repo, async (storage) => {
    const engine = await loadEngine();
    return decodeConfig(await engine.readConfigBytes(storage)).repoId;
  });
  return {
    repoId: toHex(repoId),
    rpName: 'backvault',
    userName: config.account ?? `backvault on ${hostname()}`,
  };
}

/**
 * `enable/finish` with `protection: 'passkey'`: stores the slot the page sealed (after the
 * manifest check of `addKeySlot`, with the backup key held here), then, for a new device,
 * writes the profile (the device keeps the key as in 64-digit-key mode; the passkey slot is
 * one more way to open the repository).
 * @throws KeySlotCorruptError for bytes that are not a slot; WrongKeyError, UnavailableError.
 */
export async function finishPasskey(config: UiConfig, body: Body): Promise<unknown> {
  const { id, p } = pendingOf(body);
  const slot = passkeySlotOf(body);
  const dir = config.deviceDir;
  if (!p.existing && !p.repoCreated) {
    throw new ConflictError('the passkey was not prepared for this setup', 'Start again.');
  }
  const statePath = deviceStatePath(dir);
  const added = await withStorage(p.repo, async (storage) =>
    (await loadEngine()).addKeySlot(storage, p.backupKey, slot, {
      label: UI_SLOT_LABEL,
      statePath,
    }),
  );
  if (!p.existing) await createDevice(dir, { mode: 'recovery-key', repo: p.repo }, p.backupKey);
  pending.delete(id);
  return { device: dir, mode: p.existing ? undefined : 'recovery-key', repo: p.repo, slot: added };
}

/** `GET /api/slots`: the device repository's key slots as `key list --json` gives them. */
export async function listSlots(config: UiConfig): Promise<unknown> {
  const d = await loadDevice(config.deviceDir);
  return withStorage(d.profile.repo, async (storage) =>
    (await loadEngine()).listKeySlots(storage, d.backupKey, { statePath: d.statePath }),
  );
}

/**
 * `POST /api/slots/remove` `{ slotId }` (all 32 hex digits): removes one key slot — a
 * passkey, or a 64-digit key added with `backvault key add`. The device's own 64-digit key,
 * its password and any other slot keep opening the repository.
 * @throws NotFoundError when the repository has no key slot with that id.
 */
export async function removeSlot(config: UiConfig, body: Body): Promise<unknown> {
  const slotId = text(body, 'slotId').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(slotId)) throw new BadRequestError('slotId is 32 hex digits');
  const d = await loadDevice(config.deviceDir);
  const removed = await withStorage(d.profile.repo, async (storage) => {
    const engine = await loadEngine();
    const o = { statePath: d.statePath };
    const listing = await engine.listKeySlots(storage, d.backupKey, o);
    if (!listing.slots.some((s) => s.slotId === slotId)) {
      throw new NotFoundError(`no key slot ${slotId.slice(0, 8)} in this repository`);
    }
    return engine.removeKeySlot(storage, d.backupKey, slotId, o);
  });
  return { removed };
}

/**
 * `POST /api/repository/passkey-slots` `{ repo }`: for a restore with a passkey on a new
 * device — the repository's passkey slots, `config` and `keys/manifest` (all safe in an
 * untrusted store, hence fine to give the page), base64url, and the repo id.
 * @throws NoRepositoryError; NoKeySlotError when it has no passkey slot.
 */
export async function repositoryPasskeySlots(config: UiConfig, body: Body): Promise<unknown> {
  const repoText = (typeof body.repo === 'string' && body.repo) || config.repo;
  if (!repoText) throw new UsageError('no repository given', 'Type where backups are stored.');
  const repo = absoluteRepo(repoText, config.cwd);
  return withStorage(repo, async (storage) => {
    const engine = await loadEngine();
    const configBytes = await engine.readConfigBytes(storage);
    let manifest: Uint8Array | undefined;
    try {
      manifest = await storage.get(KEY_SLOT_MANIFEST_NAME);
    } catch (e) {
      if (!(e instanceof MissingObjectError)) throw e;
    }
    const slots = await engine.readPasskeySlots(storage);
    return {
      repoId: toHex(decodeConfig(configBytes).repoId),
      config: b64(configBytes),
      manifest: manifest === undefined ? null : b64(manifest),
      slots: slots.map(b64),
    };
  });
}

/**
 * Before a passkey restore: the slot that opened in the page, checked here against this
 * store's config and manifest too (the page checked the same bytes as the server gave them).
 * @throws KeySlotCorruptError, KeySlotMismatchError, CorruptBackupError.
 */
export async function checkPasskeyRestore(
  repo: string,
  body: Body,
  backupKey: Uint8Array,
): Promise<void> {
  const slot = passkeySlotOf(body);
  await withStorage(repo, async (storage) =>
    (await loadEngine()).verifyUnlockedSlot(storage, slot, backupKey),
  );
}
