/**
 * Fixtures of the adversarial tests: a small chat directory, a comparison of restored trees
 * that looks at every byte, and a parse of pack layouts (with the key, as the tests know it)
 * so a mutation can be classified as "inside a blob" or "in the header/trailer".
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  lstat,
  mkdir,
  readFile,
  readdir,
  readlink,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  ObjectKind,
  decodePackHeader,
  objectAd,
  packTrailer,
  type BlobEntry,
} from '#sdk/format/index.js';
import { deriveRepoKeys, open } from '#sdk/backup/repository/keys.js';
import { decodeConfig } from '#sdk/format/index.js';

/** Append `n` messages to a small SQLite chat database (created on first use). */
export function addMessages(path: string, n: number, offset: number): void {
  const db = new Database(path);
  db.pragma('journal_mode = DELETE');
  db.exec(
    'CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, chat INTEGER, body TEXT, ts INTEGER)',
  );
  db.exec('CREATE INDEX IF NOT EXISTS by_chat ON messages(chat, ts)');
  const ins = db.prepare('INSERT INTO messages (chat, body, ts) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let i = offset; i < offset + n; i++)
      ins.run(i % 17, `message ${i}: see you at ${i % 24}h`, 1_700_000_000 + i);
  })();
  db.close();
}

/**
 * A small chat: a SQLite database, a "photo", a text file, an empty file, a symlink and a
 * nested directory, with fixed mtimes on the directories.
 */
export async function makeChat(root: string, photoBytes = 200_000): Promise<void> {
  await mkdir(join(root, 'media', 'voice'), { recursive: true });
  addMessages(join(root, 'msgstore.db'), 2000, 0);
  await writeFile(join(root, 'media', 'IMG_0001.jpg'), randomBytes(photoBytes));
  await writeFile(join(root, 'media', 'voice', 'note.opus'), randomBytes(40_000));
  await writeFile(join(root, 'notes.txt'), 'remember the milk\n'.repeat(400));
  await writeFile(join(root, 'empty'), '');
  await symlink('media/IMG_0001.jpg', join(root, 'latest-photo'));
}

/** The second state of the chat: more messages, a new photo, a changed note. */
export async function mutateChat(root: string): Promise<void> {
  addMessages(join(root, 'msgstore.db'), 300, 2000);
  await writeFile(join(root, 'media', 'IMG_0002.jpg'), randomBytes(120_000));
  // Same size as note.opus: two sealed blobs of equal length in different packs.
  await writeFile(join(root, 'media', 'voice', 'note2.opus'), randomBytes(40_000));
  await writeFile(join(root, 'notes.txt'), 'remember the eggs\n'.repeat(400));
  const t = new Date('2024-01-02T03:04:05.678Z');
  await utimes(join(root, 'notes.txt'), t, t);
}

/** Per relative path: type, permission bits, mtime (ms) and content digest or link target. */
export async function describeTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = await lstat(p, { bigint: true });
      // Whole ms from the ns (see describeTree in test/backup/helpers.ts).
      const ms = st.mtimeNs / 1_000_000n;
      const mode = (Number(st.mode) & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(r, `link ${await readlink(p)}`);
      else if (st.isDirectory()) {
        out.set(r, `dir ${mode} ${ms}`);
        await walk(r);
      } else {
        const digest = createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
        out.set(r, `file ${mode} ${ms} ${digest}`);
      }
    }
  };
  await walk('');
  return out;
}

/** Assert `restored` holds exactly what `expected` describes. */
export async function assertTreeIs(
  restored: string,
  expected: Map<string, string>,
  what: string,
): Promise<void> {
  assert.deepEqual(await describeTree(restored), expected, `${what}: restored tree differs`);
}

/** Where the parts of one pack are. */
export interface PackLayout {
  name: string;
  size: number;
  entries: BlobEntry[];
  headerOffset: number;
}

/** Parse the layout of every pack of a repository held in `objects`, with the key. */
export function packLayouts(objects: Map<string, Uint8Array>, backupKey: Uint8Array): PackLayout[] {
  const config = decodeConfig(objects.get('config') as Uint8Array);
  const keys = deriveRepoKeys(backupKey, config.repoId);
  const out: PackLayout[] = [];
  for (const [name, bytes] of objects) {
    if (!name.startsWith('data/')) continue;
    const { headerOffset, headerLength } = packTrailer(
      bytes.length,
      bytes.subarray(bytes.length - 4),
      name,
    );
    const plain = open(
      keys.meta,
      objectAd(ObjectKind.PACK_HEADER, keys.repoId),
      bytes.subarray(headerOffset, headerOffset + headerLength),
      name,
    );
    out.push({
      name,
      size: bytes.length,
      entries: decodePackHeader(plain, headerOffset, name),
      headerOffset,
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}
