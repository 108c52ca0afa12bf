import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Progress } from '#sdk/backup/api.js';
import {
  ProgressBar,
  REDRAW_INTERVAL_MS,
  renderProgress,
  renderStoreLine,
} from '#cli/cli/progress.js';

const MiB = 1024 * 1024;

describe('renderProgress', () => {
  it('shows bar, percent, bytes, files, rate and ETA', () => {
    const p: Progress = {
      phase: 'backup',
      bytesDone: 100 * MiB,
      bytesTotal: 400 * MiB,
      filesDone: 812,
      filesTotal: 2300,
    };
    const line = renderProgress(p, 2000, 120);
    assert.match(line, /^backup \[#+-+\] {2}25%/);
    assert.match(line, /100 MiB \/ 400 MiB/);
    assert.match(line, /812\/2,300 files/);
    assert.match(line, /50\.0 MiB\/s/);
    // 300 MiB left at 50 MiB/s.
    assert.match(line, /ETA 0:06/);
    const bar = /\[(#*)(-*)\]/.exec(line);
    assert.ok(bar);
    const [, filled = '', empty = ''] = bar;
    assert.equal(Math.round((filled.length / (filled.length + empty.length)) * 4), 1);
  });

  it('restore shows its rate and ETA; check and prune say they count packs', () => {
    const restore = renderProgress(
      { phase: 'restore', bytesDone: 30 * MiB, bytesTotal: 90 * MiB, filesDone: 3, filesTotal: 9 },
      3000,
      120,
    );
    assert.equal(
      restore,
      'restore [##########--------------------]  33%  30.0 MiB / 90.0 MiB  3/9 files  10.0 MiB/s  ETA 0:06',
    );
    const check = renderProgress({ phase: 'check', bytesDone: MiB, filesDone: 4 }, 1000, 100);
    assert.equal(check, 'check 1.00 MiB  4 packs  1.00 MiB/s');
    const prune = renderProgress({ phase: 'prune', bytesDone: MiB, filesDone: 2 }, 1000, 100);
    assert.equal(prune, 'prune 1.00 MiB  2 packs deleted  1.00 MiB/s');
  });

  it('without totals shows counts only, no bar and no ETA', () => {
    const line = renderProgress({ phase: 'scan', bytesDone: 5 * MiB, filesDone: 12 }, 1000, 80);
    assert.equal(line, 'scan 5.00 MiB  12 files  5.00 MiB/s');
  });

  it('waits half a second before showing a rate', () => {
    const line = renderProgress(
      { phase: 'restore', bytesDone: MiB, bytesTotal: 2 * MiB, filesDone: 1 },
      100,
      100,
    );
    assert.doesNotMatch(line, /\/s|ETA/);
    assert.match(line, / 50%/);
  });

  it('drops the bar on a narrow terminal and never exceeds width - 1', () => {
    const p: Progress = {
      phase: 'check',
      bytesDone: 3 * MiB,
      bytesTotal: 9 * MiB,
      filesDone: 1,
      filesTotal: 3,
    };
    const narrow = renderProgress(p, 3000, 50);
    assert.doesNotMatch(narrow, /\[/);
    assert.ok(narrow.length <= 49);
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 40 }),
        fc.nat({ max: 2 ** 40 }),
        fc.nat({ max: 10 ** 6 }),
        fc.nat({ max: 10 ** 7 }),
        fc.integer({ min: 0, max: 300 }),
        (done, total, files, ms, width) => {
          const line = renderProgress(
            { phase: 'backup', bytesDone: done, bytesTotal: total, filesDone: files },
            ms,
            width,
          );
          assert.ok(line.length <= Math.max(0, width - 1));
          assert.doesNotMatch(line, /NaN|Infinity|undefined/);
        },
      ),
    );
  });

  it('caps at 100% when done exceeds the estimate', () => {
    const line = renderProgress(
      { phase: 'backup', bytesDone: 11, bytesTotal: 10, filesDone: 1, filesTotal: 1 },
      1000,
      100,
    );
    assert.match(line, /\[#+\] 100%/);
  });
});

describe('ProgressBar', () => {
  it('redraws at most every interval, at once on a phase change, and clears', () => {
    let now = 0;
    const writes: string[] = [];
    const bar = new ProgressBar({ write: (s) => writes.push(s), columns: 100 }, () => now);
    const p = (phase: Progress['phase'], bytesDone: number): Progress => ({
      phase,
      bytesDone,
      filesDone: 0,
    });
    bar.update(p('scan', 1));
    assert.equal(writes.length, 1);
    for (let i = 0; i < 50; i++) {
      now += 10;
      bar.update(p('scan', i));
    }
    // 500 ms of updates every 10 ms: about 5 redraws, not 50.
    assert.ok(writes.length >= 5 && writes.length <= 6, String(writes.length));
    const before = writes.length;
    now += 1;
    bar.update(p('backup', 0));
    assert.equal(writes.length, before + 1);
    assert.ok((writes.at(-1) ?? '').startsWith('\r\x1b[2Kbackup '));
    now += REDRAW_INTERVAL_MS / 2;
    bar.update(p('backup', 1));
    assert.equal(writes.length, before + 1);
    bar.clear();
    assert.equal(writes.at(-1), '\r\x1b[2K');
    const count = writes.length;
    bar.clear();
    assert.equal(writes.length, count, 'clearing twice writes nothing more');
  });
});

describe('the outage line', () => {
  it('counts down to the next try and names the give-up time', () => {
    const now = new Date(2026, 11, 6, 14, 17, 0).getTime();
    const o = { reason: 'ECONNREFUSED', nextTryAt: now + 7_400, giveUpAt: now + 15 * 60_000 };
    assert.equal(
      renderStoreLine(o, now),
      'store unreachable (ECONNREFUSED) — retrying in 8 s, giving up at 14:32',
    );
    assert.equal(
      renderStoreLine({ ...o, nextTryAt: now }, now),
      'store unreachable (ECONNREFUSED) — retrying now, giving up at 14:32',
    );
    // Soon: to the second.
    assert.equal(
      renderStoreLine({ ...o, giveUpAt: now + 45_000 }, now, { countdown: false }),
      'store unreachable (ECONNREFUSED) — retrying until 14:17:45',
    );
  });

  it('the bar shows the outage after the phase, then the progress again', () => {
    const writes: string[] = [];
    const clearLine = `\r${String.fromCharCode(0x1b)}[2K`;
    const last = (): string => {
      const w = writes.at(-1) ?? '';
      assert.ok(w.startsWith(clearLine), 'each draw starts by erasing the line');
      return w.slice(clearLine.length);
    };
    const bar = new ProgressBar({ write: (s: string) => writes.push(s), columns: 120 });
    bar.update({ phase: 'backup', bytesDone: MiB, filesDone: 1 });
    bar.setStore({
      reason: 'ECONNRESET',
      nextTryAt: Date.now() + 3000,
      giveUpAt: Date.now() + 60_000,
    });
    assert.match(
      last(),
      /^backup store unreachable \(ECONNRESET\) — retrying in 3 s, giving up at \d\d:\d\d:\d\d$/,
    );
    bar.setStore(undefined);
    assert.match(last(), /^backup 1\.00 MiB/);
    bar.clear();
  });
});
