/**
 * `backvault key list|add|remove` and the protections in `status`, run as the real
 * executable against a local-directory repository: an added recovery key is accepted as
 * --key-file by restore and snapshots, revoking it leaves the others working, and a store
 * that swaps or puts back slots yields KEY_SLOT_CORRUPT / KEY_SLOT_MISMATCH (exit 4), never a
 * wrong key.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { CliHarness, parseJsonOutput, stderrLines, type CliRun } from './cli-harness.js';

const KEY_RE = /([0-9a-f]{4} ){15}[0-9a-f]{4}/;

function ok(r: CliRun, what: string): void {
  assert.equal(r.code, 0, `${what}: exit ${r.code}; stderr: ${r.stderr}`);
}

function failsWith(r: CliRun, code: string, exit: number, what: string): string {
  assert.equal(r.code, exit, `${what}: exit ${r.code}; stderr: ${r.stderr}`);
  const line = stderrLines(r).find((l) => l.startsWith(`${code}: `));
  assert.ok(line, `${what}: a ${code} line; stderr: ${r.stderr}`);
  return line;
}

describe('backvault key list|add|remove', () => {
  let h: CliHarness;
  let backupKey: string;

  /** `key add --json`, the key written to FILE. */
  async function addKey(label: string, file: string): Promise<{ slotId: string; key: string }> {
    const r = await h.run([
      'key',
      'add',
      '--repo',
      'repo',
      '--key-file',
      'k.txt',
      '--label',
      label,
      '--json',
    ]);
    ok(r, 'key add');
    const j = parseJsonOutput(r) as { slot: { slotId: string }; recoveryKey: string };
    assert.match(j.recoveryKey, KEY_RE);
    await writeFile(h.path(file), j.recoveryKey + '\n', { mode: 0o600 });
    return { slotId: j.slot.slotId, key: j.recoveryKey };
  }

  before(async () => {
    h = await CliHarness.create('backvault-keyslots-');
    await mkdir(h.path('chat'));
    await writeFile(h.path('chat', 'msgstore.db'), 'messages\n');
    const gen = await h.run(['key', 'generate']);
    ok(gen, 'key generate');
    backupKey = gen.stdout.trim();
    await writeFile(h.path('k.txt'), backupKey + '\n', { mode: 0o600 });
    ok(await h.run(['init', '--repo', 'repo', '--key-file', 'k.txt']), 'init');
    ok(
      await h.run(['backup', 'chat', '--repo', 'repo', '--key-file', 'k.txt', '--no-progress']),
      'backup',
    );
  });
  after(async () => h.dispose());

  it('help for each command, and they are in the command list', async () => {
    const main = await h.run(['--help']);
    for (const c of ['key list', 'key add', 'key remove']) {
      assert.match(main.stdout, new RegExp(`\\n  ${c} `));
      const r = await h.run([...c.split(' '), '--help']);
      ok(r, `${c} --help`);
      assert.match(r.stdout, /backup key always opens/);
    }
  });

  it('no slots at first; key add prints a new key once; restore and snapshots accept it', async () => {
    const empty = await h.run(['key', 'list', '--repo', 'repo', '--key-file', 'k.txt']);
    ok(empty, 'key list');
    assert.match(empty.stdout, /no key slots/);

    const human = await h.run(['key', 'add', '--repo', 'repo', '--key-file', 'k.txt']);
    ok(human, 'key add');
    // Shown as two lines of 8 groups, like every key the CLI shows to people.
    const shown = human.stdout
      .split('\n')
      .filter((l) => /^ {4}([0-9a-f]{4} ){7}[0-9a-f]{4}$/.test(l))
      .map((l) => l.trim())
      .join(' ');
    assert.match(shown, KEY_RE, human.stdout);
    assert.notEqual(shown, backupKey);
    // Printed once, stored nowhere in the clear.
    for (const f of await readdir(h.path('repo', 'keys'))) {
      const bytes = await readFile(h.path('repo', 'keys', f), 'latin1');
      assert.ok(!bytes.includes(shown.replace(/ /g, '')), f);
    }
    await writeFile(h.path('r1.txt'), shown + '\n');

    const snaps = await h.run(['snapshots', '--repo', 'repo', '--key-file', 'r1.txt', '--json']);
    ok(snaps, 'snapshots with the recovery key');
    assert.equal((parseJsonOutput(snaps).snapshots as unknown[]).length, 1);
    const restored = await h.run([
      'restore',
      'out1',
      '--repo',
      'repo',
      '--key-file',
      'r1.txt',
      '--no-progress',
    ]);
    ok(restored, 'restore with the recovery key');
    assert.equal(await readFile(h.path('out1', 'msgstore.db'), 'utf8'), 'messages\n');
    assert.match(restored.stderr, /opened with the recovery key of slot/);
    // The recovery key never appears in what the CLI prints about it.
    assert.ok(!restored.stderr.includes(shown) && !restored.stdout.includes(shown));
  });

  it('key list shows every slot; key remove revokes one, the others and the backup key still open', async () => {
    const a = await addKey('bank', 'ra.txt');
    const b = await addKey('sister', 'rb.txt');
    const listed = await h.run(['key', 'list', '--repo', 'repo', '--key-file', 'k.txt', '--json']);
    ok(listed, 'key list');
    const slots = (parseJsonOutput(listed) as { slots: { slotId: string; label: string }[] }).slots;
    assert.ok(slots.some((s) => s.slotId === a.slotId && s.label === 'bank'));
    assert.ok(slots.some((s) => s.slotId === b.slotId && s.label === 'sister'));
    const human = await h.run(['key', 'list', '--repo', 'repo', '--key-file', 'k.txt']);
    assert.match(human.stdout, new RegExp(`${a.slotId.slice(0, 8)}  recovery key .*"bank"`));

    const removed = await h.run([
      'key',
      'remove',
      a.slotId.slice(0, 8),
      '--repo',
      'repo',
      '--key-file',
      'k.txt',
    ]);
    ok(removed, 'key remove');
    failsWith(
      await h.run(['snapshots', '--repo', 'repo', '--key-file', 'ra.txt']),
      'WRONG_KEY',
      3,
      'revoked recovery key',
    );
    ok(await h.run(['snapshots', '--repo', 'repo', '--key-file', 'rb.txt']), 'other recovery key');
    ok(await h.run(['snapshots', '--repo', 'repo', '--key-file', 'k.txt']), 'backup key');
    failsWith(
      await h.run(['key', 'remove', 'abcdef12', '--repo', 'repo', '--key-file', 'k.txt']),
      'NOT_FOUND',
      1,
      'unknown slot',
    );
    failsWith(
      await h.run(['key', 'remove', 'xyz', '--repo', 'repo', '--key-file', 'k.txt']),
      'USAGE',
      2,
      'bad slot id',
    );
  });

  it('a store that swaps or puts back a slot: KEY_SLOT_CORRUPT / KEY_SLOT_MISMATCH, exit 4', async () => {
    const c = await addKey('c', 'rc.txt');
    const d = await addKey('d', 'rd.txt');
    const slotPath = (id: string): string => h.path('repo', 'keys', id);
    const savedC = await readFile(slotPath(c.slotId));
    // Swap: d's slot under c's name.
    await copyFile(slotPath(d.slotId), slotPath(c.slotId));
    const swapped = failsWith(
      await h.run(['snapshots', '--repo', 'repo', '--key-file', 'rc.txt']),
      'KEY_SLOT_CORRUPT',
      4,
      'swapped slot',
    );
    assert.ok(!swapped.includes(c.key));
    const list = await h.run(['key', 'list', '--repo', 'repo', '--key-file', 'k.txt']);
    failsWith(list, 'KEY_SLOT_MISMATCH', 4, 'key list sees the swap');
    assert.match(list.stdout, new RegExp(`${c.slotId.slice(0, 8)} .*CHANGED`));
    // Put the right bytes back, revoke c, then the store replays it.
    await writeFile(slotPath(c.slotId), savedC);
    ok(await h.run(['key', 'remove', c.slotId, '--repo', 'repo', '--key-file', 'k.txt']), 'rm');
    await writeFile(slotPath(c.slotId), savedC);
    failsWith(
      await h.run(['snapshots', '--repo', 'repo', '--key-file', 'rc.txt']),
      'KEY_SLOT_MISMATCH',
      4,
      'replayed slot',
    );
    const after = await h.run(['key', 'list', '--repo', 'repo', '--key-file', 'k.txt']);
    assert.match(after.stdout, new RegExp(`${c.slotId.slice(0, 8)} .*UNLISTED`));
    // key remove also cleans up what the manifest does not list.
    ok(await h.run(['key', 'remove', c.slotId, '--repo', 'repo', '--key-file', 'k.txt']), 'rm');
    ok(await h.run(['key', 'list', '--repo', 'repo', '--key-file', 'k.txt']), 'clean again');
  });

  it('key add from four processes at once, beside a backup: every new key is listed and opens', async () => {
    const before = parseJsonOutput(
      await h.run(['key', 'list', '--repo', 'repo', '--key-file', 'k.txt', '--json']),
    ) as { slots: unknown[] };
    await writeFile(h.path('chat', 'more.txt'), 'more messages\n');
    const runs = await Promise.all([
      ...[0, 1, 2, 3].map((i) => addKey(`together ${i}`, `together${i}.txt`)),
      h.run(['backup', 'chat', '--repo', 'repo', '--key-file', 'k.txt', '--no-progress']),
    ]);
    ok(runs[4] as CliRun, 'backup beside the key changes');
    const after = parseJsonOutput(
      await h.run(['key', 'list', '--repo', 'repo', '--key-file', 'k.txt', '--json']),
    ) as { slots: { label: string; status: string }[] };
    assert.equal(after.slots.length, before.slots.length + 4);
    for (const i of [0, 1, 2, 3]) {
      const slot = after.slots.find((x) => x.label === `together ${i}`);
      assert.equal(slot?.status, 'ok', `slot ${i}: ${JSON.stringify(after.slots)}`);
      ok(
        await h.run(['snapshots', '--repo', 'repo', '--key-file', `together${i}.txt`]),
        `key ${i} opens`,
      );
    }
  });

  it('status lists every protection of a device', async () => {
    ok(
      await h.run([
        'enable',
        '--device',
        'dev',
        '--repo',
        'repo2',
        '--recovery-key',
        '--yes',
        '--json',
      ]),
      'enable',
    );
    const before = parseJsonOutput(await h.run(['status', '--device', 'dev', '--json']));
    assert.deepEqual(before.protections, [{ kind: 'backup-key' }]);
    const added = await h.run(['key', 'add', '--device', 'dev', '--label', 'drawer', '--json']);
    ok(added, 'key add --device');
    const st = await h.run(['status', '--device', 'dev']);
    ok(st, 'status');
    assert.match(st.stdout, /protections: recovery key .*"drawer"/);
    assert.match(st.stdout, /64-digit key {5}the backup key itself: always opens/);
    const j = parseJsonOutput(await h.run(['status', '--device', 'dev', '--json']));
    assert.deepEqual(
      (j.protections as { kind: string }[]).map((p) => p.kind),
      ['recovery-key', 'backup-key'],
    );
  });
});
