#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2
/**
 * (The shebang bounds memory that grows with the size of a backup. `--max-semi-space-size`
 * caps V8's young generation of the main thread at 2 × 2 MiB: left alone it grows to
 * 2 × 16 MiB during a large backup and stays resident (worker threads get their cap from
 * `resourceLimits`). `MALLOC_ARENA_MAX=2` stops glibc from giving each of the threads its
 * own malloc arena, where freed buffers linger. Measured on a 2 GB chat: peak RSS 216 MiB
 * with neither, 197 MiB with the V8 flag, 188 MiB with both, at the same CPU time.
 * bench/engine-child runs with the same settings, read from this line.)
 *
 * The `backvault` executable: wires the real process (streams, environment, signals, exit code)
 * to the runner in `run.ts`.
 */
import type { CliIo } from './context.js';
import { Interrupt } from './interrupt.js';
import { operationOf, reportInterrupted, runCli } from './run.js';

const argv = process.argv.slice(2);
const interrupt = new Interrupt();
const io: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
  interrupt,
};

// Runtime warnings (e.g. the AWS SDK announcing a future Node requirement) are for developers,
// not users; they would also break the promise of one stderr line per error.
process.removeAllListeners('warning');
if (process.env.BACKVAULT_DEBUG === '1') {
  process.on('warning', (w) => process.stderr.write(`${w.name}: ${w.message}\n`));
}

// Ctrl-C during a backup, restore, check, prune, forget or verify: the first one aborts the
// engine, which stops before its commit point (rejects: INTERRUPTED, 130) or, when the key
// came after it, completes (the command reports its result: saying "nothing was committed"
// then would be false). A second Ctrl-C, or one at any other moment, leaves at once with
// 128 + SIGINT: the engine commits atomically (objects first, snapshot last; a restore
// moves into place only when complete), so stopping anywhere is safe, and the line says
// whether the operation had passed its commit point (Interrupt.committed). See interrupt.ts.
// `backvault ui` runs until Ctrl-C: stopping is its normal end, handled by the command.
if (operationOf(argv) !== 'ui') {
  process.on('SIGINT', () => {
    if (interrupt.stop()) return;
    const c = interrupt.committed();
    const at = c === true ? 'after' : c === false ? 'before' : 'unsure';
    process.exit(reportInterrupted(io, argv.includes('--json'), operationOf(argv), at));
  });
}

// `backvault snapshots | head`: a reader that goes away is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const code = await runCli(argv, io);
// Exit explicitly: a storage client or worker pool must not keep a finished command alive.
// Writes to pipes and files are synchronous on POSIX, so nothing printed is lost.
process.stdout.write('', () => process.exit(code));
