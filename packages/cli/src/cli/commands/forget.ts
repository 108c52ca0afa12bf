/**
 * `backvault forget --repo URL --keep-… [--prune] [--dry-run]`: delete the snapshots a
 * retention policy does not keep; and `forget --device DIR --set-policy --keep-…`: store the
 * policy that `backup --device DIR` applies after each backup.
 */
import type { ForgetResult, ForgetSnapshot } from 'backvault/backup';
import {
  MAX_KEEP,
  defaultTimeZone,
  describeRetentionPolicy,
  validateRetentionPolicy,
  type RetentionPolicy,
} from 'backvault/backup';
import {
  deviceRetentionPolicy,
  loadDevice,
  resolveDeviceDir,
  updateDeviceProfile,
} from '../../device/profile.js';
import { UsageError } from 'backvault/errors';
import { booleanOption, stringOption, type OptionSpec, type OptionValues } from '../args.js';
import { REPO_OPTIONS, loadEngine, withRepository, type CommandSpec } from '../command.js';
import type { CliContext } from '../context.js';
import { DEVICE_OPTION } from '../device-source.js';
import { formatBytes, formatSeconds, plural, shortId } from '../format.js';
import { KEY_SOURCES_HELP } from '../key-input.js';

/** The `--keep-*` count flags and the policy field each sets. */
const COUNT_FLAGS = [
  ['keep-last', 'last', 'keep the N newest snapshots'],
  ['keep-hourly', 'hourly', 'keep the newest snapshot of each of the last N hours with one'],
  ['keep-daily', 'daily', 'keep the newest snapshot of each of the last N days with one'],
  ['keep-weekly', 'weekly', 'keep the newest snapshot of each of the last N ISO weeks with one'],
  ['keep-monthly', 'monthly', 'keep the newest snapshot of each of the last N months with one'],
  ['keep-yearly', 'yearly', 'keep the newest snapshot of each of the last N years with one'],
] as const;

/** The policy flags (shared by forget and its `--set-policy`). */
export const POLICY_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  ...Object.fromEntries(
    COUNT_FLAGS.map(([flag, , description]) => [
      flag,
      { type: 'string', valueName: 'N', description: `${description} (N or "unlimited")` },
    ]),
  ),
  'keep-within': {
    type: 'string',
    valueName: 'DURATION',
    description:
      'keep every snapshot newer than the newest minus DURATION: y, m, d, h units, e.g. 1y6m, 7d, 36h',
  },
};

/**
 * The policy given by the `--keep-*` flags, or `undefined` when none is given.
 * @throws UsageError naming the flag when a value is malformed, or when the policy keeps
 *   nothing.
 */
export function policyFromFlags(values: OptionValues): RetentionPolicy | undefined {
  const policy: Record<string, number | string> = {};
  let given = false;
  for (const [flag, field] of COUNT_FLAGS) {
    const v = stringOption(values, flag);
    if (v === undefined) continue;
    given = true;
    const t = v.trim().toLowerCase();
    if (t === 'unlimited') policy[field] = -1;
    else if (/^\d{1,7}$/.test(t) && Number(t) <= MAX_KEEP) policy[field] = Number(t);
    else {
      throw new UsageError(
        `--${flag} needs a whole number from 0 to ${MAX_KEEP}, or "unlimited"`,
        `E.g. --${flag} 7.`,
      );
    }
  }
  const within = stringOption(values, 'keep-within');
  if (within !== undefined) {
    given = true;
    policy.within = within;
  }
  if (!given) return undefined;
  try {
    return validateRetentionPolicy(policy);
  } catch (e) {
    if (e instanceof UsageError && within !== undefined && /duration/.test(e.message)) {
      throw new UsageError(`--keep-within: ${e.message}`, e.hint);
    }
    throw e;
  }
}

