/**
 * Passkey protection in a REAL browser: Debian's headless Chromium (driven by playwright-core)
 * loads the compiled `src/client/passkey.js` and `src/format` as they are, and the DevTools
 * virtual authenticator answers WebAuthn with a working PRF extension. Against a real
 * repository in a local directory:
 *
 * - a passkey slot made in the page opens to the same backup key, which restores the backup;
 * - a "new device" — the site's data cleared, the page reloaded, nothing but the repository
 *   and the passkey — opens it again. The SAME authenticator stands in for a synced passkey:
 *   a credential copied into another virtual authenticator loses its PRF secret (checked
 *   below: it gets PRF_UNSUPPORTED), so a copy cannot play the synced passkey;
 * - an authenticator without PRF gets PRF_UNSUPPORTED naming the other choices;
 * - a refused user verification is PASSKEY_CANCELLED;
 * - a store that damages, replays or deletes the slot: KEY_SLOT_CORRUPT, KEY_SLOT_MISMATCH,
 *   NO_KEY_SLOT — never a wrong key.
 *
 * A missing browser is a FAILURE naming the package, never a skip.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { backup, initRepository, restore } from '#sdk/backup/index.js';
import {
  addKeySlot,
  readPasskeySlots,
  removeKeySlot,
  unlockWithKey,
} from '#sdk/backup/repository/key-slots.js';
import {
  KEY_SLOT_MANIFEST_NAME,
  decodeConfig,
  fromHex,
  generateBackupKey,
  keySlotName,
  toHex,
} from '#sdk/format/index.js';
import { openStorage } from '#sdk/storage/node/open.js';
import type { Storage } from '#sdk/storage/storage.js';
import {
  addVirtualAuthenticator,
  clearSiteDataAndReload,
  copyCredentials,
  startTestBrowser,
  type AuthenticatorPage,
  type TestBrowser,
} from './virtual-authenticator.js';

/** The device SDK package's compiled tree, served at /src/ (test/browser → packages/sdk/dist). */
const SDK_DIST = fileURLToPath(new URL('../../../packages/sdk/dist/', import.meta.url));
const SERVED = ['src/client/', 'src/format/', 'src/errors.js'];

/** Serves a blank page and the compiled browser-safe modules, on 127.0.0.1. */
async function startOrigin(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/') {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(
        '<!doctype html><html><head><title>passkey</title></head><body>passkey</body></html>',
      );
      return;
    }
    const rel = path.slice(1);
    const file = resolve(SDK_DIST, rel.slice('src/'.length));
    if (
      !rel.endsWith('.js') ||
      !SERVED.some((p) => rel === p || (p.endsWith('/') && rel.startsWith(p))) ||
      !file.startsWith(SDK_DIST.replace(/\/$/, '') + sep)
    ) {
      res.statusCode = 404;
      res.end();
      return;
    }
    readFile(file).then(
      (body) => {
        res.setHeader('content-type', 'text/javascript; charset=utf-8');
        res.end(body);
      },
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // `localhost`, not the IP: WebAuthn needs a domain as relying-party id, and Chromium treats
  // http://localhost as a secure context.
  return { url: `http://localhost:${(server.address() as AddressInfo).port}/`, server };
}

/** What the page hands back: a result, or an error by code. */
type InPage<T> =
  | { ok: true; value: T }
  | { ok: false; code?: string; name: string; message: string; hint?: string };

interface OpInput {
  op: 'support' | 'create' | 'open' | 'storage-marker';
  backupKey?: string;
  repoId?: string;
  slots?: string[];
  config?: string;
  manifest?: string | null;
}

/** Runs one SDK call inside the page (binary values as hex). */
async function inPage<T>(page: AuthenticatorPage, input: OpInput): Promise<InPage<T>> {
  return page.page.evaluate(async (i: OpInput) => {
    const sdkUrl = '/src/client/passkey.js';
    const formatUrl = '/src/format/index.js';
    const sdk = (await import(sdkUrl)) as typeof import('#sdk/client/passkey.js');
    const f = (await import(formatUrl)) as typeof import('#sdk/format/index.js');
    try {
      switch (i.op) {
        case 'support':
          return { ok: true, value: await sdk.passkeySupport() };
        case 'storage-marker': {
          const before = localStorage.length;
          localStorage.setItem('marker', '1');
          return { ok: true, value: before };
        }
        case 'create': {
          const r = await sdk.createPasskeySlot({
            backupKey: f.fromHex(i.backupKey ?? ''),
            repoId: f.fromHex(i.repoId ?? ''),
            rpId: location.hostname,
            rpName: 'backvault test',
            userName: 'alice@example.com',
          });
          return {
            ok: true,
            value: { slotId: r.slotId, credentialId: r.credentialId, slot: f.toHex(r.slot) },
          };
        }
        case 'open': {
          const r = await sdk.openPasskeySlot({
            slots: (i.slots ?? []).map((s) => f.fromHex(s)),
            repoId: f.fromHex(i.repoId ?? ''),
            rpId: location.hostname,
            ...(i.config !== undefined
              ? {
                  verify: {
                    config: f.fromHex(i.config),
                    manifest: i.manifest ? f.fromHex(i.manifest) : undefined,
                  },
                }
              : {}),
          });
          return {
            ok: true,
            value: {
              backupKey: f.toHex(r.backupKey),
              slotId: r.slotId,
              credentialId: r.credentialId,
              manifestSeq: r.manifestSeq,
            },
          };
        }
      }
    } catch (e) {
      const err = e as { code?: string; name?: string; message?: string; hint?: string };
      return {
        ok: false,
        name: String(err.name),
        message: String(err.message),
        ...(err.code !== undefined ? { code: err.code } : {}),
        ...(err.hint !== undefined ? { hint: err.hint } : {}),
      };
    }
    return { ok: false, name: 'Error', message: 'unknown op' };
  }, input) as Promise<InPage<T>>;
}

