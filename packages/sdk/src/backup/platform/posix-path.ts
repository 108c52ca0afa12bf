/**
 * POSIX path syntax without node:path (MemoryFiles, and any platform whose paths are
 * `/`-separated): what the engine needs of join, dirname, basename, relative and resolve.
 */
import type { PathOps } from './types.js';

function normalize(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const s of p.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
      continue;
    }
    out.push(s);
  }
  const body = out.join('/');
  return abs ? '/' + body : body || '.';
}

export const posixPath: PathOps = {
  sep: '/',
  join: (...parts) => normalize(parts.filter((p) => p !== '').join('/') || '.'),
  dirname(p) {
    const n = normalize(p);
    const i = n.lastIndexOf('/');
    if (i < 0) return '.';
    return i === 0 ? '/' : n.slice(0, i);
  },
  basename(p) {
    const n = normalize(p);
    return n === '/' ? '' : n.slice(n.lastIndexOf('/') + 1);
  },
  relative(from, to) {
    const a = normalize(from).split('/').filter(Boolean);
    const b = normalize(to).split('/').filter(Boolean);
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/');
  },
  resolve: (p) => normalize(p.startsWith('/') ? p : '/' + p),
};
