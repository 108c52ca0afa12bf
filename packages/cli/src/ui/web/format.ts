/** Numbers and times as the page shows them (the CLI's wording, browser-side). */

/** 1536 → "1.5 KiB" */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0
    ? `${n} ${n === 1 ? 'byte' : 'bytes'}`
    : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** 75 → "1 min 15 s" */
export function formatSeconds(s: number): string {
  if (s < 1) return 'under a second';
  const r = Math.round(s);
  if (r < 60) return `${r} s`;
  const m = Math.floor(r / 60);
  if (m < 60) return `${m} min ${r % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** An ISO time in the browser's locale. */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** "3 attempts" / "1 attempt" */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
