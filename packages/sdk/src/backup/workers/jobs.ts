/**
 * The jobs of a backup, a restore and a check, run by a worker thread (node/worker.ts) or
 * by the calling thread (in-thread.ts) — the same code either way: read file ranges, cut
 * chunks, compute blob ids, skip chunks the repository already has, compress where it
 * pays, seal and append to this runner's own pack; finished packs go to `emit`. Also opens
 * and verifies blobs, and writes verified plaintext into a restore's files.
 *
 * Each runner builds its own packs, so the same new chunk met by two workers in one run may
 * be stored twice (harmless: ids are content-derived; prune repacks the duplicates away).
 */
import { CorruptBackupError } from '../../errors.js';
import { ObjectKind, type BlobKind, type BlobRef } from '../../format/index.js';
import {
  CDC_MAX,
  CDC_MIN,
  SINGLE_CHUNK_MAX,
  allZero,
  gearTable,
  nextCut,
  sqliteChunkSize,
} from '../archiver/chunker.js';
import { maybeCompress, openBlob } from '../repository/blob-codec.js';
import { hmac, type RepoKeys } from '../repository/keys.js';
import { PackBuilder, type PackMessage } from '../repository/pack-builder.js';
import type { SourceReader, TargetWriter } from '../platform/types.js';
import type { FileJob, FileResult, KnownIds, PackFileRange, WriteItem } from './pool-types.js';

const READ_BLOCK = 2 * 1024 * 1024;

/** What a runner is given. */
export interface JobRunnerInit {
  keys: RepoKeys;
  known: { data: KnownIds; tree: KnownIds };
  packTarget: number;
  /** A finished pack (its buffer is handed over). */
  emit: (pack: PackMessage) => void;
  /** A pack buffer to reuse (or undefined: allocate); may block until one is returned. */
  nextBuffer?: (size: number) => Uint8Array<ArrayBuffer> | undefined;
  /** Opens a source file for reading. */
  openRead: (path: string) => SourceReader | Promise<SourceReader>;
  /** The writer of a restore file's handle. */
  writer: (handle: number) => TargetWriter;
  /** Reads a range of a local pack file (absent: ranges are always handed over). */
  readPackRange?: (src: PackFileRange, object: string) => Uint8Array | Promise<Uint8Array>;
  /** Bytes processed (a host may collect garbage: node/gc.ts). */
  accountGarbage?: (bytes: number) => void;
  /** Awaited after each new chunk (the calling thread waits there for stored packs). */
  backpressure?: () => Promise<void> | undefined;
  /** True once the pool is closing: a job throws at its next chunk or blob (see stopCheck). */
  stopped?: () => boolean;
}

/** Thrown by a job that stopped because its pool is closing. */
export class PoolClosedError extends Error {
  constructor() {
    super('worker pool closed');
    Object.setPrototypeOf(this, new.target.prototype); // see BackvaultError (src/errors.ts)
  }
}

/** A local pack file could not be read (readPackRange): MISSING_OBJECT or UNAVAILABLE. */
export class PackReadError extends Error {
  constructor(
    readonly store: 'missing' | 'unavailable',
    readonly object: string,
    message: string,
  ) {
    super(message);
    Object.setPrototypeOf(this, new.target.prototype); // see BackvaultError (src/errors.ts)
  }
}

/**
 * The blobs one runner stored during this run, by kind and id: an open-addressing hash set
 * of 33-byte slots (kind, id) in one buffer, ~50-90 bytes per blob where a Set of
 * `kind:hex` strings took ~110 plus the string's rope. Ids are keyed hashes (HMAC under the
 * repository's key), so their first bytes are a uniform hash no one without the key can
 * aim at one slot.
 */
export class StoredIds {
  private slots: Uint8Array;
  private mask: number;
  private count = 0;

  constructor(capacity = 4096) {
    let n = 16;
    while (n < capacity) n *= 2;
    this.slots = new Uint8Array(n * 33);
    this.mask = n - 1;
  }

  /** Number of ids held. */
  get size(): number {
    return this.count;
  }

  /** The slot holding (kind, id), or the empty slot where it would go. */
  private slot(kind: number, id: Uint8Array): number {
    const s = this.slots;
    let i =
      ((id[0] as number) |
        ((id[1] as number) << 8) |
        ((id[2] as number) << 16) |
        ((id[3] as number) << 24)) &
      this.mask;
    for (;;) {
      const base = i * 33;
      const k = s[base] as number;
      if (k === 0) return i;
      if (k === kind) {
        let j = 0;
        while (j < 32 && s[base + 1 + j] === id[j]) j++;
        if (j === 32) return i;
      }
      i = (i + 1) & this.mask;
    }
  }

