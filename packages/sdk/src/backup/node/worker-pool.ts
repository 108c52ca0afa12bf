/**
 * A pool of worker threads (see worker.ts) so every core works: backup jobs (read + chunk +
 * HMAC + compress + AES-256-GCM + pack), and blob verification for restore and check.
 * Buffers are transferred, never copied. Finished packs come back through `onPack`; the
 * pool tracks those uploads and hands each stored pack's buffer back to its worker.
 * Node-only; the engine reaches it through the platform's PoolFactory (nodeWorkers).
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, type MessagePort, type WorkerOptions } from 'node:worker_threads';
import { CorruptBackupError, MissingObjectError, UnavailableError } from '../../errors.js';
import type { BlobRef } from '../../format/index.js';
import { PACK_TARGET } from '../repository/pack-builder.js';
import type { RepoKeys } from '../repository/keys.js';
import type { PoolFactory } from '../platform/types.js';
import {
  SourceReadError,
  type EnginePool,
  type FileJob,
  type FileResult,
  type PackFileRange,
  type PoolOptions,
  type WriteItem,
} from '../workers/pool-types.js';
import {
  ownedBuffer,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.js';

export type { PoolOptions } from '../workers/pool-types.js';

/**
 * Where the worker entry is: `worker.js` beside this module — which, in an app bundled with
 * esbuild, is beside the bundle, where the README's recipe puts it ("Bundling").
 * @throws TypeError where there is no module URL (a CommonJS bundle): the engine then runs
 *   in the calling thread.
 */
export function workerUrl(): URL {
  return new URL('./worker.js', import.meta.url);
}

/**
 * The flags a worker is started with: undefined (inherit this process' flags, Node's
 * default) unless some must not be inherited — `--input-type` (set by
 * `node --input-type=module -e …`) makes every worker fail at start with
 * ERR_INPUT_TYPE_NOT_ALLOWED, as would `--eval`/`--print` given as flags.
 * Undefined when none is there: the worker then inherits the flags the way Node does, which
 * accepts V8 flags such as the CLI's `--max-semi-space-size=2` (shebang). Passed explicitly,
 * those fail every worker with ERR_WORKER_INVALID_EXEC_ARGV, and the engine silently ran in
 * the calling thread (found by the restore bench, issue 17); the heap limits are dropped
 * here too, as the workers' heaps are set by `resourceLimits`.
 */
export function workerExecArgv(argv: readonly string[] = process.execArgv): string[] | undefined {
  if (!argv.some((a) => /^(?:--input-type|-e|--eval|-p|--print)(?:=|$)/.test(a))) return undefined;
  return filterExecArgv(argv).filter(
    (a) =>
      !/^--(?:max-semi-space-size|max-old-space-size|max-young-generation-size)(?:=|$)/.test(a),
  );
}

function filterExecArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--input-type' || a === '-e' || a === '--eval' || a === '-p' || a === '--print') {
      i += 1;
      continue;
    }
    if (a.startsWith('--input-type=') || a.startsWith('--eval=') || a.startsWith('--print='))
      continue;
    out.push(a);
  }
  return out;
}

/**
 * Start a worker. When explicit flags are needed (above) and Node still refuses some of them —
 * V8 options such as `--max-semi-space-size`, process-wide anyway — start it without
 * those: Node names them in its error.
 */
function startWorker(url: URL, options: WorkerOptions): Worker {
  try {
    return new Worker(url, options);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || !options.execArgv) throw e;
    const named = String((e as Error).message).split('flags: ')[1] ?? '';
    const refused = new Set(named.split(', '));
    const kept = options.execArgv.filter((a) => !refused.has(String(a)));
    return new Worker(url, {
      ...options,
      execArgv: kept.length < options.execArgv.length ? kept : [],
    });
  }
}

/**
 * How long close() waits for running jobs to stop before it terminates their workers: a
 * job checks between chunks (one Brotli call of at most 4 MiB, ~20 ms here), so this is
 * only reached by a worker that is stuck.
 */
const CLOSE_WAIT_MS = 500;

