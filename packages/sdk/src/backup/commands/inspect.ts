/**
 * Looking inside a repository without restoring it: list a snapshot's tree (`ls`), compare
 * two snapshots (`diff`) and measure what each snapshot costs in the store (`stats`).
 * Read-only; built on the readers of `repository/` (config and key check, the verified
 * snapshot chain, the index, verified tree blobs), so everything shown is authenticated.
 */
import type { SnapshotInfo, RepoAccess } from '../api.js';
import { snapshotInfo } from './snapshots.js';
import { BackvaultError, CorruptBackupError, HINTS, NotFoundError } from '../../errors.js';
import {
  EntryType,
  ObjectKind,
  PREFIX,
  toHex,
  type BlobKind,
  type TreeEntry,
} from '../../format/index.js';
import { listPacks, openRepository, type Repo } from '../repository/repository.js';
import { loadChain, type LoadedSnapshot } from '../repository/snapshots.js';
import {
  READER_ATTEMPTS,
  indexGeneration,
  loadIndex,
  loadIndexSettled,
  type BlobIndex,
} from '../repository/indexes.js';
import { readTree } from '../repository/packs.js';

/** One entry as `ls` shows it. Paths use `/` and are relative to the snapshot's root. */
export interface ListedEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** Bytes (files only; 0 otherwise). */
  size: number;
  /** Permission bits. */
  mode: number;
  /** Modification time, ISO 8601 UTC. */
  mtime: string;
  /** Link target (symlinks only). */
  target?: string;
}

/** One difference between two snapshots. */
export interface DiffEntry {
  path: string;
  change: 'added' | 'removed' | 'changed';
  type: 'file' | 'dir' | 'symlink';
  /** Size in the older snapshot (absent when added). */
  sizeBefore?: number;
  /** Size in the newer snapshot (absent when removed). */
  sizeAfter?: number;
}

/** What one snapshot costs. */
export interface SnapshotStats {
  id: string;
  seq: number;
  /** Bytes of the files as they were on disk. */
  logicalBytes: number;
  files: number;
  /** Distinct file data the snapshot needs (every chunk once, before compression). */
  uniqueBytes: number;
  /** Stored (compressed, encrypted) bytes of the blobs the snapshot needs, trees included. */
  storedBytes: number;
  /** Stored bytes of blobs that no earlier snapshot needs: what this snapshot added. */
  addedBytes: number;
  /** logicalBytes / uniqueBytes: how much deduplication saves inside the snapshot. */
  dedupRatio: number;
}

/** An opened repository with its verified chain and index, for the functions below. */
export interface Inspector {
  readonly snapshots: SnapshotInfo[];
  /** Entries of the tree blob `id` (cached: trees are shared between snapshots). */
  tree(id: Uint8Array): Promise<TreeEntry[]>;
  root(s: SnapshotInfo): Uint8Array;
}

/** The opened repository and index behind an {@link Inspector} (not part of the API). */
const opened = new WeakMap<Inspector, { repo: Repo; index: BlobIndex }>();

function internals(ins: Inspector): { repo: Repo; index: BlobIndex } {
  const o = opened.get(ins);
  if (!o) throw new TypeError('not an Inspector from openInspector()');
  return o;
}

const info = snapshotInfo;

/**
 * The index; when an index object is damaged, the packs it listed are read by their own
 * authenticated headers instead (as restore --partial, check and backup do): listing and
 * comparing snapshots needs only trees, and a damaged index object costs none of them
 * while its packs are intact. The store's packs are listed only then.
 */
async function loadIndexSalvaging(repo: Repo): Promise<BlobIndex> {
  try {
    return await loadIndex(repo);
  } catch (e) {
    if (!(e instanceof CorruptBackupError && e.object?.startsWith(PREFIX.index) === true)) throw e;
    return loadIndex(repo, undefined, {
      stored: await listPacks(repo.storage),
      lost: 'demote',
      skipDamaged: true,
    });
  }
}

/**
 * Open the repository: key check, verified snapshot chain (rollback-checked against the
 * state file), and the index.
 * @throws the errors of `openRepository`, `loadChain`, `loadIndex`.
 */
