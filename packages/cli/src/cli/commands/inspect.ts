/**
 * Looking inside a backup without restoring it: `ls`, `diff`, `stats`. The reading is in
 * `src/backup/inspect.ts`; this file parses arguments and lays out the answer.
 */
import type { SnapshotInfo } from 'backvault/backup';
import { REPO_OPTIONS, withRepository, type CommandSpec } from '../command.js';
import { DEVICE_OPTION } from '../device-source.js';
import { countOf, formatBytes, formatCount, formatLocalTime, plural, shortId } from '../format.js';
import { KEY_SOURCES_HELP } from '../key-input.js';
import { SNAPSHOT_SELECTOR_HELP, selectSnapshot } from '../snapshot-select.js';

function loadInspect(): Promise<typeof import('backvault/backup')> {
  return import('backvault/backup');
}

/** Left/right aligned columns, two spaces apart, no trailing blanks. */
function table(rows: string[][], right: ReadonlySet<number>): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

function describe(s: SnapshotInfo): string {
  return `snapshot ${shortId(s.id)} (seq ${s.seq}, ${formatLocalTime(s.time)})`;
}

/** `drwxr-x---` style permissions. */
function modeString(type: 'file' | 'dir' | 'symlink', mode: number): string {
  const t = type === 'dir' ? 'd' : type === 'symlink' ? 'l' : '-';
  const rwx = 'rwxrwxrwx'
    .split('')
    .map((ch, i) => (mode & (1 << (8 - i)) ? ch : '-'))
    .join('');
  return t + rwx;
}

/** True when a lone argument of `ls` names a snapshot rather than a path. */
function looksLikeSnapshot(arg: string): boolean {
  return /^(latest|\d{1,7}|[0-9a-f]{4,64})$/i.test(arg);
}

/** `ls` */
export const lsCommand: CommandSpec = {
  path: ['ls'],
  summary: 'list the files of a snapshot (all of it, or below PATH)',
  usage: 'ls [SNAPSHOT] [PATH] (--repo URL [--key-file FILE] | --device DIR) [--json]',
  positionals: [
    { name: 'SNAPSHOT', required: false },
    { name: 'PATH', required: false },
  ],
  options: { ...REPO_OPTIONS, ...DEVICE_OPTION },
  details: [
    'Lists every file, folder and link of the snapshot (default: the latest) below PATH,',
    'with permissions, size and modification time (local time; UTC in --json). Nothing is',
    'restored; every tree read is verified.',
    SNAPSHOT_SELECTOR_HELP,
    'A lone argument that looks like a snapshot is one; write `ls latest PATH` for a path.',
    '',
    ...KEY_SOURCES_HELP,
  ],
  examples: [
    'backvault ls --device ~/.bv',
    'backvault ls 3 Media --device ~/.bv',
    'backvault ls latest msgstore.db --repo /mnt/cloud/chat --json',
  ],
  async run({ values, positionals }, ctx) {
    let [sel, path] = positionals;
    if (path === undefined && sel !== undefined && !looksLikeSnapshot(sel)) {
      path = sel;
      sel = undefined;
    }
    const { snapshot, entries } = await withRepository(
      ctx,
      values,
      { allowPrompt: true },
      async (access) => {
        const m = await loadInspect();
        const ins = await m.openInspector(access);
        const s = selectSnapshot(ins.snapshots, sel ?? 'latest');
        return { snapshot: s, entries: await m.listSnapshotTree(ins, s, path ?? '') };
      },
    );
    const files = entries.filter((e) => e.type === 'file');
    const folders = entries.filter((e) => e.type === 'dir').length;
    const links = entries.length - files.length - folders;
    const bytes = files.reduce((n, e) => n + e.size, 0);
    const rows = entries.map((e) => [
      modeString(e.type, e.mode),
      e.type === 'file' ? formatBytes(e.size) : '-',
      formatLocalTime(e.mtime),
      e.type === 'dir'
        ? `${e.path}/`
        : e.type === 'symlink'
          ? `${e.path} -> ${e.target ?? ''}`
          : e.path,
    ]);
    const counts = [
      countOf(files.length, 'file'),
      countOf(folders, 'folder'),
      ...(links > 0 ? [plural(links, 'link')] : []),
    ].join(', ');
    return {
      json: { snapshot, path: path ?? '', entries },
      human: [
        `${describe(snapshot)}${path ? `, below ${path}` : ''}:`,
        ...table(rows, new Set([1])),
        `${counts}; ${formatBytes(bytes)}`,
      ],
    };
  },
};

