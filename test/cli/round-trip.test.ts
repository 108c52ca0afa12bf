import assert from 'node:assert/strict';
import { access, cp, readFile, rm, writeFile, appendFile, open } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { CliHarness, parseJsonOutput, stderrLines, type CliRun } from './cli-harness.js';
import { filesBySize, makeTree, treeDigest } from './tree.js';

/** Flip one bit in the middle of the largest file of the repository `dir` (a pack). */
async function flipMiddleOfLargest(dir: string): Promise<string> {
  const [largest] = await filesBySize(dir);
  assert.ok(largest);
  const fh = await open(largest.path, 'r+');
  try {
    const b = Buffer.alloc(1);
    const at = Math.floor(largest.size / 2);
    await fh.read(b, 0, 1, at);
    b[0] = (b[0] ?? 0) ^ 0x40;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
  return largest.path;
}

function ok(r: CliRun): void {
  assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  // Not a terminal: no progress bar, no chatter.
  assert.equal(r.stderr, '', 'stderr is empty on success without a terminal');
}

function failed(r: CliRun, exit: number, code: string): string {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  const lines = stderrLines(r);
  assert.equal(lines.length, 1, `one stderr line: ${r.stderr}`);
  assert.ok((lines[0] ?? '').startsWith(`${code}: `), lines[0]);
  return lines[0] ?? '';
}

describe('backvault CLI: backup, restore, snapshots, check, prune', () => {
  let h: CliHarness;
  let key: string;
  let env: Record<string, string>;
  let repo: string;

  before(async () => {
    h = await CliHarness.create();
    await makeTree(h.path('chat'));
    key = (await h.run(['key', 'generate'])).stdout.trim();
    env = { BACKVAULT_KEY: key };
    repo = h.path('cloud');
  });
  after(async () => h.dispose());

  const backupJson = async (): Promise<Record<string, unknown>> => {
    const r = await h.run(['backup', 'chat', '--init', '--repo', repo, '--json'], { env });
    ok(r);
    return parseJsonOutput(r);
  };

  it('creates repositories only on purpose: backup to a missing one fails, init makes it', async () => {
    const typo = h.path('clodu');
    const miss = await h.run(['backup', 'chat', '--repo', typo], { env });
    const line = failed(miss, 1, 'NO_REPOSITORY');
    assert.match(line, /no backvault repository at /);
    assert.match(miss.stderr, /backvault init --repo URL/);
    await assert.rejects(access(typo), /ENOENT/, 'a refused backup created the repository');
    const made = await h.run(['init', '--repo', typo, '--json'], { env });
    assert.equal(made.code, 0, made.stderr);
    assert.equal(parseJsonOutput(made).created, true);
    failed(await h.run(['init', '--repo', typo], { env }), 2, 'USAGE');
    await rm(typo, { recursive: true });
  });

  it('backs up with --json and reports the result', async () => {
    const b = await backupJson();
    assert.equal(b.seq, 1);
    assert.equal(b.created, true);
    assert.equal(b.files, 6);
    assert.ok((b.bytesRead as number) > 3 * 256 * 1024);
    assert.equal(typeof b.snapshotId, 'string');
    assert.match(b.snapshotId as string, /^[0-9a-f]{64}$/);
    for (const f of ['dirs', 'bytesNew', 'bytesStoredNew', 'seconds']) {
      assert.equal(typeof b[f], 'number', f);
    }
    // The rollback state was written where BACKVAULT_STATE says.
    await access(h.path('state.json'));
  });

  it('a second backup of unchanged data stores next to nothing; human output is readable', async () => {
    const r = await h.run(['backup', 'chat', '--init', '--repo', repo], { env });
    ok(r);
    assert.match(r.stdout, /snapshot [0-9a-f]{8} saved \(seq 2\)/);
    assert.match(r.stdout, /6 files/);
    const b = await backupJson();
    assert.equal(b.seq, 3);
    assert.equal(b.bytesNew, 0);
  });

  it('lists snapshots (--json and table)', async () => {
    const r = await h.run(['snapshots', '--repo', repo, '--json'], { env });
    ok(r);
    const { snapshots } = parseJsonOutput(r) as { snapshots: { seq: number; id: string }[] };
    assert.deepEqual(
      snapshots.map((s) => s.seq),
      [1, 2, 3],
    );
    const t = await h.run(['snapshots', '--repo', repo], { env });
    ok(t);
    assert.match(t.stdout, /^ID\s+SEQ\s+TIME/);
    assert.match(t.stdout, /3 snapshots/);
  });

  it('restores byte for byte (latest and by id prefix)', async () => {
    const r = await h.run(['restore', 'restored', '--repo', repo, '--json'], { env });
    ok(r);
    const out = parseJsonOutput(r);
    assert.equal(out.seq, 3);
    assert.equal(out.files, 6);
    assert.deepEqual(await treeDigest(h.path('restored')), await treeDigest(h.path('chat')));

    const list = parseJsonOutput(await h.run(['snapshots', '--repo', repo, '--json'], { env })) as {
      snapshots: { id: string }[];
    };
    const first = list.snapshots[0]?.id ?? '';
    const r1 = await h.run(
      ['restore', 'restored-1', '--repo', repo, '--snapshot', first.slice(0, 12)],
      { env },
    );
    ok(r1);
    assert.match(r1.stdout, /seq 1/);
    assert.deepEqual(await treeDigest(h.path('restored-1')), await treeDigest(h.path('chat')));
  });

  it('refuses a non-empty target without --force (exit 2); --force keeps extras, --delete removes them', async () => {
    const r = await h.run(['restore', 'restored', '--repo', repo], { env });
    failed(r, 2, 'TARGET_NOT_EMPTY');
    await writeFile(h.path('restored', 'stray.txt'), 'x');
    const f = await h.run(['restore', 'restored', '--repo', repo, '--force'], { env });
    ok(f);
    assert.match(f.stdout, /\n {2}kept \(not in the snapshot\): 1\n {4}stray\.txt\n/);
    assert.equal(await readFile(h.path('restored', 'stray.txt'), 'utf8'), 'x');
    failed(await h.run(['restore', 'restored', '--repo', repo, '--delete'], { env }), 2, 'USAGE');
    const d = await h.run(
      ['restore', 'restored', '--repo', repo, '--force', '--delete', '--json'],
      {
        env,
      },
    );
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(parseJsonOutput(d).deleted, ['stray.txt']);
    assert.deepEqual(await treeDigest(h.path('restored')), await treeDigest(h.path('chat')));
    await writeFile(h.path('a-file'), 'x');
    const nd = failed(
      await h.run(['restore', 'a-file', '--repo', repo, '--force'], { env }),
      2,
      'USAGE',
    );
    assert.match(nd, /not a directory/);
  });

  it('a wrong key is WRONG_KEY (exit 3), in JSON too, and no key is printed', async () => {
    const other = (await h.run(['key', 'generate'])).stdout.trim();
    const r = await h.run(['restore', 'wrong', '--repo', repo], { env: { BACKVAULT_KEY: other } });
    const line = failed(r, 3, 'WRONG_KEY');
    assert.match(line, /64-digit key/);
    const j = await h.run(['snapshots', '--repo', repo, '--json'], {
      env: { BACKVAULT_KEY: other },
    });
    failed(j, 3, 'WRONG_KEY');
    const out = parseJsonOutput(j) as { error: { code: string; hint: string } };
    assert.equal(out.error.code, 'WRONG_KEY');
    for (const k of [key, other]) {
      for (const s of [r.stderr, r.stdout, j.stderr, j.stdout]) {
        assert.ok(!s.includes(k.slice(0, 14)) && !s.includes(k.replace(/ /g, '').slice(0, 12)));
      }
    }
    await assert.rejects(access(h.path('wrong')), 'nothing written for a wrong key');
  });

  it('reads the key from --key-file in a forgiving format', async () => {
    const messy = `  ${key.toUpperCase().replace(/ /g, '-').slice(0, 40)}\n${key.toUpperCase().replace(/ /g, '-').slice(40)}\n`;
    await writeFile(h.path('key.txt'), messy, { mode: 0o600 });
    const r = await h.run(['snapshots', '--repo', repo, '--key-file', 'key.txt', '--json']);
    ok(r);
    const piped = await h.run(['snapshots', '--repo', repo, '--key-file', '-', '--json'], {
      input: key,
    });
    ok(piped);
  });

  it('check passes (with and without reading data) and prune runs', async () => {
    const c = await h.run(['check', '--repo', repo, '--json'], { env });
    ok(c);
    const cj = parseJsonOutput(c);
    assert.equal(cj.ok, true);
    assert.equal(cj.readData, true);
    assert.deepEqual(cj.problems, []);
    const s = await h.run(['check', '--repo', repo, '--no-read-data', '--json'], { env });
    ok(s);
    assert.equal(parseJsonOutput(s).readData, false);
    const human = await h.run(['check', '--repo', repo], { env });
    ok(human);
    assert.match(human.stdout, /repository OK/);
    const p = await h.run(['prune', '--repo', repo, '--json'], { env });
    ok(p);
    const pj = parseJsonOutput(p);
    for (const f of ['packsDeleted', 'indexesDeleted', 'bytesFreed', 'seconds']) {
      assert.equal(typeof pj[f], 'number', f);
    }
    ok(await h.run(['restore', 'after-prune', '--repo', repo], { env }));
    assert.deepEqual(await treeDigest(h.path('after-prune')), await treeDigest(h.path('chat')));
  });

  it('a tampered object is an integrity error (exit 4) for check and restore', async () => {
    const bad = h.path('cloud-tampered');
    await cp(repo, bad, { recursive: true });
    await flipMiddleOfLargest(bad);
    const state = { BACKVAULT_STATE: h.path('state-tampered.json') };
    const c = await h.run(['check', '--repo', bad, '--json'], { env: { ...env, ...state } });
    assert.equal(c.code, 4, c.stderr);
    assert.match(stderrLines(c)[0] ?? '', /^(CORRUPT|MISSING_OBJECT): /);
    const cj = parseJsonOutput(c) as {
      ok?: boolean;
      problems?: unknown[];
      error: { code: string };
    };
    assert.equal(cj.error.code, 'CORRUPT');
    // The engine may list problems (a result with ok: false) or stop at the first one (an error).
    if ('ok' in cj) {
      assert.equal(cj.ok, false);
      assert.ok((cj.problems ?? []).length > 0);
    }
    const r = await h.run(['restore', 'from-tampered', '--repo', bad], {
      env: { ...env, ...state },
    });
    failed(r, 4, 'CORRUPT');
    await assert.rejects(access(h.path('from-tampered')), 'no half-written target');
  });

  it('check --repair, a backup and a prune heal a tampered pack: check is clean again', async () => {
    const bad = h.path('cloud-repaired');
    await cp(repo, bad, { recursive: true });
    assert.match(await flipMiddleOfLargest(bad), /\/data\//);
    const e = { ...env, BACKVAULT_STATE: h.path('state-repaired.json') };
    const usage = await h.run(['check', '--repo', bad, '--repair', '--no-read-data'], { env: e });
    failed(usage, 2, 'USAGE');
    const c = await h.run(['check', '--repo', bad, '--repair'], { env: e });
    assert.equal(c.code, 4, c.stderr);
    assert.match(
      c.stdout,
      /^repaired the index: 1 blob dropped; \d+ index objects? replaced by one$/m,
    );
    assert.match(
      c.stderr,
      /back up now, so that it is stored again where the source still has it, then run `backvault prune`/,
    );
    ok(await h.run(['backup', 'chat', '--repo', bad], { env: e }));
    ok(await h.run(['prune', '--repo', bad], { env: e }));
    const clean = await h.run(['check', '--repo', bad], { env: e });
    ok(clean);
    assert.match(clean.stdout, /repository OK/);
    ok(await h.run(['restore', 'from-repaired', '--repo', bad], { env: e }));
    assert.deepEqual(await treeDigest(h.path('from-repaired')), await treeDigest(h.path('chat')));
  });

  it('a deleted object is MISSING_OBJECT (exit 4)', async () => {
    const bad = h.path('cloud-missing');
    await cp(repo, bad, { recursive: true });
    const [largest] = await filesBySize(bad);
    assert.ok(largest);
    await rm(largest.path);
    const r = await h.run(['restore', 'from-missing', '--repo', bad], {
      env: { ...env, BACKVAULT_STATE: h.path('state-missing.json') },
    });
    failed(r, 4, 'MISSING_OBJECT');
  });

  it('a store serving an older snapshot is ROLLBACK (exit 4) thanks to the state file', async () => {
    const old = h.path('cloud-old');
    await cp(repo, old, { recursive: true });
    await appendFile(h.path('chat', 'settings.json'), '\n');
    const b = await backupJson();
    assert.equal(b.seq, 4);
    await rm(repo, { recursive: true });
    await cp(old, repo, { recursive: true });
    const r = await h.run(['restore', 'rolled-back', '--repo', repo], { env });
    failed(r, 4, 'ROLLBACK');
  });

  it('the default state file follows XDG_STATE_HOME', async () => {
    const r = await h.run(['backup', 'chat', '--init', '--repo', h.path('cloud-xdg'), '--json'], {
      env: { ...env, BACKVAULT_STATE: undefined, XDG_STATE_HOME: h.path('xdg') },
    });
    ok(r);
    const s = await readFile(h.path('xdg', 'backvault', 'state.json'), 'utf8');
    assert.ok(s.length > 0);
  });
});
