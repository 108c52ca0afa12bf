/**
 * The device's retention policy, applied after each successful `backup --device DIR`:
 * forget what the policy does not keep, then prune. The backup is already saved when this
 * runs, so nothing here may turn it into a failure: any error becomes a warning of the
 * backup result (and the next backup, or `backvault forget --device DIR`, tries again).
 */
import type { BackupResult } from 'backvault/backup';
import { describeRetentionPolicy } from 'backvault/backup';
import { deviceRetentionPolicy, loadDevice, resolveDeviceDir } from '../device/profile.js';
import { BackvaultError } from 'backvault/errors';
import { stringOption, type OptionValues } from './args.js';
import { loadEngine, withRepository } from './command.js';
import type { CliContext } from './context.js';
import { formatBytes, plural } from './format.js';

/** What the policy run did, for the backup's output. */
export interface RetentionOutcome {
  /** For `--json`: `{ policy, removed: [ids], kept, bytesFreed }` or `{ error }`. */
  json: Record<string, unknown>;
  /** Lines for the human output (empty when nothing was removed). */
  human: string[];
}

/**
 * After a successful backup: with `--device`, apply the device's retention policy (its own,
 * else keep the last 3) with prune. Without `--device`, does nothing.
 *
 * Never throws for a failure of the policy run (a bad stored policy, a lock held by another
 * device's backup, an unreachable store, a damaged repository): it appends a warning to
 * `result.warnings` and returns the error in `json`.
 * @returns `undefined` without `--device`.
 */
export async function applyRetentionAfterBackup(
  ctx: CliContext,
  values: OptionValues,
  result: Pick<BackupResult, 'warnings'>,
): Promise<RetentionOutcome | undefined> {
  const flag = stringOption(values, 'device');
  if (flag === undefined) return undefined;
  try {
    const dir = resolveDeviceDir(flag, ctx.io.env, ctx.io.cwd);
    const policy = deviceRetentionPolicy((await loadDevice(dir)).profile);
    const r = await withRepository(ctx, values, { allowPrompt: false }, async (access) => {
      const engine = await loadEngine();
      const f = await engine.forget({ ...access, policy });
      // Prune (which may rewrite packs) only when a snapshot went: most backups of a
      // device then cost no prune at all.
      return f.removed > 0 ? { ...f, prune: await engine.prune(access) } : f;
    });
    const bytesFreed = r.prune?.bytesFreed ?? 0;
    return {
      json: {
        policy: r.policy,
        removed: r.remove.map((s) => s.id),
        kept: r.keep.length,
        bytesFreed,
      },
      human:
        r.removed > 0
          ? [
              `  retention (${describeRetentionPolicy(r.policy)}): removed ${plural(r.removed, 'old snapshot')} (seq ${r.remove.map((s) => s.seq).join(', ')}), ${formatBytes(bytesFreed)} freed`,
            ]
          : [],
    };
  } catch (e) {
    const code = e instanceof BackvaultError ? e.code : 'INTERNAL';
    const message = ctx.redact(e instanceof Error ? e.message : String(e));
    result.warnings.push(
      `the device's retention policy was not applied (${code}: ${message}); the backup is saved — run \`backvault forget --device ${flag}\` to retry`,
    );
    return { json: { error: { code, message } }, human: [] };
  }
}