/**
 * File jobs queued or running per worker. A queued job is a path and a range (the worker
 * reads it when it gets to it), so this costs no memory; it keeps a worker from waiting on
 * this thread between small files. Measured on 20,000 files of 1-4 KiB (2 pairs each):
 * 2 per worker 2.24 / 2.17 s, 4 2.02 / 2.02 s, 8 1.81 / 1.83 s, 16 1.63 / 1.81 s; the
 * 104 MB chat the same within noise (0.46-0.54 s) and peak RSS +4 MiB at 8.
 */
const FILE_JOBS_PER_WORKER = 8;

/** Young generation size of each worker (see the constructor). */
const YOUNG_GEN_MB = 1;

interface Pending {
  resolve: (r: WorkerReply) => void;
  reject: (e: unknown) => void;
  worker: number;
}

type Distribute<T> = T extends { jobId: number } ? Omit<T, 'jobId'> : never;

/** Default worker count: one per available core. */
export function defaultWorkers(): number {
  return availableParallelism();
}

/** The worker pool. Always `close()` it (in a finally). */
export class WorkerPool implements EnginePool {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly uploads = new Set<Promise<void>>();
  private readonly returned: Int32Array;
  /** Set to 1 by close(): every job stops at its next chunk or blob (WorkerInit.stop). */
  private readonly stop = new Int32Array(new SharedArrayBuffer(4));
  /** Jobs posted to each worker and not yet answered (whether or not still awaited). */
  private readonly inFlight: number[] = [];
  private idleWaiters: (() => void)[] = [];
  private readonly slotWaiters: (() => void)[] = [];
  private readonly recyclePorts: MessagePort[] = [];
  private fileJobs = 0;
  private nextJob = 1;
  private failure: unknown;
  /** Resolves once every worker runs; rejects when one fails to start. */
  readonly ready: Promise<void>;

  /**
   * Start `size` workers and wait until all run.
   * @throws the start failure (the worker entry missing from a bundle, …), every worker
   *   stopped again.
   */
  static async start(size: number, keys: RepoKeys, options: PoolOptions = {}): Promise<WorkerPool> {
    const pool = new WorkerPool(size, keys, options);
    try {
      await pool.ready;
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  constructor(
    size: number,
    private readonly keys: RepoKeys,
    private readonly options: PoolOptions = {},
  ) {
    const shared = (k: { buf: ArrayBufferLike; count: number } | undefined) => {
      if (k && k.buf instanceof SharedArrayBuffer) return { buf: k.buf, count: k.count };
      const buf = new SharedArrayBuffer(Math.max(32, k?.buf.byteLength ?? 0));
      if (k) new Uint8Array(buf).set(new Uint8Array(k.buf));
      return { buf, count: k?.count ?? 0 };
    };
    const known = { data: shared(options.known?.data), tree: shared(options.known?.tree) };
    const onlines: Promise<void>[] = [];
    const url = workerUrl();
    const execArgv = workerExecArgv();
    const returned = new SharedArrayBuffer(4 * Math.max(1, size));
    this.returned = new Int32Array(returned);
    for (let i = 0; i < size; i++) {
      const { port1, port2 } = new MessageChannel();
      const init: WorkerInit = {
        keys,
        known: known.data.buf,
        knownCount: known.data.count,
        knownTrees: known.tree.buf,
        knownTreeCount: known.tree.count,
        packTarget: options.packSize ?? PACK_TARGET,
        index: i,
        returned,
        recycle: port2,
        stop: this.stop.buffer as SharedArrayBuffer,
      };
      const w = startWorker(url, {
        workerData: init,
        ...(execArgv ? { execArgv } : {}),
        transferList: [port2],
        // A small young generation makes scavenges frequent, which is when V8 frees the
        // backing stores of the many short-lived Buffers that crypto and zlib return:
        // without it each worker holds tens of MB of garbage between collections.
        resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GEN_MB },
      });
      // 'online' comes before the entry module is even loaded (a missing worker.js fails
      // after it): a worker is running once its entry says so.
      onlines.push(
        new Promise<void>((resolve, reject) => {
          const onReady = (r: WorkerReply): void => {
            if (r.op !== 'ready') return;
            w.off('message', onReady);
            resolve();
          };
          w.on('message', onReady);
          w.once('error', reject);
          w.once('exit', (code) => reject(new Error(`worker exited with code ${code}`)));
        }),
      );
      this.recyclePorts.push(port1);
      port1.unref();
      w.on('message', (r: WorkerReply) => this.settle(r, i));
      w.on('error', (e) => this.crash(i, e));
      w.on('exit', (code) => {
        if (code !== 0) this.crash(i, new Error(`worker exited with code ${code}`));
      });
      this.workers.push(w);
      this.load.push(0);
      this.inFlight.push(0);
    }
    this.ready = Promise.all(onlines).then(() => undefined);
    this.ready.catch(() => {});
  }

  /** Number of worker threads. */
  get size(): number {
    return this.workers.length;
  }

  private fail(e: unknown): void {
    this.failure ??= e;
    for (const w of this.slotWaiters.splice(0)) w();
    // A worker may be blocked waiting for a pack buffer that a failed upload will never
    // return: settle every job now so nobody waits for it; close() then terminates it.
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(this.failure);
    }
  }

