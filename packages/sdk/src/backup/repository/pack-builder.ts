/**
 * Builds one pack at a time in a preallocated buffer: each blob is sealed straight into
 * the pack, then the sealed header and the trailer are appended and the pack is named by
 * its SHA-256 (see format/pack.ts for the layout). Used by the job runner (workers/jobs.ts).
 */
import {
  NONCE_BYTES,
  ObjectKind,
  SEAL_OVERHEAD,
  blobAd,
  encodePackHeader,
  encodePackTrailer,
  objectAd,
  type BlobEntry,
  type BlobKind,
  type CompressionValue,
} from '../../format/index.js';
import { engineCrypto } from '../platform/current.js';
import { seal, sha256Hex, type RepoKeys } from './keys.js';

/** Header of up to PACK_MAX_BLOBS entries (46 bytes each) plus seal and trailer. */
const HEADER_ROOM = 1024 * 1024;

/** A finished pack, handed from a worker to the engine for storing. */
export interface PackMessage {
  op: 'pack';
  packId: string;
  /** The pack is `bytes.subarray(0, length)`. */
  bytes: Uint8Array<ArrayBuffer>;
  length: number;
  /**
   * The pack's record for an index, encoded: u32 blob count, then BLOB_ENTRY_BYTES per blob
   * (the pack header's plaintext after its version byte; see storeIndex). 46 bytes per blob
   * where a BlobEntry object cloned into the engine's thread took ~300: a backup of many
   * small files holds one per pack until it writes its index.
   */
  index: Uint8Array;
}

/**
 * A pack is finished once it holds this many bytes of blobs… Each worker holds two pack
 * buffers (one filling, one being stored), so this sets a large part of peak memory. Measured
 * on the bench chat (2026-11-24, with a minor GC every 4 MiB, gc.ts): 12 MiB packs peak at
 * 180-185 MiB RSS, 8 MiB at 166-176 MiB but ~10 % slower first backups, because a worker
 * then waits for its other buffer while the store still fsyncs the previous pack.
 */
export const PACK_TARGET = 12 * 1024 * 1024;
/** …or this many blobs (bounds the header of packs of tiny tree blobs). */
export const PACK_MAX_BLOBS = 16384;

/** Seals blobs into packs and hands finished packs to `emit`. */
export class PackBuilder {
  // Allocated lazily: right after a pack is handed over there may be no buffer to reuse yet.
  private buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  private size = 0;
  private entries: BlobEntry[] = [];

  constructor(
    private readonly keys: RepoKeys,
    private readonly emit: (pack: PackMessage) => void,
    private readonly reuse: (size: number) => Uint8Array<ArrayBuffer> | undefined = () => undefined,
    private readonly target = PACK_TARGET,
  ) {}

  // Room for a full pack and its header, so the buffer normally never grows.
  private capacity(extra: number): number {
    return Math.max(this.target, extra) + HEADER_ROOM;
  }

  private alloc(n: number): Uint8Array<ArrayBuffer> {
    const old = this.reuse(n);
    if (old) return old;
    // On Node not zero-filled: only bytes written are ever read or stored, and the buffer
    // never leaves this process.
    if (typeof Buffer === 'function') {
      const b = Buffer.allocUnsafeSlow(n);
      return new Uint8Array(b.buffer as ArrayBuffer, 0, n);
    }
    return new Uint8Array(n);
  }

  private ensure(n: number): void {
    if (this.size + n <= this.buf.length) return;
    const next = this.alloc(this.capacity(this.size + n));
    // A buffer that was too small goes back to the garbage collector.
    next.set(this.buf.subarray(0, this.size));
    this.buf = next;
  }

  /** Seal `body` (the maybe-compressed plaintext) into the pack. */
  append(
    kind: BlobKind,
    id: Uint8Array,
    compression: CompressionValue,
    rawLength: number,
    body: Uint8Array,
  ): void {
    const length = body.length + SEAL_OVERHEAD;
    // Finish before overflowing the target, so the buffer never needs more than
    // target + header room.
    if (this.size > 0 && this.size + length > this.target) this.finish();
    this.ensure(length);
    const at = this.size;
    const c = engineCrypto();
    const nonce = c.randomBytes(NONCE_BYTES);
    this.buf.set(nonce, at);
    c.aesGcmSealInto(
      kind === ObjectKind.DATA_BLOB ? this.keys.data : this.keys.meta,
      nonce,
      blobAd(kind, this.keys.repoId, compression, id),
      body,
      this.buf,
      at + NONCE_BYTES,
    );
    this.size += length;
    this.entries.push({ kind, compression, id, offset: at, length, rawLength });
    if (this.entries.length >= PACK_MAX_BLOBS) this.finish();
  }

  /** Finish the current pack (if it holds anything) and emit it. */
  finish(): void {
    if (this.entries.length === 0) return;
    const plainHeader = encodePackHeader(this.entries);
    const header = seal(
      this.keys.meta,
      objectAd(ObjectKind.PACK_HEADER, this.keys.repoId),
      plainHeader,
    );
    this.ensure(header.length + 4);
    this.buf.set(header, this.size);
    this.buf.set(encodePackTrailer(header.length), this.size + header.length);
    const length = this.size + header.length + 4;
    const bytes = this.buf;
    const packId = sha256Hex(bytes.subarray(0, length));
    const index = plainHeader.slice(1);
    this.size = 0;
    this.entries = [];
    this.buf = new Uint8Array(0);
    this.emit({ op: 'pack', packId, bytes, length, index });
  }
}
