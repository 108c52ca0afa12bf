/**
 * The settings screen's JSON API (`/api/*`), behind the server's Host and session checks.
 * Each route runs the CLI's own code: a command through {@link runCommand} (backup,
 * restore, snapshots, enable with the 64-digit key, disable), or the same device-profile
 * and repository functions the commands use (enable after the page registered the password
 * at the vault). Errors come back as `{ error: { code, message, hint, exitCode } }` with the
 * CLI's codes.
 *
 * Routes (the page modules in src/ui/web call them through `web/api.ts`):
 *
 * | route                     | does                                                          |
 * |---------------------------|---------------------------------------------------------------|
 * | `GET  /api/state`         | device profile (nothing secret), vault, defaults, current job  |
 * | `GET  /api/snapshots`     | `backvault snapshots --device DIR --json`                     |
 * | `GET  /api/stats`         | `backvault stats --device DIR --json`                         |
 * | `GET  /api/job`           | the running (or last) backup/restore with progress, rate, ETA |
 * | `POST /api/backup`        | starts `backvault backup FOLDER --device DIR` as the job      |
 * | `POST /api/enable/start`  | a new backup key (new device) or the device's, to protect     |
 * | `POST /api/enable/finish` | writes the device (64-digit key: `enable --recovery-key`;     |
 * |                           | password: after the page registered it at the vault;          |
 * |                           | passkey: stores the slot the page sealed, see slots.ts)       |
 * | `POST /api/device-key`    | the device's backup key, for the page's OPAQUE client         |
 * | `POST /api/disable`       | `backvault disable --device DIR --yes`                        |
 * | `POST /api/restore`       | starts `backvault restore FOLDER --repo R --device DIR` as    |
 * |                           | the job, with the key the page recovered (a passkey's slot    |
 * |                           | is checked against the store first)                           |
 * | `/api/slots…`, `/api/repository/passkey-slots` | passkey slots: see slots.ts          |
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  RollbackError,
  UsageError,
} from 'backvault/errors';
import {
  createDevice,
  deviceExists,
  deviceStatePath,
  loadDevice,
  updateDeviceProfile,
  type DeviceProfile,
} from '../device/profile.js';
import { formatBackupKey, generateBackupKey, parseBackupKey } from 'backvault/format';
import { absoluteRepo } from '../cli/device-source.js';
import { createDeviceRepository } from '../cli/repo-create.js';
import { loadEngine } from '../cli/command.js';
import { backupCommand } from '../cli/commands/backup.js';
import { disableCommand } from '../cli/commands/vault-device.js';
import { enableCommand } from '../cli/commands/enable.js';
import { restoreCommand } from '../cli/commands/restore.js';
import { statsCommand } from '../cli/commands/inspect.js';
import { snapshotsCommand } from '../cli/commands/snapshots.js';
import { runCommand, toUiError } from './cli-bridge.js';
import type { UiConfig } from './config.js';
import type { JobRunner } from './jobs.js';
import { PENDING_TTL_MS, pending, type PendingEnable } from './pending.js';
import { readBody } from './server.js';
import {
  checkPasskeyRestore,
  finishPasskey,
  listSlots,
  preparePasskey,
  removeSlot,
  repositoryPasskeySlots,
} from './slots.js';
import { vaultTarget } from './vault-proxy.js';

/** What every route handler gets. */
export interface ApiContext {
  readonly config: UiConfig;
  readonly jobs: JobRunner;
  /** The server's security headers, sent with every response. */
  readonly headers: Readonly<Record<string, string>>;
}

type Body = Record<string, unknown>;

function send(api: ApiContext, res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...api.headers, 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

/** HTTP status of an error answer (the page reads the body; the status is for logs). */
function statusFor(e: { readonly code: string }): number {
  const code = e.code;
  if (code === 'CONFLICT') return 409;
  if (code === 'NOT_FOUND' || code === 'NO_REPOSITORY') return 404;
  if (code === 'INTERNAL') return 500;
  return 400;
}

function str(body: Body, name: string, required: true): string;
function str(body: Body, name: string, required?: false): string | undefined;
function str(body: Body, name: string, required = false): string | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw new BadRequestError(`missing ${name}`);
    return undefined;
  }
  if (typeof v !== 'string') throw new BadRequestError(`${name} must be a string`);
  return v;
}

