/**
 * What `--snapshot` (and the SNAPSHOT arguments of `ls` and `diff`) accept:
 *
 * - `latest` — the newest snapshot;
 * - a sequence number as `snapshots` shows it in the SEQ column (digits only, fewer than 8);
 * - a snapshot id or a unique prefix of it (hexadecimal, at least 4 digits; the ID column
 *   shows 8).
 */
import type { SnapshotInfo } from 'backvault/backup';
import { NotFoundError, UsageError } from 'backvault/errors';
import { shortId } from './format.js';

/** Help line shared by every command that takes a snapshot. */
export const SNAPSHOT_SELECTOR_HELP =
  'SNAPSHOT is `latest`, a sequence number (the SEQ column of `backvault snapshots`) or an id prefix (the ID column).';

/**
 * The snapshot `selector` names in `list` (oldest first).
 * @throws UsageError when the selector is neither form, or a prefix is ambiguous;
 *   NotFoundError when nothing matches or the repository has no snapshots.
 */
export function selectSnapshot(list: readonly SnapshotInfo[], selector: string): SnapshotInfo {
  if (list.length === 0) {
    throw new NotFoundError('the repository has no snapshots yet', 'Run `backvault backup` first.');
  }
  const sel = selector.trim().toLowerCase();
  const listHint = 'Run `backvault snapshots` to list them.';
  if (sel === 'latest') return list[list.length - 1] as SnapshotInfo;
  if (/^\d{1,7}$/.test(sel)) {
    const seq = Number(sel);
    const found = list.find((s) => s.seq === seq);
    if (!found) {
      const last = list[list.length - 1] as SnapshotInfo;
      throw new NotFoundError(
        `no snapshot with sequence number ${seq} (the latest is ${last.seq})`,
        listHint,
      );
    }
    return found;
  }
  if (!/^[0-9a-f]{4,64}$/.test(sel)) {
    throw new UsageError(
      'not a snapshot: expected `latest`, a sequence number or an id prefix (4 to 64 hexadecimal digits)',
      listHint,
    );
  }
  const found = list.filter((s) => s.id.startsWith(sel));
  if (found.length === 0) throw new NotFoundError(`no snapshot ${sel}`, listHint);
  if (found.length > 1) {
    throw new UsageError(
      `snapshot prefix ${sel} is ambiguous: ${found.map((s) => shortId(s.id)).join(', ')}`,
      'Give more digits, or the sequence number.',
    );
  }
  return found[0] as SnapshotInfo;
}
