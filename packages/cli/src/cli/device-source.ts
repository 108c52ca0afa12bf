/**
 * Where a repository command gets its repository, key and state file when a device profile
 * or the vault is involved — the one helper behind `--device` (backup and friends use the
 * device's key and repository) and `restore --password` (the key comes from the vault).
 * `withRepository` in `command.ts` asks this module first and falls back to
 * `--repo`/`--key-file`/`BACKVAULT_KEY` when it returns `undefined`.
 *
 * `restore … --device DIR` on a new device also writes the new profile once the restore has
 * succeeded ({@link finishDeviceSetup}).
 */
import { resolve } from 'node:path';
import type { BackupResult } from 'backvault/backup';
import { UsageError } from 'backvault/errors';
import {
  createDevice,
  deviceExists,
  deviceStatePath,
  loadDevice,
  resolveDeviceDir,
  updateDeviceProfile,
} from '../device/profile.js';
import { formatBackupKey } from 'backvault/format';
import { booleanOption, stringOption, type OptionSpec, type OptionValues } from './args.js';
import type { CliContext } from './context.js';
import { preflightRestore, recoverWithPassword } from './password-restore.js';
import { VAULT_OPTIONS, accountOption, recoverFromVault, vaultUrlOption } from './vault-access.js';

/** `--device DIR` as used by commands that read or write with an existing device. */
export const DEVICE_OPTION: Readonly<Record<string, OptionSpec>> = {
  device: {
    type: 'string',
    valueName: 'DIR',
    description:
      'device profile directory: use its repository, backup key and state (made by `backvault enable`)',
  },
};

/** How a command uses `--device`: an existing device, or one to set up after a restore. */
export type DeviceUse = 'use' | 'setup';

/** Repository, key and state resolved from a device or the vault. */
export interface DeviceSource {
  /** Repository URL, when the source names one (a device does; a vault login does not). */
  readonly repo?: string;
  readonly backupKey?: Uint8Array;
  readonly statePath?: string;
}

/**
 * A repository URL as a device profile stores it: URLs unchanged, plain paths made absolute
 * (a profile is used from any working directory).
 */
export function absoluteRepo(repo: string, cwd: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) ? repo : resolve(cwd, repo);
}

/** Flags `restore` gains for the vault and for setting up a new device. */
export const RESTORE_VAULT_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  password: {
    type: 'boolean',
    description:
      'get the backup key from the vault with your password (BACKVAULT_PASSWORD or a prompt)',
  },
  ...VAULT_OPTIONS,
  device: {
    type: 'string',
    valueName: 'DIR',
    description: 'also set up this (new) device: profile, key and state in DIR, for later backups',
  },
};

/** Help paragraph of `restore` about the vault. */
export const RESTORE_VAULT_HELP = [
  'With --password (and --vault URL --account ID), the key comes from the Backup Key Vault:',
  'the password is checked by OPAQUE and never leaves this machine. Before any guess, restore',
  'checks the repository, the target, the vault (the pinned one) and the account, and a locked',
  'account is reported without asking. On a terminal the prompt shows the attempts left, the',
  'last one is announced, and a wrong password asks again (each retry is a new guess).',
  'Without a terminal a wrong password ends with "WRONG_PASSWORD: N attempts left" (exit 3);',
  'the guess that uses the last attempt ends with LOCKED (exit 5): the vault destroyed the key',
  'and only the 64-digit key can restore.',
  'With --device DIR the new device is set up too: later `backvault backup DIR --device DIR`.',
];

/** A device to write once the restore has succeeded. */
interface PendingSetup {
  readonly dir: string;
  readonly mode: 'password' | 'recovery-key';
  readonly vaultUrl?: string;
  readonly account?: string;
  readonly serverPublicKey?: string;
}

const pending = new WeakMap<CliContext, PendingSetup>();

function registerKey(ctx: CliContext, key: Uint8Array): void {
  const f = formatBackupKey(key);
  ctx.addSecret(f, f.replace(/ /g, ''));
}

/**
 * Resolves the device/vault key source of a repository command.
 *
 * - `use` (backup, …): with `--device`, the device's repository, key
 *   and state file; `--repo` must then be absent or equal.
 * - `setup` (restore): with `--password`, logs in to the vault (`--vault`, `--account`; the
 *   pinned key from `--vault-key`, else an existing device, else the vault's `/v1/info`) and
 *   returns the recovered key. With `--device DIR` the state file is the device's, and the
 *   profile is written after a successful restore (see {@link finishDeviceSetup}); if DIR
 *   already holds a device and no other key source is given, its key is used.
 *
 * @returns `undefined` when neither a device nor the vault is involved.
 * @throws UsageError on conflicting or missing flags; NotFoundError when a `use` device does
 *   not exist; the SDK's errors of `VaultClient.recover` (WrongPasswordError, LockedError,
 *   VaultMismatchError, NotFoundError, UnavailableError, …).
 */