  has(kind: BlobKind, id: Uint8Array): boolean {
    return this.slots[this.slot(kind, id) * 33] !== 0;
  }

  /** Add (kind, id); a kind is never 0 (SPEC.md §6). */
  add(kind: BlobKind, id: Uint8Array): void {
    if (id.length !== 32 || (kind as number) === 0) throw new Error('not a blob id');
    const i = this.slot(kind, id);
    if (this.slots[i * 33] !== 0) return;
    this.slots[i * 33] = kind;
    this.slots.set(id, i * 33 + 1);
    this.count += 1;
    if (this.count * 10 > (this.mask + 1) * 7) this.grow();
  }

  private grow(): void {
    const old = this.slots;
    const n = (this.mask + 1) * 2;
    this.slots = new Uint8Array(n * 33);
    this.mask = n - 1;
    for (let base = 0; base < old.length; base += 33) {
      const kind = old[base] as number;
      if (kind === 0) continue;
      const id = old.subarray(base + 1, base + 33);
      const i = this.slot(kind, id);
      this.slots[i * 33] = kind;
      this.slots.set(id, i * 33 + 1);
    }
  }
}

export class JobRunner {
  private readonly knownData: { ids: Uint8Array; count: number };
  private readonly knownTrees: { ids: Uint8Array; count: number };
  private readonly gear: Uint32Array;
  private readonly storedHere = new StoredIds();
  private readonly packer: PackBuilder;
  private readBuf: Uint8Array | undefined;
  /** Ids of all-zero chunks by length (see {@link dataId}). */
  private readonly zeroIds = new Map<number, Uint8Array>();

  constructor(private readonly init: JobRunnerInit) {
    this.knownData = { ids: new Uint8Array(init.known.data.buf), count: init.known.data.count };
    this.knownTrees = { ids: new Uint8Array(init.known.tree.buf), count: init.known.tree.count };
    this.gear = gearTable(init.keys.chunker);
    this.packer = new PackBuilder(init.keys, init.emit, init.nextBuffer, init.packTarget);
  }

