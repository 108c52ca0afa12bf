/**
 * The deliberate ways forward from the two refusals that protect the user:
 *
 * - `VAULT_MISMATCH` → `backvault pin`: shows the key the vault presents next to the pinned
 *   one; with `--vault-key KEY` (the key the user checked with the vault's operator, out of
 *   band) it re-pins the device to it. Nothing is trusted silently: the key typed must be
 *   the key the vault presents.
 * - `ROLLBACK` → `backvault accept-rollback --snapshot SNAPSHOT`: the user names the store's
 *   current (older) latest snapshot, and this device's state file is set back to it, so
 *   that later commands work from there. The chain itself must still verify.
 */
import { UsageError, VaultMismatchError } from 'backvault/errors';
import { loadDevice, resolveDeviceDir, updateDeviceProfile } from '../../device/profile.js';
import { stringOption } from '../args.js';
import { REPO_OPTIONS, withRepository, type CommandSpec } from '../command.js';
import { DEVICE_OPTION } from '../device-source.js';
import { shortId } from '../format.js';
import { KEY_SOURCES_HELP } from '../key-input.js';
import { SNAPSHOT_SELECTOR_HELP, selectSnapshot } from '../snapshot-select.js';
import { vaultClient } from '../vault-access.js';

/** `pin` */
export const pinCommand: CommandSpec = {
  path: ['pin'],
  summary: "after VAULT_MISMATCH: compare the vault's key with the pinned one; re-pin it",
  usage: 'pin --device DIR [--vault-key KEY] [--token JWT] [--json]',
  positionals: [],
  options: {
    device: {
      type: 'string',
      valueName: 'DIR',
      description:
        'device profile directory (env BACKVAULT_DEVICE; default $XDG_DATA_HOME/backvault/device)',
    },
    'vault-key': {
      type: 'string',
      valueName: 'KEY',
      description: "the vault's new key, as its operator gave it to you: pin the device to it",
    },
  },
  details: [
    "A device pins its vault's public key and refuses any other (VAULT_MISMATCH): an impostor",
    'vault could otherwise collect password guesses. When the real vault changed its key (a',
    'new deployment), check the key it presents with its operator by another channel than',
    'this vault, then pin it with --vault-key. Without --vault-key, pin only shows both keys.',
    'A vault with a new key may not hold your record: `backvault status` tells, and',
    '`backvault password change` registers it again from this device.',
  ],
  examples: [
    'backvault pin --device ~/.bv',
    'backvault pin --device ~/.bv --vault-key 1GfttaUdDL8v0k6Byf4Ct6eupd0IIW9xicMdfLnc5gA',
  ],
  async run({ values }, ctx) {
    const d = await loadDevice(
      resolveDeviceDir(stringOption(values, 'device'), ctx.io.env, ctx.io.cwd),
    );
    const p = d.profile;
    if (p.mode !== 'password' || !p.vaultUrl || !p.account) {
      throw new UsageError(
        `the device in ${d.dir} is in 64-digit key mode: it pins no vault`,
        'Only password mode talks to a vault.',
      );
    }
    const presented = (
      await (await vaultClient(ctx, values, { vaultUrl: p.vaultUrl, account: p.account })).info()
    ).serverPublicKey;
    const wanted = stringOption(values, 'vault-key');
    const json = { device: d.dir, vault: p.vaultUrl, pinned: p.serverPublicKey, presented };
    if (wanted === undefined) {
      const same = presented === p.serverPublicKey;
      return {
        json: { ...json, match: same },
        human: [
          `vault:     ${p.vaultUrl}`,
          `pinned:    ${p.serverPublicKey ?? '(none)'}`,
          `presented: ${presented}`,
          same
            ? 'they match: nothing to do'
            : 'they differ. Check the presented key with the vault operator (not through this vault), then: backvault pin --device DIR --vault-key KEY',
        ],
        ...(same ? {} : { error: new VaultMismatchError() }),
      };
    }
    if (wanted !== presented) {
      throw new VaultMismatchError(
        'the vault presents another key than the one you gave: nothing was changed',
      );
    }
    await updateDeviceProfile(d.dir, { serverPublicKey: wanted });
    return {
      json: { ...json, pinned: wanted, repinned: true },
      human: [
        `pinned ${wanted} for ${p.vaultUrl}`,
        '  `backvault status` shows whether this vault holds your record; `backvault password change` registers it again',
      ],
    };
  },
};

/** `accept-rollback` */
export const acceptRollbackCommand: CommandSpec = {
  path: ['accept-rollback'],
  summary: "after ROLLBACK: accept the store's older latest snapshot, named explicitly",
  usage:
    'accept-rollback --snapshot SNAPSHOT (--repo URL [--key-file FILE] | --device DIR) [--json]',
  positionals: [],
  options: {
    ...REPO_OPTIONS,
    ...DEVICE_OPTION,
    snapshot: {
      type: 'string',
      valueName: 'SNAPSHOT',
      description: "the store's current latest snapshot, which you accept (seq or id prefix)",
    },
  },
  details: [
    'ROLLBACK means the store serves an older latest snapshot than this device has already',
    'seen: newer snapshots were lost or hidden. When you know why (the store was restored from',
    'its own backup, you deleted snapshots yourself), name the latest snapshot the store has',
    "now; this device's state file is set back to it and later commands work from there. The",
    'chain of snapshots must still verify; anything else stays refused.',
    SNAPSHOT_SELECTOR_HELP,
    '',
    ...KEY_SOURCES_HELP,
  ],
  examples: ['backvault accept-rollback --snapshot 3 --device ~/.bv'],
  async run({ values }, ctx) {
    const wanted = stringOption(values, 'snapshot');
    if (wanted === undefined) {
      throw new UsageError(
        "missing --snapshot: name the store's latest snapshot you accept",
        'Run `backvault accept-rollback --help`.',
      );
    }
    const r = await withRepository(ctx, values, { allowPrompt: true }, async (access) => {
      const { acceptRollback } = await import('backvault/backup');
      return acceptRollback({
        ...access,
        statePath: access.statePath as string,
        pick: (list) => selectSnapshot(list, wanted),
      });
    });
    return {
      json: { accepted: r.head, previouslySeen: r.seen ?? null, changed: r.changed },
      human: r.changed
        ? [
            `this device now takes snapshot ${shortId(r.head.snapshot)} (seq ${r.head.seq}) as the latest${r.seen ? `; it had seen seq ${r.seen.seq}` : ''}`,
          ]
        : [
            `nothing to accept: snapshot ${shortId(r.head.snapshot)} (seq ${r.head.seq}) is what this device has seen`,
          ],
    };
  },
};