function value<T>(r: InPage<T>, what: string): T {
  assert.ok(r.ok, `${what}: ${r.ok ? '' : `${r.code ?? r.name}: ${r.message}`}`);
  return r.value;
}

function code(r: InPage<unknown>): string | undefined {
  return r.ok ? 'ok' : r.code;
}

describe('passkey protection in headless Chromium with a virtual authenticator', () => {
  let tmp: string;
  let origin: { url: string; server: Server };
  let tb: TestBrowser;
  const contexts: BrowserContext[] = [];
  let storage: Storage;
  let repoDir: string;
  const backupKey = generateBackupKey();
  let repoIdHex: string;
  let device: AuthenticatorPage;
  let slotId: string;

  async function freshPage(): Promise<import('playwright-core').Page> {
    const ctx = await tb.browser.newContext();
    contexts.push(ctx);
    const page = await ctx.newPage();
    await page.goto(origin.url);
    return page;
  }

  /** What a device reads from the store before asking for the passkey. */
  async function fromStore(): Promise<{
    slots: string[];
    config: string;
    manifest: string | null;
  }> {
    const s = await openStorage(repoDir);
    try {
      const slots = (await readPasskeySlots(s)).map(toHex);
      const config = toHex(await s.get('config'));
      const manifest = (await s.stat(KEY_SLOT_MANIFEST_NAME))
        ? toHex(await s.get(KEY_SLOT_MANIFEST_NAME))
        : null;
      return { slots, config, manifest };
    } finally {
      await s.close();
    }
  }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'backvault-passkey-'));
    await mkdir(join(tmp, 'chat', 'media'), { recursive: true });
    await writeFile(join(tmp, 'chat', 'msgstore.db'), 'the messages\n');
    await writeFile(join(tmp, 'chat', 'media', 'photo.jpg'), Buffer.alloc(70_000, 7));
    repoDir = join(tmp, 'repo');
    storage = await openStorage(repoDir);
    await initRepository({ rollbackProtection: false, storage, backupKey });
    await backup({ rollbackProtection: false, storage, backupKey, source: join(tmp, 'chat') });
    repoIdHex = toHex(decodeConfig(await storage.get('config')).repoId);
    origin = await startOrigin();
    tb = await startTestBrowser();
    device = await addVirtualAuthenticator(await freshPage());
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await tb?.stop();
    await new Promise((r) => origin?.server.close(r));
    await storage?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('creates a passkey slot in the page and opens it to the same backup key', async () => {
    const support = value(
      await inPage<{ webauthn: boolean; prf: string }>(device, { op: 'support' }),
      'support',
    );
    assert.equal(support.webauthn, true);
    assert.notEqual(support.prf, 'no');
    const created = value(
      await inPage<{ slotId: string; credentialId: string; slot: string }>(device, {
        op: 'create',
        backupKey: toHex(backupKey),
        repoId: repoIdHex,
      }),
      'create',
    );
    slotId = created.slotId;
    assert.match(created.slotId, /^[0-9a-f]{32}$/);
    assert.match(created.credentialId, /^[A-Za-z0-9_-]+$/);
    // The slot holds the key only wrapped.
    assert.ok(!created.slot.includes(toHex(backupKey)));
    const added = await addKeySlot(storage, backupKey, fromHex(created.slot), { label: 'phone' });
    assert.equal(added.kind, 'passkey');
    assert.equal(added.rpId, 'localhost');
    assert.equal(added.credentialId, created.credentialId);

    const store = await fromStore();
    const opened = value(
      await inPage<{
        backupKey: string;
        slotId: string;
        credentialId: string;
        manifestSeq?: number;
      }>(device, {
        op: 'open',
        repoId: repoIdHex,
        ...store,
      }),
      'open',
    );
    assert.equal(opened.backupKey, toHex(backupKey));
    assert.equal(opened.slotId, created.slotId);
    assert.equal(opened.credentialId, created.credentialId);
    // Checked against config and manifest in the page; the first manifest has seq 1.
    assert.equal(opened.manifestSeq, 1);
  });

  it('restores as a new device: site data cleared, nothing but the repository and the (synced) passkey', async () => {
    assert.ok(slotId, 'the first test made a slot');
    value(await inPage<number>(device, { op: 'storage-marker' }), 'marker');
    await clearSiteDataAndReload(device);
    // The browser kept nothing of the site: the marker is gone.
    assert.equal(value(await inPage<number>(device, { op: 'storage-marker' }), 'marker'), 0);
    const store = await fromStore();
    const opened = value(
      await inPage<{ backupKey: string }>(device, { op: 'open', repoId: repoIdHex, ...store }),
      'open on the new device',
    );
    // The key the passkey recovered restores the backup, with a fresh state file.
    const restoreStorage = await openStorage(repoDir);
    try {
      const target = join(tmp, 'restored');
      await restore({
        storage: restoreStorage,
        backupKey: fromHex(opened.backupKey),
        target,
        statePath: join(tmp, 'new-device-state.json'),
      });
      assert.equal(await readFile(join(target, 'msgstore.db'), 'utf8'), 'the messages\n');
      assert.deepEqual(await readFile(join(target, 'media', 'photo.jpg')), Buffer.alloc(70_000, 7));
    } finally {
      await restoreStorage.close();
    }
  });

  it('a credential copied into another authenticator has no PRF secret: PRF_UNSUPPORTED', async () => {
    const other = await addVirtualAuthenticator(await freshPage());
    await copyCredentials(device, other);
    const store = await fromStore();
    const r = await inPage(other, { op: 'open', repoId: repoIdHex, ...store });
    assert.equal(code(r), 'PRF_UNSUPPORTED', JSON.stringify(r));
  });

  it('an authenticator without PRF: PRF_UNSUPPORTED, naming the password and the 64-digit key', async () => {
    const noPrf = await addVirtualAuthenticator(await freshPage(), { hasPrf: false });
    const r = await inPage(noPrf, {
      op: 'create',
      backupKey: toHex(backupKey),
      repoId: repoIdHex,
    });
    assert.equal(code(r), 'PRF_UNSUPPORTED', JSON.stringify(r));
    assert.ok(!r.ok);
    assert.match(r.hint ?? '', /password/);
    assert.match(r.hint ?? '', /64-digit key/);
  });

  it('a refused user verification is PASSKEY_CANCELLED, and nothing changes', async () => {
    // Its own authenticator: one that refused verification keeps refusing in Chromium 156,
    // even after setUserVerified(true) (see virtual-authenticator.ts).
    const refusing = await addVirtualAuthenticator(await freshPage(), { isUserVerified: false });
    const slotsBefore = (await fromStore()).slots.length;
    const r = await inPage(refusing, {
      op: 'create',
      backupKey: toHex(backupKey),
      repoId: repoIdHex,
    });
    assert.equal(code(r), 'PASSKEY_CANCELLED', JSON.stringify(r));
    assert.equal((await fromStore()).slots.length, slotsBefore);
    // The passkey of the device still opens.
    const again = await inPage(device, { op: 'open', repoId: repoIdHex, ...(await fromStore()) });
    assert.equal(code(again), 'ok');
  });

  it('a store that damages, replays or deletes the slot: a clear error, never a wrong key', async () => {
    const file = join(repoDir, keySlotName(slotId));
    const original = await readFile(file);
    // Damaged: one bit of the wrapped key.
    const damaged = Buffer.from(original);
    damaged[damaged.length - 20] = (damaged[damaged.length - 20] as number) ^ 1;
    await writeFile(file, damaged);
    let r = await inPage(device, { op: 'open', repoId: repoIdHex, ...(await fromStore()) });
    assert.equal(code(r), 'KEY_SLOT_CORRUPT', JSON.stringify(r));
    await writeFile(file, original);
    assert.equal(
      code(await inPage(device, { op: 'open', repoId: repoIdHex, ...(await fromStore()) })),
      'ok',
    );

    // Replayed: the user removed the passkey slot; the store puts it back.
    await removeKeySlot(storage, backupKey, slotId);
    await writeFile(file, original);
    r = await inPage(device, { op: 'open', repoId: repoIdHex, ...(await fromStore()) });
    assert.equal(code(r), 'KEY_SLOT_MISMATCH', JSON.stringify(r));

    // Deleted: nothing to offer the passkey.
    await rm(file);
    r = await inPage(device, { op: 'open', repoId: repoIdHex, ...(await fromStore()) });
    assert.equal(code(r), 'NO_KEY_SLOT', JSON.stringify(r));

    // The 64-digit backup key still opens the repository, without any slot.
    assert.equal((await unlockWithKey(storage, backupKey)).via, 'backup-key');
  });
});
