/**
 * The device profile: what a device needs to keep backing up, and to talk to its vault.
 *
 * A directory (`--device DIR`, default `$XDG_DATA_HOME/backvault/device`, else
 * `~/.local/share/backvault/device`), mode 0700, holding:
 *
 * - `profile.json` (0600) — {@link DeviceProfile}: account, repository URL, vault URL and
 *   the vault's pinned OPAQUE server public key, the protection mode, the last backup, the
 *   retention policy applied after each backup. Nothing secret.
 * - `backup-key` (0600) — the 256-bit backup key, written as the 64 digits (so it is also a
 *   valid `--key-file`). The one secret here. On a phone this file would not exist: the key
 *   would live in the platform keystore (Android Keystore / iOS Keychain, device-bound,
 *   not in cloud backups), and this module's file I/O would be replaced by keystore calls.
 *   A desktop has no such thing everywhere, so we rely on file permissions like ssh and age
 *   do, and refuse a key file that others can read.
 * - `state.json` — the rollback-detection state of the backup engine (highest snapshot seen).
 *
 * Every write is atomic: a temporary file in the same directory, fsynced, renamed over the
 * old one, then the directory fsynced. A crash leaves the old or the new file, never half.
 *
 * Node-only (filesystem). Imports format, errors and the pure retention policy only (not the
 * engine).
 */
import { chmod, lstat, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CorruptBackupError, NotFoundError, UsageError } from 'backvault/errors';
import { makeDirectories, writePrivateFile } from 'backvault/node';
import { formatBackupKey, parseBackupKey } from 'backvault/format';
import { validateRetentionPolicy, type RetentionPolicy } from 'backvault/backup';

export type { RetentionPolicy };

/** File names inside a device directory. */
export const DEVICE_FILES = {
  profile: 'profile.json',
  backupKey: 'backup-key',
  state: 'state.json',
} as const;

/** How the backup key is protected for a new device. */
export type ProtectionMode = 'password' | 'recovery-key';

/** The last successful backup made by this device. */
export interface LastBackup {
  readonly snapshotId: string;
  readonly seq: number;
  /** ISO 8601. */
  readonly time: string;
}

/** The outcome of the last restore drill of this device. */
export interface LastVerified {
  readonly snapshotId: string;
  readonly seq: number;
  /** ISO 8601. */
  readonly time: string;
  /** True when every file was rebuilt and every SQLite database passed its integrity check. */
  readonly ok: boolean;
}

/** Contents of `profile.json` (version 1). */
export interface DeviceProfile {
  readonly version: 1;
  /** `password`: the key is escrowed in the vault; `recovery-key`: only the 64 digits. */
  readonly mode: ProtectionMode;
  /** Repository URL (path, file://, s3://). */
  readonly repo: string;
  /** Vault account (the token subject); password mode only. */
  readonly account?: string;
  /** Vault base URL; password mode only. */
  readonly vaultUrl?: string;
  /** The vault's pinned OPAQUE server public key (base64url); password mode only. */
  readonly serverPublicKey?: string;
  readonly lastBackup?: LastBackup;
  /** The last restore drill (`backvault verify`): which snapshot, when, and its outcome. */
  readonly lastVerified?: LastVerified;
  /**
   * Which snapshots `backup --device` keeps after each backup (restic's `--keep-*`; see
   * src/backup/commands/retention.ts). Absent: {@link DEFAULT_DEVICE_RETENTION}. Set with
   * `backvault forget --device DIR --set-policy --keep-…`. Not checked when the profile
   * is loaded (a bad policy must never stop a backup): {@link deviceRetentionPolicy} checks it.
   */
  readonly retention?: RetentionPolicy;
  /** ISO 8601. */
  readonly createdAt: string;
}

/** The policy of a device whose profile names none: keep the last 3 snapshots. */
export const DEFAULT_DEVICE_RETENTION: Readonly<RetentionPolicy> = Object.freeze({ last: 3 });

/**
 * The device's retention policy, checked: its own, else {@link DEFAULT_DEVICE_RETENTION}.
 * @throws CorruptBackupError naming `profile.json` when the stored policy is malformed or
 *   keeps nothing (edited by hand, or written by a newer version).
 */
export function deviceRetentionPolicy(profile: DeviceProfile): RetentionPolicy {
  const stored: unknown = profile.retention;
  if (stored === undefined) return { ...DEFAULT_DEVICE_RETENTION };
  try {
    return validateRetentionPolicy(stored);
  } catch (e) {
    throw new CorruptBackupError(
      `device profile is invalid: retention: ${(e as Error).message}`,
      DEVICE_FILES.profile,
    );
  }
}

/** A loaded profile with its key. */
export interface LoadedDevice {
  readonly dir: string;
  readonly profile: DeviceProfile;
  readonly backupKey: Uint8Array;
  /** Rollback-detection state file of this device. */
  readonly statePath: string;
}

/**
 * The device directory: `flag`, else `BACKVAULT_DEVICE`, else `$XDG_DATA_HOME/backvault/device`,
 * else `~/.local/share/backvault/device`.
 */
export function resolveDeviceDir(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): string {
  if (flag) return resolve(cwd, flag);
  if (env.BACKVAULT_DEVICE) return resolve(cwd, env.BACKVAULT_DEVICE);
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_DATA_HOME;
  const base = xdg && xdg.startsWith('/') ? xdg : join(env.HOME || homedir(), '.local', 'share');
  return join(base, 'backvault', 'device');
}

/** Path of the device's rollback-detection state file. */
export function deviceStatePath(dir: string): string {
  return join(dir, DEVICE_FILES.state);
}

