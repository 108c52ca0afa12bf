/**
 * One odd file does not stop a backup: FIFOs, sockets, devices, names that are not UTF-8
 * and unreadable files and folders are skipped and named, the snapshot is saved and marked
 * partial (layout 2, SPEC.md §11) and restores everything else; `--exclude` leaves paths out
 * on purpose (not partial). The unreadable cases run the real CLI as an unprivileged user
 * (root reads everything), and check the exit code 7 (PARTIAL) and the JSON.
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { backup, listSnapshots, restore } from '#sdk/backup/index.js';
import { ExcludeSet, parseExcludeFile } from '#sdk/backup/archiver/exclude.js';
import { hasCode } from '#sdk/errors.js';
import { formatBackupKey, generateBackupKey } from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { removeDir, tempDir, runCliAs, type CliRun } from './helpers.js';

const MAIN_JS = fileURLToPath(new URL('../../../packages/cli/dist/cli/main.js', import.meta.url));
const NOBODY = 65534;

describe('exclude patterns (restic globs)', () => {
  const table: [string, string, boolean][] = [
    ['*.tmp', 'a.tmp', true],
    ['*.tmp', 'media/x/a.tmp', true],
    ['*.tmp', 'a.tmpx', false],
    ['/cache', 'cache', true],
    ['/cache', 'x/cache', false],
    ['cache', 'x/cache', true],
    ['cache/', 'x/y/cache', true],
    ['media/*.part', 'media/a.part', true],
    ['media/*.part', 'old/media/a.part', true],
    ['/media/*.part', 'old/media/a.part', false],
    ['media/**/thumbs', 'media/thumbs', true],
    ['media/**/thumbs', 'media/2024/01/thumbs', true],
    ['media/**/thumbs', 'media/2024/01/thumbsx', false],
    ['IMG_[0-9].jpg', 'IMG_7.jpg', true],
    ['IMG_[!0-9].jpg', 'IMG_7.jpg', false],
    ['IMG_[!0-9].jpg', 'IMG_x.jpg', true],
    ['?.db', 'a.db', true],
    ['?.db', 'ab.db', false],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['*', 'anything/at/all', true],
    ['msgstore.db-wal', 'databases/msgstore.db-wal', true],
  ];
  it('matches like restic: any depth unless anchored, * within a segment, ** across', () => {
    for (const [pattern, path, want] of table) {
      assert.equal(new ExcludeSet([pattern]).matches(path), want, `${pattern} vs ${path}`);
    }
  });
  it('refuses malformed patterns and reads exclude files', () => {
    for (const bad of ['', '/', '[abc', 'x\\']) {
      assert.throws(
        () => new ExcludeSet([bad]),
        (e: unknown) => hasCode(e, 'USAGE'),
        bad,
      );
    }
    assert.deepEqual(parseExcludeFile('# caches\n*.tmp\n\n  /cache  \r\n#x\n'), [
      '*.tmp',
      '/cache',
    ]);
  });
});

