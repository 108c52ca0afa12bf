/**
 * Restore after an interrupted restore (states built by hand, as a kill leaves them), and
 * the precision of restored times.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { lstat, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup, restore } from '#sdk/backup/index.js';
import {
  RESTORE_MARKER,
  RESTORE_STALE,
  recoverInterrupted,
  restoreMarker,
} from '#sdk/backup/restorer/restorer.js';
import { nodeHost } from '#sdk/backup/node/host.js';
import { fsTime, nodeFiles } from '#sdk/backup/node/files.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { hasCode } from '#sdk/errors.js';
import { generateBackupKey } from '#sdk/format/index.js';
import { assertSameTree, removeDir, tempDir } from './helpers.js';

/** The pid of a process that has exited (so the marker names no running restore). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('restore after an interrupted restore', () => {
  let dir: string;
  let src: string;
  const storage = new MemoryStorage();
  const key = generateBackupKey();
  let n = 0;
  const access = (): { storage: MemoryStorage; backupKey: Uint8Array } => ({
    storage,
    backupKey: key,
  });

  before(async () => {
    dir = await tempDir('bv-recover-');
    src = join(dir, 'src');
    await mkdir(join(src, 'media'), { recursive: true });
    await writeFile(join(src, 'chat.txt'), 'see you tomorrow\n'.repeat(1000));
    await writeFile(join(src, 'media', 'a.jpg'), Buffer.alloc(50_000, 7));
    await backup({ rollbackProtection: false, init: true, ...access(), source: src, workers: 1 });
  });
  after(async () => {
    await removeDir(dir);
  });

  /** A parent directory with a target name, and the old content of the target elsewhere. */
  async function place(): Promise<{ out: string; target: string }> {
    const out = join(dir, `out${n++}`);
    await mkdir(out);
    return { out, target: join(out, 'chat') };
  }

  async function oldContent(at: string): Promise<void> {
    await mkdir(at);
    await writeFile(join(at, 'old.txt'), 'the old target');
  }

  async function tempDirOf(out: string, tag: string, parts: ('old' | 'root')[]): Promise<string> {
    const tmp = join(out, `.chat.backvault-restore-${tag}`);
    await mkdir(tmp, { mode: 0o700 });
    await writeFile(join(tmp, RESTORE_MARKER), restoreMarker(deadPid(), hostname()));
    if (parts.includes('root')) {
      await mkdir(join(tmp, 'root'));
      await writeFile(join(tmp, 'root', 'chat.txt'), 'partial plaintext');
    }
    if (parts.includes('old')) await oldContent(join(tmp, 'old'));
    return tmp;
  }

  it('killed between the two renames of --force: the old target is put back, then replaced', async () => {
    const { out, target } = await place();
    await tempDirOf(out, 'aaaaaaaaaaaa', ['old', 'root']);
    // Without --force the restore refuses, but the old content is back where it was.
    await assert.rejects(
      restore({ rollbackProtection: false, ...access(), target, workers: 1 }),
      (e) => hasCode(e, 'TARGET_NOT_EMPTY'),
    );
    assert.deepEqual(await readdir(out), ['chat']);
    assert.equal(await readFile(join(target, 'old.txt'), 'utf8'), 'the old target');

    // The same state again, then a forced restore: old back, then replaced; nothing left.
    const { out: out2, target: target2 } = await place();
    await tempDirOf(out2, 'bbbbbbbbbbbb', ['old', 'root']);
    const r = await restore({
      rollbackProtection: false,
      ...access(),
      target: target2,
      force: true,
      delete: true,
      workers: 1,
    });
    assert.ok(
      r.warnings.some((w) => /put back/.test(w)),
      r.warnings.join('\n'),
    );
    await assertSameTree(src, target2);
    assert.deepEqual(await readdir(out2), ['chat']);
  });

  it("killed after setting aside an old database's -wal, before the merge commit: it is put back beside it", async () => {
    const { out, target } = await place();
    await mkdir(join(target, 'db'), { recursive: true });
    await writeFile(join(target, 'db', 'msgstore.db'), 'the old database');
    await writeFile(join(target, 'keep.txt'), 'mine');
    // What the merge had done: its journal of stale companions written and synced, the
    // -wal moved into old/, the -shm not yet (the journal's last line cut short).
    const tmp = await tempDirOf(out, 'cccccccccccc', ['root']);
    await writeFile(join(tmp, RESTORE_STALE), '"db/msgstore.db-wal"\n"db/msgstore.d');
    await mkdir(join(tmp, 'old', 'db'), { recursive: true });
    await writeFile(join(tmp, 'old', 'db', 'msgstore.db-wal'), "the old database's newest commits");
    await writeFile(join(target, 'db', 'msgstore.db-shm'), 'its shared memory');

    const warnings = await recoverInterrupted(nodeFiles.out, nodeHost, target);
    assert.ok(
      warnings.some((w) => /old database files it had set aside were put back/.test(w)),
      warnings.join('\n'),
    );
    assert.equal(
      await readFile(join(target, 'db', 'msgstore.db-wal'), 'utf8'),
      "the old database's newest commits",
    );
    assert.deepEqual((await readdir(join(target, 'db'))).sort(), [
      'msgstore.db',
      'msgstore.db-shm',
      'msgstore.db-wal',
    ]);
    assert.deepEqual(await readdir(out), ['chat'], 'the temporary directory is gone');
  });

  it('killed while probing for mounts: its empty probe is taken out of the target, nothing else', async () => {
    const { out, target } = await place();
    await mkdir(join(target, 'media'), { recursive: true });
    await writeFile(join(target, 'media', 'mine.jpg'), 'a photo of mine');
    const tmp = await tempDirOf(out, 'eeeeeeeeeeee', ['root']);
    await mkdir(join(tmp, 'root', 'media'));
    // Where the kill left the probe (between its rename in and its rename back) ...
    await writeFile(join(target, 'media', '.backvault-probe-eeeeeeeeeeee'), '');
    // ... and a file of that kind that is not this restore's, or not empty: not ours.
    await writeFile(join(target, '.backvault-probe-ffffffffffff'), '');
    await writeFile(join(target, 'media', '.backvault-probe-eeeeeeeeeeee.txt'), '');

    const warnings = await recoverInterrupted(nodeFiles.out, nodeHost, target);
    assert.ok(
      warnings.includes(
        'removed the mount probe of an interrupted restore: media/.backvault-probe-eeeeeeeeeeee',
      ),
      warnings.join('\n'),
    );
    assert.deepEqual((await readdir(join(target, 'media'))).sort(), [
      '.backvault-probe-eeeeeeeeeeee.txt',
      'mine.jpg',
    ]);
    assert.deepEqual(await readdir(target), ['.backvault-probe-ffffffffffff', 'media']);
    assert.deepEqual(await readdir(out), ['chat'], 'the temporary directory is gone');
  });

  it('a stale-companion journal never moves a whole old target back into a new one', async () => {
    const { out, target } = await place();
    await mkdir(target);
    await writeFile(join(target, 'new.txt'), 'put there since');
    const tmp = await tempDirOf(out, 'dddddddddddd', ['old', 'root']);
    // old/ holds old.txt, which the journal does not name: not ours to put back.
    await writeFile(join(tmp, RESTORE_STALE), '"db/msgstore.db-wal"\n');
    const warnings = await recoverInterrupted(nodeFiles.out, nodeHost, target);
    assert.ok(
      warnings.some((w) => /kept in/.test(w)),
      warnings.join('\n'),
    );
    assert.deepEqual(await readdir(target), ['new.txt']);
    assert.equal(await readFile(join(tmp, 'old', 'old.txt'), 'utf8'), 'the old target');
  });

  it('the layout of earlier versions: a lone .backvault-old- sibling of a missing target is put back', async () => {
    const { out, target } = await place();
    await oldContent(join(out, '.chat.backvault-old-cccccccccccc'));
    const r = await restore({
      rollbackProtection: false,
      ...access(),
      target,
      force: true,
      delete: true,
      workers: 1,
    });
    assert.ok(
      r.warnings.some((w) => /put back/.test(w)),
      r.warnings.join('\n'),
    );
    await assertSameTree(src, target);
    assert.deepEqual(await readdir(out), ['chat']);
  });

  it('killed after the swap or while writing: the leftovers are removed, the target is kept', async () => {
    const { out, target } = await place();
    await oldContent(target);
    // After the swap (old inside, no root) and while writing (root only).
    await tempDirOf(out, 'dddddddddddd', ['old']);
    await tempDirOf(out, 'eeeeeeeeeeee', ['root']);
    // Killed before writing the marker: empty.
    await mkdir(join(out, '.chat.backvault-restore-ffffffffffff'));
    // Killed while writing the marker: nothing but a marker cut short (empty, or part of
    // its line).
    for (const [tag, cut] of [
      ['aaaaaaaaaaaa', ''],
      ['bbbbbbbbbbbb', restoreMarker(4242, hostname()).slice(0, 30)],
    ] as const) {
      await mkdir(join(out, `.chat.backvault-restore-${tag}`));
      await writeFile(join(out, `.chat.backvault-restore-${tag}`, RESTORE_MARKER), cut);
    }
    const r = await restore({
      rollbackProtection: false,
      ...access(),
      target,
      force: true,
      delete: true,
      workers: 1,
    });
    assert.equal(r.warnings.length, 5, r.warnings.join('\n'));
    await assertSameTree(src, target);
    assert.deepEqual(await readdir(out), ['chat']);
  });

  it('never touches what it did not create or what still holds the only copy of the old target', async () => {
    const { out, target } = await place();
    const foreign = [
      // No marker, not empty.
      '.chat.backvault-restore-111111111111',
      // Another target's name.
      '.chat2.backvault-restore-222222222222',
      // Not exactly our pattern.
      '.chat.backvault-restore-33333333333',
      '.chat.backvault-restore-444444444444x',
    ];
    for (const f of foreign) {
      await mkdir(join(out, f));
      await writeFile(join(out, f, 'keep.txt'), 'keep');
    }
    // A cut-short marker beside other content, or a marker that is not ours at all.
    for (const [tag, marker] of [
      ['777777777777', ''],
      ['888888888888', 'not a backvault marker'],
    ] as const) {
      const d = join(out, `.chat.backvault-restore-${tag}`);
      foreign.push(`.chat.backvault-restore-${tag}`);
      await mkdir(d);
      await writeFile(join(d, RESTORE_MARKER), marker);
      await writeFile(join(d, 'keep.txt'), 'keep');
    }
    // A marker naming a restore that is still running (this process) is left alone.
    const live = join(out, '.chat.backvault-restore-555555555555');
    await mkdir(live);
    await writeFile(join(live, RESTORE_MARKER), restoreMarker(process.ppid, hostname()));
    await writeFile(join(live, 'keep.txt'), 'keep');
    // Killed between the renames, and something was put at the target since: keep `old/`.
    await mkdir(target);
    await writeFile(join(target, 'new.txt'), 'made by hand since');
    const kept = await tempDirOf(out, '666666666666', ['old', 'root']);
    const r = await restore({
      rollbackProtection: false,
      ...access(),
      target,
      force: true,
      delete: true,
      workers: 1,
    });
    assert.ok(
      r.warnings.some((w) => w.includes(join(kept, 'old'))),
      r.warnings.join('\n'),
    );
    await assertSameTree(src, target);
    assert.deepEqual(
      (await readdir(out)).sort(),
      [
        ...foreign,
        '.chat.backvault-restore-555555555555',
        '.chat.backvault-restore-666666666666',
        'chat',
      ].sort(),
    );
    assert.equal(await readFile(join(kept, 'old', 'old.txt'), 'utf8'), 'the old target');
  });
});

