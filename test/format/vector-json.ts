/**
 * Reading the SPEC.md test vectors (vectors/*.json): typed accessors for their JSON, the
 * decoders that turn their objects into format values (pack entries, tree entries,
 * snapshots, blob references), the error check every negative vector uses, and the case
 * lists a vector file holds.
 *
 * Shared by test/format/vectors.test.ts (Node) and test/phone/hermes-main.ts (bundled by
 * esbuild for Hermes with platform `neutral`): so nothing here may import `node:` — the
 * phone build fails if it does — and a failed check throws a plain Error, not node:assert's.
 */
import { BackvaultError } from '#sdk/errors.js';
import {
  ObjectKind,
  fromHex,
  type BlobEntry,
  type BlobKind,
  type BlobRef,
  type CompressionValue,
  type Snapshot,
  type TreeEntry,
} from '#sdk/format/index.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
/** A vector object: a JSON object with string keys. */
export type V = Record<string, Json>;

/** Throws `assertion failed: what` unless `ok`. */
function ensure(ok: unknown, what: string): asserts ok {
  if (!ok) throw new Error(`assertion failed: ${what}`);
}

export const str = (v: Json | undefined): string => {
  ensure(typeof v === 'string', 'string');
  return v;
};
export const num = (v: Json | undefined): number => {
  ensure(typeof v === 'number', 'number');
  return v;
};
export const arr = (v: Json | undefined): V[] => {
  ensure(Array.isArray(v), 'array');
  return v as V[];
};
export const obj = (v: Json | undefined): V => {
  ensure(v !== null && typeof v === 'object' && !Array.isArray(v), 'object');
  return v as V;
};
export const bytes = (v: Json | undefined): Uint8Array => fromHex(str(v));

/** Run `fn`; it must fail with a backvault error of `code` (`what` names the case). */
export async function rejectsWith(fn: () => unknown, code: string, what: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    ensure(e instanceof BackvaultError, `${what}: not a BackvaultError: ${String(e)}`);
    if (e.code !== code)
      throw new Error(`${what}: ${e.code} (${e.message}), expected ${code}`, { cause: e });
    return;
  }
  throw new Error(`${what}: did not fail (expected ${code})`);
}

/** A pack header / index entry. */
export function entryFrom(j: V): BlobEntry {
  return {
    kind: num(j.kind) as BlobKind,
    compression: num(j.compression) as CompressionValue,
    id: bytes(j.id),
    offset: num(j.offset),
    length: num(j.length),
    rawLength: num(j.rawLength),
  };
}

/** A tree entry: file (type 1), directory (2) or symlink (3). */
export function treeEntryFrom(j: V): TreeEntry {
  const base = { name: str(j.name), mode: num(j.mode), mtimeNs: BigInt(str(j.mtimeNs)) };
  const type = num(j.type);
  if (type === 1)
    return {
      ...base,
      type: 1,
      size: num(j.size),
      chunks: arr(j.chunks).map((c) => bytes(c as unknown as Json)),
    };
  if (type === 2) return { ...base, type: 2, subtree: bytes(j.subtree) };
  return { ...base, type: 3, target: str(j.target) };
}

/** A snapshot's fields (layout 2 when `partial` is present). */
export function snapshotFrom(j: V): Snapshot {
  return {
    seq: num(j.seq),
    prev: j.prev === null ? null : bytes(j.prev),
    timeMs: num(j.timeMs),
    hostname: str(j.hostname),
    rootTree: bytes(j.rootTree),
    rootMode: num(j.rootMode),
    rootMtimeNs: BigInt(str(j.rootMtimeNs)),
    files: num(j.files),
    dirs: num(j.dirs),
    bytes: num(j.bytes),
    ...(j.partial !== undefined ? { partial: j.partial === true, skipped: num(j.skipped) } : {}),
  };
}

/** A blob reference as a tree or the codec takes it. */
export function refFrom(j: V): BlobRef {
  return {
    kind: num(j.kind) as BlobKind,
    compression: num(j.compression) as CompressionValue,
    id: bytes(j.id),
    rawLength: num(j.rawLength),
  };
}

/** The subkey a blob of `kind` is sealed under. */
export const keyFor = (kind: number, keys: { data: Uint8Array; meta: Uint8Array }): Uint8Array =>
  kind === ObjectKind.DATA_BLOB ? keys.data : keys.meta;

/**
 * The case lists of a vector file: every non-empty array of objects at its top level or one
 * level down (`blobs`, `invalid`, `sqlite.cases`, …), in the file's order. The Hermes run
 * counts each one it checked against these, and test/phone/hermes.test.ts wants each one on
 * the file's PASS line, in full.
 */
export function caseLists(v: V): Map<string, number> {
  const out = new Map<string, number>();
  const isCases = (x: Json | undefined): x is Json[] =>
    Array.isArray(x) && x.length > 0 && x.every((e) => e !== null && typeof e === 'object');
  for (const [k, x] of Object.entries(v)) {
    if (isCases(x)) out.set(k, x.length);
    else if (x !== null && typeof x === 'object' && !Array.isArray(x))
      for (const [k2, y] of Object.entries(x)) if (isCases(y)) out.set(`${k}.${k2}`, y.length);
  }
  return out;
}
