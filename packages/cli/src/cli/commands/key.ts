/**
 * `backvault key generate`: make a new random 64-digit backup key; `key list|add|remove`:
 * the key slots of a repository (SPEC.md §18).
 */
import type { KeySlotStatus, KeySlotSummary } from 'backvault/backup';
import { KeySlotMismatchError } from 'backvault/errors';
import { formatBackupKey, generateBackupKey } from 'backvault/format';
import { stringOption, type OptionSpec } from '../args.js';
import { REPO_OPTIONS, withRepository, type CommandSpec } from '../command.js';
import { DEVICE_OPTION } from '../device-source.js';
import { formatLocalTime, plural } from '../format.js';

/** `key generate` */
export const keyGenerateCommand: CommandSpec = {
  path: ['key', 'generate'],
  summary: 'print a new random 64-digit backup key',
  usage: 'key generate [--json]',
  positionals: [],
  options: {},
  details: [
    'Prints a new random 256-bit backup key as 64 hexadecimal digits in 16 groups of 4.',
    'Write it down or store it in a password manager: it is the only way to restore the',
    'backups made with it. Save it to a file readable only by you, then use --key-file:',
    '',
    '  (umask 077; backvault key generate > ~/.backvault-key)',
  ],
  examples: ['backvault key generate', 'backvault key generate --json'],
  async run() {
    const key = formatBackupKey(generateBackupKey());
    return { json: { key }, human: [key] };
  },
};

/** Where the `key list|add|remove` commands get the repository and its key. */
const SLOT_OPTIONS: Readonly<Record<string, OptionSpec>> = { ...REPO_OPTIONS, ...DEVICE_OPTION };

const SLOT_KEY_HELP = [
  'They need the repository and a key that opens it: --repo with --key-file (or',
  'BACKVAULT_KEY, or a prompt), or --device DIR. An added recovery key works too, since it',
  'unwraps the backup key. The 64-digit backup key always opens the repository, with or',
  'without slots; no command here changes it.',
];

/** One line per slot for people. */
function slotLine(s: KeySlotSummary): string {
  const what =
    s.kind === 'passkey'
      ? `passkey       credential ${shortCredential(s.credentialId ?? '')} on ${s.rpId ?? ''}`
      : 'recovery key';
  const status = s.status === 'ok' ? '' : `  ${s.status.toUpperCase()}`;
  const label = s.label ? `  "${s.label}"` : '';
  return `${s.slotId.slice(0, 8)}  ${what}  added ${formatLocalTime(s.created)}${label}${status}`;
}

/** A credential id (base64url) shortened for people: first and last 6 characters. */
export function shortCredential(id: string): string {
  return id.length <= 16 ? id : `${id.slice(0, 6)}…${id.slice(-6)}`;
}

/** What a slot status means, for the lines under `key list`. */
const STATUS_MEANING: Readonly<Record<Exclude<KeySlotStatus, 'ok'>, string>> = {
  missing: 'listed in the manifest but gone from the store (the store deleted it)',
  unlisted: 'in the store but not in the manifest: never used (removed earlier, or put back)',
  changed: 'not the bytes the manifest lists (damaged or replaced): never used',
};

/** `key list` */
export const keyListCommand: CommandSpec = {
  path: ['key', 'list'],
  summary: 'list the key slots (added recovery keys, passkeys) of a repository',
  usage: 'key list (--repo URL [--key-file FILE] | --device DIR) [--json]',
  positionals: [],
  options: SLOT_OPTIONS,
  details: [
    'A key slot wraps the backup key for one more protector: an added 64-digit recovery key',
    '(`key add`) or a passkey (set up in a browser). Each slot is compared with the sealed',
    'manifest: a slot the store deleted, replaced or put back is shown as MISSING, CHANGED or',
    'UNLISTED, is never used, and the command exits with KEY_SLOT_MISMATCH (exit 4).',
    '',
    ...SLOT_KEY_HELP,
  ],
  examples: [
    'backvault key list --device ~/.bv',
    'backvault key list --repo /mnt/cloud/chat --json',
  ],
  async run({ values }, ctx) {
    const listing = await withRepository(ctx, values, { allowPrompt: true }, async (access) => {
      const { listKeySlots } = await import('backvault/backup');
      return listKeySlots(access.storage, access.backupKey, access);
    });
    const bad = listing.slots.filter((s) => s.status !== 'ok');
    const human =
      listing.slots.length === 0
        ? ['no key slots: only the 64-digit backup key opens this repository']
        : [
            ...listing.slots.map(slotLine),
            plural(listing.slots.length, 'key slot'),
            ...[...new Set(bad.map((s) => s.status))].map(
              (st) => `${st.toUpperCase()}: ${STATUS_MEANING[st as Exclude<KeySlotStatus, 'ok'>]}`,
            ),
          ];
    for (const o of listing.strayObjects) human.push(`unexpected object under keys/: ${o}`);
    return {
      json: { ...listing },
      human,
      ...(bad.length > 0
        ? {
            error: new KeySlotMismatchError(
              `${plural(bad.length, 'key slot')} ${bad.length === 1 ? 'does' : 'do'} not match the manifest: ${bad
                .map((s) => `${s.slotId.slice(0, 8)} ${s.status}`)
                .join(', ')}`,
            ),
          }
        : {}),
    };
  },
};

