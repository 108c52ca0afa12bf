/**
 * Snapshot objects (`snapshots/<64 hex>`, the hex being SHA-256 of the stored bytes, which
 * is also the snapshot id). Sealed under the meta subkey with AD = objectAd(SNAPSHOT, repoId).
 *
 * Plaintext layout (version 1):
 *
 *   u8  version = 1
 *   u64 seq (1 for the first snapshot of a repository)
 *   u8  has previous (0 or 1; 0 exactly when seq = 1)
 *   [32 previous snapshot id]         -- when has previous = 1
 *   i64 time, milliseconds since the Unix epoch
 *   u16 hostname length || hostname (UTF-8)
 *   32  root tree blob id
 *   u32 root directory mode (mode & 0o7777)
 *   i64 root directory mtime, nanoseconds
 *   u64 files || u64 dirs || u64 bytes    -- totals of the snapshot
 *
 * Layout 2 (version byte 2) is layout 1 followed by
 *
 *   u8  flags: bit 0 = partial (some source entries could not be backed up); others 0
 *   u64 skipped: source entries left out (unreadable, special files, vanished)
 *
 * Writers use layout 1 unless the snapshot is partial or skipped something, so a snapshot
 * of a complete backup reads with every version-1 reader.
 *
 * The chain (seq, previous id) lets a device detect a store that serves an older snapshot
 * as the latest, given the highest seq it has seen (see backup/repository/state.ts).
 *
 * Browser-safe: no `node:` imports.
 */
import { ByteReader, ByteWriter, utf8 } from './bytes.js';
import { FORMAT_VERSION, ID_BYTES } from './constants.js';

/** A decoded snapshot. */
export interface Snapshot {
  seq: number;
  prev: Uint8Array | null;
  timeMs: number;
  hostname: string;
  rootTree: Uint8Array;
  rootMode: number;
  rootMtimeNs: bigint;
  files: number;
  dirs: number;
  bytes: number;
  /** Some source entries could not be backed up (layout 2; false in layout 1). */
  partial?: boolean;
  /** Source entries left out (layout 2; 0 in layout 1). */
  skipped?: number;
}

/** The snapshot layout that records `partial` and `skipped`. */
export const SNAPSHOT_LAYOUT_PARTIAL = 2;

/**
 * Encode a snapshot plaintext.
 * @throws TypeError on inconsistent fields (programming errors).
 */
export function encodeSnapshot(s: Snapshot): Uint8Array {
  if ((s.seq === 1) !== (s.prev === null)) throw new TypeError('seq 1 exactly when no prev');
  const host = utf8(s.hostname);
  if (host.length > 0xffff) throw new TypeError('hostname too long');
  const layout2 = (s.partial ?? false) || (s.skipped ?? 0) > 0;
  const w = new ByteWriter(176);
  w.u8(layout2 ? SNAPSHOT_LAYOUT_PARTIAL : FORMAT_VERSION).u64(s.seq);
  if (s.prev) w.u8(1).bytes(s.prev);
  else w.u8(0);
  w.i64(BigInt(s.timeMs)).u16(host.length).bytes(host).bytes(s.rootTree);
  w.u32(s.rootMode & 0o7777).i64(s.rootMtimeNs);
  w.u64(s.files).u64(s.dirs).u64(s.bytes);
  if (layout2) w.u8(s.partial ? 1 : 0).u64(s.skipped ?? 0);
  return w.finish().slice();
}

/**
 * Decode and validate a snapshot plaintext.
 * @throws CorruptBackupError on any malformed content.
 */
export function decodeSnapshot(plain: Uint8Array, object?: string): Snapshot {
  const r = new ByteReader(plain, object);
  const version = r.u8();
  if (version !== FORMAT_VERSION && version !== SNAPSHOT_LAYOUT_PARTIAL)
    r.fail(`unsupported snapshot version ${version}`);
  const seq = r.u64();
  if (seq < 1) r.fail('snapshot seq must be at least 1');
  const hasPrev = r.u8();
  if (hasPrev > 1) r.fail('bad previous-snapshot flag');
  if ((seq === 1) !== (hasPrev === 0)) r.fail('only the first snapshot has no previous');
  const prev = hasPrev ? r.bytes(ID_BYTES).slice() : null;
  const time = r.i64();
  if (time < -8640000000000000n || time > 8640000000000000n) r.fail('snapshot time out of range');
  const hostname = r.utf8(r.u16());
  const rootTree = r.bytes(ID_BYTES).slice();
  const rootMode = r.u32();
  if (rootMode > 0o7777) r.fail('bad root mode');
  const rootMtimeNs = r.i64();
  const files = r.u64();
  const dirs = r.u64();
  const bytes = r.u64();
  let partial = false;
  let skipped = 0;
  if (version === SNAPSHOT_LAYOUT_PARTIAL) {
    const flags = r.u8();
    if (flags > 1) r.fail('unknown snapshot flags');
    partial = flags === 1;
    skipped = r.u64();
  }
  r.end();
  return {
    seq,
    prev,
    timeMs: Number(time),
    hostname,
    rootTree,
    rootMode,
    rootMtimeNs,
    files,
    dirs,
    bytes,
    ...(version === SNAPSHOT_LAYOUT_PARTIAL ? { partial, skipped } : {}),
  };
}
