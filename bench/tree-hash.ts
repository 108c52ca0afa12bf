/**
 * Streaming SHA-256 of every file of a directory tree, for byte-equality checks of a
 * restored chat against its source without holding files in memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** One regular file of a tree: relative `/`-separated path, size, mode, mtime, SHA-256 hex. */
export interface FileDigest {
  path: string;
  size: number;
  mode: number;
  mtimeMs: number;
  sha256: string;
}

/** SHA-256 of one file, read as a stream. @throws Error when the file cannot be read. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/**
 * Digest of every regular file below `root`, sorted by path.
 * @throws Error when the tree cannot be read.
 */
export async function hashTree(root: string): Promise<FileDigest[]> {
  const out: FileDigest[] = [];
  const entries = await readdir(root, { withFileTypes: true, recursive: true });
  for (const e of entries) {
    if (!e.isFile()) continue;
    const full = join(e.parentPath, e.name);
    const st = await lstat(full);
    out.push({
      path: relative(root, full).split(sep).join('/'),
      size: st.size,
      mode: st.mode & 0o7777,
      mtimeMs: st.mtimeMs,
      sha256: await hashFile(full),
    });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Differences between two tree digests. */
export interface TreeDiff {
  /** Paths whose bytes differ, or present on one side only. */
  content: string[];
  /** Paths with equal bytes but different mode or mtime (to the millisecond). */
  metadata: string[];
}

/** Compare two results of {@link hashTree}. */
export function diffTrees(a: readonly FileDigest[], b: readonly FileDigest[]): TreeDiff {
  const byPath = new Map(b.map((f) => [f.path, f]));
  const content: string[] = [];
  const metadata: string[] = [];
  for (const f of a) {
    const g = byPath.get(f.path);
    byPath.delete(f.path);
    if (g === undefined || g.sha256 !== f.sha256 || g.size !== f.size) content.push(f.path);
    else if (g.mode !== f.mode || Math.floor(g.mtimeMs) !== Math.floor(f.mtimeMs))
      metadata.push(f.path);
  }
  content.push(...byPath.keys());
  return { content, metadata };
}
