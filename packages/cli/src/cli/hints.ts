/**
 * The CLI's words for the SDK's hints. The SDK's errors say what to do next in the names of
 * its functions and options (`force: true`, `check()`: see `HINTS` in `src/errors.ts`);
 * on a terminal the same advice names flags and commands. Every SDK sentence has its CLI
 * sentence here (a `Record` over the SDK's keys: a new one without a translation fails to
 * compile), and {@link cliWords} swaps them wherever they occur in a message or hint, so a
 * hint the engine composed (a CORRUPT hint with the `partial` advice appended) reads right
 * too.
 */
import { HINTS } from 'backvault/errors';

/** The CLI's sentence for each SDK sentence of `HINTS`. */
export const CLI_HINTS: Readonly<Record<keyof typeof HINTS, string>> = {
  usage: 'Run `backvault --help` for usage.',
  corrupt:
    'The store altered or damaged this data. Run `backvault check`; restore an older snapshot if needed.',
  missing: 'The store lost or deleted data. Run `backvault check` to see what is affected.',
  damagedHead:
    'This damaged snapshot object may be the newest snapshot, so no older one is taken as the latest (that could hide a rollback) and every command stops here: an older snapshot cannot be restored either while it is there. `backvault backup` on the device that saw it as its latest chains onto it and heals this; elsewhere, to go on without it, delete that object from the store (a local repository: the file REPO/snapshots/ID); if this device had seen it, then accept the newest snapshot that remains with `backvault accept-rollback --snapshot SEQ`.',
  damagedLock:
    'This object under locks/ is not a lock written with this key (damaged, or left by another program such as a sync client). Backups, prunes and forgets refuse to run beside an object they cannot read. If no backvault command of any version runs on this repository, delete that object from the store (a local repository: the file REPO/locks/NAME); `backvault check` lists every such object.',
  rollback:
    'The store is serving an old copy of the backup. Do not trust it; contact your storage provider. If you know why, accept its latest snapshot with `backvault accept-rollback --snapshot SEQ`.',
  noRepository:
    'Check --repo and that the drive or bucket is reachable; `backvault init --repo URL` creates a repository.',
  vanishedRepository:
    'Check that the drive or bucket is mounted and reachable and that --repo is right. To really start a new repository at this place, run `backvault init` with --replace-missing.',
  targetNotEmpty: 'Choose an empty directory or pass --force.',
  targetNotDirectory:
    'Give a directory that is absent or empty (or holds an earlier restore, with --force).',
  targetMountPoint:
    'Restore into a new folder inside it (`backvault restore MOUNT/chat`): a restore is written beside its target and moved in by rename, which cannot cross into another file system.',
  targetInnerMount:
    'Restore into an empty folder (`backvault restore NEW-FOLDER`), or unmount it first: a restore moves files in by rename, which cannot cross into another file system.',
  mergeConflict:
    'Move those directories away, restore into an empty directory, or pass --delete to make the target exactly the snapshot (files not in it are deleted).',
  partial:
    'To restore every file that still verifies and list the damaged ones, run the restore again with --partial.',
  includeMissing: 'Check the path with `backvault ls`; it is relative to the backed-up folder.',
  noSnapshots: 'Run `backvault backup` first.',
  noSuchSnapshot: 'Run `backvault snapshots` to list them.',
  noSuchPath: 'Run `backvault ls SNAPSHOT` to see what it holds.',
  treeAsChunk:
    'This tree was stored only as a file chunk with the same bytes (a bug of backvault 0.1). Run `backvault backup` of the same source: it stores the tree again and the snapshot restores.',
  vaultMismatch:
    'You may be talking to the wrong or an impostor vault: check --vault. If its operator changed its key, `backvault pin --device DIR` shows it; re-pin after checking it with them.',
  vaultUrl: 'Pass e.g. --vault http://127.0.0.1:8787',
  vaultNoRecord:
    'This account has no password-protected backup key on this vault (never enabled, or disabled). Check --vault and --account.',
  vaultNotVault: 'Is --vault the URL of a backvault vault?',
  portInUse: 'Stop that process, or choose another --port.',
  noCredentials:
    'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), then run the command again.',
  diskFull:
    'Free some space or choose another disk, then run the command again: nothing incomplete was committed.',
  keySlotList: 'Then run `backvault key list`.',
  keySlotListWithKey: 'Then run `backvault key list` with the 64-digit key.',
  keySlotSee: 'See `backvault key list`.',
  alreadyEnabled:
    'To protect the key with a new password, run `backvault password change` on a device that holds the key; `backvault disable` removes the protection.',
  retentionField: 'E.g. --keep-last 3, --keep-daily 7, --keep-monthly unlimited.',
  retentionEmpty:
    'Give at least one of --keep-last N, --keep-hourly N, --keep-daily N, --keep-weekly N, --keep-monthly N, --keep-yearly N (N ≥ 1) or --keep-within DURATION.',
};

/** SDK words inside messages (not whole sentences) and the CLI's. */
const CLI_FRAGMENTS: readonly (readonly [string, string])[] = [
  ['(as `listKeySlots()` shows it)', '(as `backvault key list` shows it)'],
];

/** Longest first, so a sentence that contains another is swapped whole. */
const SWAPS: readonly (readonly [string, string])[] = [
  ...(Object.keys(HINTS) as (keyof typeof HINTS)[]).map((k) => [HINTS[k], CLI_HINTS[k]] as const),
  ...CLI_FRAGMENTS,
].sort((a, b) => b[0].length - a[0].length);

/** `text` (an error's message or hint) with every SDK sentence in the CLI's words. */
export function cliWords(text: string): string {
  let out = text;
  for (const [sdk, cli] of SWAPS) if (out.includes(sdk)) out = out.split(sdk).join(cli);
  return out;
}
