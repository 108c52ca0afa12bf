import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { parseBackupKey } from '#sdk/format/key-encoding.js';
import { CliHarness, parseJsonOutput, stderrLines, type CliRun } from './cli-harness.js';

const KEY_RE = /^([0-9a-f]{4} ){15}[0-9a-f]{4}$/;

function ok(r: CliRun, what: string): void {
  assert.equal(r.code, 0, `${what}: exit ${r.code}; stderr: ${r.stderr}`);
}

function assertUsage(r: CliRun, code: string, exit = 2): string {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  const lines = stderrLines(r);
  assert.equal(lines.length, 1, `exactly one stderr line, got: ${r.stderr}`);
  const line = lines[0] as string;
  assert.ok(line.startsWith(`${code}: `), line);
  return line;
}

describe('backvault CLI: usage, help and the key', () => {
  let h: CliHarness;
  before(async () => {
    h = await CliHarness.create();
    await mkdir(h.path('src'), { recursive: true });
    await writeFile(h.path('src', 'a.txt'), 'hello');
  });
  after(async () => h.dispose());

  it('prints help in every form, exit 0', async () => {
    for (const args of [
      ['--help'],
      ['-h'],
      ['help'],
      ['help', 'backup'],
      ['backup', '--help'],
      ['restore', '-h'],
      ['help', 'key', 'generate'],
      ['key', '--help'],
    ]) {
      const r = await h.run(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /backvault/);
      assert.equal(r.stderr, '');
    }
    const main = await h.run(['--help']);
    for (const c of ['key generate', 'backup', 'restore', 'snapshots', 'check', 'prune']) {
      assert.match(main.stdout, new RegExp(`\\n  ${c} `));
    }
    const backup = await h.run(['help', 'backup']);
    assert.match(backup.stdout, /--repo URL/);
    assert.match(backup.stdout, /no --key flag/);
    assert.match(backup.stdout, /shell history/);
    const check = await h.run(['check', '--help']);
    assert.match(check.stdout, /--\[no-\]read-data/);
  });

  it('prints the version', async () => {
    const r = await h.run(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^backvault \d+\.\d+\.\d+/);
  });

  it('usage errors exit 2 with one USAGE: line', async () => {
    const cases: string[][] = [
      [],
      ['frobnicate'],
      ['key'],
      ['key', 'rotate'],
      ['backup'],
      ['backup', 'src'],
      ['backup', 'src', '--repo'],
      ['backup', 'src', '--repo', 'r', '--bogus'],
      ['backup', 'src', 'extra', '--repo', 'r'],
      ['restore'],
      ['snapshots', 'extra', '--repo', 'r'],
      ['check', '--repo', 'r', '--read-data=yes'],
      ['key', 'generate', '--json=1'],
    ];
    for (const args of cases) {
      const r = await h.run(args, { env: { BACKVAULT_KEY: undefined } });
      assertUsage(r, 'USAGE');
      assert.equal(r.stdout, '', `nothing on stdout for ${args.join(' ')}`);
    }
    // A missing source folder says so (not "not a directory"), with its own code, exit 2.
    const missing = assertUsage(await h.run(['backup', 'missing-dir', '--repo', 'r']), 'NO_SOURCE');
    assert.match(missing, /^NO_SOURCE: the folder to back up does not exist: .*missing-dir — /);
    const unknown = assertUsage(await h.run(['snapshots', '--repo', 'r', '--bogus']), 'USAGE');
    assert.match(unknown, /unknown option --bogus/);
    const noKey = assertUsage(await h.run(['backup', 'src', '--repo', h.path('repo')]), 'USAGE');
    assert.match(noKey, /no backup key/);
    assert.match(noKey, /--key-file/);
  });

  it('a path through a file (repository, restore target) is a USAGE error naming it, and creates nothing', async () => {
    await writeFile(h.path('afile'), 'not a folder\n');
    const key = (await h.run(['key', 'generate'])).stdout.trim();
    const env = { BACKVAULT_KEY: key };
    for (const cmd of [
      ['init', '--repo', 'afile/repo'],
      ['backup', 'src', '--repo', 'afile/repo', '--init'],
      ['snapshots', '--repo', 'afile/repo'],
    ]) {
      const line = assertUsage(await h.run(cmd, { env }), 'USAGE');
      assert.match(line, /^USAGE: repository path is not a directory: .*\/afile is a file — /);
    }
    ok(await h.run(['init', '--repo', 'repo-ok'], { env }), 'init');
    ok(await h.run(['backup', 'src', '--repo', 'repo-ok'], { env }), 'backup');
    const line = assertUsage(
      await h.run(['restore', 'afile/sub', '--repo', 'repo-ok'], { env }),
      'USAGE',
    );
    assert.match(line, /^USAGE: restore target's path goes through a file: .*\/afile\/sub — /);
    // The state file and a device's folder: the same mistake, the same answer.
    for (const cmd of [
      ['backup', 'src', '--repo', 'repo-ok', '--state', 'afile/state.json'],
      ['snapshots', '--repo', 'repo-ok', '--state', 'afile/state.json'],
      ['enable', '--device', 'afile/dev', '--repo', 'repo-new', '--recovery-key', '--yes'],
    ]) {
      const l = assertUsage(await h.run(cmd, { env }), 'USAGE');
      assert.match(l, /afile/);
      assert.doesNotMatch(l, /INTERNAL|bug in backvault/);
    }
    assert.equal(existsSync(h.path('repo-new')), false, 'enable created nothing');
    // A state file that is not one (a folder, a chat file), a name too long: USAGE, named.
    const cases: [string[], RegExp][] = [
      [['snapshots', '--repo', 'repo-ok', '--state', 'src'], /the state file is a folder/],
      [
        ['snapshots', '--repo', 'repo-ok', '--state', 'src/a.txt'],
        /not a backvault state file, or a damaged one: .*a\.txt/,
      ],
      [['init', '--repo', 'x'.repeat(300)], /a name in this path is too long/],
    ];
    for (const [cmd, message] of cases) {
      assert.match(assertUsage(await h.run(cmd, { env }), 'USAGE'), message);
    }
  });

  it('with --json a usage error is also one JSON object on stdout', async () => {
    const r = await h.run(['backup', '--json']);
    assertUsage(r, 'USAGE');
    const out = parseJsonOutput(r) as { error: { code: string; message: string; hint: string } };
    assert.equal(out.error.code, 'USAGE');
    assert.match(out.error.message, /DIR/);
  });

  it('refuses a --key flag and never echoes a key given on the command line', async () => {
    const secret = 'c0ffee00'.repeat(8);
    const r1 = await h.run(['backup', 'src', '--repo', 'r', `--key=${secret}`]);
    const line = assertUsage(r1, 'USAGE');
    assert.match(line, /no --key flag/);
    assert.match(line, /shell history/);
    const r2 = await h.run(['restore', 'dst', secret, '--repo', 'r']);
    assertUsage(r2, 'USAGE');
    const r3 = await h.run([secret]);
    assertUsage(r3, 'USAGE');
    for (const r of [r1, r2, r3]) {
      assert.ok(!r.stderr.includes('c0ffee'), r.stderr);
      assert.ok(!r.stdout.includes('c0ffee'), r.stdout);
    }
  });

  it('key generate prints a fresh 64-digit key in 16 groups of 4', async () => {
    const a = await h.run(['key', 'generate']);
    const b = await h.run(['key', 'generate']);
    assert.equal(a.code, 0);
    assert.equal(a.stderr, '');
    const ka = a.stdout.trim();
    assert.match(ka, KEY_RE);
    assert.notEqual(ka, b.stdout.trim());
    assert.equal(parseBackupKey(ka).length, 32);
    const j = await h.run(['key', 'generate', '--json']);
    assert.equal(j.code, 0);
    const out = parseJsonOutput(j);
    assert.deepEqual(Object.keys(out), ['key']);
    assert.match(String(out.key), KEY_RE);
  });

  it('an invalid character in the key is INVALID_KEY (exit 2), naming the character, not the key', async () => {
    const good = (await h.run(['key', 'generate'])).stdout.trim();
    const bad = `${good.slice(0, 10)}g${good.slice(11)}`;
    const viaEnv = await h.run(['snapshots', '--repo', h.path('repo')], {
      env: { BACKVAULT_KEY: bad },
    });
    const line = assertUsage(viaEnv, 'INVALID_KEY');
    assert.match(line, /'g'/);
    assert.match(line, /position 11/);
    assert.match(line, /BACKVAULT_KEY/);
    await writeFile(h.path('bad.key'), `${bad}\n`);
    const viaFile = await h.run(['snapshots', '--repo', h.path('repo'), '--key-file', 'bad.key']);
    assert.match(assertUsage(viaFile, 'INVALID_KEY'), /key file bad\.key.*'g'/);
    const short = await h.run(['snapshots', '--repo', h.path('repo')], {
      env: { BACKVAULT_KEY: good.slice(0, 20) },
    });
    assert.match(assertUsage(short, 'INVALID_KEY'), /found 16/);
    for (const r of [viaEnv, viaFile, short]) {
      for (const group of good.split(' ').slice(0, 4)) {
        assert.ok(!r.stderr.includes(`${group} `), 'no part of the key is printed');
      }
    }
  });

  it('a missing key file is a USAGE error', async () => {
    const r = await h.run(['snapshots', '--repo', h.path('repo'), '--key-file', 'nope.key']);
    assert.match(assertUsage(r, 'USAGE'), /nope\.key: no such file/);
  });
});
