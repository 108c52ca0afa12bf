/**
 * File names are data, and a chat's media names can come from other people: a name holding
 * terminal control sequences (ESC, BEL, CR, a newline) must not reach the terminal as
 * such. Human output shows every control character as `\xNN`, so a listing keeps one line
 * per entry and a name cannot recolour, retitle or rewrite the screen; `--json` keeps the
 * exact name (JSON escapes it).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { CliHarness, parseJsonOutput } from './cli-harness.js';

/** Any C0 or C1 control character but the newline that ends each line. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

const RED = 'red\x1b[31mRED\x1b[0m.jpg';
const TITLE = 'title\x1b]0;pwned\x07.jpg';
const CR = 'cr\rhidden.jpg';
const NL = 'two\nlines.jpg';

describe('names with control characters in human output', () => {
  let h: CliHarness;
  let env: Record<string, string>;
  let repo: string;
  before(async () => {
    h = await CliHarness.create('bv-edge-names-');
    const src = h.path('chat');
    await mkdir(src);
    for (const n of [RED, TITLE, CR, NL]) await writeFile(h.path('chat', n), n);
    // A FIFO named with an escape: named in a warning (skipped, partial).
    execFileSync('mkfifo', [h.path('chat', 'pipe\x1b[2J')]);
    env = { BACKVAULT_KEY: (await h.run(['key', 'generate'])).stdout.trim() };
    repo = h.path('cloud');
  });
  after(async () => h.dispose());

  it('backup warnings, ls, restore errors: every control character shown as \\xNN', async () => {
    const b = await h.run(['backup', 'chat', '--init', '--repo', repo], { env });
    assert.equal(b.code, 7, b.stderr);
    assert.doesNotMatch(b.stdout + b.stderr, CONTROL);
    assert.match(b.stdout, /a FIFO, not backed up, skipped: .*pipe\\x1b\[2J$/m);

    const ls = await h.run(['ls', '--repo', repo], { env });
    assert.equal(ls.code, 0, ls.stderr);
    assert.doesNotMatch(ls.stdout, CONTROL);
    for (const shown of [
      'red\\x1b[31mRED\\x1b[0m.jpg',
      'title\\x1b]0;pwned\\x07.jpg',
      'cr\\x0dhidden.jpg',
      'two\\x0alines.jpg',
    ])
      assert.ok(ls.stdout.includes(shown), `${shown} in ${ls.stdout}`);
    // One line per entry: the header, 4 files, the totals.
    assert.equal(ls.stdout.trimEnd().split('\n').length, 6, ls.stdout);

    // --json keeps the exact names.
    const j = parseJsonOutput(await h.run(['ls', '--repo', repo, '--json'], { env }));
    assert.deepEqual(
      (j.entries as { path: string }[]).map((e) => e.path).sort(),
      [CR, RED, TITLE, NL].sort(),
    );

    // The restored names are exact; an error naming a path escapes it on its one line.
    const r = await h.run(['restore', 'out', '--repo', repo], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await readdir(h.path('out'))).sort(), [CR, RED, TITLE, NL].sort());
    await writeFile(h.path(`file\x1b[31m`), 'a file');
    const e = await h.run(['restore', `file\x1b[31m`, '--repo', repo], { env });
    assert.equal(e.code, 2);
    assert.doesNotMatch(e.stderr, CONTROL);
    assert.match(e.stderr, /^USAGE: restore target is not a directory: .*file\\x1b\[31m —/);
  });
});
