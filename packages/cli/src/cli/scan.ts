/**
 * The quick scan before a backup that gives the progress bar its total: how many files and
 * bytes the source holds, from directory listings and `lstat` only (no file is read). Done
 * in the CLI, not in the engine: it only feeds the bar, and only when a bar is drawn.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Progress } from 'backvault/backup';

/** What the scan found. */
export interface ScanTotals {
  files: number;
  bytes: number;
}

/**
 * Count regular files and their bytes below `root` (symbolic links are not followed;
 * unreadable folders are skipped: the backup itself reports them).
 * @param onStep called now and then with the running totals, to show that the scan moves.
 */
export async function scanSource(
  root: string,
  onStep?: (t: ScanTotals) => void,
): Promise<ScanTotals> {
  const totals: ScanTotals = { files: 0, bytes: 0 };
  const dirs = [root];
  let last = 0;
  while (dirs.length > 0) {
    const dir = dirs.pop() as string;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(dir, name);
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) dirs.push(path);
      else if (st.isFile()) {
        totals.files += 1;
        totals.bytes += st.size;
      }
    }
    const now = performance.now();
    if (onStep && now - last > 100) {
      last = now;
      onStep({ ...totals });
    }
  }
  return totals;
}

/**
 * A backup progress callback with totals: scans `source` first (showing a `scan` line),
 * then hands the engine a callback that adds the totals to each report. Files that grow
 * during the backup never push the bar past 100 %.
 * @returns `undefined` when no bar is drawn (the scan is skipped too).
 */
export async function backupProgress(
  sink: ((p: Progress) => void) | undefined,
  source: string,
): Promise<((p: Progress) => void) | undefined> {
  if (!sink) return undefined;
  const totals = await scanSource(source, (t) =>
    sink({ phase: 'scan', bytesDone: t.bytes, filesDone: t.files }),
  );
  return (p) =>
    sink({
      ...p,
      bytesTotal: Math.max(totals.bytes, p.bytesDone),
      filesTotal: Math.max(totals.files, p.filesDone),
    });
}