/** True when `dir` holds a profile. */
export async function deviceExists(dir: string): Promise<boolean> {
  return (await stat(join(dir, DEVICE_FILES.profile)).catch(() => undefined)) !== undefined;
}

/** Writes `data` to `dir/name` atomically with mode 0600. */
async function writeAtomic(dir: string, name: string, data: string): Promise<void> {
  await writePrivateFile(join(dir, name), data);
}

const MODES: readonly ProtectionMode[] = ['password', 'recovery-key'];

function validateProfile(v: unknown): DeviceProfile {
  const bad = (why: string): never => {
    throw new CorruptBackupError(`device profile is invalid: ${why}`, DEVICE_FILES.profile);
  };
  if (typeof v !== 'object' || v === null) return bad('not an object');
  const p = v as Record<string, unknown>;
  if (p.version !== 1) return bad('unknown version');
  if (!MODES.includes(p.mode as ProtectionMode)) return bad('unknown mode');
  if (typeof p.repo !== 'string' || p.repo === '') return bad('no repository');
  if (typeof p.createdAt !== 'string') return bad('no creation time');
  for (const k of ['account', 'vaultUrl', 'serverPublicKey'] as const) {
    if (p[k] !== undefined && typeof p[k] !== 'string') return bad(`${k} is not a string`);
  }
  if (p.mode === 'password' && (!p.account || !p.vaultUrl || !p.serverPublicKey)) {
    return bad('password mode without vault, account or pinned key');
  }
  const lb = p.lastBackup as Record<string, unknown> | undefined;
  if (
    lb !== undefined &&
    (typeof lb !== 'object' ||
      lb === null ||
      typeof lb.snapshotId !== 'string' ||
      typeof lb.seq !== 'number' ||
      typeof lb.time !== 'string')
  ) {
    return bad('lastBackup is malformed');
  }
  const lv = p.lastVerified as Record<string, unknown> | undefined;
  if (
    lv !== undefined &&
    (typeof lv !== 'object' ||
      lv === null ||
      typeof lv.snapshotId !== 'string' ||
      typeof lv.seq !== 'number' ||
      typeof lv.time !== 'string' ||
      typeof lv.ok !== 'boolean')
  ) {
    return bad('lastVerified is malformed');
  }
  return v as DeviceProfile;
}

/**
 * Creates a new device directory (0700) with its profile and backup key (0600).
 * The key is written first, so a crash never leaves a profile without its key.
 * @throws UsageError when `dir` already holds a profile.
 */
export async function createDevice(
  dir: string,
  profile: Omit<DeviceProfile, 'version' | 'createdAt'>,
  backupKey: Uint8Array,
): Promise<LoadedDevice> {
  if (await deviceExists(dir)) {
    throw new UsageError(
      `a device profile already exists in ${dir}`,
      'Use another --device DIR, or `backvault password change` / `backvault disable` on this one.',
    );
  }
  await makeDirectories(dir, 0o700);
  // mkdir's mode is filtered by the umask and not applied to an existing directory.
  await chmod(dir, 0o700);
  const full: DeviceProfile = {
    version: 1,
    ...profile,
    createdAt: new Date().toISOString(),
  };
  validateProfile(full);
  await writeAtomic(dir, DEVICE_FILES.backupKey, `${formatBackupKey(backupKey)}\n`);
  await writeAtomic(dir, DEVICE_FILES.profile, `${JSON.stringify(full, null, 2)}\n`);
  return { dir, profile: full, backupKey, statePath: deviceStatePath(dir) };
}

/**
 * Loads a device: profile and backup key.
 * @throws NotFoundError when `dir` has no profile; UsageError when the key file is missing or
 *   readable by group/others (like ssh, we refuse rather than use an exposed key);
 *   CorruptBackupError when the profile does not parse; InvalidKeyError for a damaged key.
 */
export async function loadDevice(dir: string): Promise<LoadedDevice> {
  let text: string;
  try {
    text = await readFile(join(dir, DEVICE_FILES.profile), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(
        `no device profile in ${dir}`,
        'Run `backvault enable --device DIR --repo URL (--password | --recovery-key)` first.',
      );
    }
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch {
    throw new CorruptBackupError('device profile is not JSON', DEVICE_FILES.profile);
  }
  const profile = validateProfile(parsed);
  const keyPath = join(dir, DEVICE_FILES.backupKey);
  const info = await lstat(keyPath).catch(() => undefined);
  if (!info?.isFile()) {
    throw new UsageError(`the device in ${dir} has no ${DEVICE_FILES.backupKey} file`);
  }
  if ((info.mode & 0o077) !== 0) {
    throw new UsageError(
      `${keyPath} is readable by other users`,
      `Run \`chmod 600 ${keyPath}\` (and consider the key exposed if others had access).`,
    );
  }
  const backupKey = parseBackupKey(await readFile(keyPath, 'utf8'));
  return { dir, profile, backupKey, statePath: deviceStatePath(dir) };
}

/**
 * Rewrites `profile.json` atomically with `patch` applied (e.g. a new last backup, a new
 * mode after disable). The backup key is never rewritten.
 * @throws as {@link loadDevice}.
 */
export async function updateDeviceProfile(
  dir: string,
  patch: Partial<Omit<DeviceProfile, 'version' | 'createdAt'>>,
): Promise<DeviceProfile> {
  const { profile } = await loadDevice(dir);
  const next: Record<string, unknown> = { ...profile, ...patch };
  // `undefined` in a patch removes the field (e.g. the vault fields after disable).
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete next[k];
  const valid = validateProfile(next);
  await writeAtomic(dir, DEVICE_FILES.profile, `${JSON.stringify(valid, null, 2)}\n`);
  return valid;
}