/** `2026-12-06 17:09:33` in `timeZone`. */
export function formatLocalTime(iso: string, timeZone: string): string {
  const parts: Record<string, string> = {};
  const fmt = new Intl.DateTimeFormat('en-US-u-ca-gregory-nu-latn', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  for (const p of fmt.formatToParts(new Date(iso))) parts[p.type] = p.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

/** Table of kept and removed snapshots, oldest first. */
export function forgetTable(r: ForgetResult): string[] {
  const rows = [
    ...r.keep.map((s) => ({ s, action: 'keep' })),
    ...r.remove.map((s) => ({ s, action: r.dryRun ? 'would remove' : 'remove' })),
  ]
    .sort((a, b) => a.s.seq - b.s.seq)
    .map(({ s, action }: { s: ForgetSnapshot; action: string }) => [
      shortId(s.id),
      String(s.seq),
      formatLocalTime(s.time, r.timeZone),
      s.hostname.replace(/[^\x20-\x7e]/g, '?'),
      action,
      s.reasons.join(', '),
    ]);
  const header = ['ID', 'SEQ', `TIME (${r.timeZone})`, 'HOST', 'ACTION', 'REASONS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((c) => (c[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 1 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return rows.length === 0 ? ['no snapshots'] : [line(header), ...rows.map(line)];
}

/** The summary lines under the table. */
export function forgetSummary(r: ForgetResult, prune = false): string[] {
  const lines = [
    r.dryRun
      ? `dry run: would remove ${plural(r.remove.length, 'snapshot')} and keep ${r.keep.length}; nothing was deleted`
      : `removed ${plural(r.removed, 'snapshot')}, kept ${r.keep.length}`,
  ];
  if (r.prune) {
    lines.push(
      `pruned: ${plural(r.prune.packsDeleted, 'pack')} and ${plural(r.prune.indexesDeleted, 'index', 'indexes')} deleted, ${plural(r.prune.packsRepacked, 'pack')} repacked; ${formatBytes(r.prune.bytesFreed)} freed`,
    );
  } else if (r.dryRun && prune) {
    lines.push('(--prune does not run in a dry run)');
  } else if (!r.dryRun && r.removed > 0) {
    lines.push('their data stays stored until `backvault prune` (or forget --prune)');
  }
  lines.push(`took ${formatSeconds(r.seconds)}`);
  return lines;
}

async function setPolicy(
  ctx: CliContext,
  values: OptionValues,
  policy: RetentionPolicy | undefined,
): Promise<{ json: Record<string, unknown>; human: string[] }> {
  const flag = stringOption(values, 'device');
  if (flag === undefined) {
    throw new UsageError(
      '--set-policy needs --device DIR: the policy is stored in the device profile',
    );
  }
  for (const other of ['repo', 'key-file', 'dry-run', 'prune'] as const) {
    if (values[other] !== undefined) {
      throw new UsageError(
        `--set-policy cannot be combined with --${other}: it only stores the policy`,
        'Run `backvault forget --device DIR --dry-run` afterwards to see what it would remove.',
      );
    }
  }
  if (policy === undefined) {
    throw new UsageError(
      '--set-policy needs the policy: --keep-last N, --keep-daily N, … or --keep-within DURATION',
    );
  }
  const dir = resolveDeviceDir(flag, ctx.io.env, ctx.io.cwd);
  await updateDeviceProfile(dir, { retention: policy });
  return {
    json: { device: dir, policy },
    human: [
      `device policy saved: ${describeRetentionPolicy(policy)}`,
      `  applied after each \`backvault backup DIR --device ${flag}\` (then pruned);`,
      `  \`backvault forget --device ${flag} --dry-run\` shows what it would remove now`,
    ],
  };
}

/** `forget` */
export const forgetCommand: CommandSpec = {
  path: ['forget'],
  summary: 'delete the snapshots a retention policy does not keep (--prune frees their data)',
  usage:
    'forget (--repo URL [--key-file FILE] | --device DIR) [--keep-last N] [--keep-hourly N] [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] [--keep-within DURATION] [--prune] [--dry-run] [--json]\n' +
    '  backvault forget --device DIR --set-policy --keep-… [--json]',
  positionals: [],
  options: {
    ...REPO_OPTIONS,
    ...DEVICE_OPTION,
    ...POLICY_OPTIONS,
    prune: {
      type: 'boolean',
      description: 'then delete the data no remaining snapshot uses (as `backvault prune`)',
    },
    'dry-run': {
      type: 'boolean',
      description: 'show what would be removed; delete nothing',
    },
    'set-policy': {
      type: 'boolean',
      description:
        'with --device: store the --keep-* policy in the device profile (applied after each backup); forgets nothing now',
    },
  },
  details: [
    "The --keep-* rules are restic's: the newest snapshot of each of the last N",
    'hours/days/ISO weeks/months/years that have one, the N newest, everything within',
    'DURATION of the newest; a snapshot is kept when any rule keeps it. Calendar buckets use',
    'the local time zone (TZ). The newest snapshot is always kept; a policy that keeps',
    'nothing is refused. Removal deletes the oldest first, so an interruption leaves a',
    'shorter but valid history; run it again to finish.',
    '',
    'With --device DIR and no --keep-*, the device policy is used (default: --keep-last 3).',
    'It is applied after each `backvault backup DIR --device DIR`, with prune; a failure',
    'there is a warning, never a failed backup.',
    '',
    'forget holds the repository lock: it fails with CONFLICT while a backup or prune of the',
    'same repository runs (and they fail while it runs). --dry-run takes no lock.',
    '',
    ...KEY_SOURCES_HELP,
  ],
  examples: [
    'backvault forget --repo /mnt/cloud/chat --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --prune',
    'backvault forget --repo /mnt/cloud/chat --keep-within 30d --dry-run',
    'backvault forget --device ~/.local/share/backvault/device --set-policy --keep-last 5',
  ],
  async run({ values }, ctx) {
    const flagged = policyFromFlags(values);
    if (booleanOption(values, 'set-policy')) return setPolicy(ctx, values, flagged);
    let policy = flagged;
    if (policy === undefined) {
      const device = stringOption(values, 'device');
      if (device === undefined) {
        throw new UsageError(
          'no retention policy given',
          'Give --keep-last N, --keep-daily N, --keep-weekly N, --keep-monthly N, --keep-yearly N, --keep-hourly N or --keep-within DURATION (or --device DIR for its policy).',
        );
      }
      policy = deviceRetentionPolicy(
        (await loadDevice(resolveDeviceDir(device, ctx.io.env, ctx.io.cwd))).profile,
      );
    }
    const timeZone = defaultTimeZone();
    const dryRun = booleanOption(values, 'dry-run');
    const prune = booleanOption(values, 'prune');
    const onProgress = ctx.progressSink();
    const chosen = policy;
    const r = await withRepository(ctx, values, { allowPrompt: true }, async (access, network) =>
      ctx.stoppable('forget', async (signal) =>
        (await loadEngine()).forget({
          ...access,
          ...network,
          signal,
          policy: chosen,
          timeZone,
          dryRun,
          prune,
          ...(onProgress ? { onProgress } : {}),
        }),
      ),
    );
    if (!ctx.json) for (const w of r.warnings) ctx.note(`warning: ${w}`);
    return {
      json: { ...r },
      human: [
        `policy: ${describeRetentionPolicy(r.policy)}`,
        ...forgetTable(r),
        ...forgetSummary(r, prune),
      ],
    };
  },
};