describe('restored times', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('bv-mtime-');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('fsTime lands on the microsecond for every sub-microsecond remainder', () => {
    // The libuv rule: whole seconds, then the fraction * 1e9 truncated to whole microseconds.
    const libuv = (t: number): bigint => {
      const sec = Math.trunc(t);
      let nsec = Math.trunc((t - sec) * 1e9);
      nsec -= nsec % 1000;
      return BigInt(sec) * 1_000_000_000n + BigInt(nsec);
    };
    for (let i = 0; i < 20_000; i++) {
      const ns =
        BigInt(Math.floor(Math.random() * 4_000_000_000)) * 1_000_000_000n +
        BigInt(Math.floor(Math.random() * 1e9));
      const t = fsTime(ns);
      assert.equal(typeof t, 'number');
      assert.equal(libuv(t as number), (ns / 1000n) * 1000n, `ns ${ns}`);
    }
    const before1970 = fsTime(-1_500_000_001n);
    assert.ok(before1970 instanceof Date);
    assert.equal(before1970.getTime(), -1501);
  });

  it('files, directories and symlinks get their mtime back to the microsecond', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'd'), { recursive: true });
    const stamps = new Map<string, string>();
    const script: string[] = [];
    for (let i = 0; i < 200; i++) {
      const name = `f${i}`;
      await writeFile(join(src, 'd', name), String(i));
      // Whole microseconds half of the time: the values the naive conversion got wrong.
      const sec = 1_600_000_000 + Math.floor(Math.random() * 400_000_000);
      const us = String(Math.floor(Math.random() * 1e6)).padStart(6, '0');
      const sub = i % 2 === 0 ? '000' : String(Math.floor(Math.random() * 1000)).padStart(3, '0');
      const stamp = `@${sec}.${us}${sub}`;
      stamps.set(`d/${name}`, stamp);
      script.push(`touch -d '${stamp}' 'd/${name}'`);
    }
    await symlink('d/f1', join(src, 'link'));
    stamps.set('link', '@1700000000.123456000');
    script.push(`touch -h -d '@1700000000.123456000' link`);
    stamps.set('d', '@1700000001.000001000');
    script.push(`touch -d '@1700000001.000001000' d`);
    execFileSync('sh', ['-c', script.join('\n')], { cwd: src });

    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey,
      source: src,
      workers: 1,
    });
    const target = join(dir, 'out');
    await restore({ rollbackProtection: false, storage, backupKey, target, workers: 1 });
    let checked = 0;
    for (const [rel, stamp] of stamps) {
      const [sec, frac] = stamp.slice(1).split('.') as [string, string];
      const wantNs = BigInt(sec) * 1_000_000_000n + BigInt(frac);
      const orig = await lstat(join(src, rel), { bigint: true });
      assert.equal(orig.mtimeNs, wantNs, `source ${rel} (file system keeps ns)`);
      const got = await lstat(join(target, rel), { bigint: true });
      assert.equal(got.mtimeNs, (wantNs / 1000n) * 1000n, `${rel}: restored mtime`);
      checked += 1;
    }
    assert.equal(checked, 202);
  });
});