  private settle(r: WorkerReply, worker: number): void {
    if (r.op === 'ready') return;
    if (r.op !== 'pack') this.answered(worker);
    if (r.op === 'pack') {
      const onPack = this.options.onPack;
      const p = (onPack ? onPack(r) : Promise.reject(new Error('pack without a handler'))).then(
        () => {
          // The store has the bytes (put resolved): hand the buffer back for reuse.
          (this.recyclePorts[worker] as MessagePort).postMessage(r.bytes.buffer, [r.bytes.buffer]);
          Atomics.add(this.returned, worker, 1);
          Atomics.notify(this.returned, worker);
        },
        (e: unknown) => this.fail(e),
      );
      const tracked = p.finally(() => this.uploads.delete(tracked));
      this.uploads.add(tracked);
      return;
    }
    const p = this.pending.get(r.jobId);
    if (!p) return;
    this.pending.delete(r.jobId);
    this.load[p.worker] = (this.load[p.worker] as number) - 1;
    p.resolve(r);
  }

  /** A worker answered a job (or can no longer answer any). */
  private answered(worker: number, all = false): void {
    this.inFlight[worker] = all ? 0 : Math.max(0, (this.inFlight[worker] as number) - 1);
    if (this.inFlight.every((n) => n === 0)) for (const w of this.idleWaiters.splice(0)) w();
  }

  private crash(worker: number, e: Error): void {
    this.answered(worker, true);
    this.fail(e);
    for (const [id, p] of this.pending) {
      if (p.worker === worker) {
        this.pending.delete(id);
        p.reject(e);
      }
    }
  }

