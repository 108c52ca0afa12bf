/**
 * The vault commands that act on an existing device: `password change`, `disable`, `status`.
 */
import { BackvaultError, NotFoundError, UsageError } from 'backvault/errors';
import {
  loadDevice,
  resolveDeviceDir,
  updateDeviceProfile,
  type LoadedDevice,
} from '../../device/profile.js';
import { formatBackupKey } from 'backvault/format';
import type { VaultClient } from 'backvault/client';
import { booleanOption, stringOption, type OptionSpec, type OptionValues } from '../args.js';
import type { CommandSpec } from '../command.js';
import type { CliContext } from '../context.js';
import { formatLocalTime, shortId } from '../format.js';
import { readPassword, vaultClient, vaultEvents } from '../vault-access.js';
import { canPrompt } from '../prompt.js';
import { showRecoveryKey } from './enable.js';
import { shortCredential } from './key.js';

const DEVICE: Readonly<Record<string, OptionSpec>> = {
  device: {
    type: 'string',
    valueName: 'DIR',
    description:
      'device profile directory (env BACKVAULT_DEVICE; default $XDG_DATA_HOME/backvault/device)',
  },
  token: {
    type: 'string',
    valueName: 'JWT',
    description:
      "bearer token from your app's auth (env BACKVAULT_TOKEN); a --dev-auth vault issues one itself",
  },
};

async function device(ctx: CliContext, values: OptionValues): Promise<LoadedDevice> {
  const d = await loadDevice(
    resolveDeviceDir(stringOption(values, 'device'), ctx.io.env, ctx.io.cwd),
  );
  const f = formatBackupKey(d.backupKey);
  ctx.addSecret(f, f.replace(/ /g, ''));
  return d;
}

async function clientOf(
  ctx: CliContext,
  values: OptionValues,
  d: LoadedDevice,
): Promise<VaultClient> {
  const p = d.profile;
  if (p.mode !== 'password' || !p.vaultUrl || !p.account || !p.serverPublicKey) {
    throw new UsageError(
      `the device in ${d.dir} is in 64-digit key mode: it has no vault password`,
      'Its backups are protected by the 64-digit key alone.',
    );
  }
  return vaultClient(ctx, values, {
    vaultUrl: p.vaultUrl,
    account: p.account,
    pinned: p.serverPublicKey,
  });
}

/** `password change` */
export const passwordChangeCommand: CommandSpec = {
  path: ['password', 'change'],
  summary: 'change the vault password that protects this device’s backup key',
  usage: 'password change --device DIR [--max-attempts N] [--allow-weak] [--token JWT] [--json]',
  positionals: [],
  options: {
    ...DEVICE,
    'max-attempts': {
      type: 'string',
      valueName: 'N',
      description: "a new limit of wrong passwords (default: keep the account's limit)",
    },
    'allow-weak': {
      type: 'boolean',
      description: 'accept a weak (not a very common) password without asking',
    },
  },
  details: [
    'Registers a new password for the same backup key, proving to the vault that this device',
    'holds the key. The vault swaps old for new in one step: afterwards only the new password',
    'works, and the count of wrong guesses starts again. This also re-protects a key the vault',
    'destroyed after too many wrong guesses, as long as this device still holds it.',
    '',
    'The new password comes from BACKVAULT_NEW_PASSWORD or a hidden prompt (typed twice).',
  ],
  examples: ['backvault password change --device ~/.bv'],
  async run({ values }, ctx) {
    const d = await device(ctx, values);
    const client = await clientOf(ctx, values, d);
    const maxAttempts = await limitForChange(values, client);
    const newPassword = await readPassword(ctx, {
      envName: 'BACKVAULT_NEW_PASSWORD',
      question: 'New vault password (input hidden): ',
      confirm: true,
      allowWeak: booleanOption(values, 'allow-weak'),
      userInputs: d.profile.account ? [d.profile.account] : [],
    });
    const r = await client.changePassword({
      newPassword,
      backupKey: d.backupKey,
      ...(maxAttempts !== undefined ? { maxAttempts } : {}),
    });
    return {
      json: {
        device: d.dir,
        changed: true,
        attemptsLeft: r.record.attemptsLeft,
        maxAttempts: r.record.maxAttempts,
        ...(r.passwordWarning ? { passwordWarning: r.passwordWarning } : {}),
      },
      human: [
        'password changed: only the new password recovers the backup key from now on',
        `  ${r.record.attemptsLeft} of ${r.record.maxAttempts} attempts left`,
      ],
    };
  },
};

