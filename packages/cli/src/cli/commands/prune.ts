/** `backvault prune --repo URL`: delete data no snapshot refers to any more. */
import {
  LIMIT_OPTIONS,
  PROGRESS_OPTIONS,
  REPO_OPTIONS,
  loadEngine,
  withRepository,
  type CommandSpec,
} from '../command.js';
import { formatBytes, formatSeconds, plural } from '../format.js';
import { KEY_SOURCES_HELP } from '../key-input.js';
import { DEVICE_OPTION } from '../device-source.js';

/** `prune` */
export const pruneCommand: CommandSpec = {
  path: ['prune'],
  summary: 'delete stored data that no snapshot refers to',
  usage: 'prune (--repo URL [--key-file FILE] | --device DIR) [--json]',
  positionals: [],
  options: { ...REPO_OPTIONS, ...DEVICE_OPTION, ...PROGRESS_OPTIONS, ...LIMIT_OPTIONS },
  details: [
    'Removes packs and indexes left behind by interrupted backups or no longer referenced,',
    'repacking partly used packs. Safe to interrupt: nothing in use is deleted before its',
    'replacement is stored. Do not run it while a backup to the same repository is running.',
    '',
    ...KEY_SOURCES_HELP,
  ],
  async run({ values }, ctx) {
    const onProgress = ctx.progressSink();
    const r = await withRepository(ctx, values, { allowPrompt: true }, async (access, network) =>
      ctx.stoppable('prune', async (signal) =>
        (await loadEngine()).prune({
          ...access,
          ...network,
          signal,
          ...(onProgress ? { onProgress } : {}),
        }),
      ),
    );
    return {
      json: { ...r },
      human: [
        `pruned: ${plural(r.packsDeleted, 'pack')} and ${plural(r.indexesDeleted, 'index', 'indexes')} deleted, ${plural(r.packsRepacked, 'pack')} repacked`,
        `  ${formatBytes(r.bytesFreed)} freed in ${formatSeconds(r.seconds)}`,
        ...(r.damagedPacks.length > 0
          ? [
              `  ${plural(r.damagedPacks.length, 'damaged pack')} left as ${r.damagedPacks.length === 1 ? 'it was' : 'they were'} (a blob a snapshot uses fails verification): run \`backvault check --repair\`, then a backup stores that data again where the source still has it`,
            ]
          : []),
      ],
    };
  },
};
