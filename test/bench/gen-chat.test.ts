import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { DB_PATH, IMAGES_DIR, corpusCounts, generateChat } from '../../bench/gen-chat.js';
import { mutateChat, mutationCounts } from '../../bench/mutate.js';
import { comparePages } from '../../bench/sqlite-pages.js';
import { diffTrees, hashTree } from '../../bench/tree-hash.js';

const SCALE = 0.002;

function countRows(dbPath: string, sql: string): number {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('bench chat generator', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'bv-gen-chat-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('is deterministic: same seed gives identical files and mtimes, another seed differs', async () => {
    const a = join(root, 'a');
    const b = join(root, 'b');
    const c = join(root, 'c');
    const sa = await generateChat(a, { scale: SCALE, seed: 7 });
    await generateChat(b, { scale: SCALE, seed: 7 });
    await generateChat(c, { scale: SCALE, seed: 8 });
    const [ha, hb, hc] = await Promise.all([hashTree(a), hashTree(b), hashTree(c)]);
    assert.deepEqual(diffTrees(ha, hb), { content: [], metadata: [] });
    assert.deepEqual(
      ha.map((f) => [f.path, f.mtimeMs]),
      hb.map((f) => [f.path, f.mtimeMs]),
    );
    assert.equal(ha.length, sa.files);
    const dbA = ha.find((f) => f.path === DB_PATH);
    const dbC = hc.find((f) => f.path === DB_PATH);
    assert.ok(dbA && dbC);
    assert.notEqual(dbA.sha256, dbC.sha256);
    const photoA = ha.find((f) => f.path.startsWith(IMAGES_DIR));
    assert.ok(photoA);
    assert.ok(!hc.some((f) => f.sha256 === photoA.sha256), 'seed changes media bytes');
  });

  it('writes a database with the expected rows and the media it references', async () => {
    const dir = join(root, 'd');
    const counts = corpusCounts(SCALE);
    const stats = await generateChat(dir, { scale: SCALE, seed: 1 });
    const dbPath = join(dir, DB_PATH);
    assert.equal(countRows(dbPath, 'SELECT count(*) AS n FROM messages'), counts.messages);
    assert.equal(countRows(dbPath, 'SELECT count(*) AS n FROM chats'), counts.chats);
    assert.equal(
      countRows(dbPath, "SELECT count(*) AS n FROM messages WHERE media_ref LIKE '%.jpg'"),
      counts.photos,
    );
    const images = await readdir(join(dir, IMAGES_DIR));
    assert.equal(images.length, counts.photos);
    assert.equal(stats.messages, counts.messages);
    const db = new Database(dbPath, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'delete');
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      const idx = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'")
        .all();
      assert.ok(idx.some((r) => (r as { name: string }).name === 'messages_chat_ts'));
    } finally {
      db.close();
    }
  });

  it('mutation adds the right rows and photos, deterministically, changing pages in place', async () => {
    const base = join(root, 'm0');
    await generateChat(base, { scale: SCALE, seed: 3 });
    const before = await hashTree(base);
    const m1 = join(root, 'm1');
    const m2 = join(root, 'm2');
    await generateChat(m1, { scale: SCALE, seed: 3 });
    await generateChat(m2, { scale: SCALE, seed: 3 });
    const counts = mutationCounts(SCALE);
    const s1 = await mutateChat(m1, { scale: SCALE, seed: 3 });
    await mutateChat(m2, { scale: SCALE, seed: 3 });
    assert.equal(s1.messages, counts.messages);
    assert.equal(s1.newFiles.length, counts.photos);

    const msgs = 'SELECT count(*) AS n FROM messages';
    assert.equal(
      countRows(join(m1, DB_PATH), msgs),
      corpusCounts(SCALE).messages + counts.messages,
    );
    const images = await readdir(join(m1, IMAGES_DIR));
    assert.equal(images.length, corpusCounts(SCALE).photos + counts.photos);

    const [h1, h2] = await Promise.all([hashTree(m1), hashTree(m2)]);
    assert.deepEqual(diffTrees(h1, h2), { content: [], metadata: [] });
    const changed = diffTrees(before, h1).content.sort();
    assert.deepEqual(changed, [DB_PATH, ...s1.newFiles].sort());

    const pages = await comparePages(join(base, DB_PATH), join(m1, DB_PATH));
    assert.ok(pages.pagesChanged > 0, 'existing pages change (index, chats)');
    assert.ok(pages.bytesAfter >= pages.bytesBefore);
    for (const b of pages.blocks) assert.ok(b.blocks <= pages.pagesChanged + pages.pagesAppended);
  });
});
