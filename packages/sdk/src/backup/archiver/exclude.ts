/**
 * `--exclude PATTERN` in restic's glob habits, matched against paths relative to the backup
 * source (segments joined by `/`):
 *
 * - `*` matches any run of characters within one segment, `?` one character, `[abc]`,
 *   `[a-z]` and `[!a-z]` / `[^a-z]` one character of (or not of) a set; `\` escapes the next
 *   character;
 * - `**` as a whole segment matches any number of segments (none included);
 * - a pattern starting with `/` is anchored at the source root; any other pattern matches at
 *   any depth (`*.tmp` excludes `a/b/c.tmp`; `cache/tmp` excludes `x/cache/tmp`);
 * - a trailing `/` is ignored (`cache/` is `cache`);
 * - an excluded directory is not entered, so everything below it is excluded too.
 *
 * Exclusion is deliberate: excluded entries do not make a snapshot partial.
 */
import { UsageError } from '../../errors.js';

type Segment = { kind: 'any' } | { kind: 'glob'; re: RegExp };

/** One compiled pattern. */
interface Compiled {
  anchored: boolean;
  segments: Segment[];
}

function segmentRegExp(seg: string, pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === '\\') {
      const next = seg[i + 1];
      if (next === undefined) throw bad(pattern, 'ends with a lone \\');
      re += escapeRe(next);
      i += 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) throw bad(pattern, 'has an unclosed [');
      let body = seg.slice(i + 1, end);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      const cls = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
      re += `[${negate ? '^' : ''}${cls}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 'u');
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function bad(pattern: string, why: string): UsageError {
  return new UsageError(`exclude pattern ${JSON.stringify(pattern)} ${why}`);
}

function compile(pattern: string): Compiled {
  let p = pattern.trim();
  if (p === '' || p === '/') throw bad(pattern, 'is empty');
  const anchored = p.startsWith('/');
  p = p.replace(/^\/+/, '').replace(/\/+$/, '');
  const segments = p
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .map((s): Segment =>
      s === '**' ? { kind: 'any' } : { kind: 'glob', re: segmentRegExp(s, pattern) },
    );
  if (segments.length === 0) throw bad(pattern, 'is empty');
  return { anchored, segments };
}

/** Does `segs[from..]` match `pat[pi..]` completely? */
function matchFrom(pat: Segment[], pi: number, segs: string[], si: number): boolean {
  if (pi === pat.length) return si === segs.length;
  const s = pat[pi] as Segment;
  if (s.kind === 'any') {
    for (let k = si; k <= segs.length; k++) if (matchFrom(pat, pi + 1, segs, k)) return true;
    return false;
  }
  return si < segs.length && s.re.test(segs[si] as string) && matchFrom(pat, pi + 1, segs, si + 1);
}

/** A set of exclude patterns. */
export class ExcludeSet {
  private readonly compiled: Compiled[];

  /**
   * @throws UsageError naming a malformed pattern (nothing is backed up then).
   */
  constructor(readonly patterns: readonly string[]) {
    this.compiled = patterns.map(compile);
  }

  /** True when no pattern was given. */
  get empty(): boolean {
    return this.compiled.length === 0;
  }

  /** Whether the entry at `rel` (relative to the source, `/`-separated) is excluded. */
  matches(rel: string): boolean {
    const segs = rel.split('/').filter((s) => s !== '');
    for (const c of this.compiled) {
      if (c.anchored) {
        if (matchFrom(c.segments, 0, segs, 0)) return true;
      } else {
        for (let i = 0; i < segs.length; i++) if (matchFrom(c.segments, 0, segs, i)) return true;
      }
    }
    return false;
  }
}

/**
 * Patterns of an `--exclude-file`: one per line; blank lines and lines starting with `#`
 * are ignored; surrounding white space is trimmed.
 */
export function parseExcludeFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