export async function openInspector(access: RepoAccess): Promise<Inspector> {
  const repo = await openRepository(access);
  const chain = await loadChain(repo);
  const loaded = await loadIndexSettled(repo, () => loadIndexSalvaging(repo));
  let generation = loaded.generation;
  const state = { repo, index: loaded.index };
  const byId = new Map(chain.map((s) => [s.id, s]));
  const cache = new Map<string, Promise<TreeEntry[]>>();
  // No lock is taken (read-only credentials must do): a tree whose pack a prune replaced
  // is read again from the new index, as restore and check do (SPEC.md §14).
  const read = async (id: Uint8Array): Promise<TreeEntry[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await readTree(repo, state.index, id);
      } catch (e) {
        if (
          attempt >= READER_ATTEMPTS ||
          !(e instanceof BackvaultError && (e.code === 'MISSING_OBJECT' || e.code === 'CORRUPT'))
        )
          throw e;
        if ((await indexGeneration(repo).catch(() => generation)) === generation) throw e;
        ({ index: state.index, generation } = await loadIndexSettled(repo, () =>
          loadIndexSalvaging(repo),
        ));
      }
    }
  };
  const ins: Inspector = {
    snapshots: chain.map(info),
    root: (s) => (byId.get(s.id) as LoadedSnapshot).snap.rootTree,
    tree(id) {
      const hex = toHex(id);
      let t = cache.get(hex);
      if (!t) {
        t = read(id);
        cache.set(hex, t);
      }
      return t;
    },
  };
  opened.set(ins, state);
  return ins;
}

const TYPE_NAME = {
  [EntryType.FILE]: 'file',
  [EntryType.DIR]: 'dir',
  [EntryType.SYMLINK]: 'symlink',
} as const;

function listed(path: string, e: TreeEntry): ListedEntry {
  return {
    path,
    type: TYPE_NAME[e.type],
    size: e.type === EntryType.FILE ? e.size : 0,
    mode: e.mode,
    mtime: new Date(Number(e.mtimeNs / 1_000_000n)).toISOString(),
    ...(e.type === EntryType.SYMLINK ? { target: e.target } : {}),
  };
}

/** `a/b/`, `/a/b`, `./a` → `['a', 'b']`. */
export function pathParts(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

/**
 * Every entry below `path` in snapshot `s`, depth first, sorted by name (a file `path`
 * gives that one entry).
 * @throws NotFoundError when `path` is not in the snapshot.
 */
export async function listSnapshotTree(
  ins: Inspector,
  s: SnapshotInfo,
  path = '',
): Promise<ListedEntry[]> {
  const parts = pathParts(path);
  let tree = await ins.tree(ins.root(s));
  let prefix = '';
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i] as string;
    const e = tree.find((x) => x.name === name);
    const here = prefix ? `${prefix}/${name}` : name;
    if (!e) {
      throw new NotFoundError(`no ${here} in snapshot ${s.seq}`, HINTS.noSuchPath);
    }
    if (e.type !== EntryType.DIR) {
      if (i === parts.length - 1) return [listed(here, e)];
      throw new NotFoundError(`${here} in snapshot ${s.seq} is not a folder`);
    }
    tree = await ins.tree(e.subtree);
    prefix = here;
  }
  const out: ListedEntry[] = [];
  const walk = async (entries: TreeEntry[], at: string): Promise<void> => {
    for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = at ? `${at}/${e.name}` : e.name;
      out.push(listed(p, e));
      if (e.type === EntryType.DIR) await walk(await ins.tree(e.subtree), p);
    }
  };
  await walk(tree, prefix);
  return out;
}

function sameContent(a: TreeEntry, b: TreeEntry): boolean {
  if (a.type !== b.type) return false;
  if (a.type === EntryType.FILE && b.type === EntryType.FILE) {
    return (
      a.size === b.size &&
      a.chunks.length === b.chunks.length &&
      a.chunks.every((c, i) => toHex(c) === toHex(b.chunks[i] as Uint8Array))
    );
  }
  if (a.type === EntryType.SYMLINK && b.type === EntryType.SYMLINK) return a.target === b.target;
  return true;
}

/**
 * What changed from snapshot `a` to snapshot `b`: files and links added, removed or with
 * other content (a folder added or removed is listed with everything in it). Identical
 * subtrees (same tree id) are skipped without reading them. Sorted by path.
 */
