/**
 * Ctrl-C during a command, as the runner sees it. `main.ts` owns the process signal and asks
 * {@link Interrupt.stop} what to do with each Ctrl-C; commands run their main engine
 * operation through {@link CliContext.stoppable}, which hands it this object's signal.
 *
 * Why not exit at once: the engine has a commit point (a backup's snapshot object written, a
 * restore's tree renamed into place) followed by a few final steps (fsyncs, removing the
 * temporary directory, releasing the lock). A Ctrl-C in those last milliseconds used to print
 * "nothing was committed" while the snapshot already existed or the target already held the
 * restore. Aborting instead lets the engine decide: it rejects with the abort only before its
 * commit point, and otherwise resolves (test/backup/abort-after-commit.test.ts), so the
 * command reports what really happened.
 */

/** The reason given to the abort; the engine rejects with it when it stops before its commit. */
export class Interrupted extends Error {
  /**
   * @param committed the operation had passed its commit point all the same (it rejected
   *   after an abort, which the SDK reports as the abort, but the command saw the commit).
   */
  constructor(readonly committed = false) {
    super('stopped by Ctrl-C');
    this.name = 'Interrupted';
  }
}

/**
 * Where the command stands, for the next Ctrl-C:
 * - `idle`: no engine operation that can stop cleanly is running (exit at once);
 * - `running`: one is (abort it);
 * - `stopping`: it was aborted and has not answered yet (exit at once: never stuck);
 * - `done`: it completed (exit at once, saying it had completed).
 */
export type InterruptState = 'idle' | 'running' | 'stopping' | 'done';

/** One per process (see `main.ts`); commands reach it through their CliContext. */
export class Interrupt {
  private readonly controller = new AbortController();
  private current: InterruptState = 'idle';
  /** Told when the first Ctrl-C starts stopping the operation (the context draws a line). */
  onStopping: (() => void) | undefined;
  /**
   * Set by a command that can see its operation's commit point from outside the engine
   * (backup: its snapshot object stored; restore: an empty target filled): asked when a
   * Ctrl-C exits while the operation is still stopping. `undefined`: it cannot tell.
   */
  commitProbe: (() => boolean | undefined) | undefined;

  /**
   * Whether the operation had passed its commit point when the process exits at a Ctrl-C:
   * false before it ran, true once it completed; while it runs, what the probe says.
   */
  committed(): boolean | undefined {
    if (this.current === 'done') return true;
    if (this.current === 'idle') return false;
    return this.commitProbe ? this.commitProbe() : undefined;
  }

  get state(): InterruptState {
    return this.current;
  }

  /** Aborted by the first Ctrl-C during {@link run}. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * A Ctrl-C arrived. During an operation that can stop cleanly, the first one aborts it and
   * returns true (the caller waits for its outcome); otherwise returns false and the caller
   * exits at once.
   */
  stop(): boolean {
    if (this.current !== 'running') return false;
    this.current = 'stopping';
    this.controller.abort(new Interrupted());
    this.onStopping?.();
    return true;
  }

  /**
   * Run `fn`, the command's main engine operation, with the abort signal.
   * @returns what `fn` resolves to, and whether a Ctrl-C came while it ran (it completed
   *   anyway: the abort came after its commit point).
   * @throws Interrupted when `fn` rejects after a Ctrl-C (the engine stopped before its
   *   commit point); whatever `fn` throws otherwise.
   */
  async run<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<{ value: T; lateCtrlC: boolean }> {
    // One main operation per command: a later one (a backup's --verify, its retention) runs
    // after the first completed, with a signal that never aborts: a Ctrl-C then exits at
    // once, saying the command's operation had completed.
    if (this.current !== 'idle') {
      return { value: await fn(new AbortController().signal), lateCtrlC: false };
    }
    this.current = 'running';
    let value: T;
    try {
      value = await fn(this.controller.signal);
    } catch (e) {
      // After an abort the SDK rejects with the abort whatever failed, even a step after its
      // commit point (a final fsync, the local state file): the probe then has the last word.
      if (this.controller.signal.aborted) {
        throw this.commitProbe?.() === true ? new Interrupted(true) : this.controller.signal.reason;
      }
      this.current = 'idle';
      throw e;
    }
    const lateCtrlC = this.controller.signal.aborted;
    this.current = 'done';
    return { value, lateCtrlC };
  }
}