/** `key add` */
export const keyAddCommand: CommandSpec = {
  path: ['key', 'add'],
  summary: 'add a recovery key: a new 64-digit key that also opens the repository',
  usage: 'key add (--repo URL [--key-file FILE] | --device DIR) [--label TEXT] [--json]',
  positionals: [],
  options: {
    ...SLOT_OPTIONS,
    label: {
      type: 'string',
      valueName: 'TEXT',
      description:
        'a name for this key, stored encrypted in the manifest (e.g. "copy at the bank")',
    },
  },
  details: [
    'Makes a new random 64-digit key and stores a slot that wraps the backup key under it, like',
    'adding a second passphrase to a disk. The new key is printed once and stored nowhere:',
    'write it down or give it to the person who should hold it. `key remove SLOT` revokes it',
    'later without changing the backup key (but whoever already used it learned the backup',
    'key: to lock them out for good, start a new repository with a new key).',
    'restore, snapshots and the other commands accept it as --key-file.',
    '',
    ...SLOT_KEY_HELP,
  ],
  examples: [
    'backvault key add --device ~/.bv --label "sealed envelope at home"',
    '(umask 077; backvault key add --repo /mnt/cloud/chat --key-file ~/.backvault-key --json > added.json)',
  ],
  async run({ values }, ctx) {
    const label = stringOption(values, 'label') ?? '';
    const r = await withRepository(ctx, values, { allowPrompt: true }, async (access) => {
      const { addRecoveryKeySlot } = await import('backvault/backup');
      return addRecoveryKeySlot(access.storage, access.backupKey, {
        label,
        statePath: access.statePath,
      });
    });
    const key = formatBackupKey(r.recoveryKey);
    return {
      json: { slot: r.slot, recoveryKey: key },
      human: [
        `added recovery key slot ${r.slot.slotId.slice(0, 8)}${label ? ` ("${label}")` : ''}.`,
        'The new recovery key — shown only now; write it down or hand it over:',
        '',
        `    ${key.slice(0, 39)}`,
        `    ${key.slice(40)}`,
        '',
        `It opens this repository like the backup key. Revoke it with \`backvault key remove ${r.slot.slotId.slice(0, 8)}\`.`,
      ],
    };
  },
};

/** `key remove` */
export const keyRemoveCommand: CommandSpec = {
  path: ['key', 'remove'],
  summary: 'remove a key slot: that recovery key or passkey no longer opens the repository',
  usage: 'key remove SLOT (--repo URL [--key-file FILE] | --device DIR) [--json]',
  positionals: [{ name: 'SLOT', required: true }],
  options: SLOT_OPTIONS,
  details: [
    'SLOT is a slot id as `key list` shows it (at least 4 hexadecimal digits). The manifest',
    'stops listing the slot, then the slot is deleted: its recovery key or passkey no longer',
    'opens the repository, even if the store puts the slot back. The backup key and the',
    'other slots are not changed. Slots the manifest does not list are deleted as well.',
    '',
    ...SLOT_KEY_HELP,
  ],
  examples: ['backvault key remove 3f2a1b4c --device ~/.bv'],
  async run({ values, positionals }, ctx) {
    const id = positionals[0] ?? '';
    const removed = await withRepository(ctx, values, { allowPrompt: true }, async (access) => {
      const { removeKeySlot } = await import('backvault/backup');
      return removeKeySlot(access.storage, access.backupKey, id, access);
    });
    return {
      json: { removed },
      human: [
        `removed ${removed.kind === 'passkey' ? 'passkey' : 'recovery key'} slot ${removed.slotId.slice(0, 8)}: it no longer opens this repository`,
      ],
    };
  },
};
