/** Human-readable numbers for CLI output (sizes, rates, durations, counts). */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1536` → `1.5 KiB`; three significant digits, binary units. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${Math.round(v)} B`;
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${UNITS[u]}`;
}

/** Seconds → `0:07`, `12:03`, `1:02:03`. */
export function formatClock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Seconds → `0.42 s`, `12.3 s`, `2:05`. */
export function formatSeconds(seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return formatClock(seconds);
}

/** `1234567` → `1,234,567` (locale-independent so output is stable in tests and logs). */
export function formatCount(n: number): string {
  return String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `n` with a singular/plural noun: `1 file`, `2 files`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** Like {@link plural}, but `no files` for none. */
export function countOf(n: number, one: string, many = `${one}s`): string {
  return n === 0 ? `no ${many}` : plural(n, one, many);
}

/** Short form of a snapshot id for tables (the full id is in `--json`). */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

/**
 * `3 files in 2 folders`, and with no folder below the top one `3 files, no subfolders`
 * (never "in 0 directories"). `folders` counts the folders below the top one.
 */
export function filesAndFolders(files: number, folders: number): string {
  return folders === 0
    ? `${plural(files, 'file')}, no subfolders`
    : `${plural(files, 'file')} in ${plural(folders, 'folder')}`;
}

/**
 * A time for human listings: local time with the zone's offset, to the second,
 * e.g. `2026-12-06 17:03:12 +01:00` (`--json` keeps ISO 8601 UTC). The zone is the
 * process's (the TZ environment variable, else the system's).
 */
export function formatLocalTime(time: string | number | Date): string {
  const d = new Date(time);
  if (Number.isNaN(d.getTime())) return String(time);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return (
    `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ` +
    `${sign}${p2(Math.floor(abs / 60))}:${p2(abs % 60)}`
  );
}

/**
 * `text` with every control character (C0, DEL, C1) shown as `\xNN`. Names in human output
 * are data, and a chat's media names can come from other people: ESC or CR in one must not
 * recolour, retitle or rewrite the terminal, and a newline must not fake a second entry.
 */
export function printable(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex
    /[\x00-\x1f\x7f-\x9f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
