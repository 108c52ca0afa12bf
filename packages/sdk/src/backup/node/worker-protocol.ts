/** Messages between the engine and its worker threads (see worker.ts and worker-pool.ts). */
import type { BlobKind, BlobRef, CompressionValue } from '../../format/index.js';
import type { MessagePort } from 'node:worker_threads';
import type { PackMessage } from '../repository/pack-builder.js';
import type { RepoKeys } from '../repository/keys.js';
import type {
  FileJob as CoreFileJob,
  FileResult,
  PackFileRange,
  WriteItem,
} from '../workers/pool-types.js';

export type { FileResult } from '../workers/pool-types.js';

/** Data every worker gets at start. */
export interface WorkerInit {
  keys: RepoKeys;
  /** Sorted 32-byte ids of blobs already in the repository (shared, read-only). */
  /** Sorted ids of stored data blobs (chunks dedup against these only). */
  known: SharedArrayBuffer;
  knownCount: number;
  /** Sorted ids of stored tree blobs (trees dedup against these only). */
  knownTrees: SharedArrayBuffer;
  knownTreeCount: number;
  /** Target pack size in bytes (PACK_TARGET unless the backup chose another). */
  packTarget: number;
  /** This worker's number (its slot in `returned`). */
  index: number;
  /** Int32 per worker: bumped (and notified) each time a pack buffer is handed back. */
  returned: SharedArrayBuffer;
  /** Where the engine returns this worker's pack buffers once stored (transferred). */
  recycle: MessagePort;
  /** Int32, shared by all workers: 1 once the pool closes; a job stops at its next step. */
  stop: SharedArrayBuffer;
}

/** A file job (workers/pool-types.ts) with its id. */
export interface FileJob extends CoreFileJob {
  op: 'file';
  jobId: number;
}

/** A request to a worker. Buffers are transferred, not copied. */
export type WorkerRequest =
  | FileJob
  | { op: 'tree'; jobId: number; plain: Uint8Array<ArrayBuffer> }
  | { op: 'flush'; jobId: number }
  | { op: 'open'; jobId: number; ref: BlobRef; sealed: Uint8Array<ArrayBuffer>; object: string }
  | WriteJob;

/** Verify the blobs of one pack range and write each into its file (a descriptor). */
export interface WriteJob {
  op: 'write';
  jobId: number;
  /** The range, read by the engine, or where the worker reads it itself (a local pack file). */
  source: { sealed: Uint8Array<ArrayBuffer> } | PackFileRange;
  object: string;
  items: WriteItem[];
}

export type { PackMessage } from '../repository/pack-builder.js';

/** A worker's answer. */
export type WorkerReply =
  | { op: 'ready' }
  | PackMessage
  | ({ op: 'file'; jobId: number; ok: true } & FileResult)
  | { op: 'tree'; jobId: number; ok: true; id: Uint8Array; isNew: boolean }
  | { op: 'flush'; jobId: number; ok: true }
  | { op: 'open'; jobId: number; ok: true; plain: Uint8Array<ArrayBuffer> }
  | {
      op: 'write';
      jobId: number;
      ok: true;
      bytes: number;
      /** The engine's range buffer, handed back (absent when the worker read the file). */
      sealed?: Uint8Array<ArrayBuffer>;
    }
  | {
      op: 'error';
      jobId: number;
      ok: false;
      corrupt: boolean;
      message: string;
      object: string | undefined;
      /**
       * The errno code (`ENOENT`, `EACCES`, `ENOSPC`, ...) when a source file could not be
       * read (file jobs) or a restored file written (write jobs).
       */
      errno?: string;
      /** The system call that failed (`write`, `open`, ...), with `errno`. */
      syscall?: string;
      /** A pack file the worker read itself: absent (MISSING_OBJECT) or unreadable (UNAVAILABLE). */
      store?: 'missing' | 'unavailable';
    };

/** A sealed blob's parameters, as a worker reports them. */
export interface BlobParams {
  kind: BlobKind;
  compression: CompressionValue;
}

/**
 * `u` as a view that owns its whole ArrayBuffer, so the buffer can be transferred between
 * threads without detaching memory shared with other views (Buffer pool slices).
 */
export function ownedBuffer(u: Uint8Array): Uint8Array<ArrayBuffer> {
  if (
    u.buffer instanceof ArrayBuffer &&
    u.byteOffset === 0 &&
    u.byteLength === u.buffer.byteLength
  ) {
    return u as Uint8Array<ArrayBuffer>;
  }
  return new Uint8Array(u) as Uint8Array<ArrayBuffer>;
}
