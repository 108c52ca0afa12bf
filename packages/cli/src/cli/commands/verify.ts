/** `backvault verify`: the restore drill — does this backup restore? — without touching the app. */
import { BackvaultError } from 'backvault/errors';
import { resolveDeviceDir, updateDeviceProfile } from '../../device/profile.js';
import { stringOption, type OptionValues } from '../args.js';
import {
  LIMIT_OPTIONS,
  PROGRESS_OPTIONS,
  REPO_OPTIONS,
  loadEngine,
  withRepository,
  type CommandSpec,
} from '../command.js';
import type { CliContext, CommandResult } from '../context.js';
import { DEVICE_OPTION } from '../device-source.js';
import { filesAndFolders, formatBytes, formatSeconds, plural, shortId } from '../format.js';
import { KEY_SOURCES_HELP } from '../key-input.js';
import { SNAPSHOT_SELECTOR_HELP, selectSnapshot } from '../snapshot-select.js';

/**
 * Run the drill on the snapshot `selector` names (default the latest), record it in the
 * device profile with `--device`, and describe it. Shared by `verify` and `backup --verify`.
 */
export async function runVerify(
  ctx: CliContext,
  values: OptionValues,
  selector: string | undefined,
): Promise<CommandResult> {
  const onProgress = ctx.progressSink();
  const r = await withRepository(ctx, values, { allowPrompt: true }, async (access, network) => {
    const engine = await loadEngine();
    const snapshotId =
      selector === undefined
        ? undefined
        : selectSnapshot(await engine.listSnapshots(access), selector).id;
    return ctx.stoppable('verify', (signal) =>
      engine.verify({
        ...access,
        ...network,
        signal,
        ...(snapshotId ? { snapshotId } : {}),
        ...(onProgress ? { onProgress } : {}),
      }),
    );
  });
  const device = stringOption(values, 'device');
  if (device !== undefined) {
    await updateDeviceProfile(resolveDeviceDir(device, ctx.io.env, ctx.io.cwd), {
      lastVerified: {
        snapshotId: r.snapshotId,
        seq: r.seq,
        time: new Date().toISOString(),
        ok: r.ok,
      },
    });
  }
  const bad = r.databases.filter((d) => d.integrity !== 'ok');
  return {
    json: { verified: r },
    human: [
      `snapshot ${shortId(r.snapshotId)} (seq ${r.seq}) restores: ${filesAndFolders(r.files, r.dirs)}, ${formatBytes(r.bytes)} rebuilt and verified in ${formatSeconds(r.seconds)}`,
      r.databases.length === 0
        ? '  no SQLite database in it'
        : `  ${plural(r.databases.length, 'SQLite database')}: ${bad.length === 0 ? 'integrity_check ok' : `${bad.length} FAILED`}`,
      ...bad.map((d) => `    ${d.path}: ${d.integrity.split('\n')[0] ?? ''}`),
      ...r.warnings.map((w) => `  warning: ${w}`),
    ],
    ...(bad.length > 0
      ? {
          error: new BackvaultError(
            'CORRUPT',
            `${plural(bad.length, 'database')} of snapshot ${shortId(r.snapshotId)} failed its integrity check`,
            'The backup holds the database as it was read: back up again, and check the app’s database on the device.',
          ),
        }
      : {}),
  };
}

/** `verify` */
export const verifyCommand: CommandSpec = {
  path: ['verify'],
  summary: 'restore drill: prove a snapshot restores, without touching the app',
  usage: 'verify (--repo URL [--key-file FILE] | --device DIR) [--snapshot SNAPSHOT] [--json]',
  positionals: [],
  options: {
    ...REPO_OPTIONS,
    ...DEVICE_OPTION,
    snapshot: {
      type: 'string',
      valueName: 'SNAPSHOT',
      description: 'which snapshot (default: the latest)',
    },
    ...PROGRESS_OPTIONS,
    ...LIMIT_OPTIONS,
  },
  details: [
    'Reads every blob the snapshot needs from the store, rebuilds every file in a private',
    'temporary folder (removed afterwards), and runs SQLite’s integrity_check on every',
    'database in it. With --device the outcome is recorded and `status` shows it.',
    'Exits 0 when all is sound, 4 when anything is damaged.',
    '',
    SNAPSHOT_SELECTOR_HELP,
    '',
    ...KEY_SOURCES_HELP,
  ],
  examples: [
    'backvault verify --device ~/.bv',
    'backvault verify --repo /mnt/cloud/chat --snapshot 3',
  ],
  async run({ values }, ctx) {
    return runVerify(ctx, values, stringOption(values, 'snapshot'));
  },
};
