/**
 * Worker thread entry: runs the engine's jobs (workers/jobs.ts, the same code the calling
 * thread runs for `workers: 0`) on messages from node/worker-pool.ts. Reads file ranges
 * itself (from the page cache, so file data never crosses threads) and writes a restore's
 * files by descriptor.
 *
 * Each worker has two pack buffers: when both are full or being stored, it blocks
 * (Atomics.wait) until the engine hands one back — memory stays bounded even when one job
 * is a 1 GB video.
 *
 * Bundling: this file is the pool's second entry point. An app bundled with esbuild ships it
 * as `worker.js` beside its bundle (README, "Bundling"); without it the engine runs the same
 * jobs in the calling thread.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { CorruptBackupError } from '../../errors.js';
import { useEnginePlatform } from '../platform/current.js';
import { JobRunner, PackReadError, PoolClosedError } from '../workers/jobs.js';
import type { PackFileRange } from '../workers/pool-types.js';
import { fdWriter, nodeFiles } from './files.js';
import { accountGarbage } from './gc.js';
import { nodeCrypto } from './crypto.js';
import { nodeHost } from './host.js';
import {
  ownedBuffer,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.js';

// Only what a job needs (no pool factory, no SQLite capture): a lean start for each thread.
useEnginePlatform({ crypto: nodeCrypto, files: nodeFiles, host: nodeHost });

const init = workerData as WorkerInit;
if (!parentPort) throw new Error('worker.js must run as a worker thread');
const port = parentPort;
const READ_BLOCK = 2 * 1024 * 1024;

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
const stop = new Int32Array(init.stop);
const stopped = (): boolean => Atomics.load(stop, 0) !== 0;

function nextBuffer(size: number): Uint8Array<ArrayBuffer> | undefined {
  for (;;) {
    if (stopped()) throw new PoolClosedError();
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

const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);
/** Reused for every range this worker reads from a local pack file. */
let rangeBuf = new Uint8Array(0);

/**
 * Read a range of a local pack file into this worker's reusable buffer (valid until the
 * next call), with getRange's contract: no file is a missing object, a short read a
 * truncated (corrupt) one, any other failure an unavailable store.
 */
function readPackRange(src: PackFileRange, object: string): Uint8Array {
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

const runner = new JobRunner({
  keys: init.keys,
  known: {
    data: { buf: init.known, count: init.knownCount },
    tree: { buf: init.knownTrees, count: init.knownTreeCount },
  },
  packTarget: init.packTarget,
  emit: (msg) => port.postMessage(msg, [msg.bytes.buffer]),
  nextBuffer,
  openRead: nodeFiles.openRead,
  writer: fdWriter,
  readPackRange,
  accountGarbage,
  stopped,
});

async function handle(msg: WorkerRequest): Promise<void> {
  let reply: WorkerReply;
  const transfer: ArrayBuffer[] = [];
  try {
    if (msg.op === 'file') {
      const r = await runner.file(msg);
      transfer.push(r.ids.buffer as ArrayBuffer);
      reply = { op: 'file', jobId: msg.jobId, ok: true, ...r };
    } else if (msg.op === 'tree') {
      const { id, isNew } = runner.tree(msg.plain);
      reply = { op: 'tree', jobId: msg.jobId, ok: true, id, isNew };
    } else if (msg.op === 'flush') {
      runner.flush();
      reply = { op: 'flush', jobId: msg.jobId, ok: true };
    } else if (msg.op === 'write') {
      const src = msg.source;
      const bytes = await runner.write('sealed' in src ? src.sealed : src, msg.object, msg.items);
      if ('sealed' in src) {
        // Hand the range back: it was allocated by the engine's thread, and is freed
        // promptly only by that thread's collector.
        transfer.push(src.sealed.buffer);
        reply = { op: 'write', jobId: msg.jobId, ok: true, bytes, sealed: src.sealed };
      } else {
        reply = { op: 'write', jobId: msg.jobId, ok: true, bytes };
      }
    } else {
      const plain = ownedBuffer(runner.open(msg.ref, msg.sealed, msg.object));
      transfer.push(plain.buffer);
      reply = { op: 'open', jobId: msg.jobId, ok: true, plain };
    }
  } catch (e) {
    const corrupt = e instanceof CorruptBackupError;
    const errno = (e as NodeJS.ErrnoException | undefined)?.code;
    const syscall = (e as NodeJS.ErrnoException | undefined)?.syscall;
    reply = {
      op: 'error',
      jobId: msg.jobId,
      ok: false,
      corrupt,
      message: corrupt ? 'blob failed verification' : String((e as Error)?.message ?? e),
      object: corrupt ? e.object : e instanceof PackReadError ? e.object : undefined,
      ...(e instanceof PackReadError ? { store: e.store } : {}),
      // File and write jobs touch the file system: their errors name a file, never content.
      // A write job's errno lets the engine say DISK_FULL for a full target (it was an Error
      // without a code).
      ...((msg.op === 'file' || msg.op === 'write') && typeof errno === 'string'
        ? { errno, ...(typeof syscall === 'string' ? { syscall } : {}) }
        : {}),
    };
  }
  port.postMessage(reply, transfer);
}

// One job at a time, in arrival order (a file job awaits only its reads, which are
// synchronous here).
let queue: Promise<void> = Promise.resolve();
port.on('message', (msg: WorkerRequest) => {
  queue = queue.then(() => handle(msg));
});
// Loaded and listening: the pool counts this worker as started (worker-pool.ts).
port.postMessage({ op: 'ready' } satisfies WorkerReply);
