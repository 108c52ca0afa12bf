/** `backvault restore TARGET --repo URL`: verify a snapshot and write it to a directory. */
import { resolve } from 'node:path';
import { booleanOption, stringOption } from '../args.js';
import { REPO_OPTIONS, loadEngine, withRepository, type CommandSpec } from '../command.js';
import { formatBytes, formatSeconds, plural } from '../format.js';
import { KEY_SOURCES_HELP } from '../key-input.js';
import { RESTORE_VAULT_OPTIONS, RESTORE_VAULT_HELP, finishDeviceSetup } from '../device-source.js';
import { VAULT_HEAD_OPTIONS, checkVaultHead } from '../vault-access.js';

/** `restore` */
export const restoreCommand: CommandSpec = {
  path: ['restore'],
  summary: 'restore a snapshot into a directory (verified before anything is moved into place)',
  usage:
    'restore TARGET --repo URL [--key-file FILE | --password --vault URL --account ID] [--device DIR] [--snapshot ID] [--force] [--json]',
  positionals: [{ name: 'TARGET', required: true }],
  options: {
    ...REPO_OPTIONS,
    snapshot: {
      type: 'string',
      valueName: 'ID',
      description: 'snapshot id or unique prefix (default: the latest)',
    },
    force: {
      type: 'boolean',
      description: 'replace a non-empty TARGET (still only after everything is verified)',
    },
    ...RESTORE_VAULT_OPTIONS,
    ...VAULT_HEAD_OPTIONS,
  },
  details: [
    'Downloads and verifies the snapshot into a temporary directory beside TARGET and moves',
    'it into place only when complete: TARGET is never left half-written. TARGET must be',
    'absent or empty unless --force is given.',
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
    const snapshotId = stringOption(values, 'snapshot');
    const onProgress = ctx.progressSink();
    let setup: { device?: string; lines: string[] } = { lines: [] };
    let vaultLines: string[] = [];
    const r = await withRepository(
      ctx,
      values,
      { allowPrompt: true, device: 'setup' },
      async (access) => {
        const engine = await loadEngine();
        // With a key from the vault: the vault's snapshot head (and its event log) first.
        vaultLines = await checkVaultHead(ctx, values, async () =>
          (await engine.listSnapshots(access)).reduce<{ seq: number; id: string } | undefined>(
            (top, s) => (!top || s.seq > top.seq ? { seq: s.seq, id: s.id } : top),
            undefined,
          ),
        );
        const res = await engine.restore({
          ...access,
          target,
          force: booleanOption(values, 'force'),
          ...(snapshotId ? { snapshotId } : {}),
          ...(onProgress ? { onProgress } : {}),
        });
        // `--device DIR` on a new device: its profile is written once the restore succeeded.
        setup = await finishDeviceSetup(ctx, values, access.backupKey);
        return res;
      },
    );
    return {
      json: { ...r, target, ...(setup.device ? { device: setup.device } : {}) },
      human: [
        `restored snapshot ${r.snapshotId.slice(0, 8)} (seq ${r.seq}) to ${target}`,
        `  ${plural(r.files, 'file')} in ${plural(r.dirs, 'directory', 'directories')}, ${formatBytes(r.bytes)}, all verified`,
        `  took ${formatSeconds(r.seconds)}`,
        ...r.warnings.map((w) => `  warning: ${w}`),
        ...vaultLines,
        ...setup.lines,
      ],
    };
  },
};