  /** True when a blob of this kind with this id is stored (a chunk is never a tree). */
  private isKnown(kind: BlobKind, id: Uint8Array): boolean {
    const { ids: known, count } = kind === ObjectKind.TREE_BLOB ? this.knownTrees : this.knownData;
    let lo = 0;
    let hi = count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const base = mid * 32;
      let d = 0;
      for (let i = 0; i < 32 && d === 0; i++) d = (known[base + i] as number) - (id[i] as number);
      if (d === 0) return true;
      if (d < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /**
   * A data chunk's id. A sparse file's holes are one all-zero chunk again and again (the
   * chunker cuts a window of zeros at one place), whose keyed hash was 0.8 s of a 1 GiB hole's
   * 1.4 s: it is computed once per length. Data fails the check at its first non-zero word.
   */
  private dataId(plain: Uint8Array): Uint8Array {
    if (plain.length < CDC_MIN || plain[0] !== 0 || !allZero(plain))
      return hmac(this.init.keys.blobId, plain);
    let id = this.zeroIds.get(plain.length);
    if (id === undefined) {
      id = hmac(this.init.keys.blobId, plain);
      if (this.zeroIds.size < 16) this.zeroIds.set(plain.length, id);
    }
    return id;
  }

  /** Store one blob unless known; returns true when it was new. */
  private storeBlob(kind: BlobKind, plain: Uint8Array, id: Uint8Array): boolean {
    if (this.isKnown(kind, id) || this.storedHere.has(kind, id)) return false;
    this.storedHere.add(kind, id);
    const { compression, body } = maybeCompress(plain);
    this.packer.append(kind, id, compression, plain.length, body);
    return true;
  }

  /** Read a range of a file, cut it into chunks, store the new ones. */
  async file(job: FileJob): Promise<FileResult> {
    this.readBuf ??= new Uint8Array(READ_BLOCK + CDC_MAX);
    const buf = this.readBuf;
    const ids: Uint8Array[] = [];
    const lengths: number[] = [];
    let bytesRead = 0;
    let newChunks = 0;
    let newBytes = 0;
    const reader = await this.init.openRead(job.path);
    const readFill = async (at: number, want: number, pos: number): Promise<number> => {
      let got = 0;
      while (got < want) {
        let n = reader.readInto(buf, at + got, want - got, pos + got);
        if (typeof n !== 'number') n = await n;
        if (n === 0) break;
        got += n;
      }
      return got;
    };
    try {
      const limit = job.length < 0 ? Infinity : job.offset + job.length;
      let pos = job.offset;
      let start = 0;
      let end = 0;
      // Fixed-size chunks (and the first read, which decides) need only a block ahead:
      // the pages of the buffer beyond it are then never touched, so never resident
      // (8 MiB less peak RSS with two workers on the bench chat, whose files are all
      // fixed-size or single chunks). The content-defined cutter needs CDC_MAX ahead.
      let ahead = READ_BLOCK;
      const want = (): number => Math.min(buf.length - end, limit - pos, ahead);
      let asked = want();
      let got = await readFill(0, asked, pos);
      pos += got;
      end = got;
      // A read shorter than asked met the end of the file.
      let eof = pos >= limit || got < asked;
      let fixed = job.fixed;
      if (fixed === 0 && job.offset === 0)
        fixed = sqliteChunkSize(buf.subarray(0, Math.min(end, 100))) ?? 0;
      // A whole small file: one chunk.
      if (fixed === 0 && job.offset === 0 && eof && end <= SINGLE_CHUNK_MAX)
        fixed = Math.max(1, end);
      const window = fixed > 0 ? fixed : CDC_MAX;
      if (fixed === 0) ahead = Infinity;
      for (;;) {
        if (!eof && end - start < window) {
          buf.copyWithin(0, start, end);
          end -= start;
          start = 0;
          asked = want();
          got = await readFill(end, asked, pos);
          pos += got;
          end += got;
          eof = pos >= limit || got < asked;
        }
        if (start === end) break;
        if (this.init.stopped?.()) throw new PoolClosedError();
        const cut =
          fixed > 0 ? Math.min(fixed, end - start) : nextCut(this.gear, buf, start, end, eof);
        const plain = buf.subarray(start, start + cut);
        start += cut;
        const id = this.dataId(plain);
        if (this.storeBlob(ObjectKind.DATA_BLOB, plain, id)) {
          newChunks += 1;
          newBytes += cut;
          const wait = this.init.backpressure?.();
          if (wait) await wait;
        }
        ids.push(id);
        lengths.push(cut);
        bytesRead += cut;
        this.init.accountGarbage?.(cut);
      }
    } finally {
      await reader.close();
    }
    const flat = new Uint8Array(ids.length * 32);
    ids.forEach((id, i) => flat.set(id, i * 32));
    return { ids: flat, lengths, bytesRead, newChunks, newBytes };
  }

  /** Store a tree blob unless known. */
  tree(plain: Uint8Array): { id: Uint8Array; isNew: boolean } {
    const id = hmac(this.init.keys.blobId, plain);
    return { id, isNew: this.storeBlob(ObjectKind.TREE_BLOB, plain, id) };
  }

  /** Finish the current pack (emitted). */
  flush(): void {
    this.packer.finish();
  }

  /** Open and fully verify one sealed blob. */
  open(ref: BlobRef, sealed: Uint8Array, object: string): Uint8Array {
    return openBlob(this.init.keys, ref, sealed, object);
  }

  /** Verify the blobs of a pack range and write each into its file; returns bytes written. */
  async write(
    source: Uint8Array | PackFileRange,
    object: string,
    items: readonly WriteItem[],
  ): Promise<number> {
    let sealed: Uint8Array;
    if (source instanceof Uint8Array) sealed = source;
    else {
      if (!this.init.readPackRange) throw new Error('this runner reads no pack files');
      const r = this.init.readPackRange(source, object);
      sealed = r instanceof Uint8Array ? r : await r;
    }
    let bytes = 0;
    for (const it of items) {
      if (this.init.stopped?.()) throw new PoolClosedError();
      const plain = openBlob(
        this.init.keys,
        it.ref,
        sealed.subarray(it.offset, it.offset + it.length),
        object,
        false, // AEAD-verified; see openBlob
      );
      bytes += plain.length;
      // An all-zero blob that is not the file's last is not written: the file was created
      // empty, so the range reads as zeros anyway, and a file system with holes keeps it
      // as one (restic's `--sparse`, here always on: the bytes are the same). The memory
      // bench's 4 GiB sparse file was restored as 4 GiB of written zeros in 16.7 s; now
      // 2.3-2.5 s and the blocks of its last chunk. Non-zero data fails the check at its
      // first word. The last blob is written so the
      // file ends at its size without a truncate in every TargetFile.
      if (it.last === false && allZero(plain)) {
        this.init.accountGarbage?.(plain.length);
        continue;
      }
      const w = this.init.writer(it.handle).writeAt(plain, it.position);
      if (w) await w;
      this.init.accountGarbage?.(plain.length);
    }
    return bytes;
  }
}

/** A pack range read shorter than asked: the pack is truncated. */
export function truncated(object: string): CorruptBackupError {
  return new CorruptBackupError('pack is truncated', object);
}
