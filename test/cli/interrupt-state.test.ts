/**
 * What each Ctrl-C does, as `main.ts` asks {@link Interrupt}: the first one during the
 * command's main operation aborts it, any other exits at once, and the exit line says
 * whether that operation had completed. (The process-level behaviour, with real signals on
 * a terminal, is in interrupt.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliContext, STOPPING_LINE } from '#cli/cli/context.js';
import { Interrupt, Interrupted } from '#cli/cli/interrupt.js';
import { reportInterrupted } from '#cli/cli/run.js';

/** Streams that record what is written; stderr a terminal or not. */
function recordingIo(isTTY: boolean, interrupt?: Interrupt) {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s), isTTY },
      stdin: process.stdin,
      env: { TERM: 'xterm' },
      cwd: process.cwd(),
      ...(interrupt ? { interrupt } : {}),
    },
  };
}

describe('Interrupt: what each Ctrl-C does', () => {
  it('outside the operation, before or after it: exit at once', async () => {
    const i = new Interrupt();
    assert.equal(i.stop(), false);
    assert.equal(i.state, 'idle');
    await i.run(async () => 1);
    assert.equal(i.state, 'done');
    assert.equal(i.stop(), false, 'a step after the operation is not waited for');
    assert.equal(i.signal.aborted, false);
  });

  it('the first Ctrl-C aborts the operation, the second exits at once', async () => {
    const i = new Interrupt();
    let answers: boolean[] = [];
    const r = i.run(
      (signal) =>
        new Promise<never>((_, reject) => {
          answers = [i.stop(), i.stop()];
          assert.equal(i.state, 'stopping');
          signal.addEventListener('abort', () => reject(signal.reason));
          if (signal.aborted) reject(signal.reason);
        }),
    );
    await assert.rejects(r, Interrupted);
    assert.deepEqual(answers, [true, false]);
  });

  it('an operation that completes despite the abort (past its commit point) is a success', async () => {
    const i = new Interrupt();
    const r = await i.run(async () => {
      assert.equal(i.stop(), true);
      return 'kept';
    });
    assert.deepEqual(r, { value: 'kept', lateCtrlC: true });
    assert.equal(i.state, 'done');
  });

  it('a failure that is not the abort is reported as itself, and a retry may stop again', async () => {
    const i = new Interrupt();
    await assert.rejects(
      i.run(async () => Promise.reject(new Error('wrong key'))),
      /wrong key/,
    );
    assert.equal(i.state, 'idle');
    assert.equal(i.stop(), false);
    await i.run(async () => assert.equal(i.stop(), true));
  });

  it('a later operation of the same command (e.g. --verify) gets a signal that never aborts', async () => {
    const i = new Interrupt();
    await i.run(async () => i.stop());
    const r = await i.run(async (signal) => signal.aborted);
    assert.deepEqual(r, { value: false, lateCtrlC: false });
  });

  it('on a terminal: "Stopping…" replaces the bar, then the note replaces it', async () => {
    const i = new Interrupt();
    const { io, out } = recordingIo(true, i);
    const ctx = new CliContext(io, false);
    const v = await ctx.stoppable('restore', async () => {
      i.stop();
      return 7;
    });
    assert.equal(v, 7);
    assert.equal(
      out.stderr,
      `\r\x1b[2K${STOPPING_LINE}\r\x1b[2KCtrl-C came after the restore was complete; it was kept.\n`,
    );
    // Not on a terminal, nor with --json: no "Stopping…" line, the note alone.
    for (const [tty, json] of [
      [false, false],
      [true, true],
    ] as const) {
      const j = new Interrupt();
      const r = recordingIo(tty, j);
      await new CliContext(r.io, json).stoppable('backup', async () => j.stop());
      assert.equal(r.out.stderr, 'Ctrl-C came after the backup was complete; it was kept.\n');
    }
  });

  it('the exit line says whether the operation had completed', () => {
    const before = recordingIo(false);
    reportInterrupted(before.io, true, 'restore');
    assert.equal(
      before.out.stderr,
      'INTERRUPTED: restore stopped by Ctrl-C before completion — Nothing was moved into place: the restore target is as it was. Run the restore again.\n',
    );
    const after = recordingIo(false);
    assert.equal(reportInterrupted(after.io, true, 'backup', true), 130);
    assert.equal(
      after.out.stderr,
      'INTERRUPTED: backup was complete when Ctrl-C stopped it — The new snapshot is kept; what came after it (device record, retention, --verify) did not finish.\n',
    );
    assert.deepEqual(JSON.parse(after.out.stdout), {
      error: {
        code: 'INTERRUPTED',
        message: 'backup was complete when Ctrl-C stopped it',
        hint: 'The new snapshot is kept; what came after it (device record, retention, --verify) did not finish.',
      },
    });
  });
});
