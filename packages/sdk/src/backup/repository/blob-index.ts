/**
 * The in-memory blob index: (blob kind, blob id) -> pack and place. A blob is identified by
 * its kind AND its id (SPEC.md §6): a file chunk whose bytes equal a tree's encoding has the
 * same id as the tree, and the two are different blobs (a chunk is never read as a tree). Held in a few typed arrays sorted by
 * id (~50 bytes per blob, where a Map of objects took ~1.3 KB), so memory stays small as a
 * repository grows: a million blobs (~1 TB of media, or years of daily database changes)
 * take ~50 MB. Lookups are binary searches.
 */
import {
  fromHex,
  toHex,
  type BlobEntry,
  type BlobKind,
  type CompressionValue,
} from '../../format/index.js';

const DEMOTE = 1;
const DROP = 2;

/** Where a blob is: pack id (hex) and its entry. */
export interface IndexedBlob {
  packId: string;
  entry: BlobEntry;
}

/** Collects entries, then sorts them into a {@link CompactBlobMap}. */
export class BlobIndexBuilder {
  private ids = new Uint8Array(32 * 1024);
  private nums = new Uint32Array(4 * 1024);
  private flags = new Uint8Array(1024);
  private n = 0;
  private readonly packIds: string[] = [];
  private readonly packNo = new Map<string, number>();
  private readonly packEnd: number[] = [];

  /** Add one entry (later duplicates of an id are dropped by {@link finish}). */
  add(packId: string, e: BlobEntry): void {
    let p = this.packNo.get(packId);
    if (p === undefined) {
      p = this.packIds.length;
      this.packIds.push(packId);
      this.packNo.set(packId, p);
      this.packEnd.push(0);
    }
    this.packEnd[p] = Math.max(this.packEnd[p] as number, e.offset + e.length);
    if (this.n === this.flags.length) {
      const grow = <T extends Uint8Array | Uint32Array>(a: T, per: number): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a.subarray(0, this.n * per) as never);
        return b;
      };
      this.ids = grow(this.ids, 32);
      this.nums = grow(this.nums, 4);
      this.flags = grow(this.flags, 1);
    }
    this.ids.set(e.id, this.n * 32);
    this.nums.set([p, e.offset, e.length, e.rawLength], this.n * 4);
    this.flags[this.n] = (e.kind << 4) | e.compression;
    this.n += 1;
  }

  /** Per pack id (hex): the end of the last blob the added entries place in it. */
  packExtents(): Map<string, number> {
    return new Map(this.packIds.map((id, i) => [id, this.packEnd[i] as number]));
  }

  /**
   * The sorted, de-duplicated map.
   * @param packs which packs to leave out (`drop`) or to use only when no other pack holds
   *   the same blob (`demote`): lost or truncated packs (see `loadIndex`).
   */
  finish(packs: { drop?: ReadonlySet<string>; demote?: ReadonlySet<string> } = {}): CompactBlobMap {
    const packFlag = this.packIds.map((id) =>
      packs.drop?.has(id) ? DROP : packs.demote?.has(id) ? DEMOTE : 0,
    );
    const flagOf = (i: number): number => packFlag[this.nums[i * 4] as number] as number;
    const order: number[] = [];
    for (let i = 0; i < this.n; i++) if (flagOf(i) !== DROP) order.push(i);
    const ids = this.ids;
    const cmpId = (a: number, b: number): number => {
      for (let k = 0; k < 32; k++) {
        const d = (ids[a * 32 + k] as number) - (ids[b * 32 + k] as number);
        if (d !== 0) return d;
      }
      return 0;
    };
    const kindOf = (i: number): number => (this.flags[i] as number) >> 4;
    // Same id: by kind, then a healthy pack before a demoted one, then the first occurrence
    // (stable).
    order.sort((a, b) => cmpId(a, b) || kindOf(a) - kindOf(b) || flagOf(a) - flagOf(b) || a - b);
    const keep: number[] = [];
    for (const i of order) {
      const last = keep[keep.length - 1];
      if (last !== undefined && sameId(ids, last, i) && kindOf(last) === kindOf(i)) continue;
      keep.push(i);
    }
    const m = keep.length;
    const outIds = new Uint8Array(m * 32);
    const outNums = new Uint32Array(m * 4);
    const outFlags = new Uint8Array(m);
    keep.forEach((i, j) => {
      outIds.set(ids.subarray(i * 32, i * 32 + 32), j * 32);
      outNums.set(this.nums.subarray(i * 4, i * 4 + 4), j * 4);
      outFlags[j] = this.flags[i] as number;
    });
    return new CompactBlobMap(outIds, outNums, outFlags, this.packIds);
  }
}

