/**
 * The pool of no threads: the jobs (jobs.ts) run in the calling thread, one at a time.
 * Used for `workers: 0`, for files that only the calling thread can read (MemoryFiles),
 * where a platform has no threads (React Native, browsers), and when worker threads cannot
 * start (a bundle shipped without the worker entry). At most two packs wait for the store:
 * a job waits there, which bounds memory as the threads' two pack buffers do.
 */
import type { BlobRef } from '../../format/index.js';
import type { RepoKeys } from '../repository/keys.js';
import { PACK_TARGET } from '../repository/pack-builder.js';
import type { EngineFiles, EngineHost } from '../platform/types.js';
import { JobRunner } from './jobs.js';
import {
  SourceReadError,
  type EnginePool,
  type FileJob,
  type FileResult,
  type PackFileRange,
  type PoolOptions,
  type WriteItem,
} from './pool-types.js';

const MAX_UPLOADS = 2;

function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

export class InThreadPool implements EnginePool {
  readonly size = 0;
  private readonly runner: JobRunner;
  private readonly uploads = new Set<Promise<void>>();
  private failure: unknown;
  private fileJobs = 0;
  private readonly slotWaiters: (() => void)[] = [];
  /** Jobs run one at a time, in order. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    keys: RepoKeys,
    private readonly options: PoolOptions,
    files: EngineFiles,
    host: EngineHost,
    readPackRange?: (src: PackFileRange, object: string) => Promise<Uint8Array>,
  ) {
    const none = { buf: new ArrayBuffer(32), count: 0 };
    this.runner = new JobRunner({
      keys,
      known: options.known ?? { data: none, tree: none },
      packTarget: options.packSize ?? PACK_TARGET,
      emit: (pack) => {
        const onPack = this.options.onPack;
        const p = (
          onPack ? onPack(pack) : Promise.reject(new Error('pack without a handler'))
        ).catch((e: unknown) => {
          this.failure ??= e;
        });
        const tracked = p.finally(() => this.uploads.delete(tracked));
        this.uploads.add(tracked);
      },
      openRead: (path) => files.openRead(path),
      writer: (handle) => files.writer(handle),
      ...(readPackRange ? { readPackRange } : {}),
      ...(host.accountGarbage ? { accountGarbage: (n: number) => host.accountGarbage?.(n) } : {}),
      backpressure: () =>
        this.uploads.size >= MAX_UPLOADS ? this.drain(MAX_UPLOADS - 1) : undefined,
    });
  }

  private async drain(upTo: number): Promise<void> {
    while (this.uploads.size > upTo) await Promise.race(this.uploads);
    if (this.failure) throw this.failure;
  }

  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(async () => {
      if (this.failure) throw this.failure;
      return fn();
    });
    this.queue = run.catch(() => {});
    return run;
  }

  async submitFile(job: FileJob): Promise<{ done: Promise<FileResult> }> {
    // One job queued ahead of the one running: the walk waits here, so the queue (and its
    // memory) stays bounded. (Worker threads take more, as each answer costs a hand-off
    // between threads; here the job runs on this thread and the next starts at once.)
    while (this.fileJobs >= 2 && !this.failure) {
      await new Promise<void>((r) => this.slotWaiters.push(r));
    }
    await this.drain(MAX_UPLOADS);
    this.fileJobs += 1;
    const release = (): void => {
      this.fileJobs -= 1;
      this.slotWaiters.shift()?.();
    };
    const done = this.serial(async () => {
      try {
        return await this.runner.file(job);
      } catch (e) {
        // A store failure surfaces here too (backpressure): never mistaken for the source's.
        const code = e === this.failure ? undefined : errnoOf(e);
        if (code) throw new SourceReadError(String((e as Error).message), code);
        this.failure ??= e;
        throw e;
      }
    });
    done.then(release, release);
    return { done };
  }

  tree(plain: Uint8Array): Promise<{ id: Uint8Array; isNew: boolean }> {
    return this.serial(() => this.runner.tree(plain));
  }

  async flush(): Promise<void> {
    await this.serial(() => this.runner.flush());
    await this.drain(0);
  }

  open(ref: BlobRef, sealed: Uint8Array, object: string): Promise<Uint8Array> {
    return Promise.resolve().then(() => this.runner.open(ref, sealed, object));
  }

  write(source: Uint8Array | PackFileRange, object: string, items: WriteItem[]): Promise<number> {
    return this.runner.write(source, object, items);
  }

  async close(): Promise<void> {
    this.failure ??= new Error('pool closed');
    for (const w of this.slotWaiters.splice(0)) w();
    await Promise.allSettled([...this.uploads]);
  }
}
