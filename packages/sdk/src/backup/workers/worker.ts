/**
 * Worker thread: reads file ranges itself (from the page cache, so file data never crosses
 * threads), cuts chunks, computes blob ids, skips chunks the repository already has,
 * compresses where it pays, seals, and appends to its own pack; finished packs go to the
 * engine, which stores them. Also opens and verifies blobs for restore and check.
 *
 * Each worker builds its own packs, so the same new chunk met by two workers in one run may
 * be stored twice (harmless: ids are content-derived; prune repacks the duplicates away).
 * Each worker has two pack buffers: when both are full or being stored, it blocks
 * (Atomics.wait) until the engine hands one back — memory stays bounded even when one job
 * is a 1 GB video.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { CorruptBackupError } from '../../errors.js';
import { ObjectKind, toHex, type BlobKind } from '../../format/index.js';
import { maybeCompress, openBlob } from '../repository/blob-codec.js';
import {
  CDC_MAX,
  SINGLE_CHUNK_MAX,
  gearTable,
  nextCut,
  sqliteChunkSize,
} from '../archiver/chunker.js';
import { hmac } from '../repository/keys.js';
import { accountGarbage } from './gc.js';
import { PackBuilder } from '../repository/pack-builder.js';
import {
  ownedBuffer,
  type FileJob,
  type FileResult,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.js';

const init = workerData as WorkerInit;
const keys = init.keys;
const port = parentPort;
if (!port) throw new Error('worker.js must run as a worker thread');
const knownData = { ids: new Uint8Array(init.known), count: init.knownCount };
const knownTrees = { ids: new Uint8Array(init.knownTrees), count: init.knownTreeCount };
const gear = gearTable(keys.chunker);
const storedHere = new Set<string>();
const READ_BLOCK = 2 * 1024 * 1024;

let readBuf: Uint8Array | undefined;

/** True when a blob of this kind with this id is stored (a chunk is never a tree). */
function isKnown(kind: BlobKind, id: Uint8Array): boolean {
  const { ids: known, count } = kind === ObjectKind.TREE_BLOB ? knownTrees : knownData;
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
 * Pack buffers: each worker owns at most PACK_BUFFERS. One fills while the other is being
 * stored by the engine, which hands it back through `recycle` and bumps this worker's slot
 * in `returned`; with both in use, the worker waits. This bounds memory (two packs per
 * worker, whatever the input) and is the backpressure between reading and storing.
 */
const PACK_BUFFERS = 2;
let packBuffers = 0;
const recycle = init.recycle;
const returned = new Int32Array(init.returned);

function nextBuffer(size: number): Uint8Array<ArrayBuffer> | undefined {
  for (;;) {
    const seen = Atomics.load(returned, init.index);
    const m = receiveMessageOnPort(recycle) as { message: ArrayBuffer } | undefined;
    if (m) {
      if (m.message.byteLength >= size) return new Uint8Array(m.message);
      packBuffers -= 1; // too small for this pack: let it go
      continue;
    }
    if (packBuffers < PACK_BUFFERS) {
      packBuffers += 1;
      return undefined; // the builder allocates a new one
    }
    // Short timeout: a terminated pool must not leave this thread waiting long.
    Atomics.wait(returned, init.index, seen, 100);
  }
}

const packer = new PackBuilder(
  keys,
  (msg) => port.postMessage(msg, [msg.bytes.buffer]),
  nextBuffer,
  init.packTarget,
);

/** Store one blob unless known; returns true when it was new. */
function storeBlob(kind: BlobKind, plain: Uint8Array, id: Uint8Array, compress: boolean): boolean {
  const hex = `${kind}:${toHex(id)}`;
  if (isKnown(kind, id) || storedHere.has(hex)) return false;
  storedHere.add(hex);
  const { compression, body } = compress
    ? maybeCompress(plain)
    : { compression: 0 as const, body: plain };
  packer.append(kind, id, compression, plain.length, body);
  return true;
}

function readFill(fd: number, buf: Uint8Array, at: number, want: number, pos: number): number {
  let got = 0;
  while (got < want) {
    const n = readSync(fd, buf, at + got, want - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function fileJob(job: FileJob): FileResult {
  readBuf ??= new Uint8Array(READ_BLOCK + CDC_MAX);
  const buf = readBuf;
  const ids: Uint8Array[] = [];
  const lengths: number[] = [];
  let bytesRead = 0;
  let newChunks = 0;
  let newBytes = 0;
  const fd = openSync(job.path, 'r');
  try {
    const limit = job.length < 0 ? Infinity : job.offset + job.length;
    let pos = job.offset;
    const want = (): number => Math.min(buf.length - end, limit - pos);
    let start = 0;
    let end = 0;
    let got = readFill(fd, buf, 0, want(), pos);
    pos += got;
    end = got;
    let eof = pos >= limit || end < buf.length;
    let fixed = job.fixed;
    if (fixed === 0 && job.offset === 0)
      fixed = sqliteChunkSize(buf.subarray(0, Math.min(end, 100))) ?? 0;
    // A whole small file: one chunk.
    if (fixed === 0 && job.offset === 0 && eof && end <= SINGLE_CHUNK_MAX) fixed = Math.max(1, end);
    for (;;) {
      if (!eof && end - start < CDC_MAX) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
        got = readFill(fd, buf, end, want(), pos);
        pos += got;
        end += got;
        eof = pos >= limit || end < buf.length;
      }
      if (start === end) break;
      const cut = fixed > 0 ? Math.min(fixed, end - start) : nextCut(gear, buf, start, end, eof);
      const plain = buf.subarray(start, start + cut);
      start += cut;
      const id = hmac(keys.blobId, plain);
      if (storeBlob(ObjectKind.DATA_BLOB, plain, id, true)) {
        newChunks += 1;
        newBytes += cut;
      }
      ids.push(id);
      lengths.push(cut);
      bytesRead += cut;
      accountGarbage(cut);
    }
  } finally {
    closeSync(fd);
  }
  const flat = new Uint8Array(ids.length * 32);
  ids.forEach((id, i) => flat.set(id, i * 32));
  return { ids: flat, lengths, bytesRead, newChunks, newBytes };
}

/** A local pack file could not be read (see readPackRange). */
class PackReadError extends Error {
  constructor(
    readonly store: 'missing' | 'unavailable',
    readonly object: string,
    message: string,
  ) {
    super(message);
  }
}

const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);
/** Reused for every range this worker reads from a local pack file. */
let rangeBuf = new Uint8Array(0);

/**
 * Read a range of a local pack file into this worker's reusable buffer (valid until the
 * next call), with getRange's contract: no file is a missing object, a short read a
 * truncated (corrupt) one, any other failure an unavailable store.
 */
function readPackRange(
  src: { path: string; offset: number; length: number },
  object: string,
): Uint8Array {
  if (rangeBuf.length < src.length) rangeBuf = new Uint8Array(Math.max(src.length, READ_BLOCK));
  const code = (e: unknown): string => String((e as NodeJS.ErrnoException | undefined)?.code);
  let fd: number;
  try {
    fd = openSync(src.path, 'r');
  } catch (e) {
    if (ABSENT.has(code(e))) throw new PackReadError('missing', object, `missing ${object}`);
    throw new PackReadError('unavailable', object, `cannot read ${object}: ${code(e)}`);
  }
  let done = 0;
  try {
    while (done < src.length) {
      const n = readSync(fd, rangeBuf, done, src.length - done, src.offset + done);
      if (n === 0) break;
      done += n;
    }
  } catch (e) {
    throw new PackReadError('unavailable', object, `cannot read ${object}: ${code(e)}`);
  } finally {
    closeSync(fd);
  }
  if (done !== src.length) throw new CorruptBackupError('pack is truncated', object);
  return rangeBuf.subarray(0, done);
}

port.on('message', (msg: WorkerRequest) => {
  let reply: WorkerReply;
  const transfer: ArrayBuffer[] = [];
  try {
    if (msg.op === 'file') {
      const r = fileJob(msg);
      transfer.push(r.ids.buffer as ArrayBuffer);
      reply = { op: 'file', jobId: msg.jobId, ok: true, ...r };
    } else if (msg.op === 'tree') {
      const id = hmac(keys.blobId, msg.plain);
      const isNew = storeBlob(ObjectKind.TREE_BLOB, msg.plain, id, true);
      reply = { op: 'tree', jobId: msg.jobId, ok: true, id, isNew };
    } else if (msg.op === 'flush') {
      packer.finish();
      reply = { op: 'flush', jobId: msg.jobId, ok: true };
    } else if (msg.op === 'write') {
      const src = msg.source;
      const sealed = 'sealed' in src ? src.sealed : readPackRange(src, msg.object);
      let bytes = 0;
      for (const it of msg.items) {
        const plain = openBlob(
          keys,
          it.ref,
          sealed.subarray(it.offset, it.offset + it.length),
          msg.object,
          false, // AEAD-verified; see openBlob
        );
        let done = 0;
        while (done < plain.length)
          done += writeSync(it.fd, plain, done, plain.length - done, it.position + done);
        bytes += plain.length;
        accountGarbage(plain.length);
      }
      if ('sealed' in src) {
        // Hand the range back: it was allocated by the engine's thread, and is freed
        // promptly only by that thread's collector.
        transfer.push(src.sealed.buffer);
        reply = { op: 'write', jobId: msg.jobId, ok: true, bytes, sealed: src.sealed };
      } else {
        reply = { op: 'write', jobId: msg.jobId, ok: true, bytes };
      }
    } else {
      const plain = ownedBuffer(openBlob(keys, msg.ref, msg.sealed, msg.object));
      transfer.push(plain.buffer);
      reply = { op: 'open', jobId: msg.jobId, ok: true, plain };
    }
  } catch (e) {
    const corrupt = e instanceof CorruptBackupError;
    const errno = (e as NodeJS.ErrnoException | undefined)?.code;
    reply = {
      op: 'error',
      jobId: msg.jobId,
      ok: false,
      corrupt,
      message: corrupt ? 'blob failed verification' : String((e as Error)?.message ?? e),
      object: corrupt ? e.object : e instanceof PackReadError ? e.object : undefined,
      ...(e instanceof PackReadError ? { store: e.store } : {}),
      // Only a file job touches the file system; its errors name the file, never content.
      ...(msg.op === 'file' && typeof errno === 'string' ? { errno } : {}),
    };
  }
  port.postMessage(reply, transfer);
});