export async function diffSnapshots(
  ins: Inspector,
  a: SnapshotInfo,
  b: SnapshotInfo,
): Promise<DiffEntry[]> {
  const out: DiffEntry[] = [];
  const all = async (e: TreeEntry, p: string, change: 'added' | 'removed'): Promise<void> => {
    const size = e.type === EntryType.FILE ? e.size : 0;
    out.push({
      path: p,
      change,
      type: TYPE_NAME[e.type],
      ...(change === 'added' ? { sizeAfter: size } : { sizeBefore: size }),
    });
    if (e.type === EntryType.DIR) {
      for (const c of await ins.tree(e.subtree)) await all(c, `${p}/${c.name}`, change);
    }
  };
  const walk = async (ta: Uint8Array, tb: Uint8Array, at: string): Promise<void> => {
    if (toHex(ta) === toHex(tb)) return;
    const ea = new Map((await ins.tree(ta)).map((e) => [e.name, e]));
    const eb = new Map((await ins.tree(tb)).map((e) => [e.name, e]));
    const names = [...new Set([...ea.keys(), ...eb.keys()])].sort();
    for (const name of names) {
      const p = at ? `${at}/${name}` : name;
      const x = ea.get(name);
      const y = eb.get(name);
      if (!x && y) await all(y, p, 'added');
      else if (x && !y) await all(x, p, 'removed');
      else if (x && y) {
        if (x.type === EntryType.DIR && y.type === EntryType.DIR) {
          await walk(x.subtree, y.subtree, p);
        } else if (x.type !== y.type) {
          await all(x, p, 'removed');
          await all(y, p, 'added');
        } else if (!sameContent(x, y)) {
          out.push({
            path: p,
            change: 'changed',
            type: TYPE_NAME[y.type],
            sizeBefore: x.type === EntryType.FILE ? x.size : 0,
            sizeAfter: y.type === EntryType.FILE ? y.size : 0,
          });
        }
      }
    }
  };
  await walk(ins.root(a), ins.root(b), '');
  return out.sort((p, q) => (p.path < q.path ? -1 : p.path > q.path ? 1 : 0));
}

/**
 * Per snapshot (oldest first): logical size, distinct and stored bytes it needs, what it
 * added to the store, and the dedup ratio; plus the store's total (every pack).
 */
export async function repositoryStats(
  ins: Inspector,
): Promise<{ snapshots: SnapshotStats[]; storedBytesTotal: number; packs: number }> {
  const seenBefore = new Set<string>();
  const out: SnapshotStats[] = [];
  for (const s of ins.snapshots) {
    const trees = new Set<string>();
    const chunks = new Set<string>();
    const walk = async (id: Uint8Array): Promise<void> => {
      const hex = toHex(id);
      if (trees.has(hex)) return;
      trees.add(hex);
      for (const e of await ins.tree(id)) {
        if (e.type === EntryType.DIR) await walk(e.subtree);
        else if (e.type === EntryType.FILE) for (const c of e.chunks) chunks.add(toHex(c));
      }
    };
    await walk(ins.root(s));
    let uniqueBytes = 0;
    let storedBytes = 0;
    let addedBytes = 0;
    const needed: [string, BlobKind][] = [
      ...[...trees].map((h): [string, BlobKind] => [h, ObjectKind.TREE_BLOB]),
      ...[...chunks].map((h): [string, BlobKind] => [h, ObjectKind.DATA_BLOB]),
    ];
    for (const [hex, kind] of needed) {
      const at = internals(ins).index.blobs.get(hex, kind);
      if (!at) continue;
      if (kind === ObjectKind.DATA_BLOB) uniqueBytes += at.entry.rawLength;
      storedBytes += at.entry.length;
      // Blobs are named per kind: the same id as a tree and as data are two blobs.
      const key = `${kind}:${hex}`;
      if (!seenBefore.has(key)) addedBytes += at.entry.length;
      seenBefore.add(key);
    }
    out.push({
      id: s.id,
      seq: s.seq,
      logicalBytes: s.bytes,
      files: s.files,
      uniqueBytes,
      storedBytes,
      addedBytes,
      dedupRatio: uniqueBytes > 0 ? s.bytes / uniqueBytes : 1,
    });
  }
  const packs = await listPacks(internals(ins).repo.storage);
  let storedBytesTotal = 0;
  for (const size of packs.values()) storedBytesTotal += size;
  return { snapshots: out, storedBytesTotal, packs: packs.size };
}