async function jsonBody(req: IncomingMessage): Promise<Body> {
  const type = req.headers['content-type'] ?? '';
  // A cross-site form cannot send JSON without a preflight this server never answers.
  if (!type.startsWith('application/json')) {
    throw new BadRequestError('the API takes application/json');
  }
  const raw = await readBody(req);
  if (raw === undefined) throw new BadRequestError('request too large');
  let v: unknown;
  try {
    v = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
  } catch {
    throw new BadRequestError('the body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new BadRequestError('the body must be a JSON object');
  }
  return v as Body;
}

/** The profile as the page may see it: no key (the profile holds none anyway). */
function publicProfile(dir: string, p: DeviceProfile): Record<string, unknown> {
  return {
    dir,
    mode: p.mode,
    repo: p.repo,
    vault: p.vaultUrl ?? null,
    account: p.account ?? null,
    serverPublicKey: p.serverPublicKey ?? null,
    lastBackup: p.lastBackup ?? null,
    lastVerified: p.lastVerified ?? null,
    createdAt: p.createdAt,
  };
}

async function state(api: ApiContext): Promise<Record<string, unknown>> {
  const { config } = api;
  const exists = await deviceExists(config.deviceDir);
  const device = exists ? (await loadDevice(config.deviceDir)).profile : undefined;
  const vault = await vaultTarget(api);
  return {
    device: device ? publicProfile(config.deviceDir, device) : null,
    deviceDir: config.deviceDir,
    vault: vault ? { url: vault.vaultUrl, account: vault.account } : null,
    defaults: { repo: config.repo ?? null, folder: config.folder ?? null },
    job: api.jobs.current() ?? null,
  };
}

function commandOpts(api: ApiContext, extraEnv: Record<string, string> = {}) {
  // The key given to a command comes through BACKVAULT_KEY only when we pass it: never one
  // from the environment `backvault ui` was started in.
  // The vault token of `ui --token` reaches the commands as the CLI reads it.
  const token = api.config.vaultToken ? { BACKVAULT_TOKEN: api.config.vaultToken } : {};
  const env = { ...api.config.env, BACKVAULT_KEY: undefined, ...token, ...extraEnv };
  return { env, cwd: api.config.cwd };
}

function folderOf(api: ApiContext, body: Body): string {
  const folder = str(body, 'folder') ?? api.config.folder;
  if (!folder) {
    throw new UsageError(
      'no chat folder given',
      'Type the folder to back up, or start `backvault ui` with --folder DIR.',
    );
  }
  return folder;
}

async function startBackup(api: ApiContext, body: Body): Promise<unknown> {
  const folder = folderOf(api, body);
  const dir = api.config.deviceDir;
  if (!(await deviceExists(dir))) {
    throw new NotFoundError(
      'this device is not set up yet',
      'Turn on end-to-end encrypted backup first, or restore on this device.',
    );
  }
  return api.jobs.start('backup', (onProgress) =>
    runCommand(backupCommand, [folder, '--device', dir], { ...commandOpts(api), onProgress }),
  );
}

async function enableStart(api: ApiContext, body: Body): Promise<unknown> {
  const dir = api.config.deviceDir;
  for (const [id, p] of pending) if (Date.now() - p.at > PENDING_TTL_MS) pending.delete(id);
  let p: Omit<PendingEnable, 'at'>;
  if (await deviceExists(dir)) {
    const d = await loadDevice(dir);
    // A passkey is one more slot: any device may add one, whatever else protects it.
    if (d.profile.mode !== 'recovery-key' && str(body, 'protection') !== 'passkey') {
      throw new UsageError(
        'this device already uses a password',
        'Change the password, or turn password protection off first.',
      );
    }
    p = { backupKey: d.backupKey, repo: d.profile.repo, existing: true };
  } else {
    const repoText = str(body, 'repo') ?? api.config.repo;
    if (!repoText) throw new UsageError('no repository given', 'Type where backups are stored.');
    const repo = absoluteRepo(repoText, api.config.cwd);
    // As `enable` does, before anything is shown: a new key never meets an old repository.
    const { openStorage } = await import('backvault/node');
    // …except the one this very setup created for a passkey that then failed (no PRF,
    // cancelled): the user chose another protection for the same new repository.
    const mine = [...pending.values()].find((x) => x.repoCreated === true && x.repo === repo);
    const storage = await openStorage(repo);
    try {
      if (!mine && (await (await loadEngine()).repositoryExists(storage))) {
        throw new UsageError(
          `a repository already exists at ${repo}`,
          'Choose another location, or restore from it on the Restore page.',
        );
      }
    } finally {
      await storage.close();
    }
    p = mine ?? { backupKey: generateBackupKey(), repo, existing: false };
  }
  const pendingId = randomUUID();
  pending.clear();
  pending.set(pendingId, { ...p, at: Date.now() });
  return {
    pendingId,
    backupKey: formatBackupKey(p.backupKey),
    repo: p.repo,
    existingDevice: p.existing,
  };
}

async function enableFinish(api: ApiContext, body: Body): Promise<unknown> {
  const id = str(body, 'pendingId', true);
  const p = pending.get(id);
  if (!p) throw new ConflictError('this setup expired or was already finished', 'Start again.');
  const dir = api.config.deviceDir;
  const protection = str(body, 'protection', true);
  const formatted = formatBackupKey(p.backupKey);
  // The page sealed a passkey slot for this key (its PRF output stayed in the page).
  if (protection === 'passkey') return finishPasskey(api.config, body);
  if (protection === 'recovery-key') {
    if (p.existing) throw new UsageError('this device already uses the 64-digit key');
    // The CLI's own `enable --recovery-key`, with the key the page showed and had confirmed.
    const json = await runCommand(
      enableCommand,
      ['--device', dir, '--repo', p.repo, '--recovery-key', '--yes'],
      { ...commandOpts(api, { BACKVAULT_KEY: formatted }), secrets: [formatted] },
    );
    pending.delete(id);
    return { device: json.device, mode: json.mode, repo: json.repo };
  }
  if (protection !== 'password') throw new BadRequestError('unknown protection');
  // The page registered the password at the vault (OPAQUE, in the browser) for this key.
  // What `enable --password` does after its vault step: repository, then the profile.
  const serverPublicKey = str(body, 'serverPublicKey', true);
  const target = await vaultTarget(api);
  if (!target) throw new UsageError('no vault configured');
  if (target.pinned !== undefined && target.pinned !== serverPublicKey) {
    throw new BadRequestError('the vault key differs from the pinned one');
  }
  await createDeviceRepository(p.repo, p.backupKey, dir);
  const vaultFields = {
    mode: 'password' as const,
    vaultUrl: target.vaultUrl,
    account: target.account,
    serverPublicKey,
  };
  if (p.existing) await updateDeviceProfile(dir, vaultFields);
  else await createDevice(dir, { ...vaultFields, repo: p.repo }, p.backupKey);
  pending.delete(id);
  return { device: dir, mode: 'password', repo: p.repo };
}

async function deviceKey(api: ApiContext): Promise<unknown> {
  const d = await loadDevice(api.config.deviceDir);
  return { backupKey: formatBackupKey(d.backupKey) };
}

async function disable(api: ApiContext): Promise<unknown> {
  const d = await loadDevice(api.config.deviceDir);
  const formatted = formatBackupKey(d.backupKey);
  const values = api.config.vaultToken ? ['--token', api.config.vaultToken] : [];
  const json = await runCommand(disableCommand, ['--device', d.dir, '--yes', ...values], {
    ...commandOpts(api),
    secrets: [formatted, ...(api.config.vaultToken ? [api.config.vaultToken] : [])],
  });
  return { device: json.device, mode: json.mode };
}

async function startRestore(api: ApiContext, body: Body): Promise<unknown> {
  const dir = api.config.deviceDir;
  if (await deviceExists(dir)) {
    throw new UsageError(
      'this device is already set up',
      'Restore on a new device: start `backvault ui` with another --device DIR.',
    );
  }
  const folder = folderOf(api, body);
  const repoText = str(body, 'repo') ?? api.config.repo;
  if (!repoText) throw new UsageError('no repository given', 'Type where backups are stored.');
  const repo = absoluteRepo(repoText, api.config.cwd);
  // The same forgiving parser as the CLI's key input (spaces, dashes, any case).
  const backupKey = parseBackupKey(str(body, 'backupKey', true));
  const formatted = formatBackupKey(backupKey);
  const protection = str(body, 'protection', true);
  let vaultFields: Partial<DeviceProfile> | undefined;
  if (protection === 'password') {
    const target = await vaultTarget(api);
    if (!target) throw new UsageError('no vault configured');
    vaultFields = {
      mode: 'password',
      vaultUrl: target.vaultUrl,
      account: target.account,
      serverPublicKey: str(body, 'serverPublicKey', true),
    };
  } else if (protection === 'passkey') {
    // The page's `openPasskeySlot` recovered the key and checked it against the config and
    // manifest it was given; the same check against the store, then as the 64-digit key.
    await checkPasskeyRestore(repo, body, backupKey);
  } else if (protection !== 'recovery-key') {
    throw new BadRequestError('unknown protection');
  }
  const head = vaultFields ? vaultHead(body) : undefined;
  return api.jobs.start('restore', async (onProgress) => {
    // As `restore --password`: the repository must not be older than what the vault saw.
    if (head) await checkVaultHead(api, repo, dir, formatted, head);
    const json = await runCommand(restoreCommand, [folder, '--repo', repo, '--device', dir], {
      ...commandOpts(api, { BACKVAULT_KEY: formatted }),
      onProgress,
      secrets: [formatted],
    });
    // Restored with the password: the new device keeps using it (as `restore --password`).
    if (vaultFields) await updateDeviceProfile(dir, vaultFields);
    return json;
  });
}

/** The snapshot head the vault released with the key (`recoverWithHead`), if the page sent one. */
function vaultHead(body: Body): { seq: number; snapshotId: string } | undefined {
  const h = body.head as { seq?: unknown; snapshotId?: unknown } | null | undefined;
  if (h === undefined || h === null) return undefined;
  if (typeof h !== 'object' || typeof h.seq !== 'number' || typeof h.snapshotId !== 'string') {
    throw new BadRequestError('head must be { seq, snapshotId }');
  }
  return { seq: h.seq, snapshotId: h.snapshotId };
}

/**
 * The CLI's check before a password restore (`checkVaultHead` in src/cli/vault-access.ts,
 * same sentence): the repository's latest snapshot is not older than the vault's head.
 * @throws RollbackError when it is.
 */
async function checkVaultHead(
  api: ApiContext,
  repo: string,
  dir: string,
  formatted: string,
  head: { seq: number; snapshotId: string },
): Promise<void> {
  const json = await runCommand(
    snapshotsCommand,
    ['--repo', repo, '--state', deviceStatePath(dir)],
    { ...commandOpts(api, { BACKVAULT_KEY: formatted }), secrets: [formatted] },
  );
  const list = (json.snapshots ?? []) as { seq: number; id: string }[];
  const top = list.reduce<{ seq: number; id: string } | undefined>(
    (t, x) => (!t || x.seq > t.seq ? x : t),
    undefined,
  );
  const older = !top || top.seq < head.seq || (top.seq === head.seq && top.id !== head.snapshotId);
  if (older) {
    throw new RollbackError(
      `the repository's latest snapshot is ${top ? `seq ${top.seq}` : 'missing'}, but the vault recorded snapshot ${head.snapshotId.slice(0, 8)} (seq ${head.seq}) for this account`,
    );
  }
}

type Handler = (api: ApiContext, body: Body) => Promise<unknown>;

/** Method + path → handler. */
const ROUTES: Readonly<Record<string, Handler>> = {
  'GET /api/state': (api) => state(api),
  'GET /api/snapshots': (api) =>
    runCommand(snapshotsCommand, ['--device', api.config.deviceDir], commandOpts(api)),
  // What the store holds after each snapshot (the chart): `backvault stats`.
  'GET /api/stats': (api) =>
    runCommand(statsCommand, ['--device', api.config.deviceDir], commandOpts(api)),
  'GET /api/job': async (api) => ({ job: api.jobs.current() ?? null }),
  'POST /api/backup': startBackup,
  'POST /api/enable/start': enableStart,
  'POST /api/enable/finish': enableFinish,
  'POST /api/device-key': deviceKey,
  'POST /api/disable': disable,
  'POST /api/restore': startRestore,
  'GET /api/slots': (api) => listSlots(api.config),
  'POST /api/slots/prepare': (api, body) => preparePasskey(api.config, body),
  'POST /api/slots/remove': (api, body) => removeSlot(api.config, body),
  'POST /api/repository/passkey-slots': (api, body) => repositoryPasskeySlots(api.config, body),
};

/** Answers one `/api/*` request. */
export async function handleApi(
  api: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const key = `${req.method ?? 'GET'} ${path}`;
  const handler = ROUTES[key];
  if (!handler) {
    return send(api, res, 404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
  }
  try {
    const body = req.method === 'POST' ? await jsonBody(req) : {};
    const out = await handler(api, body);
    send(api, res, 200, out);
  } catch (e) {
    const error = toUiError(e);
    send(api, res, statusFor(error), { error });
  }
}
