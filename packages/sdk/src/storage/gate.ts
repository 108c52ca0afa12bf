/**
 * Pause and continue: a gate in front of a Storage that an app closes to stop a backup's
 * traffic (the phone left Wi-Fi, the battery is low) and opens to let it go on.
 *
 * While the gate is closed no new request reaches the store: every call waits at the gate;
 * requests already in flight finish. For a backup that means it stops between packs, with
 * its chunking and packing held up behind the first pack that waits. Opening the gate lets
 * the waiting calls through in order.
 *
 * A backup paused for longer than its repository lock lives (20 min without a refresh,
 * see `backup/lock.ts`) does not commit: it fails with CONFLICT at its commit point and
 * the next backup resumes from the packs it stored.
 *
 * Browser-safe.
 */
import type { Storage } from './storage.js';

/** The app's handle to pause and resume a running backup (or any operation). */
export class BackupControl {
  private gate: { promise: Promise<void>; open: () => void } | undefined;
  private readonly listeners = new Set<(paused: boolean) => void>();

  /** Whether the gate is closed. */
  get paused(): boolean {
    return this.gate !== undefined;
  }

  /** Close the gate: no new storage request starts until {@link BackupControl.resume}. Idempotent. */
  pause(): void {
    if (this.gate) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.gate = { promise, open };
    for (const l of this.listeners) l(true);
  }

  /** Open the gate: waiting requests go on. Idempotent. */
  resume(): void {
    const gate = this.gate;
    if (!gate) return;
    this.gate = undefined;
    gate.open();
    for (const l of this.listeners) l(false);
  }

  /** Be told when the control pauses (`true`) or resumes (`false`); returns an unsubscribe. */
  onChange(listener: (paused: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolve when the gate is open (at once when it is).
   * @throws the signal's reason when `signal` aborts while waiting.
   */
  async passed(signal?: AbortSignal): Promise<void> {
    while (this.gate) {
      if (signal?.aborted) throw signal.reason;
      const gate = this.gate;
      if (!signal) {
        await gate.promise;
        continue;
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        void gate.promise.then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  }
}

/**
 * Wrap `storage` so that every request first passes `control`'s gate (see the module
 * comment). A listing passes the gate once, before it starts. `localPath` readers (restore's
 * workers on a local directory) read files directly and do not pass the gate.
 */
export function withGate(storage: Storage, control: BackupControl, signal?: AbortSignal): Storage {
  const pass = (): Promise<void> => control.passed(signal);
  return {
    location: storage.location,
    put: async (name, data) => {
      await pass();
      return storage.put(name, data);
    },
    get: async (name) => {
      await pass();
      return storage.get(name);
    },
    getRange: async (name, offset, length) => {
      await pass();
      return storage.getRange(name, offset, length);
    },
    stat: async (name) => {
      await pass();
      return storage.stat(name);
    },
    async *list(prefix) {
      await pass();
      yield* storage.list(prefix);
    },
    delete: async (name) => {
      await pass();
      return storage.delete(name);
    },
    close: () => storage.close(),
    ...(storage.localPath ? { localPath: storage.localPath.bind(storage) } : {}),
    ...(storage.cleanupTemp
      ? {
          cleanupTemp: async (olderThanMs?: number) => {
            await pass();
            return (storage.cleanupTemp as (ms?: number) => Promise<number>).call(
              storage,
              olderThanMs,
            );
          },
        }
      : {}),
  };
}
