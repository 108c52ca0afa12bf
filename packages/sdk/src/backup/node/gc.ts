/**
 * Bounded garbage. Node's crypto, zlib and fs calls return a fresh Buffer per call, whose
 * memory V8 frees only at its next collection, and collections are rare in threads that
 * allocate few JS objects. Measured on the 1 GB bench chat: each thread held tens of MB of
 * dead buffers, which broke the 200 MB RSS budget. A minor collection (~1 ms) every
 * GC_EVERY bytes of data keeps that small. `gc` is reached through V8's flag API because
 * worker threads cannot take --expose-gc; exposing it has no other effect.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Measured 2026-11-24, first backup of the bench chat, 3 runs each: every 16 MiB, peak RSS
 * 175-195 MiB; every 4 MiB, 166-176 MiB, at the same CPU time (~250 collections of ~1 ms).
 */
const GC_EVERY = 4 * 1024 * 1024;

type Collect = (opts: { type: 'minor' | 'major'; execution: 'sync' }) => void;
let collect: Collect | undefined;
let since = 0;

/** Count `bytes` of processed data; collect young garbage every GC_EVERY bytes. */
export function accountGarbage(bytes: number): void {
  since += bytes;
  if (since < GC_EVERY) return;
  since = 0;
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Collect;
  }
  collect({ type: 'minor', execution: 'sync' });
}
