/** `backvault snapshots --repo URL`: list the snapshots of a repository. */
import { REPO_OPTIONS, loadEngine, withRepository, type CommandSpec } from '../command.js';
import { formatBytes, formatCount, formatLocalTime, plural, shortId } from '../format.js';
import { KEY_SOURCES_HELP } from '../key-input.js';
import { DEVICE_OPTION } from '../device-source.js';

/** `snapshots` */
export const snapshotsCommand: CommandSpec = {
  path: ['snapshots'],
  summary: 'list the snapshots in a repository, oldest first',
  usage: 'snapshots (--repo URL [--key-file FILE] | --device DIR) [--json]',
  positionals: [],
  options: { ...REPO_OPTIONS, ...DEVICE_OPTION },
  details: [
    'Each snapshot is authenticated with the key and checked against the chain of previous',
    'snapshots, so a store that hides or replays snapshots is caught. Times are local, with',
    'the offset from UTC; --json gives them in UTC (ISO 8601). SEQ is what --snapshot takes.',
    '',
    ...KEY_SOURCES_HELP,
  ],
  async run({ values }, ctx) {
    const warnings: string[] = [];
    const list = await withRepository(ctx, values, { allowPrompt: true }, async (access) =>
      (await loadEngine()).listSnapshots({ ...access, onWarning: (w) => warnings.push(w) }),
    );
    if (!ctx.json) for (const w of warnings) ctx.note(`warning: ${w}`);
    const rows = list.map((s) => [
      shortId(s.id),
      String(s.seq),
      formatLocalTime(s.time),
      s.hostname,
      formatCount(s.files),
      formatBytes(s.bytes) + (s.partial ? ' (partial)' : ''),
    ]);
    const header = ['ID', 'SEQ', 'TIME', 'HOST', 'FILES', 'SIZE'];
    const widths = header.map((h, i) =>
      Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)),
    );
    // Numbers right-aligned, text left-aligned.
    const right = new Set([1, 4, 5]);
    const line = (cells: string[]): string =>
      cells
        .map((c, i) => (right.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    return {
      json: { snapshots: list, warnings },
      human:
        list.length === 0
          ? ['no snapshots']
          : [line(header), ...rows.map(line), plural(list.length, 'snapshot')],
    };
  },
};
