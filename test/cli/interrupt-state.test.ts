/**
 * What each Ctrl-C does, as `main.ts` asks {@link Interrupt}: the first one during the
 * command's main operation aborts it, any other exits at once, and the exit line says
 * whether that operation had completed. (The process-level behaviour, with real signals on
 * a terminal, is in interrupt.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tellingPuts } from '#cli/cli/command.js';
import { isEmptyDir } from '#cli/cli/commands/restore.js';
import { CliContext, STOPPING_LINE } from '#cli/cli/context.js';
import { LocalStorage } from '#sdk/storage/node/local.js';
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

  it('a rejection after the abort is still a success the command saw committed', async () => {
    // The SDK rejects with the abort whatever failed after it, even a step past the commit
    // point (a final fsync): the command's probe then says what is true.
    for (const seen of [true, false, undefined]) {
      const i = new Interrupt();
      i.commitProbe = () => seen;
      const r = i.run(async () => {
        i.stop();
        throw new Error('EIO on the final fsync');
      });
      await assert.rejects(r, (e: unknown) => {
        assert.ok(e instanceof Interrupted);
        assert.equal(e.committed, seen === true);
        return true;
      });
    }
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

  it('the exit line says where the operation stood against its commit point', () => {
    const line = (at?: 'before' | 'after' | 'unsure', operation = 'restore') => {
      const r = recordingIo(false);
      assert.equal(reportInterrupted(r.io, true, operation, at), 130);
      const parsed = JSON.parse(r.out.stdout) as { error: { message: string; hint: string } };
      assert.equal(r.out.stderr, `INTERRUPTED: ${parsed.error.message} — ${parsed.error.hint}\n`);
      return r.out.stderr.trimEnd();
    };
    assert.equal(
      line(),
      'INTERRUPTED: restore stopped by Ctrl-C before completion — Nothing was moved into place: the restore target is as it was. Run the restore again.',
    );
    assert.equal(line('before'), line());
    assert.equal(
      line('after'),
      'INTERRUPTED: restore was complete when Ctrl-C stopped it — The restore target holds the snapshot; only the steps after it did not finish.',
    );
    assert.equal(
      line('after', 'backup'),
      'INTERRUPTED: backup was complete when Ctrl-C stopped it — The new snapshot is kept; only the steps after it (e.g. retention, --verify) did not finish.',
    );
    assert.equal(
      line('unsure'),
      'INTERRUPTED: restore stopped by Ctrl-C before completion — The restore target is as it was, unless the snapshot was already moving into it (--force): the next restore then finishes or undoes that move. Run the restore again.',
    );
    // Where the usual hint holds at any moment, it is kept.
    assert.equal(
      line('unsure', 'prune'),
      'INTERRUPTED: prune stopped by Ctrl-C before completion — Nothing in use was deleted; run prune again to finish.',
    );
  });

  it('committed(): no before the operation, yes after it, the probe while it stops', async () => {
    const i = new Interrupt();
    let probe: boolean | undefined = false;
    i.commitProbe = () => probe;
    assert.equal(i.committed(), false, 'idle: the probe is not asked');
    probe = true;
    assert.equal(i.committed(), false);
    await i.run(async () => {
      i.stop();
      for (const p of [false, true, undefined]) {
        probe = p;
        assert.equal(i.committed(), p);
      }
    });
    probe = false;
    assert.equal(i.committed(), true, 'done');
  });
});

describe('what the CLI sees of a commit point', () => {
  it('tellingPuts: a successful put is told, on the store and on its withSignal views', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-telling-'));
    try {
      const told: string[] = [];
      const store = tellingPuts(new LocalStorage(join(dir, 'repo')), (n) => told.push(n));
      await store.put('snapshots/a', new Uint8Array([1]));
      const ac = new AbortController();
      const view = store.withSignal?.(ac.signal);
      assert.ok(view, 'the view keeps withSignal');
      await view.put('snapshots/b', new Uint8Array([2]));
      assert.deepEqual(told, ['snapshots/a', 'snapshots/b']);
      assert.deepEqual(await view.get('snapshots/a'), new Uint8Array([1]));
      // The view is still the store's signal view: an abort stops its reads.
      ac.abort(new Error('stop'));
      await assert.rejects(view.get('snapshots/a'), /stop/);
      // A put that fails is not told.
      const failing = tellingPuts(
        Object.assign(Object.create(new LocalStorage(join(dir, 'repo'))) as LocalStorage, {
          put: () => Promise.reject(new Error('disk full')),
        }),
        (n) => told.push(n),
      );
      await assert.rejects(failing.put('snapshots/c', new Uint8Array([3])), /disk full/);
      assert.equal(told.length, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('isEmptyDir: absent or empty is empty; an entry, or a file, is not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bv-empty-'));
    try {
      const target = join(dir, 'out');
      assert.equal(isEmptyDir(target), true);
      await mkdir(target);
      assert.equal(isEmptyDir(target), true);
      await writeFile(join(target, 'f'), 'x');
      assert.equal(isEmptyDir(target), false);
      assert.equal(isEmptyDir(join(target, 'f')), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
