/** `backvault check --repo URL`: verify a whole repository without restoring it. */
import { BackvaultError, UsageError } from 'backvault/errors';
import { booleanOption } from '../args.js';
import { CLI_HINTS } from '../hints.js';
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

/** `check` */
export const checkCommand: CommandSpec = {
  path: ['check'],
  summary: 'verify every snapshot, index and (by default) every data blob',
  usage:
    'check (--repo URL [--key-file FILE] | --device DIR) [--read-data | --no-read-data] [--repair] [--json]',
  positionals: [],
  options: {
    ...REPO_OPTIONS,
    'read-data': {
      type: 'boolean',
      negatable: true,
      description:
        'download and verify every data blob (default; --no-read-data checks structure only)',
    },
    repair: {
      type: 'boolean',
      description:
        'drop damaged blobs and lost packs from the index, so that the next backup stores them again',
    },
    ...DEVICE_OPTION,
    ...PROGRESS_OPTIONS,
    ...LIMIT_OPTIONS,
  },
  details: [
    'Exits 0 when the repository is sound, 4 when anything is corrupted, missing or rolled',
    'back; each problem names the storage object concerned.',
    '',
    'A backup deduplicates against the index: a blob the store damaged would be referred to',
    'by every later backup of the same content. --repair (with the data check) rewrites the',
    'index without the damaged blobs and lost packs, under the exclusive lock; the next',
    'backup then stores that content again where the source still has it, and every',
    'snapshot that used it restores again. `backvault prune` afterwards removes the damaged',
    'copies. The exit code still says what was found (4).',
    '',
    ...KEY_SOURCES_HELP,
  ],
  async run({ values }, ctx) {
    const readData = booleanOption(values, 'read-data', true);
    const repair = values.repair === true;
    if (repair && !readData) {
      throw new UsageError(
        '--repair needs the data check: it drops the blobs that the check finds damaged',
        'Leave out --no-read-data.',
      );
    }
    const onProgress = ctx.progressSink();
    const r = await withRepository(ctx, values, { allowPrompt: true }, async (access, network) =>
      ctx.stoppable('check', async (signal) =>
        (await loadEngine()).check({
          ...access,
          ...network,
          signal,
          readData,
          ...(repair ? { repair } : {}),
          ...(onProgress ? { onProgress } : {}),
        }),
      ),
    );
    const summary = `${plural(r.snapshots, 'snapshot')}, ${plural(r.packs, 'pack')}, ${plural(r.blobs, 'blob')}; ${formatBytes(r.bytesRead)} read${readData ? '' : ' (data not read)'} in ${formatSeconds(r.seconds)}`;
    const notes = r.notes.map((n) => `note: ${n}`);
    if (r.ok && r.problems.length === 0) {
      return { json: { ...r, readData }, human: [...notes, `repository OK: ${summary}`] };
    }
    // Engine messages usually name the object already; do not say it twice.
    const describe = (p: { object: string; message: string }): string =>
      p.message.includes(p.object) ? p.message : `${p.object}: ${p.message}`;
    const first = r.problems[0] ?? {
      code: 'CORRUPT' as const,
      object: 'repository',
      message: 'check reported a failure without details',
    };
    // The advice follows what is damaged: data, an index object (its packs still name
    // their blobs: prune replaces it), or an object under locks/ (it stops every backup).
    const where = (p: { object: string }): string =>
      p.object.startsWith('locks/') ? 'lock' : p.object.startsWith('index/') ? 'index' : 'data';
    const kinds = new Set(r.problems.map(where));
    const advice = [
      'The store altered or lost data.',
      ...((kinds.has('data') || kinds.size === 0) && !r.repaired
        ? [
            '`backvault restore --partial` restores every file that still verifies; an older snapshot may hold the others. `backvault check --repair` makes the next backup store the damaged data again instead of referring to it.',
          ]
        : []),
      ...(r.repaired
        ? [
            '`backvault restore --partial` restores every file that still verifies. The index no longer lists the damaged data: back up now, so that it is stored again where the source still has it, then run `backvault prune`.',
          ]
        : []),
      ...(kinds.has('index')
        ? [
            'A damaged index object costs no file while the packs it lists are intact (`restore --partial` reads them by their headers); `backvault prune` replaces it.',
          ]
        : []),
      ...(kinds.has('lock') ? [CLI_HINTS.damagedLock] : []),
    ];
    const error = new BackvaultError(
      first.code,
      `check found ${plural(Math.max(1, r.problems.length), 'problem')}; first: ${describe(first)}`,
      advice.join(' '),
    );
    return {
      json: { ...r, readData },
      human: [
        ...notes,
        ...r.problems.flatMap((p) => [
          `${p.code}: ${describe(p)}`,
          ...(p.affects ?? []).flatMap((a) => [
            `  costs snapshot ${a.seq} (${a.snapshot.slice(0, 8)}): ${a.count === 1 ? '1 path' : `${a.count} paths`}`,
            ...a.paths.slice(0, 5).map((path) => `    ${path}`),
            ...(a.count > 5 ? [`    … (--json lists up to 200)`] : []),
          ]),
        ]),
        `repository DAMAGED: ${plural(r.problems.length, 'problem')}; ${summary}`,
        ...(r.repaired
          ? [
              `repaired the index: ${plural(r.repaired.blobsDropped, 'blob')} dropped${r.repaired.packsDropped > 0 ? ` (all of ${plural(r.repaired.packsDropped, 'lost or unreadable pack')})` : ''}; ${plural(r.repaired.indexesReplaced, 'index object')} replaced by one`,
            ]
          : []),
      ],
      error,
    };
  },
};
