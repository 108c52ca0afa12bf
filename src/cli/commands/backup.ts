/** `backvault backup DIR --repo URL`: encrypt a directory into a new snapshot. */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { REPO_OPTIONS, loadEngine, withRepository, type CommandSpec } from '../command.js';
import { formatBytes, formatCount, formatSeconds, plural } from '../format.js';
import { KEY_SOURCES_HELP } from '../key-input.js';
import { DEVICE_OPTION, recordLastBackup } from '../device-source.js';
import { recordHeadInVault } from '../vault-access.js';

/** `backup` */
export const backupCommand: CommandSpec = {
  path: ['backup'],
  summary: 'back up a directory into an encrypted repository (created on first use)',
  usage: 'backup DIR (--repo URL [--key-file FILE] | --device DIR) [--state FILE] [--json]',
  positionals: [{ name: 'DIR', required: true }],
  options: { ...REPO_OPTIONS, ...DEVICE_OPTION },
  details: [
    'Encrypts DIR on this machine and stores a new snapshot; only chunks the repository does',
    'not hold yet are uploaded. The snapshot becomes visible only after everything it needs',
    'is stored, so an interrupted backup leaves the previous one intact.',
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
    const info = await stat(source).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new UsageError(
        `not a directory: ${positionals[0] ?? ''}`,
        'Give the directory to back up.',
      );
    }
    const onProgress = ctx.progressSink();
    const r = await withRepository(ctx, values, { allowPrompt: false }, async (access) =>
      (await loadEngine()).backup({ ...access, source, ...(onProgress ? { onProgress } : {}) }),
    );
    await recordLastBackup(ctx, values, r);
    await recordHeadInVault(ctx, values, r);
    const rate = r.seconds > 0 ? ` (${formatBytes(r.bytesRead / r.seconds)}/s)` : '';
    return {
      json: { ...r },
      human: [
        `${r.created ? 'created repository; ' : ''}snapshot ${r.snapshotId.slice(0, 8)} saved (seq ${r.seq})`,
        `  ${plural(r.files, 'file')} in ${plural(r.dirs, 'directory', 'directories')}, ${formatBytes(r.bytesRead)} read`,
        `  new data: ${formatBytes(r.bytesNew)} in ${formatCount(r.chunksNew)} of ${plural(r.chunksTotal, 'chunk')}; stored: ${formatBytes(r.bytesStoredNew)}`,
        `  took ${formatSeconds(r.seconds)}${rate}`,
        ...(r.filesSkipped > 0
          ? [`  skipped ${plural(r.filesSkipped, 'file')} (see the warnings)`]
          : []),
        ...r.warnings.map((w) => `  warning: ${w}`),
      ],
    };
  },
};
