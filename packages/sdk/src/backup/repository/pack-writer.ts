/**
 * Collects already-sealed blobs into packs of ~PACK_TARGET bytes and uploads them, a
 * bounded number at a time (used by prune to repack; backups build packs in the workers). Small chunks (SQLite pages) must not become millions of store objects, and a
 * pack's name is the SHA-256 of its bytes, so any change to a pack is caught from its name.
 */
import {
  ObjectKind,
  assemblePack,
  encodePackHeader,
  objectAd,
  packName,
  type BlobEntry,
  type IndexPack,
} from '../../format/index.js';
import type { Storage } from '../../storage/storage.js';
import { fromHex } from '../../format/index.js';
import { seal, sha256Hex, type RepoKeys } from './keys.js';
import { PACK_TARGET } from './pack-builder.js';
import type { SealedBlob } from './blob-codec.js';

/** Builds and uploads packs. Call {@link PackWriter.flush} before writing an index. */
export class PackWriter {
  private parts: Uint8Array[] = [];
  private entries: BlobEntry[] = [];
  private size = 0;
  private readonly uploads = new Set<Promise<void>>();
  private failure: unknown;
  /** Packs written, for the index. */
  readonly packs: IndexPack[] = [];
  /** Bytes written to the store. */
  bytesStored = 0;

  constructor(
    private readonly storage: Storage,
    private readonly keys: RepoKeys,
    private readonly target = PACK_TARGET,
    private readonly maxUploads = 2,
  ) {}

  /** Append a sealed blob; may wait for an upload slot when a pack is full. */
  async add(kind: BlobEntry['kind'], blob: SealedBlob): Promise<void> {
    if (this.failure) throw this.failure;
    this.entries.push({
      kind,
      compression: blob.compression,
      id: blob.id,
      offset: this.size,
      length: blob.sealed.length,
      rawLength: blob.rawLength,
    });
    this.parts.push(blob.sealed);
    this.size += blob.sealed.length;
    if (this.size >= this.target) await this.finishPack();
  }

  private async finishPack(): Promise<void> {
    if (this.entries.length === 0) return;
    const entries = this.entries;
    const parts = this.parts;
    this.entries = [];
    this.parts = [];
    this.size = 0;
    while (this.uploads.size >= this.maxUploads) await Promise.race(this.uploads);
    if (this.failure) throw this.failure;
    const header = seal(
      this.keys.meta,
      objectAd(ObjectKind.PACK_HEADER, this.keys.repoId),
      encodePackHeader(entries),
    );
    const pack = assemblePack(parts, header);
    const id = sha256Hex(pack);
    const upload = this.storage.put(packName(id), pack).then(
      () => {
        this.bytesStored += pack.length;
        // Only a durable pack goes into the index.
        this.packs.push({ packId: fromHex(id), blobs: entries });
      },
      (e: unknown) => {
        this.failure ??= e;
      },
    );
    const tracked = upload.finally(() => this.uploads.delete(tracked));
    this.uploads.add(tracked);
  }

  /** Finish the current pack and wait for every upload. @throws the first upload error. */
  async flush(): Promise<void> {
    await this.finishPack();
    while (this.uploads.size > 0) await Promise.race(this.uploads);
    if (this.failure) throw this.failure;
  }
}
