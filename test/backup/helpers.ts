/** Shared fixtures for the engine tests: sample trees and tree comparison. */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { generateBackupKey } from '#sdk/format/index.js';
import { MemoryStorage } from '#sdk/storage/memory.js';

/** A fresh temp directory; remove it with `rm(dir, { recursive: true, force: true })`. */
export async function tempDir(prefix = 'bv-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Remove a temp directory. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Create (or extend) a small chat database with `n` messages spread over `chats` chats. */
export function writeChatDb(path: string, n: number, offset = 0, chats = 37): void {
  const db = new Database(path);
  db.pragma('journal_mode = DELETE');
  db.exec(
    'CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, chat INTEGER, body TEXT, ts INTEGER)',
  );
  db.exec('CREATE INDEX IF NOT EXISTS by_chat ON messages(chat, ts)');
  const ins = db.prepare('INSERT INTO messages (chat, body, ts) VALUES (?, ?, ?)');
  const words = [
    'hello',
    'see you',
    'on my way',
    'lunch?',
    'ok',
    'thanks!',
    'call me',
    'photo',
    'haha',
    'tomorrow',
  ];
  db.transaction(() => {
    for (let i = offset; i < offset + n; i++) {
      ins.run(i % chats, `${words[i % 10]} ${words[(i * 7) % 10]} #${i}`, 1_700_000_000 + i);
    }
  })();
  db.close();
}

/**
 * A small chat-like tree: nested dirs, an empty file, an empty dir, a SQLite database,
 * a random `bigBytes` file, unicode names, an executable, a symlink, fixed mtimes.
 */
export async function makeSampleTree(root: string, bigBytes = 5 * 1024 * 1024): Promise<void> {
  await mkdir(join(root, 'media', 'photos', '2024'), { recursive: true });
  await mkdir(join(root, 'empty dir'));
  await writeFile(join(root, 'empty.txt'), '');
  writeChatDb(join(root, 'msgstore.db'), 3000);
  await writeFile(join(root, 'media', 'photos', '2024', 'IMG_0001.jpg'), randomBytes(bigBytes));
  await writeFile(join(root, 'media', 'photos', 'small.jpg'), randomBytes(70_000));
  await writeFile(join(root, 'media', 'Ünïcødé 名前 🎉.txt'), 'ünïcødé content\n'.repeat(100));
  await writeFile(join(root, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'run.sh'), 0o755);
  await writeFile(join(root, 'private.txt'), 'secret-ish\n');
  await chmod(join(root, 'private.txt'), 0o600);
  await symlink('media/photos/small.jpg', join(root, 'link-to-small'));
  const t = new Date('2023-05-06T07:08:09.123Z');
  await utimes(join(root, 'run.sh'), t, t);
  await utimes(join(root, 'media', 'photos', '2024'), t, t);
}

interface Snap {
  type: string;
  mode: number;
  mtimeMs: number;
  content?: string;
}

/** Everything a restore must keep, per relative path. */
export async function describeTree(root: string): Promise<Map<string, Snap>> {
  const out = new Map<string, Snap>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const r = rel ? join(rel, name) : name;
      const p = join(root, r);
      const st = await lstat(p, { bigint: true });
      // Whole milliseconds from the nanoseconds: `Math.floor(mtimeMs)` of a number rounds
      // .9999995 ms up first (a double near 1.8e12 ms has ~0.24 µs of precision), while
      // the engine restores microseconds, so a source time in the last µs of a millisecond
      // compared one ms apart from its exact restore.
      const mtimeMs = Number(st.mtimeNs / 1_000_000n);
      const mode = Number(st.mode) & 0o7777;
      if (st.isDirectory()) {
        await walk(r);
        out.set(r, { type: 'dir', mode, mtimeMs });
      } else if (st.isSymbolicLink()) {
        out.set(r, { type: 'link', mode: 0, mtimeMs: 0, content: await readlink(p) });
      } else {
        const digest = (await import('node:crypto'))
          .createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
        out.set(r, { type: 'file', mode, mtimeMs, content: digest });
      }
    }
  };
  await walk('');
  return out;
}

/** Assert two trees are identical in content, type, mode and mtime (ms). */
export async function assertSameTree(a: string, b: string): Promise<void> {
  const da = await describeTree(a);
  const db = await describeTree(b);
  assert.deepEqual([...db.keys()], [...da.keys()]);
  for (const [k, v] of da) assert.deepEqual(db.get(k), v, `entry ${k}`);
}

/** What a CLI run printed, and its exit code. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the CLI (`mainJs`) as user and group `uid` (root only), in `home`, with HOME and the
 * state file there and nothing else of this environment but PATH.
 */
export function runCliAs(
  mainJs: string,
  uid: number,
  home: string,
  args: string[],
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mainJs, ...args], {
      cwd: home,
      uid,
      gid: uid,
      env: { PATH: process.env.PATH ?? '', HOME: home, BACKVAULT_STATE: join(home, 'state.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A new in-memory repository's access: a fresh key, no rollback state, one worker thread. */
export function freshAccess(): {
  storage: MemoryStorage;
  backupKey: Uint8Array;
  rollbackProtection: false;
  workers: number;
} {
  return {
    storage: new MemoryStorage(),
    backupKey: generateBackupKey(),
    rollbackProtection: false,
    workers: 1,
  };
}

/**
 * Mount a tmpfs of `size` (e.g. `4m`) at `dir`, read-only if asked: a real full or read-only
 * disk (root only). False when this machine cannot; the caller skips then.
 */
export function mountTmpfs(dir: string, size: string, readOnly = false): boolean {
  try {
    execFileSync(
      'mount',
      ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir],
      { stdio: 'ignore' },
    );
    return true;
  } catch {
    return false;
  }
}
