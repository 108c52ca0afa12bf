/**
 * Tree blobs: one per directory, stored as blobs of kind TREE_BLOB in packs so unchanged
 * directories deduplicate like file chunks.
 *
 * Plaintext layout (version 1):
 *
 *   u8  version = 1
 *   u32 entry count
 *   entry × count, sorted by name bytes (UTF-8), strictly ascending (so no duplicates):
 *     u16 name length || name (UTF-8; not "", ".", ".."; no "/" and no NUL)
 *     u8  type (1 file, 2 directory, 3 symlink)
 *     u32 mode (permission bits, mode & 0o7777)
 *     i64 mtime in nanoseconds since the Unix epoch
 *     file:      u64 size || u32 chunk count || chunk blob id (32 bytes) × count
 *     directory: subtree blob id (32 bytes)
 *     symlink:   u32 target length || target (UTF-8, not empty, no NUL)
 *
 * The decoder rejects names that could escape the restore directory; the sizes of a
 * file's chunks are checked against `size` when restoring.
 *
 * Browser-safe: no `node:` imports.
 */
import { ByteReader, ByteWriter, compareBytes, utf8 } from './bytes.js';
import { FORMAT_VERSION, ID_BYTES } from './constants.js';

/** Entry types in a tree. */
export const EntryType = { FILE: 1, DIR: 2, SYMLINK: 3 } as const;

export interface EntryBase {
  name: string;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** Modification time, nanoseconds since the epoch. */
  mtimeNs: bigint;
}

/** A regular file: its size and the ids of its chunks in order. */
export interface FileEntry extends EntryBase {
  type: typeof EntryType.FILE;
  size: number;
  chunks: Uint8Array[];
}

/** A directory: the id of its tree blob. */
export interface DirEntry extends EntryBase {
  type: typeof EntryType.DIR;
  subtree: Uint8Array;
}

/** A symbolic link, restored as a link (never followed). */
export interface SymlinkEntry extends EntryBase {
  type: typeof EntryType.SYMLINK;
  target: string;
}

/** One entry of a directory. */
export type TreeEntry = FileEntry | DirEntry | SymlinkEntry;

/** Largest name length a tree may hold (bytes). */
export const MAX_NAME_BYTES = 4096;

/** Why `name` is not a safe single path component, or undefined when it is. */
export function unsafeNameReason(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return 'reserved entry name';
  if (name.includes('/')) return 'entry name contains "/"';
  if (name.includes('\0')) return 'entry name contains NUL';
  return undefined;
}

/**
 * Sort entries into the canonical order (by UTF-8 bytes of the name), in place.
 * @throws TypeError on duplicate or unsafe names (programming errors on the writer side).
 */
export function sortTreeEntries(entries: TreeEntry[]): TreeEntry[] {
  const keyed = entries.map((e) => ({ e, k: utf8(e.name) }));
  keyed.sort((a, b) => compareBytes(a.k, b.k));
  for (let i = 0; i < keyed.length; i++) {
    const item = keyed[i] as { e: TreeEntry; k: Uint8Array };
    const bad = unsafeNameReason(item.e.name);
    if (bad) throw new TypeError(bad);
    if (i > 0 && compareBytes((keyed[i - 1] as { k: Uint8Array }).k, item.k) === 0) {
      throw new TypeError('duplicate entry name');
    }
  }
  entries.splice(0, entries.length, ...keyed.map((x) => x.e));
  return entries;
}

/**
 * Encode a tree. Entries must already be in canonical order ({@link sortTreeEntries}).
 * @throws TypeError on unsorted, duplicate or unsafe names (programming errors).
 */
export function encodeTree(entries: readonly TreeEntry[]): Uint8Array {
  const w = new ByteWriter(64 + entries.length * 96);
  w.u8(FORMAT_VERSION).u32(entries.length);
  let prev: Uint8Array | undefined;
  for (const e of entries) {
    const bad = unsafeNameReason(e.name);
    if (bad) throw new TypeError(bad);
    const name = utf8(e.name);
    if (name.length > MAX_NAME_BYTES) throw new TypeError('entry name too long');
    if (prev && compareBytes(prev, name) >= 0) throw new TypeError('entries not sorted');
    prev = name;
    w.u16(name.length)
      .bytes(name)
      .u8(e.type)
      .u32(e.mode & 0o7777)
      .i64(e.mtimeNs);
    if (e.type === EntryType.FILE) {
      w.u64(e.size).u32(e.chunks.length);
      for (const c of e.chunks) w.bytes(c);
    } else if (e.type === EntryType.DIR) {
      w.bytes(e.subtree);
    } else {
      const t = utf8(e.target);
      w.u32(t.length).bytes(t);
    }
  }
  return w.finish().slice();
}

/**
 * Decode and validate a tree.
 * @throws CorruptBackupError on any malformed content, unsorted or duplicate names, or a
 *   name that could escape the directory ("", ".", "..", "/" or NUL).
 */
export function decodeTree(plain: Uint8Array, object?: string): TreeEntry[] {
  const r = new ByteReader(plain, object);
  const version = r.u8();
  if (version !== FORMAT_VERSION) r.fail(`unsupported tree version ${version}`);
  const count = r.u32();
  // Each entry takes at least 2 + 1 + 1 + 4 + 8 + 4 bytes: bound the loop by the input.
  if (count > r.remaining / 20) r.fail('tree entry count too large');
  const entries: TreeEntry[] = [];
  let prev: Uint8Array | undefined;
  for (let i = 0; i < count; i++) {
    const nameLen = r.u16();
    const nameBytes = r.bytes(nameLen);
    const name = new ByteReader(nameBytes, object).utf8(nameLen);
    const bad = unsafeNameReason(name);
    if (bad) r.fail(bad);
    if (prev && compareBytes(prev, nameBytes) >= 0) r.fail('tree entries not sorted or duplicated');
    prev = nameBytes;
    const type = r.u8();
    const mode = r.u32();
    if (mode > 0o7777) r.fail('bad mode');
    const mtimeNs = r.i64();
    if (type === EntryType.FILE) {
      const size = r.u64();
      const n = r.u32();
      if (n > r.remaining / ID_BYTES) r.fail('chunk count too large');
      const chunks: Uint8Array[] = [];
      for (let j = 0; j < n; j++) chunks.push(r.bytes(ID_BYTES).slice());
      if (size === 0 && n !== 0) r.fail('empty file with chunks');
      if (size > 0 && n === 0) r.fail('non-empty file without chunks');
      entries.push({ type, name, mode, mtimeNs, size, chunks });
    } else if (type === EntryType.DIR) {
      entries.push({ type, name, mode, mtimeNs, subtree: r.bytes(ID_BYTES).slice() });
    } else if (type === EntryType.SYMLINK) {
      const n = r.u32();
      const target = r.utf8(n);
      if (target === '' || target.includes('\0')) r.fail('bad symlink target');
      entries.push({ type, name, mode, mtimeNs, target });
    } else {
      r.fail(`unknown entry type ${type}`);
    }
  }
  r.end();
  return entries;
}
