/**
 * The one long-running operation of the UI server (a backup or a restore). It runs in the
 * server, not in the page: a page reload, a second tab or a closed browser do not stop it,
 * and any page asks `GET /api/job` to re-attach to it.
 */
import { randomUUID } from 'node:crypto';
import type { Progress } from 'backvault/backup';
import { ConflictError } from 'backvault/errors';
import { toUiError, type UiError } from './cli-bridge.js';

/** What a job does. */
export type JobKind = 'backup' | 'restore';

/** A job as the page sees it (`GET /api/job`). */
export interface JobView {
  readonly id: string;
  readonly kind: JobKind;
  readonly state: 'running' | 'done' | 'failed';
  /** ISO 8601. */
  readonly startedAt: string;
  readonly finishedAt?: string;
  readonly progress?: Progress & {
    /** Bytes per second, smoothed over the last seconds. */
    readonly rate?: number;
    /** Seconds left at the current rate, when the total is known. */
    readonly etaSeconds?: number;
  };
  /** The command's JSON result (as `backvault … --json` prints it). */
  readonly result?: Record<string, unknown>;
  readonly error?: UiError;
}

interface Job {
  view: JobView;
  /** For the rate: the last sample. */
  lastAt: number;
  lastBytes: number;
  rate: number | undefined;
}

/** Smoothing of the rate: weight of the newest sample. */
const RATE_WEIGHT = 0.3;
/** Samples closer than this are merged (progress arrives many times a second). */
const RATE_SAMPLE_MS = 250;

/** Holds the current (or last) job; starts at most one at a time. */
export class JobRunner {
  #job: Job | undefined;

  /** The running job, or the last one that ended; `undefined` before the first. */
  current(): JobView | undefined {
    return this.#job?.view;
  }

  /** True while a job runs. */
  busy(): boolean {
    return this.#job?.view.state === 'running';
  }

  /**
   * Starts `work` as a job unless one runs. `work` gets a progress callback.
   * @returns the job's view (state `running`).
   * @throws ConflictError when a job is running.
   */
  start(
    kind: JobKind,
    work: (onProgress: (p: Progress) => void) => Promise<Record<string, unknown>>,
  ): JobView {
    if (this.busy()) {
      const k = this.#job?.view.kind ?? 'job';
      throw new ConflictError(`a ${k} is already running`);
    }
    const job: Job = {
      view: {
        id: randomUUID(),
        kind,
        state: 'running',
        startedAt: new Date().toISOString(),
      },
      lastAt: performance.now(),
      lastBytes: 0,
      rate: undefined,
    };
    this.#job = job;
    const onProgress = (p: Progress): void => this.#progress(job, p);
    void work(onProgress).then(
      (result) => {
        job.view = { ...job.view, state: 'done', finishedAt: new Date().toISOString(), result };
      },
      (e: unknown) => {
        job.view = {
          ...job.view,
          state: 'failed',
          finishedAt: new Date().toISOString(),
          error: toUiError(e),
        };
      },
    );
    return job.view;
  }

  /** Resolves when no job runs any more (for a clean shutdown). */
  async idle(pollMs = 100): Promise<void> {
    while (this.busy()) await new Promise((r) => setTimeout(r, pollMs));
  }

  #progress(job: Job, p: Progress): void {
    const now = performance.now();
    // A new phase (scan → backup) restarts the rate: scanned bytes were not transferred.
    if (job.view.progress?.phase !== p.phase) {
      job.lastAt = now;
      job.lastBytes = p.bytesDone;
      job.rate = undefined;
    } else if (now - job.lastAt >= RATE_SAMPLE_MS) {
      const sample = ((p.bytesDone - job.lastBytes) * 1000) / (now - job.lastAt);
      job.rate = job.rate === undefined ? sample : job.rate + RATE_WEIGHT * (sample - job.rate);
      job.lastAt = now;
      job.lastBytes = p.bytesDone;
    }
    const rate = job.rate;
    const eta =
      rate !== undefined && rate > 0 && p.bytesTotal !== undefined && p.phase !== 'scan'
        ? Math.max(0, (p.bytesTotal - p.bytesDone) / rate)
        : undefined;
    job.view = {
      ...job.view,
      progress: {
        ...p,
        ...(rate !== undefined ? { rate } : {}),
        ...(eta !== undefined ? { etaSeconds: eta } : {}),
      },
    };
  }
}