/**
 * The limit a password change registers: `--max-attempts` when given (within the vault's
 * range), else the account's current limit, so that a change never silently resets it to
 * the vault's default.
 * @throws UsageError when `--max-attempts` is not a whole number within the vault's range.
 */
async function limitForChange(
  values: OptionValues,
  client: VaultClient,
): Promise<number | undefined> {
  const text = stringOption(values, 'max-attempts');
  if (text !== undefined) {
    const n = Number(text);
    const max = (await client.info()).maxAttempts;
    if (!Number.isInteger(n) || n < 1 || n > max) {
      throw new UsageError(
        `--max-attempts must be a whole number from 1 to ${max} (this vault's limit)`,
      );
    }
    return n;
  }
  try {
    return (await client.status()).maxAttempts;
  } catch (e) {
    // No record (deleted): the change re-creates it with the vault's default.
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

const DISABLE_INTRO = [
  'Disabling removes the backup key from the vault: a password will no longer restore',
  'these backups. They stay readable with the 64-digit backup key — here it is. Write it down',
  'now: without it, the backups become unrecoverable once this device is lost.',
];

/** `disable` */
export const disableCommand: CommandSpec = {
  path: ['disable'],
  summary: 'remove the password protection: delete the key from the vault, show the 64-digit key',
  usage: 'disable --device DIR [--token JWT] [--yes] [--json]',
  positionals: [],
  options: {
    ...DEVICE,
    yes: {
      type: 'boolean',
      description: 'do not ask to confirm that the 64-digit key was written down',
    },
  },
  details: [
    'Deletes the vault record (key envelope and password verifier), proving to the vault that',
    'this device holds the backup key. Existing and future backups are not touched and stay',
    'readable with the 64-digit key, so disable prints that key first (on a terminal it asks',
    'you to confirm you wrote it down before deleting anything). Without the 64-digit key the',
    'backups become unrecoverable once this device is lost. The device switches to 64-digit',
    'key mode and keeps backing up.',
  ],
  examples: ['backvault disable --device ~/.bv'],
  async run({ values }, ctx) {
    // Without a terminal nobody can confirm that the 64-digit key was written down.
    if (!canPrompt(ctx.io) && !booleanOption(values, 'yes')) {
      throw new UsageError(
        'disable needs --yes when it cannot ask (no terminal)',
        'Run it on a terminal, or pass --yes after saving the 64-digit key it prints.',
      );
    }
    const d = await device(ctx, values);
    const client = await clientOf(ctx, values, d);
    const shown = await showRecoveryKey(ctx, values, d.backupKey, DISABLE_INTRO);
    let note = 'the vault record was deleted';
    try {
      await client.disable({ backupKey: d.backupKey });
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      note = 'the vault had no record for this account (already deleted)';
    }
    await updateDeviceProfile(d.dir, {
      mode: 'recovery-key',
      vaultUrl: undefined,
      account: undefined,
      serverPublicKey: undefined,
    });
    const formatted = formatBackupKey(d.backupKey);
    return {
      json: { device: d.dir, disabled: true, mode: 'recovery-key', recoveryKey: formatted },
      human: [
        ...(shown
          ? []
          : [
              ...DISABLE_INTRO,
              '',
              `    ${formatted.slice(0, 39)}`,
              `    ${formatted.slice(40)}`,
              '',
            ]),
        `${note}; the device is now in 64-digit key mode`,
      ],
    };
  },
};

/**
 * Every protection that opens this device's backups (issue 13): the vault password, each
 * passkey and added recovery key (the repository's key slots, read with the device's key),
 * and the 64-digit backup key, which always opens it. A store that cannot be read, or slots
 * that do not match their manifest, are reported as a line, not as a failure of `status`.
 */
async function protectionsOf(d: LoadedDevice): Promise<{
  json: Record<string, unknown>[];
  human: string[];
  problem?: { code: string; message: string };
}> {
  const p = d.profile;
  const json: Record<string, unknown>[] = [];
  const lines: string[] = [];
  if (p.mode === 'password') {
    json.push({ kind: 'vault-password', vault: p.vaultUrl, account: p.account });
    lines.push(`vault password   at ${p.vaultUrl} (account ${p.account})`);
  }
  let problem: { code: string; message: string } | undefined;
  try {
    const { openStorage } = await import('backvault/node');
    const storage = await openStorage(p.repo);
    try {
      const { listKeySlots } = await import('backvault/backup');
      const listing = await listKeySlots(storage, d.backupKey, { statePath: d.statePath });
      for (const slot of listing.slots) {
        json.push({ ...slot });
        const state = slot.status === 'ok' ? '' : `  ${slot.status.toUpperCase()} (not usable)`;
        const label = slot.label ? `  "${slot.label}"` : '';
        lines.push(
          slot.kind === 'passkey'
            ? `passkey          ${shortCredential(slot.credentialId ?? '')} on ${slot.rpId ?? ''}, added ${formatLocalTime(slot.created)}, slot ${slot.slotId.slice(0, 8)}${label}${state}`
            : `recovery key     added ${formatLocalTime(slot.created)}, slot ${slot.slotId.slice(0, 8)}${label}${state}`,
        );
      }
    } finally {
      await storage.close();
    }
  } catch (e) {
    if (!(e instanceof BackvaultError)) throw e;
    if (e.code !== 'NO_REPOSITORY') {
      problem = { code: e.code, message: e.message };
      lines.push(`key slots        could not be read: ${e.code}: ${e.message}`);
    }
  }
  json.push({ kind: 'backup-key' });
  lines.push(
    '64-digit key     the backup key itself: always opens the backups (keep it written down)',
  );
  return {
    json,
    human: lines.map((l, i) => `${i === 0 ? 'protections: ' : '             '}${l}`),
    ...(problem ? { problem } : {}),
  };
}

/** `status` */
export const statusCommand: CommandSpec = {
  path: ['status'],
  summary: 'show this device’s protections, last backup and vault attempts left',
  usage: 'status --device DIR [--token JWT] [--json]',
  positionals: [],
  options: DEVICE,
  details: [
    'Reads the device profile and, in password mode, asks the vault for the record state',
    '(this is not a guess and costs no attempt). The vault must present the pinned key.',
    'Lists every protection that opens the backups: the vault password, each passkey and',
    'added recovery key (key slots, read from the repository with the device key), and the',
    '64-digit backup key, which always does. Losing one never locks you out while another',
    'remains.',
  ],
  examples: ['backvault status --device ~/.bv', 'backvault status --device ~/.bv --json'],
  async run({ values }, ctx) {
    const d = await device(ctx, values);
    const p = d.profile;
    const lb = p.lastBackup;
    const human = [
      `device:      ${d.dir}`,
      `mode:        ${p.mode === 'password' ? 'password (key escrowed in the vault)' : '64-digit key'}`,
      `repository:  ${p.repo}`,
      `last backup: ${lb ? `snapshot ${shortId(lb.snapshotId)} (seq ${lb.seq}) at ${formatLocalTime(lb.time)}` : 'none yet'}`,
      `last verified: ${
        p.lastVerified
          ? `snapshot ${shortId(p.lastVerified.snapshotId)} (seq ${p.lastVerified.seq}) at ${formatLocalTime(p.lastVerified.time)}: ${p.lastVerified.ok ? 'restores, databases sound' : 'FAILED'}`
          : 'never (run `backvault verify --device DIR`)'
      }`,
    ];
    const json: Record<string, unknown> = {
      device: d.dir,
      mode: p.mode,
      repo: p.repo,
      lastBackup: lb ?? null,
      lastVerified: p.lastVerified ?? null,
    };
    const prot = await protectionsOf(d);
    json.protections = prot.json;
    if (prot.problem) json.keySlotsProblem = prot.problem;
    human.push(...prot.human);
    if (p.mode !== 'password') return { json, human };
    human.push(`vault:       ${p.vaultUrl} (account ${p.account})`);
    json.vault = p.vaultUrl;
    json.account = p.account;
    let error: BackvaultError | undefined;
    try {
      const client = await clientOf(ctx, values, d);
      const s = await client.status();
      json.record = s;
      human.push(
        s.state === 'locked' || s.attemptsLeft === 0
          ? 'attempts:    LOCKED — the vault destroyed the key after too many wrong passwords; `backvault password change` re-protects it from this device'
          : `attempts:    ${s.attemptsLeft} of ${s.maxAttempts} left`,
      );
      // The account's security events, read with this device's key (not a guess).
      const ev = await vaultEvents(client, d.backupKey, {
        justRestored: false,
        deviceDir: d.dir,
      });
      json.history = ev.lines;
      json.events = ev.events;
      human.push(...ev.lines.map((l, i) => `${i === 0 ? 'history:     ' : '             '}${l}`));
    } catch (e) {
      if (e instanceof NotFoundError) {
        json.record = { state: 'missing' };
        human.push(
          'attempts:    no record at the vault (deleted?) — `backvault password change` re-creates it',
        );
      } else if (e instanceof BackvaultError) {
        error = e;
        human.push('attempts:    unknown (see below)');
      } else throw e;
    }
    return { json, human, ...(error ? { error } : {}) };
  },
};