export async function resolveDeviceSource(
  ctx: CliContext,
  values: OptionValues,
  use: DeviceUse,
): Promise<DeviceSource | undefined> {
  const { env, cwd } = ctx.io;
  // Only an explicit flag: a BACKVAULT_DEVICE in the environment must not silently change
  // where `backup --repo … --key-file …` reads its key from.
  const deviceFlag = stringOption(values, 'device');
  const repoFlag = stringOption(values, 'repo');
  if (use === 'use') {
    if (deviceFlag === undefined) return undefined;
    const device = await loadDevice(resolveDeviceDir(deviceFlag, env, cwd));
    if (repoFlag !== undefined && repoFlag !== device.profile.repo) {
      throw new UsageError(
        '--repo differs from the repository of --device',
        'Leave out --repo: the device knows its repository.',
      );
    }
    if (stringOption(values, 'key-file') !== undefined) {
      throw new UsageError(
        '--key-file cannot be combined with --device (the device holds its key)',
      );
    }
    registerKey(ctx, device.backupKey);
    return { repo: device.profile.repo, backupKey: device.backupKey, statePath: device.statePath };
  }

  const dir = deviceFlag !== undefined ? resolveDeviceDir(deviceFlag, env, cwd) : undefined;
  const existing =
    dir !== undefined && (await deviceExists(dir)) ? await loadDevice(dir) : undefined;
  if (booleanOption(values, 'password')) {
    if (stringOption(values, 'key-file') !== undefined) {
      throw new UsageError('choose one: --password (vault) or --key-file (64-digit key)');
    }
    const vaultUrl = vaultUrlOption(ctx, values) ?? existing?.profile.vaultUrl;
    const account = accountOption(ctx, values) ?? existing?.profile.account;
    if (!vaultUrl || !account) {
      throw new UsageError('--password needs --vault URL and --account ID');
    }
    // Everything that costs no guess first: repository, target, vault, record, attempts.
    await preflightRestore(ctx, repoFlag ?? (ctx.io.env.BACKVAULT_REPO || existing?.profile.repo));
    const sameVault = existing?.profile.vaultUrl === vaultUrl;
    const { backupKey, pinned } = await recoverWithPassword(
      ctx,
      values,
      {
        vaultUrl,
        account,
        pinned:
          stringOption(values, 'vault-key') ??
          (sameVault ? existing?.profile.serverPublicKey : undefined),
      },
      // Issue 15's login: events, pacing and the snapshot head around the one guess.
      (c, pw) => recoverFromVault(ctx, c, pw, existing?.dir),
    );
    registerKey(ctx, backupKey);
    if (dir !== undefined && existing === undefined) {
      pending.set(ctx, { dir, mode: 'password', vaultUrl, account, serverPublicKey: pinned });
    }
    return {
      backupKey,
      ...(repoFlag === undefined && existing ? { repo: existing.profile.repo } : {}),
      ...(dir !== undefined ? { statePath: deviceStatePath(dir) } : {}),
    };
  }
  if (dir === undefined) return undefined;
  if (existing !== undefined) {
    const otherKey =
      stringOption(values, 'key-file') !== undefined || (env.BACKVAULT_KEY ?? '').trim() !== '';
    if (otherKey) {
      throw new UsageError(
        `${dir} already holds a device profile`,
        'Restore into a new --device DIR, or leave out --key-file/BACKVAULT_KEY to use this device.',
      );
    }
    registerKey(ctx, existing.backupKey);
    return {
      repo: repoFlag ?? existing.profile.repo,
      backupKey: existing.backupKey,
      statePath: existing.statePath,
    };
  }
  pending.set(ctx, { dir, mode: 'recovery-key' });
  return { statePath: deviceStatePath(dir) };
}

/**
 * After a successful restore with `--device DIR` on a new device: writes the profile
 * (repository, mode, vault and pinned key) and the key. Returns lines for the output.
 * @throws UsageError if the directory gained a profile meanwhile.
 */
export async function finishDeviceSetup(
  ctx: CliContext,
  values: OptionValues,
  backupKey: Uint8Array,
): Promise<{ device?: string; lines: string[] }> {
  const p = pending.get(ctx);
  if (!p) return { lines: [] };
  pending.delete(ctx);
  const repo = absoluteRepo(
    stringOption(values, 'repo') ?? ctx.io.env.BACKVAULT_REPO ?? '',
    ctx.io.cwd,
  );
  await createDevice(
    p.dir,
    {
      mode: p.mode,
      repo,
      ...(p.mode === 'password'
        ? { vaultUrl: p.vaultUrl, account: p.account, serverPublicKey: p.serverPublicKey }
        : {}),
    },
    backupKey,
  );
  return {
    device: p.dir,
    lines: [
      `set up this device in ${p.dir} (${p.mode === 'password' ? 'password' : '64-digit key'} mode): \`backvault backup DIR --device ${p.dir}\` continues the backups`,
    ],
  };
}

/**
 * After a successful backup with `--device`: records it as the device's last backup.
 * Does nothing without `--device`.
 */
export async function recordLastBackup(
  ctx: CliContext,
  values: OptionValues,
  r: Pick<BackupResult, 'snapshotId' | 'seq'>,
): Promise<void> {
  const flag = stringOption(values, 'device');
  if (flag === undefined) return;
  await updateDeviceProfile(resolveDeviceDir(flag, ctx.io.env, ctx.io.cwd), {
    lastBackup: { snapshotId: r.snapshotId, seq: r.seq, time: new Date().toISOString() },
  });
}
