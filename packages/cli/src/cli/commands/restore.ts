/** `backvault restore TARGET --repo URL`: verify a snapshot and write it to a directory. */
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { BackvaultError, UsageError } from 'backvault/errors';
import { booleanOption, stringOption } from '../args.js';
import {
  LIMIT_OPTIONS,
  PROGRESS_OPTIONS,
  REPO_OPTIONS,
  loadEngine,
  withRepository,
  type CommandSpec,
} from '../command.js';
import { filesAndFolders, formatBytes, formatSeconds, plural } from '../format.js';
import { SNAPSHOT_SELECTOR_HELP, selectSnapshot } from '../snapshot-select.js';
import { expectRestoreTarget } from '../password-restore.js';
import { localError } from '../local-errors.js';
import { KEY_SOURCES_HELP } from '../key-input.js';
import { RESTORE_VAULT_OPTIONS, RESTORE_VAULT_HELP, finishDeviceSetup } from '../device-source.js';
import { VAULT_HEAD_OPTIONS, checkVaultHead } from '../vault-access.js';

/** Whether `path` is absent or an empty directory (false for anything else). */
export function isEmptyDir(path: string): boolean {
  try {
    return readdirSync(path).length === 0;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Up to 10 paths under a heading, then how many more. */
function listed(heading: string, paths: readonly string[]): string[] {
  if (paths.length === 0) return [];
  const shown = paths.slice(0, 10).map((p) => `    ${p}`);
  const more = paths.length > 10 ? [`    … and ${paths.length - 10} more (--json lists all)`] : [];
  return [`  ${heading}: ${paths.length}`, ...shown, ...more];
}

/** `restore` */
export const restoreCommand: CommandSpec = {
  path: ['restore'],
  summary: 'restore a snapshot into a directory (verified before anything is moved into place)',
  usage:
    'restore TARGET --repo URL [--key-file FILE | --password --vault URL --account ID] [--device DIR] [--snapshot SNAPSHOT] [--force] [--json]',
  positionals: [{ name: 'TARGET', required: true }],
  options: {
    ...REPO_OPTIONS,
    snapshot: {
      type: 'string',
      valueName: 'SNAPSHOT',
      description: '`latest` (default), a sequence number, or an id prefix (see `snapshots`)',
    },
    force: {
      type: 'boolean',
      description:
        'restore into a non-empty TARGET: the snapshot replaces files at its paths, everything else is kept',
    },
    partial: {
      type: 'boolean',
      description:
        'salvage: restore every file that verifies, list the damaged ones (exit 4 if any)',
    },
    include: {
      type: 'string',
      valueName: 'PATH',
      description: 'restore only this file or folder of the snapshot (a path as `ls` shows it)',
    },
    delete: {
      type: 'boolean',
      description:
        'with --force: make TARGET exactly the snapshot, deleting files it does not hold',
    },
    ...RESTORE_VAULT_OPTIONS,
    ...PROGRESS_OPTIONS,
    ...LIMIT_OPTIONS,
    ...VAULT_HEAD_OPTIONS,
  },
  details: [
    'Downloads and verifies the snapshot into a temporary directory beside TARGET and moves',
    'it into place only when complete: TARGET is never left half-written. TARGET must be',
    'absent or an empty directory unless --force is given. With --force, files of the',
    'snapshot replace those at the same paths and everything else in TARGET is kept (and',
    'listed); --delete removes what the snapshot does not hold. A TARGET that is a file or',
    'a symlink is refused.',
    SNAPSHOT_SELECTOR_HELP,
    '',
    ...KEY_SOURCES_HELP,
    'On a terminal, restore asks for the key (hidden input) when neither is given.',
    '',
    ...RESTORE_VAULT_HELP,
  ],
  examples: [
    'backvault restore ~/chat-restored --repo /mnt/cloud/chat',
    'backvault restore ~/chat --repo /mnt/cloud/chat --snapshot 3f2a1b4c --force --key-file key.txt',
  ],
  async run({ values, positionals }, ctx) {
    const target = resolve(ctx.io.cwd, positionals[0] ?? '');
    const deleteExtras = booleanOption(values, 'delete');
    if (deleteExtras && !booleanOption(values, 'force')) {
      throw new UsageError(
        '--delete needs --force',
        'Add --force to restore into a non-empty TARGET.',
      );
    }
    const selector = stringOption(values, 'snapshot');
    const onProgress = ctx.progressSink();
    let setup: { device?: string; lines: string[] } = { lines: [] };
    // With --password the target is checked before a guess is spent.
    expectRestoreTarget(ctx, target, booleanOption(values, 'force'));
    let vaultLines: string[] = [];
    const r = await withRepository(
      ctx,
      values,
      { allowPrompt: true, device: 'setup' },
      async (access, network) => {
        const engine = await loadEngine();
        // With a key from the vault: the vault's snapshot head (and its event log) first.
        const listed = await engine.listSnapshots(access);
        vaultLines = await checkVaultHead(ctx, values, async () =>
          listed.reduce<{ seq: number; id: string } | undefined>(
            (top, s) => (!top || s.seq > top.seq ? { seq: s.seq, id: s.id } : top),
            undefined,
          ),
        );
        // `latest`, a sequence number or an id prefix, resolved against the verified chain.
        const snapshotId = selector === undefined ? undefined : selectSnapshot(listed, selector).id;
        // The first Ctrl-C aborts it (see interrupt.ts): the target is then as it was, unless
        // the restore had already moved into place, in which case it is reported as done.
        // An absent or empty target that holds something now was moved into place: a second
        // Ctrl-C then says so. A full one (--force) cannot tell (see run.ts, UNSURE_HINTS).
        const wasEmpty = isEmptyDir(target);
        ctx.interrupt.commitProbe = () => (wasEmpty ? !isEmptyDir(target) : undefined);
        const res = await ctx.stoppable('restore', (signal) =>
          engine
            .restore({
              ...access,
              ...network,
              signal,
              target,
              force: booleanOption(values, 'force'),
              delete: deleteExtras,
              partial: booleanOption(values, 'partial'),
              ...(stringOption(values, 'include') !== undefined
                ? { include: stringOption(values, 'include') as string }
                : {}),
              ...(snapshotId ? { snapshotId } : {}),
              ...(onProgress ? { onProgress } : {}),
            })
            // A full or read-only disk under the target names the target.
            .catch((e: unknown) => Promise.reject(localError(e, target) ?? e)),
        );
        // `--device DIR` on a new device: its profile is written once the restore succeeded.
        setup = await finishDeviceSetup(ctx, values, access.backupKey);
        return res;
      },
    );
    return {
      json: { ...r, target, ...(setup.device ? { device: setup.device } : {}) },
      human: [
        `restored snapshot ${r.snapshotId.slice(0, 8)} (seq ${r.seq}) to ${target}`,
        `  ${filesAndFolders(r.files, r.dirs)}, ${formatBytes(r.bytes)}, all verified`,
        `  took ${formatSeconds(r.seconds)}`,
        ...(r.replaced > 0 ? [`  replaced ${plural(r.replaced, 'file')} that TARGET held`] : []),
        ...listed('kept (not in the snapshot)', r.kept),
        ...listed('deleted (not in the snapshot; --delete)', r.deleted),
        ...listed(
          'DAMAGED, not restored',
          r.damaged.map((d) => d.path),
        ),
        ...r.warnings.map((w) => `  warning: ${w}`),
        ...vaultLines,
        ...setup.lines,
      ],
      // Salvaged: what verified is in place, the rest is listed; exit 4 so scripts notice.
      ...(r.damaged.length > 0
        ? {
            error: new BackvaultError(
              'CORRUPT',
              `${plural(r.damaged.length, 'damaged path')} could not be restored: ${r.damaged
                .slice(0, 3)
                .map((d) => d.path)
                .join(', ')}${r.damaged.length > 3 ? ', …' : ''}`,
              'Everything else was verified and restored. An older snapshot may still hold those files (`backvault snapshots`, then --snapshot); `backvault check` names the damaged objects.',
            ),
          }
        : {}),
    };
  },
};
