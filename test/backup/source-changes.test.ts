/**
 * A source that changes while it is backed up: files that vanish are skipped with a
 * warning, a file rewritten while being read is read again (never recorded as a mixture),
 * an unreadable file is skipped and named, and the snapshot is saved marked partial.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { backup, restore } from '#sdk/backup/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';
import { generateBackupKey, toHex } from '#sdk/format/index.js';
import { removeDir, tempDir } from './helpers.js';

/** A file with a SQLite header (4 KiB pages) and random content: read in 8 MiB ranges. */
function sqliteLike(bytes: number): Buffer {
  const b = randomBytes(bytes);
  b.write('SQLite format 3\0', 0, 'latin1');
  b.writeUInt16BE(4096, 16);
  return b;
}

describe('a source that changes during the backup', () => {
  let dir: string;
  let n = 0;
  before(async () => {
    dir = await tempDir('bv-changes-');
  });
  after(async () => {
    await removeDir(dir);
  });

  async function fresh(): Promise<string> {
    const d = join(dir, `case${n++}`);
    await mkdir(join(d, 'src'), { recursive: true });
    return d;
  }

  it('files that vanish (before or after they were listed) are skipped with a warning', async () => {
    const base = await fresh();
    const src = join(base, 'src');
    // One worker, two jobs queued: while a2 is read, b.txt is already listed and queued, and
    // z.txt (last) not yet looked at. Both are deleted when a1 is done.
    await writeFile(join(src, 'a1.bin'), randomBytes(8_000_000));
    await writeFile(join(src, 'a2.bin'), randomBytes(8_000_000));
    await writeFile(join(src, 'b.txt'), 'queued, then gone');
    for (let i = 0; i < 5; i++) await writeFile(join(src, `c${i}.txt`), `stays ${i}`);
    await writeFile(join(src, 'z.txt'), 'listed, then gone');
    let deleted = false;
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    const r = await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey,
      source: src,
      workers: 1,
      onProgress: () => {
        if (deleted) return;
        deleted = true;
        unlinkSync(join(src, 'b.txt'));
        unlinkSync(join(src, 'z.txt'));
      },
    });
    assert.ok(deleted);
    assert.equal(r.filesSkipped, 2, r.warnings.join('\n'));
    assert.equal(r.files, 7);
    for (const f of ['b.txt', 'z.txt'])
      assert.ok(
        r.warnings.some((w) => w.includes(join(src, f)) && /vanished/.test(w)),
        r.warnings.join('\n'),
      );
    const target = join(base, 'out');
    await restore({ rollbackProtection: false, storage, backupKey, target, workers: 1 });
    assert.deepEqual((await readdir(target)).sort(), (await readdir(src)).sort());
  });

  it('a file rewritten while being read is read again: the snapshot holds the new content', async () => {
    const base = await fresh();
    const src = join(base, 'src');
    const path = join(src, 'msgstore.db');
    await writeFile(path, sqliteLike(48 * 1024 * 1024));
    const replacement = sqliteLike(48 * 1024 * 1024);
    let rewritten = false;
    const storage = new MemoryStorage();
    const backupKey = generateBackupKey();
    // The first report comes when the first 8 MiB range is done; later ranges are not read yet.
    const r = await backup({
      rollbackProtection: false,
      init: true,
      storage,
      backupKey,
      source: src,
      workers: 1,
      onProgress: (p) => {
        if (rewritten || p.bytesDone === 0) return;
        rewritten = true;
        writeFileSync(path, replacement);
      },
    });
    assert.ok(rewritten);
    const target = join(base, 'out');
    await restore({ rollbackProtection: false, storage, backupKey, target, workers: 1 });
    const got = await readFile(join(target, 'msgstore.db'));
    assert.equal(got.length, replacement.length);
    assert.ok(got.equals(replacement), 'the restored file is the content after the rewrite');
    assert.ok(r.bytesRead > replacement.length, 'the file was read again');
    assert.equal(r.filesSkipped, 0);
  });

  it('an unreadable file is skipped and named (never its content); the snapshot is partial', async (t) => {
    const base = await fresh();
    const src = join(base, 'src');
    await writeFile(join(src, 'ok.txt'), 'readable');
    await mkdir(join(src, 'media'));
    await writeFile(join(src, 'media', 'secret.jpg'), 'private bytes 4242');
    await chmod(join(src, 'media', 'secret.jpg'), 0o000);
    const repo = join(base, 'repo');
    if (process.getuid?.() !== 0) {
      const storage = new MemoryStorage();
      const r = await backup({
        rollbackProtection: false,
        init: true,
        storage,
        backupKey: generateBackupKey(),
        source: src,
        workers: 1,
      });
      assert.equal(r.partial, true);
      assert.ok(r.warnings.some((w) => w.includes(join(src, 'media', 'secret.jpg'))));
      assert.ok(!r.warnings.join().includes('4242'));
      return;
    }
    // Root reads anything: run the backup in a child process as `nobody`.
    const nobody = 65534;
    await chmod(dir, 0o711);
    await mkdir(repo);
    for (const p of [base, src, join(src, 'ok.txt'), join(src, 'media'), repo])
      await chown(p, nobody, nobody);
    await chown(join(src, 'media', 'secret.jpg'), nobody, nobody);
    const backupJs = new URL('../../../packages/sdk/dist/backup/index.js', import.meta.url).href;
    const localJs = new URL('../../../packages/sdk/dist/storage/node/local.js', import.meta.url)
      .href;
    const code = `
      const { backup } = await import(${JSON.stringify(backupJs)});
      const { LocalStorage } = await import(${JSON.stringify(localJs)});
      const key = Uint8Array.from(Buffer.from(process.env.BV_KEY, 'hex'));
      const storage = new LocalStorage(${JSON.stringify(repo)});
      try {
        const r = await backup({ init: true, rollbackProtection: false, storage, backupKey: key, source: ${JSON.stringify(src)}, workers: 1 });
        process.stdout.write(JSON.stringify({ ok: true, partial: r.partial, message: r.warnings.join('; ') }));
      } catch (e) {
        process.stdout.write(JSON.stringify({ ok: false, code: e.code, message: e.message }));
      }`;
    // A script file, not `-e`: the engine's worker threads inherit the child's execArgv.
    const script = join(base, 'child.mjs');
    await writeFile(script, code);
    await chown(script, nobody, nobody);
    const r = spawnSync(process.execPath, [script], {
      uid: nobody,
      gid: nobody,
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      env: { ...process.env, BV_KEY: toHex(generateBackupKey()) },
      encoding: 'utf8',
    });
    t.diagnostic(`as nobody: ${r.stdout}`);
    const out = JSON.parse(r.stdout) as { ok: boolean; partial?: boolean; message?: string };
    assert.equal(out.ok, true, r.stderr);
    assert.equal(out.partial, true);
    assert.ok(out.message?.includes(join(src, 'media', 'secret.jpg')), out.message);
    assert.ok(!out.message?.includes('4242'));
    const snaps = await readdir(join(repo, 'snapshots')).catch(() => []);
    assert.equal(snaps.length, 1);
  });

  it('a name that is not valid UTF-8 is reported as such, not as vanished', async () => {
    const base = await fresh();
    const src = join(base, 'src');
    // "café.txt" in Latin-1: the é is the single byte 0xe9, not valid UTF-8.
    const latin1 = Buffer.concat([
      Buffer.from(`${src}/caf`),
      Buffer.from([0xe9]),
      Buffer.from('.txt'),
    ]);
    writeFileSync(latin1, 'latin-1 name');
    await writeFile(join(src, 'ok.txt'), 'fine');
    const r = await backup({
      rollbackProtection: false,
      init: true,
      storage: new MemoryStorage(),
      backupKey: generateBackupKey(),
      source: src,
      workers: 1,
    });
    assert.equal(r.files, 1);
    assert.equal(r.filesSkipped, 1);
    assert.deepEqual(r.warnings, [
      `name is not valid UTF-8, not backed up (rename it), skipped: ${join(src, 'caf\\xe9.txt')}`,
    ]);
  });
});
