/**
 * Looking inside a backup: `ls`, `diff`, `stats`, and the snapshot selectors (`latest`, a
 * sequence number, an id prefix) of `--snapshot`, through the real executable.
 */
import assert from 'node:assert/strict';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { CliHarness, parseJsonOutput, stderrLines } from './cli-harness.js';

const T0 = new Date('2026-01-02T03:04:05Z');

describe('backvault CLI: ls, diff, stats, --snapshot', () => {
  let h: CliHarness;
  let env: Record<string, string>;
  let ids: string[] = [];
  before(async () => {
    h = await CliHarness.create();
    env = {
      ...h.baseEnv(),
      BACKVAULT_KEY: (await h.run(['key', 'generate'])).stdout.trim(),
      TZ: 'Europe/Paris',
    };
    await mkdir(h.path('chat', 'Media'), { recursive: true });
    await writeFile(h.path('chat', 'msgstore.db'), 'x'.repeat(3000));
    await writeFile(h.path('chat', 'Media', 'a.jpg'), 'a'.repeat(2048));
    for (const p of ['msgstore.db', 'Media/a.jpg', 'Media'])
      await utimes(h.path('chat', p), T0, T0);
    await utimes(h.path('chat'), T0, T0);
    const b1 = await h.run(['backup', 'chat', '--repo', 'cloud', '--init', '--json'], { env });
    assert.equal(b1.code, 0, b1.stderr);
    await writeFile(h.path('chat', 'msgstore.db'), 'y'.repeat(4096));
    await rm(h.path('chat', 'Media', 'a.jpg'));
    await writeFile(h.path('chat', 'Media', 'b.jpg'), 'b'.repeat(100));
    for (const p of ['msgstore.db', 'Media/b.jpg', 'Media'])
      await utimes(h.path('chat', p), T0, T0);
    const b2 = await h.run(['backup', 'chat', '--repo', 'cloud', '--json'], { env });
    assert.equal(b2.code, 0, b2.stderr);
    ids = [b1, b2].map((r) => (parseJsonOutput(r) as { snapshotId: string }).snapshotId);
  });
  after(async () => h.dispose());

  it('ls lists the latest snapshot with local times, sizes and counts', async () => {
    const r = await h.run(['ls', '--repo', 'cloud'], { env });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(
      lines[0] ?? '',
      new RegExp(
        `^snapshot ${ids[1]?.slice(0, 8)} \\(seq 2, \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\+01:00\\):$`,
      ),
    );
    assert.deepEqual(lines.slice(1, 5), [
      'drwxr-xr-x         -  2026-01-02 04:04:05 +01:00  Media/',
      '-rw-r--r--     100 B  2026-01-02 04:04:05 +01:00  Media/b.jpg',
      '-rw-r--r--  4.00 KiB  2026-01-02 04:04:05 +01:00  msgstore.db',
      '2 files, 1 folder; 4.10 KiB',
    ]);
  });

  it('ls takes a snapshot (seq, prefix) and a path; a file path gives one line', async () => {
    const bySeq = await h.run(['ls', '1', 'Media', '--repo', 'cloud'], { env });
    assert.equal(bySeq.code, 0, bySeq.stderr);
    assert.deepEqual(bySeq.stdout.split('\n').slice(1, 3), [
      '-rw-r--r--  2.00 KiB  2026-01-02 04:04:05 +01:00  Media/a.jpg',
      '1 file, no folders; 2.00 KiB',
    ]);
    const byPrefix = await h.run(
      ['ls', ids[0]?.slice(0, 8) ?? '', 'msgstore.db', '--repo', 'cloud', '--json'],
      { env },
    );
    const j = parseJsonOutput(byPrefix) as {
      entries: { path: string; size: number; mtime: string }[];
    };
    assert.deepEqual(j.entries, [
      {
        path: 'msgstore.db',
        type: 'file',
        size: 3000,
        mode: 0o644,
        mtime: '2026-01-02T03:04:05.000Z',
      },
    ]);
    const missing = await h.run(['ls', 'latest', 'nope', '--repo', 'cloud'], { env });
    assert.equal(missing.code, 1);
    assert.deepEqual(stderrLines(missing), [
      'NOT_FOUND: no nope in snapshot 2 — Run `backvault ls SNAPSHOT` to see what it holds.',
    ]);
  });

  it('diff lists added, removed and changed files with sizes', async () => {
    const r = await h.run(['diff', '1', 'latest', '--repo', 'cloud'], { env });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.slice(2), [
      '-  Media/a.jpg  2.00 KiB',
      '+  Media/b.jpg  100 B',
      'M  msgstore.db  2.93 KiB -> 4.00 KiB',
      '1 added, 1 removed, 1 changed',
    ]);
    const same = await h.run(['diff', '2', 'latest', '--repo', 'cloud'], { env });
    assert.deepEqual(same.stdout.trimEnd().split('\n').slice(2), [
      'no differences',
      '0 added, 0 removed, 0 changed',
    ]);
    const j = parseJsonOutput(
      await h.run(['diff', '1', '2', '--repo', 'cloud', '--json'], { env }),
    );
    assert.equal(j.added, 1);
    assert.equal(j.removed, 1);
    assert.equal(j.changed, 1);
  });

  it('stats shows per snapshot size, stored bytes and dedup ratio', async () => {
    const j = parseJsonOutput(await h.run(['stats', '--repo', 'cloud', '--json'], { env })) as {
      snapshots: {
        seq: number;
        logicalBytes: number;
        uniqueBytes: number;
        addedBytes: number;
        dedupRatio: number;
      }[];
      storedBytesTotal: number;
    };
    assert.deepEqual(
      j.snapshots.map((s) => [s.seq, s.logicalBytes, s.uniqueBytes]),
      [
        [1, 5048, 5048],
        [2, 4196, 4196],
      ],
    );
    assert.ok((j.snapshots[1]?.addedBytes ?? 0) > 0);
    assert.ok(j.storedBytesTotal > 0);
    const human = await h.run(['stats', '--repo', 'cloud'], { env });
    assert.match(human.stdout, /^SEQ {2}ID {8}FILES {6}SIZE/);
    assert.match(human.stdout, /\n {2}1 {2}[0-9a-f]{8} {6}2 {2}4\.93 KiB/);
    assert.match(human.stdout, /1\.00x\n/);
    assert.match(human.stdout, /\nstore: .* in \d+ packs?\n$/);
  });

  it('snapshots, ls, diff, stats and check take --device like backup does', async () => {
    const en = await h.run(
      ['enable', '--device', 'dev', '--repo', 'cloud', '--recovery-key', '--yes', '--json'],
      { env },
    );
    assert.equal(en.code, 0, en.stderr);
    const noKey = { ...env, BACKVAULT_KEY: undefined };
    for (const args of [['snapshots'], ['ls', '1'], ['diff', '1', '2'], ['stats'], ['check']]) {
      const r = await h.run([...args, '--device', 'dev', '--json'], { env: noKey });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  it('--snapshot accepts latest, a sequence number and an id prefix; a bad one is explained', async () => {
    for (const [sel, want] of [
      ['latest', ids[1]],
      ['1', ids[0]],
      [ids[0]?.slice(0, 8) ?? '', ids[0]],
    ] as const) {
      const out = `out-${sel}`;
      const r = await h.run(['restore', out, '--repo', 'cloud', '--snapshot', sel, '--json'], {
        env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((parseJsonOutput(r) as { snapshotId: string }).snapshotId, want);
    }
    const none = await h.run(['restore', 'x', '--repo', 'cloud', '--snapshot', '9'], { env });
    assert.equal(none.code, 1);
    assert.deepEqual(stderrLines(none), [
      'NOT_FOUND: no snapshot with sequence number 9 (the latest is 2) — Run `backvault snapshots` to list them.',
    ]);
    const bad = await h.run(['restore', 'x', '--repo', 'cloud', '--snapshot', 'last'], { env });
    assert.equal(bad.code, 2);
    assert.match(
      stderrLines(bad)[0] ?? '',
      /^USAGE: not a snapshot: expected `latest`, a sequence number or an id prefix/,
    );
  });
});