describe('odd files do not stop a backup', () => {
  let dir: string;
  let server: Server | undefined;
  before(async () => {
    dir = await tempDir('bv-odd-');
  });
  after(async () => {
    server?.close();
    await removeDir(dir);
  });

  it('FIFOs, sockets, devices and non-UTF-8 names are skipped, named, and make it partial', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'media'), { recursive: true });
    await writeFile(join(src, 'msgstore.db'), 'messages');
    await writeFile(join(src, 'media', 'a.jpg'), 'photo');
    execFileSync('mkfifo', [join(src, 'pipe')]);
    server = createServer();
    await new Promise<void>((r) => server?.listen(join(src, 'app.sock'), r));
    let device = false;
    try {
      execFileSync('mknod', [join(src, 'null-dev'), 'c', '1', '3'], { stdio: 'ignore' });
      device = true;
    } catch {
      // No CAP_MKNOD in this sandbox: the other kinds still prove the rule.
    }
    await writeFile(Buffer.concat([Buffer.from(join(src, 'caf')), Buffer.from([0xe9])]), 'x');
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const r = await backup({
      rollbackProtection: false,
      storage,
      backupKey,
      source: src,
      workers: 1,
      init: true,
    });
    assert.equal(r.partial, true);
    assert.equal(r.filesSkipped, 3 + (device ? 1 : 0));
    const w = r.warnings.join('\n');
    assert.match(w, /a FIFO, not backed up, skipped: .*\/pipe/);
    assert.match(w, /a socket, not backed up, skipped: .*\/app\.sock/);
    if (device) assert.match(w, /a character device, not backed up, skipped: .*null-dev/);
    assert.match(w, /not valid UTF-8.*caf\\xe9/);
    const [snap] = await listSnapshots({ rollbackProtection: false, storage, backupKey });
    assert.equal(snap?.partial, true);
    assert.equal(snap?.skipped, r.filesSkipped);
    const target = join(dir, 'out');
    await restore({ rollbackProtection: false, storage, backupKey, target, workers: 1 });
    assert.deepEqual((await readdir(target)).sort(), ['media', 'msgstore.db']);
    // A complete backup is not partial and keeps the version-1 snapshot layout.
    const clean = join(dir, 'clean');
    await mkdir(clean);
    await writeFile(join(clean, 'a'), 'a');
    const r2 = await backup({
      rollbackProtection: false,
      storage: new MemoryStorage(),
      backupKey,
      source: clean,
      init: true,
    });
    assert.equal(r2.partial, false);
  });

  it('--exclude leaves paths out on purpose: not partial, not skipped', async () => {
    const src = join(dir, 'src-ex');
    await mkdir(join(src, 'cache', 'deep'), { recursive: true });
    await mkdir(join(src, 'media'), { recursive: true });
    await writeFile(join(src, 'cache', 'deep', 'x.bin'), 'cache');
    await writeFile(join(src, 'media', 'a.jpg'), 'photo');
    await writeFile(join(src, 'media', 'b.part'), 'half a download');
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const r = await backup({
      rollbackProtection: false,
      storage,
      backupKey,
      source: src,
      init: true,
      workers: 1,
      exclude: ['/cache', '*.part'],
    });
    assert.equal(r.partial, false);
    assert.equal(r.filesSkipped, 0);
    assert.equal(r.excluded, 2);
    const target = join(dir, 'out-ex');
    await restore({ rollbackProtection: false, storage, backupKey, target, workers: 1 });
    assert.deepEqual(await readdir(target), ['media']);
    assert.deepEqual(await readdir(join(target, 'media')), ['a.jpg']);
    await assert.rejects(
      backup({ rollbackProtection: false, storage, backupKey, source: src, exclude: ['[oops'] }),
      (e: unknown) => hasCode(e, 'USAGE'),
    );
  });

  it('unreadable files and folders (the CLI as an unprivileged user): exit 7, JSON names them', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to run the CLI as another user');
      return;
    }
    const home = join(dir, 'nobody');
    const src = join(home, 'chat');
    await mkdir(join(src, 'locked-dir'), { recursive: true });
    await mkdir(join(src, 'media'), { recursive: true });
    await writeFile(join(src, 'msgstore.db'), 'messages');
    await writeFile(join(src, 'media', 'a.jpg'), 'photo');
    await writeFile(join(src, 'secret.txt'), 'not for this user');
    await writeFile(join(src, 'locked-dir', 'inside.txt'), 'hidden');
    // The tree belongs to nobody, except the two entries it may not read.
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, home]);
    await chmod(dir, 0o755);
    await chown(join(src, 'secret.txt'), 0, 0);
    await chmod(join(src, 'secret.txt'), 0o600);
    await chown(join(src, 'locked-dir'), 0, 0);
    await chmod(join(src, 'locked-dir'), 0o700);
    const keyFile = join(home, 'key');
    await writeFile(keyFile, formatBackupKey(generateBackupKey()), { mode: 0o600 });
    await chown(keyFile, NOBODY, NOBODY);
    const run = (args: string[]): Promise<CliRun> => runCliAs(MAIN_JS, NOBODY, home, args);
    const common = ['--repo', join(home, 'cloud'), '--key-file', keyFile];
    const j = await run(['backup', 'chat', '--init', ...common, '--json']);
    assert.equal(j.code, 7, j.stderr);
    const out = JSON.parse(j.stdout) as {
      partial: boolean;
      filesSkipped: number;
      warnings: string[];
      error: { code: string };
    };
    assert.equal(out.error.code, 'PARTIAL');
    assert.equal(out.partial, true);
    assert.equal(out.filesSkipped, 2);
    assert.match(out.warnings.join('\n'), /permission denied, skipped: .*secret\.txt/);
    assert.match(out.warnings.join('\n'), /directory permission denied, skipped: .*locked-dir/);
    // Human output: the snapshot line, the warnings, and PARTIAL on stderr.
    const h = await run(['backup', 'chat', ...common]);
    assert.equal(h.code, 7);
    assert.match(h.stdout, /snapshot [0-9a-f]{8} saved \(seq 2\)/);
    assert.match(h.stderr, /^PARTIAL: snapshot [0-9a-f]{8} was saved without 2 entries/m);
    const list = await run(['snapshots', ...common]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /\(partial\)/);
    const restored = await run(['restore', 'back', ...common]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(await readFile(join(home, 'back', 'msgstore.db'), 'utf8'), 'messages');
    assert.deepEqual((await readdir(join(home, 'back'))).sort(), ['media', 'msgstore.db']);
  });
});
