/**
 * `backvault enable --device DIR --repo URL (--password | --recovery-key)`: set up this device's
 * backups, protecting the backup key with a password escrowed in the vault, or with the
 * 64-digit key alone.
 */
import { createDeviceRepository } from '../repo-create.js';
import { generateBackupKey, formatBackupKey } from 'backvault/format';
import { UsageError, VaultMismatchError } from 'backvault/errors';
import {
  createDevice,
  deviceExists,
  loadDevice,
  resolveDeviceDir,
  updateDeviceProfile,
} from '../../device/profile.js';
import { booleanOption, stringOption, type OptionValues } from '../args.js';
import { loadEngine, type CommandSpec } from '../command.js';
import type { CliContext } from '../context.js';
import { absoluteRepo } from '../device-source.js';
import { plural } from '../format.js';
import { readBackupKey } from '../key-input.js';
import { canPrompt, promptHidden } from '../prompt.js';
import {
  VAULT_ENV_HELP,
  VAULT_OPTIONS,
  accountOption,
  readPassword,
  vaultClient,
  vaultUrlOption,
} from '../vault-access.js';

/**
 * Shows the 64-digit key and, on a terminal (unless `--yes`), asks for its last group back
 * so that nobody clicks through without writing it down.
 * @returns true when the key was already printed (so the result must not print it again).
 * @throws UsageError when the confirmation does not match.
 */
export async function showRecoveryKey(
  ctx: CliContext,
  values: OptionValues,
  key: Uint8Array,
  intro: string[],
): Promise<boolean> {
  const formatted = formatBackupKey(key);
  ctx.addSecret(formatted, formatted.replace(/ /g, ''));
  if (ctx.json || booleanOption(values, 'yes') || !canPrompt(ctx.io)) return false;
  ctx.io.stdout.write(
    [...intro, '', `    ${formatted.slice(0, 39)}`, `    ${formatted.slice(40)}`, '', ''].join(
      '\n',
    ),
  );
  const last = formatted.slice(-4);
  const typed = await promptHidden(
    ctx.io,
    'Type the last group of 4 digits to confirm you wrote the key down: ',
  );
  if (typed.trim().toLowerCase() !== last) {
    throw new UsageError(
      'the digits do not match the key; nothing was changed',
      'Run the command again and copy the key carefully.',
    );
  }
  return true;
}

