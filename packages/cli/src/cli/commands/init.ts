/** `backvault init --repo URL`: create a repository on purpose (backups never create one). */
import { UsageError } from 'backvault/errors';
import { booleanOption } from '../args.js';
import { REPO_OPTIONS, loadEngine, withRepository, type CommandSpec } from '../command.js';
import { DEVICE_OPTION } from '../device-source.js';
import { KEY_SOURCES_HELP } from '../key-input.js';

/** `init` */
export const initCommand: CommandSpec = {
  path: ['init'],
  summary: 'create a new, empty repository protected by a backup key',
  usage: 'init (--repo URL --key-file FILE | --device DIR) [--replace-missing] [--json]',
  positionals: [],
  options: {
    ...REPO_OPTIONS,
    ...DEVICE_OPTION,
    'replace-missing': {
      type: 'boolean',
      description:
        'create one even where this device saw a repository that is gone (check it is not merely unmounted first)',
    },
  },
  details: [
    'Writes the repository header (format version, a random repository id, a key check value)',
    'so that later backups have somewhere to go. `backup` never creates a repository unless',
    'given --init: a mistyped --repo or an unmounted cloud drive must not silently start a',
    'new, empty history. `backvault enable` creates the repository of a new device.',
    '',
    ...KEY_SOURCES_HELP,
    'init never prompts and never makes up a key: make one with `backvault key generate`.',
  ],
  examples: [
    '(umask 077; backvault key generate > ~/.backvault-key)',
    'backvault init --repo /mnt/cloud/chat --key-file ~/.backvault-key',
  ],
  async run({ values }, ctx) {
    const replaceMissing = booleanOption(values, 'replace-missing');
    const r = await withRepository(ctx, values, { allowPrompt: false }, async (access) => ({
      ...(await (await loadEngine()).initRepository(access, { replaceMissing })),
      location: access.storage.location,
    }));
    if (!r.created) {
      throw new UsageError(
        `a repository already exists at ${r.location}; nothing was changed`,
        'Back up to it with `backvault backup`, or choose another --repo.',
      );
    }
    return {
      json: { repoId: r.repoId, location: r.location, created: true },
      human: [`created repository ${r.repoId.slice(0, 8)} at ${r.location}`],
    };
  },
};
