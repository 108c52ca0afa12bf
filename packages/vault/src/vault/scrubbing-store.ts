/**
 * "Destroyed" means gone from the disk too: a store wrapper that runs the store's scrub
 * (SQLite: checkpoint and truncate the WAL; etcd: compact the history) after EVERY write
 * that destroys a secret byte string — a record delete (`disable`), a password change
 * (the old sealed OPAQUE record and key envelope are replaced) and a lockout (both set to
 * null) — before the write is answered.
 *
 * It needs no help from the service: it remembers what each account's record held at the
 * version it last read (the service always reads before a CAS) and compares with what the
 * CAS writes. A CAS against a version it did not see is scrubbed too (the safe side).
 * Concurrent scrubs are coalesced: a write waits for one scrub that started after it.
 */
import { ABSENT, type GetOptions, type VaultRecord, type VaultStore } from './store.js';

/** Bound on remembered records (an LRU by insertion order). */
const MAX_REMEMBERED = 20_000;

interface Seen {
  readonly version: number;
  readonly sealedRecord: Uint8Array | null;
  readonly keyEnvelope: Uint8Array | null;
}

function kept(before: Uint8Array | null, after: Uint8Array | null): boolean {
  // A login writes back the very arrays it read: no bytes to compare (or copy) then.
  return (
    before === null || before === after || (after !== null && Buffer.compare(before, after) === 0)
  );
}

/** A store whose destroying writes are followed by `scrub` (awaited; its errors reported). */
export function scrubbingStore<S extends VaultStore>(
  store: S,
  scrub: () => Promise<void>,
  onScrubError: (e: unknown) => void = () => undefined,
): VaultStore {
  const seen = new Map<string, Seen>();
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const run = (): Promise<void> => {
    const p: Promise<void> = scrub()
      .catch(onScrubError)
      .finally(() => {
        if (running === p) running = undefined;
      });
    running = p;
    return p;
  };
  /** Resolves after one scrub that started after this call (concurrent callers share it). */
  const scrubAfter = (): Promise<void> => {
    if (!running) return run();
    next ??= running.then(() => {
      next = undefined;
      return run();
    });
    return next;
  };
  const remember = (account: string, r: VaultRecord | undefined): void => {
    // Versions only grow: a slow read's older answer must not replace a newer one.
    const known = seen.get(account);
    if (r && known && known.version > r.version) return;
    seen.delete(account);
    if (!r) return;
    if (seen.size >= MAX_REMEMBERED) seen.delete(seen.keys().next().value as string);
    seen.set(account, {
      version: r.version,
      sealedRecord: r.sealedRecord,
      keyEnvelope: r.keyEnvelope,
    });
  };
  return {
    async get(account: string, options?: GetOptions) {
      const r = await store.get(account, options);
      remember(account, r);
      return r;
    },
    async compareAndSwap(account, expectedVersion, next) {
      const before = seen.get(account);
      const ok = await store.compareAndSwap(account, expectedVersion, next);
      seen.delete(account);
      if (!ok || expectedVersion === ABSENT) return ok;
      const destroys =
        before?.version !== expectedVersion ||
        !kept(before.sealedRecord, next.sealedRecord) ||
        !kept(before.keyEnvelope, next.keyEnvelope);
      if (destroys) await scrubAfter();
      return ok;
    },
    async compareAndDelete(account, expectedVersion) {
      const ok = await store.compareAndDelete(account, expectedVersion);
      seen.delete(account);
      if (ok) await scrubAfter();
      return ok;
    },
    close: () => store.close(),
  };
}