/** `enable` */
export const enableCommand: CommandSpec = {
  path: ['enable'],
  summary: 'set up this device: backup key protected by a vault password or a 64-digit key',
  usage:
    'enable --device DIR --repo URL (--password --vault URL --account ID | --recovery-key) [--key-file FILE] [--json]',
  positionals: [],
  options: {
    device: {
      type: 'string',
      valueName: 'DIR',
      description:
        'device profile directory to create (env BACKVAULT_DEVICE; default $XDG_DATA_HOME/backvault/device)',
    },
    repo: {
      type: 'string',
      valueName: 'URL',
      description: 'repository the device backs up to (env BACKVAULT_REPO)',
    },
    password: {
      type: 'boolean',
      description: 'protect the key with a password escrowed in the vault (OPAQUE)',
    },
    'recovery-key': {
      type: 'boolean',
      description: 'protect the key with nothing but the 64-digit key, shown once',
    },
    ...VAULT_OPTIONS,
    'key-file': {
      type: 'string',
      valueName: 'FILE',
      description:
        'protect an existing repository: its 64-digit key (or BACKVAULT_KEY); default: a new key',
    },
    'max-attempts': {
      type: 'string',
      valueName: 'N',
      description: "wrong passwords before the key is destroyed (at most the vault's limit)",
    },
    yes: {
      type: 'boolean',
      description: 'do not ask to confirm that the 64-digit key was written down',
    },
    'allow-weak': {
      type: 'boolean',
      description: 'accept a weak (not a very common) password without asking',
    },
  },
  details: [
    'Creates the device profile directory (0700): profile.json (repository, vault, pinned',
    'vault key, mode) and backup-key (0600). A phone would keep the key in its keystore.',
    '',
    'Password mode: the key is sealed on this device under a key only the password can',
    're-derive (OPAQUE export key) and stored in the vault. The password never leaves this',
    "device. After too many wrong passwords (the vault's limit, default 10) the vault destroys",
    "the key for good. The vault's public key is pinned: a different vault is refused later.",
    '',
    'Recovery-key mode: the 64-digit key is printed once; write it down. Nothing else can',
    'restore the backups.',
    '',
    ...VAULT_ENV_HELP,
  ],
  examples: [
    'backvault enable --device ~/.bv --repo /mnt/cloud/chat --password --vault https://vault.example --account alice',
    'backvault enable --device ~/.bv --repo /mnt/cloud/chat --recovery-key',
  ],
  async run({ values }, ctx) {
    const dir = resolveDeviceDir(stringOption(values, 'device'), ctx.io.env, ctx.io.cwd);
    const password = booleanOption(values, 'password');
    const recovery = booleanOption(values, 'recovery-key');
    if (password === recovery) {
      throw new UsageError('choose one: --password or --recovery-key');
    }
    // After `disable`, the device (64-digit key mode) may turn password protection on again:
    // same key, same repository.
    const prior = (await deviceExists(dir)) ? await loadDevice(dir) : undefined;
    if (prior && !(password && prior.profile.mode === 'recovery-key')) {
      throw new UsageError(
        `a device profile already exists in ${dir}`,
        'Use `backvault status`, `password change` or `disable` on it, or choose another --device.',
      );
    }
    const repoText =
      stringOption(values, 'repo') ?? (ctx.io.env.BACKVAULT_REPO || prior?.profile.repo);
    if (!repoText) throw new UsageError('missing --repo URL (or set BACKVAULT_REPO)');
    const repo = absoluteRepo(repoText, ctx.io.cwd);
    if (prior && repo !== prior.profile.repo) {
      throw new UsageError(
        '--repo differs from the repository of the device',
        'Leave out --repo: the device knows its repository.',
      );
    }
    if (prior && stringOption(values, 'key-file') !== undefined) {
      throw new UsageError(
        '--key-file cannot be combined with an existing device (it holds its key)',
      );
    }
    const vaultUrl = vaultUrlOption(ctx, values);
    const account = accountOption(ctx, values);
    if (recovery && (stringOption(values, 'vault') || stringOption(values, 'account'))) {
      throw new UsageError('--vault and --account belong to --password mode');
    }
    if (password && (!vaultUrl || !account)) {
      throw new UsageError('--password needs --vault URL and --account ID');
    }
    const maxText = stringOption(values, 'max-attempts');
    const maxAttempts = maxText === undefined ? undefined : Number(maxText);
    if (maxAttempts !== undefined && !(Number.isInteger(maxAttempts) && maxAttempts >= 1)) {
      throw new UsageError('--max-attempts must be a whole number of at least 1');
    }

    // An existing key (protecting an existing repository) or a new one.
    const adopt =
      prior !== undefined ||
      stringOption(values, 'key-file') !== undefined ||
      (ctx.io.env.BACKVAULT_KEY ?? '').trim() !== '';
    const backupKey = prior
      ? prior.backupKey
      : adopt
        ? await readBackupKey(ctx, {
            keyFile: stringOption(values, 'key-file'),
            allowPrompt: false,
          })
        : generateBackupKey();
    const formatted = formatBackupKey(backupKey);
    ctx.addSecret(formatted, formatted.replace(/ /g, ''));

    // Check the repository now, offline from the vault: a new key for an existing repository
    // would only fail at the first backup, after the vault had been set up.
    const { openStorage } = await import('backvault/node');
    const storage = await openStorage(repo);
    let repoExists: boolean;
    try {
      const engine = await loadEngine();
      repoExists = await engine.repositoryExists(storage);
      if (repoExists && !adopt) {
        throw new UsageError(
          `a repository already exists at ${repo}`,
          'Pass its 64-digit key with --key-file (or BACKVAULT_KEY) to protect it, or choose another --repo.',
        );
      }
      // Throws WrongKeyError before reading any data when the key is not this repository's.
      // A device being created has no state file yet: its first backup starts one. (This is
      // a key check, not a read of the snapshots' content.)
      if (repoExists)
        await engine.listSnapshots({
          storage,
          backupKey,
          ...(prior ? { statePath: prior.statePath } : { rollbackProtection: false }),
        });
    } finally {
      await storage.close();
    }

    if (recovery) {
      const shown = await showRecoveryKey(ctx, values, backupKey, [
        'Your backup key — the ONLY way to restore these backups. Write it down and keep it safe:',
      ]);
      await createDeviceRepository(repo, backupKey, dir);
      await createDevice(dir, { mode: 'recovery-key', repo }, backupKey);
      return {
        json: { device: dir, mode: 'recovery-key', repo, recoveryKey: formatted },
        human: [
          ...(shown
            ? []
            : [
                'Your backup key — the ONLY way to restore these backups. Write it down and keep it safe:',
                '',
                `    ${formatted.slice(0, 39)}`,
                `    ${formatted.slice(40)}`,
                '',
              ]),
          `device set up in ${dir} (64-digit key mode); back up with:`,
          `  backvault backup DIR --device ${dir}`,
        ],
      };
    }

    const url = vaultUrl as string;
    const acct = account as string;
    // The vault first (reachable, the expected one, its limit): no password is typed in vain.
    const info = await (await vaultClient(ctx, values, { vaultUrl: url, account: acct })).info();
    const expected = stringOption(values, 'vault-key');
    if (expected !== undefined && expected !== info.serverPublicKey) throw new VaultMismatchError();
    if (maxAttempts !== undefined && maxAttempts > info.maxAttempts) {
      throw new UsageError(
        `--max-attempts ${maxAttempts} is more than this vault allows (at most ${info.maxAttempts})`,
        `Choose a number from 1 to ${info.maxAttempts}.`,
      );
    }
    const secret = await readPassword(ctx, {
      envName: 'BACKVAULT_PASSWORD',
      question: 'New vault password (input hidden): ',
      confirm: true,
      allowWeak: booleanOption(values, 'allow-weak'),
      userInputs: [acct],
    });
    const client = await vaultClient(ctx, values, {
      vaultUrl: url,
      account: acct,
      pinned: info.serverPublicKey,
    });
    const r = await client.enable({
      password: secret,
      backupKey,
      ...(maxAttempts !== undefined ? { maxAttempts } : {}),
    });
    await createDeviceRepository(repo, backupKey, dir);
    if (prior) {
      await updateDeviceProfile(dir, {
        mode: 'password',
        vaultUrl: url,
        account: acct,
        serverPublicKey: r.serverPublicKey,
      });
    } else {
      await createDevice(
        dir,
        {
          mode: 'password',
          repo,
          vaultUrl: url,
          account: acct,
          serverPublicKey: r.serverPublicKey,
        },
        backupKey,
      );
    }
    return {
      json: {
        device: dir,
        mode: 'password',
        repo,
        vault: url,
        account: acct,
        serverPublicKey: r.serverPublicKey,
        attemptsLeft: r.record.attemptsLeft,
        maxAttempts: r.record.maxAttempts,
        ...(r.passwordWarning ? { passwordWarning: r.passwordWarning } : {}),
      },
      human: [
        `device set up in ${dir} (password mode)`,
        `  the backup key is sealed under your password and stored at ${url} (account ${acct})`,
        `  ${plural(r.record.maxAttempts, 'wrong password')} in a row ${r.record.maxAttempts === 1 ? 'destroys' : 'destroy'} it for good; the password never left this device`,
        `  vault key pinned: ${r.serverPublicKey}`,
        `back up with: backvault backup DIR --device ${dir}`,
      ],
    };
  },
};