function sameId(ids: Uint8Array, a: number, b: number): boolean {
  for (let k = 0; k < 32; k++) if (ids[a * 32 + k] !== ids[b * 32 + k]) return false;
  return true;
}

/**
 * Read-only map from (kind, blob id) to {@link IndexedBlob}, with a Map-like surface. Sorted
 * by id, then kind: the (rare) data and tree blobs sharing an id are neighbours.
 */
export class CompactBlobMap {
  constructor(
    private readonly ids: Uint8Array,
    private readonly nums: Uint32Array,
    private readonly flags: Uint8Array,
    private readonly packIds: readonly string[],
  ) {}

  /** Number of distinct blobs. */
  get size(): number {
    return this.flags.length;
  }

  private cmp(i: number, id: Uint8Array, kind: number): number {
    let d = 0;
    for (let k = 0; k < 32 && d === 0; k++)
      d = (this.ids[i * 32 + k] as number) - (id[k] as number);
    return d || ((this.flags[i] as number) >> 4) - kind;
  }

  /** Position of the blob of this kind and id, or -1. */
  find(id: Uint8Array, kind: BlobKind): number {
    let lo = 0;
    let hi = this.flags.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const d = this.cmp(mid, id, kind);
      if (d === 0) return mid;
      if (d < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private at(i: number): IndexedBlob {
    const f = this.flags[i] as number;
    return {
      packId: this.packIds[this.nums[i * 4] as number] as string,
      entry: {
        kind: (f >> 4) as BlobKind,
        compression: (f & 15) as CompressionValue,
        id: this.ids.slice(i * 32, i * 32 + 32),
        offset: this.nums[i * 4 + 1] as number,
        length: this.nums[i * 4 + 2] as number,
        rawLength: this.nums[i * 4 + 3] as number,
      },
    };
  }

  /** The blob of this kind with this id (hex or bytes), or undefined. */
  get(id: string | Uint8Array, kind: BlobKind): IndexedBlob | undefined {
    const i = this.find(typeof id === 'string' ? fromHex(id) : id, kind);
    return i < 0 ? undefined : this.at(i);
  }

  /** True when the blob of this kind is indexed. */
  has(id: string | Uint8Array, kind: BlobKind): boolean {
    return this.find(typeof id === 'string' ? fromHex(id) : id, kind) >= 0;
  }

  /** Every blob. */
  *values(): IterableIterator<IndexedBlob> {
    for (let i = 0; i < this.size; i++) yield this.at(i);
  }

  /** Every [id hex, blob]. */
  *[Symbol.iterator](): IterableIterator<[string, IndexedBlob]> {
    for (let i = 0; i < this.size; i++) {
      const b = this.at(i);
      yield [toHex(b.entry.id), b];
    }
  }

  /**
   * The sorted ids of the blobs of one kind (in shared memory for worker threads: read-only
   * there): a worker deduplicates a chunk against data blobs and a tree against tree blobs
   * only.
   */
  sharedIds(kind: BlobKind): { buf: ArrayBufferLike; count: number } {
    let count = 0;
    for (let i = 0; i < this.size; i++) if ((this.flags[i] as number) >> 4 === kind) count += 1;
    // Shared memory where threads exist (Node); a plain buffer elsewhere (Hermes has none).
    const size = Math.max(32, count * 32);
    const buf =
      typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(size) : new ArrayBuffer(size);
    const out = new Uint8Array(buf);
    let j = 0;
    for (let i = 0; i < this.size; i++) {
      if ((this.flags[i] as number) >> 4 !== kind) continue;
      out.set(this.ids.subarray(i * 32, i * 32 + 32), j * 32);
      j += 1;
    }
    return { buf, count };
  }
}