  private run(
    req: Distribute<WorkerRequest>,
    transfer: ArrayBuffer[],
    worker?: number,
  ): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    let best = worker ?? 0;
    if (worker === undefined) {
      for (let i = 1; i < this.workers.length; i++) {
        if ((this.load[i] as number) < (this.load[best] as number)) best = i;
      }
    }
    this.load[best] = (this.load[best] as number) + 1;
    this.inFlight[best] = (this.inFlight[best] as number) + 1;
    const jobId = this.nextJob++;
    return new Promise<WorkerReply>((resolve, reject) => {
      this.pending.set(jobId, { resolve, reject, worker: best });
      (this.workers[best] as Worker).postMessage({ ...req, jobId }, transfer);
    }).then((r) => {
      if (r.op === 'error') {
        if (r.corrupt) throw new CorruptBackupError(r.message, r.object);
        if (r.store === 'missing') throw new MissingObjectError(r.object ?? 'pack');
        if (r.store === 'unavailable') throw new UnavailableError(r.message);
        if (r.errno && req.op === 'file') throw new SourceReadError(r.message, r.errno);
        // A restore's write: a system error, as it would be in the calling thread.
        if (r.errno)
          throw Object.assign(new Error(r.message), { code: r.errno, syscall: r.syscall });
        throw new Error(r.message);
      }
      return r;
    });
  }

  /**
   * Queue a file job once fewer than FILE_JOBS_PER_WORKER per worker are queued or running;
   * `done` settles with its result. (Wrapped so that awaiting the slot does not await the
   * job.) A file that cannot be read rejects `done` with a {@link SourceReadError} and
   * leaves the pool usable.
   */
  async submitFile(job: FileJob): Promise<{ done: Promise<FileResult> }> {
    while (this.fileJobs >= FILE_JOBS_PER_WORKER * this.workers.length && !this.failure) {
      await new Promise<void>((r) => this.slotWaiters.push(r));
    }
    if (this.failure) throw this.failure;
    this.fileJobs += 1;
    const done = this.run({ op: 'file', ...job }, []).then(
      (r) => r as FileResult,
      (e: unknown) => {
        if (!(e instanceof SourceReadError)) this.fail(e);
        throw e;
      },
    );
    const release = (): void => {
      this.fileJobs -= 1;
      this.slotWaiters.shift()?.();
    };
    done.then(release, release);
    return { done };
  }

  /** Store a tree blob (sealed into a worker's pack unless known). */
  async tree(plain: Uint8Array): Promise<{ id: Uint8Array; isNew: boolean }> {
    const owned = ownedBuffer(plain);
    const r = await this.run({ op: 'tree', plain: owned }, [owned.buffer]);
    if (r.op !== 'tree') throw new Error('worker protocol error');
    return { id: r.id, isNew: r.isNew };
  }

  /**
   * Finish every worker's pack and wait until every pack is stored.
   * @throws the first upload or worker error.
   */
  async flush(): Promise<void> {
    await Promise.all(this.workers.map((_, i) => this.run({ op: 'flush' }, [], i)));
    while (this.uploads.size > 0) await Promise.allSettled([...this.uploads]);
    if (this.failure) throw this.failure;
  }

  /**
   * Open and fully verify a sealed blob. `sealed`'s buffer is transferred.
   * @throws CorruptBackupError naming `object` when verification fails.
   */
  async open(ref: BlobRef, sealed: Uint8Array, object: string): Promise<Uint8Array> {
    const owned = ownedBuffer(sealed);
    const r = await this.run({ op: 'open', ref, sealed: owned, object }, [owned.buffer]);
    if (r.op !== 'open') throw new Error('worker protocol error');
    return r.plain;
  }

  /**
   * Verify and write the blobs of one pack range into their files (see workers/jobs.ts).
   * The range is either `sealed` (read by the caller; its buffer is transferred) or a
   * `path`, `offset` and `length` in a local pack file that the worker reads itself, which
   * keeps the bytes out of this thread (see {@link Storage.localPath}).
   * @throws CorruptBackupError naming `object` when a blob fails verification or the pack
   *   file is shorter than the range; MissingObjectError when the pack file does not exist;
   *   UnavailableError when it cannot be read.
   */
  async write(
    source: Uint8Array | PackFileRange,
    object: string,
    items: WriteItem[],
  ): Promise<number> {
    let r: WorkerReply;
    if (source instanceof Uint8Array) {
      const owned = ownedBuffer(source);
      r = await this.run({ op: 'write', source: { sealed: owned }, object, items }, [owned.buffer]);
    } else {
      r = await this.run({ op: 'write', source, object, items }, []);
    }
    if (r.op !== 'write') throw new Error('worker protocol error');
    return r.bytes;
  }

  /**
   * Stop every worker (after waiting for uploads already started). Jobs still running are
   * asked to stop at their next chunk or blob, and the workers are terminated once idle (at
   * most CLOSE_WAIT_MS later): Node aborts the whole process ("close before init", an
   * assertion in its zlib binding) when a worker is terminated in the middle of a Brotli
   * call, which an abort during a backup did once in the abort tests under load.
   */
  async close(): Promise<void> {
    this.fail(new Error('worker pool closed'));
    Atomics.store(this.stop, 0, 1);
    // Wake a worker that waits for a pack buffer: it sees `stop` and leaves its job.
    for (let i = 0; i < this.workers.length; i++) {
      Atomics.add(this.returned, i, 1);
      Atomics.notify(this.returned, i);
    }
    await Promise.allSettled([...this.uploads]);
    if (!this.inFlight.every((n) => n === 0)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      });
      clearTimeout(timer);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const p of this.recyclePorts) p.close();
  }
}

/** Node's worker threads as the engine's pool factory. */
export const nodeWorkers: PoolFactory = {
  defaultWorkers,
  start: (size, keys, options) => WorkerPool.start(size, keys, options),
};
