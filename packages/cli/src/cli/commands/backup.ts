/** `backvault backup DIR --repo URL`: encrypt a directory into a new snapshot. */
import { ExcludeSet, parseExcludeFile } from 'backvault/backup';
import { loadDevice, resolveDeviceDir } from '../../device/profile.js';
import { BackvaultError, NoSourceError, UsageError } from 'backvault/errors';
import { PREFIX } from 'backvault/format';
import { BACKUP_RETRY_FOR_MS } from 'backvault/storage';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { booleanOption, stringOption, stringOptions } from '../args.js';
import {
  LIMIT_OPTIONS,
  PROGRESS_OPTIONS,
  REPO_OPTIONS,
  loadEngine,
  withRepository,
  type CommandSpec,
} from '../command.js';
import { DEVICE_OPTION, recordLastBackup } from '../device-source.js';
import { filesAndFolders, formatBytes, formatCount, formatSeconds, plural } from '../format.js';
import { KEY_SOURCES_HELP } from '../key-input.js';
import { applyRetentionAfterBackup } from '../retention.js';
import { backupProgress } from '../scan.js';
import { recordHeadInVault } from '../vault-access.js';
import { runVerify } from './verify.js';

/** `backup` */
export const backupCommand: CommandSpec = {
  path: ['backup'],
  summary: 'back up a directory into an encrypted repository',
  usage:
    'backup DIR (--repo URL [--key-file FILE] | --device DIR) [--init] [--state FILE] [--json]',
  positionals: [{ name: 'DIR', required: true }],
  options: {
    ...REPO_OPTIONS,
    ...DEVICE_OPTION,
    verify: {
      type: 'boolean',
      description:
        'after the backup, run the restore drill on the new snapshot (like `backvault verify`)',
    },
    init: {
      type: 'boolean',
      description: 'create the repository if there is none (default: NO_REPOSITORY, exit 1)',
    },
    exclude: {
      type: 'string',
      valueName: 'PATTERN',
      multiple: true,
      description:
        'leave out paths matching PATTERN (restic globs: *, ?, [..], ** for any depth; a leading / anchors at DIR); repeatable',
    },
    'exclude-file': {
      type: 'string',
      valueName: 'FILE',
      multiple: true,
      description: 'read exclude patterns from FILE, one per line (# comments); repeatable',
    },
    ...PROGRESS_OPTIONS,
    ...LIMIT_OPTIONS,
  },
  details: [
    'Encrypts DIR on this machine and stores a new snapshot; only chunks the repository does',
    'not hold yet are uploaded. The snapshot becomes visible only after everything it needs',
    'is stored, so an interrupted backup leaves the previous one intact.',
    '',
    'A missing repository is an error (NO_REPOSITORY) unless --init is given or the device',
    'has never backed up: a mistyped --repo or an unmounted drive never starts a new history.',
    '',
    'Files that exist but cannot be backed up (permission denied, I/O errors, FIFOs,',
    'sockets, devices, names that are not UTF-8) are skipped and named; the snapshot is',
    'saved, marked partial, and the exit code is 7 (PARTIAL) so scripts notice.',
    '',
    ...KEY_SOURCES_HELP,
    'backup never prompts: a mistyped key would create a repository nobody can open.',
  ],
  examples: [
    'BACKVAULT_KEY="$(cat ~/.backvault-key)" backvault backup ~/chat --repo /mnt/cloud/chat',
    'backvault backup ~/chat --repo "s3://bucket/chat?region=eu-west-1" --key-file ~/.backvault-key',
  ],
  async run({ values, positionals }, ctx) {
    const source = resolve(ctx.io.cwd, positionals[0] ?? '');
    const info = await stat(source).catch((e: NodeJS.ErrnoException) =>
      e.code === 'ENOENT' || e.code === 'ENOTDIR' ? undefined : Promise.reject(e),
    );
    if (!info) throw new NoSourceError(`the folder to back up does not exist: ${source}`);
    if (!info.isDirectory()) throw new NoSourceError(`not a folder: ${source}`);
    // A device that never backed up was set up for this repository on purpose (`enable`).
    const deviceFlag = stringOption(values, 'device');
    const init =
      booleanOption(values, 'init') ||
      (deviceFlag !== undefined &&
        (await loadDevice(resolveDeviceDir(deviceFlag, ctx.io.env, ctx.io.cwd))).profile
          .lastBackup === undefined);
    const exclude = [...stringOptions(values, 'exclude')];
    for (const file of stringOptions(values, 'exclude-file')) {
      const text = await readFile(resolve(ctx.io.cwd, file), 'utf8').catch(
        (e: NodeJS.ErrnoException) => {
          throw new UsageError(
            `cannot read the exclude file ${file}: ${e.code ?? 'error'}`,
            'Give a readable text file with one pattern per line.',
          );
        },
      );
      exclude.push(...parseExcludeFile(text));
    }
    // Malformed patterns fail here, before the repository is touched.
    new ExcludeSet(exclude);
    const sink = ctx.progressSink();
    // The commit point, seen from the store: once the snapshot object is stored, a Ctrl-C
    // that exits at once says the backup was complete (see interrupt.ts).
    let snapshotStored = false;
    ctx.interrupt.commitProbe = () => snapshotStored;
    const r = await withRepository(
      ctx,
      values,
      {
        allowPrompt: false,
        retryForMs: BACKUP_RETRY_FOR_MS,
        onStored: (name) => {
          if (name.startsWith(PREFIX.snapshots)) snapshotStored = true;
        },
      },
      async (access, network) => {
        // On a terminal, once the key is known: a quick scan first, so that the bar has a
        // total, a percentage and an ETA.
        const onProgress = await backupProgress(sink, source);
        // The first Ctrl-C aborts it (see interrupt.ts): no snapshot is then written, unless
        // it already was, in which case the backup is reported as done.
        return ctx.stoppable('backup', async (signal) =>
          (await loadEngine()).backup({
            ...access,
            ...network,
            signal,
            source,
            init,
            ...(exclude.length > 0 ? { exclude } : {}),
            ...(onProgress ? { onProgress } : {}),
          }),
        );
      },
    );
    await recordLastBackup(ctx, values, r);
    await recordHeadInVault(ctx, values, r);
    const retention = await applyRetentionAfterBackup(ctx, values, r);
    const drill = booleanOption(values, 'verify')
      ? await runVerify(ctx, values, r.snapshotId)
      : undefined;
    const rate = r.seconds > 0 ? ` (${formatBytes(r.bytesRead / r.seconds)}/s)` : '';
    return {
      json: {
        ...r,
        ...(retention ? { retention: retention.json } : {}),
        ...(drill ? drill.json : {}),
      },
      human: [
        `${r.created ? 'created repository; ' : ''}snapshot ${r.snapshotId.slice(0, 8)} saved (seq ${r.seq})`,
        `  ${filesAndFolders(r.files, r.dirs)}, ${formatBytes(r.bytesRead)} read`,
        `  new data: ${formatBytes(r.bytesNew)} in ${formatCount(r.chunksNew)} of ${plural(r.chunksTotal, 'chunk')}; stored: ${formatBytes(r.bytesStoredNew)}`,
        `  took ${formatSeconds(r.seconds)}${rate}`,
        ...(r.resumed.packs > 0
          ? [
              `  resumed an interrupted backup: ${plural(r.resumed.packs, 'pack')} (${formatBytes(r.resumed.bytes)}) already stored were reused`,
            ]
          : []),
        ...(r.excluded > 0 ? [`  excluded ${plural(r.excluded, 'path')} (--exclude)`] : []),
        ...(r.filesSkipped > 0
          ? [`  skipped ${plural(r.filesSkipped, 'file')} (see the warnings)`]
          : []),
        ...(retention?.human ?? []),
        ...r.warnings.map((w) => `  warning: ${w}`),
        ...(drill?.human ?? []),
      ],
      ...(drill?.error ? { error: drill.error } : {}),
      // Saved, but not everything that is in DIR: exit 7 so that scripts notice.
      ...(r.partial
        ? {
            error: new BackvaultError(
              'PARTIAL',
              `snapshot ${r.snapshotId.slice(0, 8)} was saved without ${plural(r.filesSkipped, 'entry', 'entries')} that could not be backed up`,
              'The warnings name them and why. Make them readable, or --exclude them, and back up again.',
            ),
          }
        : {}),
    };
  },
};