/** `diff` */
export const diffCommand: CommandSpec = {
  path: ['diff'],
  summary: 'show what changed between two snapshots: added, removed, changed, with sizes',
  usage: 'diff SNAPSHOT1 SNAPSHOT2 (--repo URL [--key-file FILE] | --device DIR) [--json]',
  positionals: [
    { name: 'SNAPSHOT1', required: true },
    { name: 'SNAPSHOT2', required: true },
  ],
  options: { ...REPO_OPTIONS, ...DEVICE_OPTION },
  details: [
    'Compares the file trees of two snapshots: "+" added, "-" removed, "M" changed content,',
    'with sizes before and after. Folders that did not change are not even read.',
    SNAPSHOT_SELECTOR_HELP,
    '',
    ...KEY_SOURCES_HELP,
  ],
  examples: ['backvault diff 1 latest --device ~/.bv'],
  async run({ values, positionals }, ctx) {
    const [s1 = '', s2 = ''] = positionals;
    const r = await withRepository(ctx, values, { allowPrompt: true }, async (access) => {
      const m = await loadInspect();
      const ins = await m.openInspector(access);
      const a = selectSnapshot(ins.snapshots, s1);
      const b = selectSnapshot(ins.snapshots, s2);
      return { a, b, changes: await m.diffSnapshots(ins, a, b) };
    });
    const count = (c: string): number => r.changes.filter((x) => x.change === c).length;
    const sign = { added: '+', removed: '-', changed: 'M' } as const;
    const rows = r.changes.map((c) => {
      const name = c.type === 'dir' ? `${c.path}/` : c.path;
      const size =
        c.type === 'dir'
          ? ''
          : c.change === 'added'
            ? formatBytes(c.sizeAfter ?? 0)
            : c.change === 'removed'
              ? formatBytes(c.sizeBefore ?? 0)
              : `${formatBytes(c.sizeBefore ?? 0)} -> ${formatBytes(c.sizeAfter ?? 0)}`;
      return [sign[c.change], name, size];
    });
    const summary = `${formatCount(count('added'))} added, ${formatCount(count('removed'))} removed, ${formatCount(count('changed'))} changed`;
    return {
      json: {
        from: r.a,
        to: r.b,
        changes: r.changes,
        added: count('added'),
        removed: count('removed'),
        changed: count('changed'),
      },
      human: [
        `from ${describe(r.a)}`,
        `to   ${describe(r.b)}`,
        ...(rows.length ? table(rows, new Set()) : ['no differences']),
        summary,
      ],
    };
  },
};

/** `stats` */
export const statsCommand: CommandSpec = {
  path: ['stats'],
  summary: 'show per snapshot its size, what it costs in the store, and the dedup ratio',
  usage: 'stats (--repo URL [--key-file FILE] | --device DIR) [--json]',
  positionals: [],
  options: { ...REPO_OPTIONS, ...DEVICE_OPTION },
  details: [
    'Per snapshot: SIZE is the size of its files; UNIQUE the distinct data it needs (each',
    'chunk once); STORED what that data takes in the store (compressed, encrypted); ADDED',
    'what it stored that no earlier snapshot needed; DEDUP = SIZE / UNIQUE. The last line is',
    'everything the store holds, unreferenced data included (`backvault prune` frees it).',
    '',
    ...KEY_SOURCES_HELP,
  ],
  examples: ['backvault stats --device ~/.bv'],
  async run({ values }, ctx) {
    const r = await withRepository(ctx, values, { allowPrompt: true }, async (access) => {
      const m = await loadInspect();
      return m.repositoryStats(await m.openInspector(access));
    });
    const rows = [
      ['SEQ', 'ID', 'FILES', 'SIZE', 'UNIQUE', 'STORED', 'ADDED', 'DEDUP'],
      ...r.snapshots.map((s) => [
        String(s.seq),
        shortId(s.id),
        formatCount(s.files),
        formatBytes(s.logicalBytes),
        formatBytes(s.uniqueBytes),
        formatBytes(s.storedBytes),
        formatBytes(s.addedBytes),
        `${s.dedupRatio.toFixed(2)}x`,
      ]),
    ];
    return {
      json: { ...r },
      human: [
        ...(r.snapshots.length ? table(rows, new Set([0, 2, 3, 4, 5, 6, 7])) : ['no snapshots']),
        `store: ${formatBytes(r.storedBytesTotal)} in ${plural(r.packs, 'pack')}`,
      ],
    };
  },
};
