/**
 * The "a few days later" step of the benchmark: 10,000 new messages (× scale) spread over the
 * existing chats, so that index pages change all over the database file as they do in real
 * life, plus 20 new photos (× scale, at least one). Deterministic: the same corpus, seed and
 * scale give byte-identical results.
 *
 * CLI: node dist/bench/mutate.js --dir DIR [--scale 1.0] [--seed N]
 */
import { mkdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { isMain, numberOption, runMain } from './cli-util.js';
import {
  DB_PATH,
  IMAGES_DIR,
  fixDirMtimes,
  messageBody,
  weightedSampler,
  writeMediaFile,
  ymd,
  type CorpusOptions,
  type MediaFile,
} from './gen-chat.js';
import { createRng } from './prng.js';

/** How many messages and photos one mutation adds at a scale. */
export interface MutationCounts {
  messages: number;
  photos: number;
}

/** What {@link mutateChat} did. */
export interface MutationStats extends MutationCounts {
  /** Chats that received at least one message. */
  chatsTouched: number;
  /** Bytes of the new photos. */
  mediaBytes: number;
  /** Relative paths of the new photos. */
  newFiles: string[];
  seconds: number;
}

/**
 * Messages and photos added by one mutation at a scale.
 * @throws RangeError when scale is not a positive finite number.
 */
export function mutationCounts(scale: number): MutationCounts {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError('scale must be > 0');
  return {
    messages: Math.max(10, Math.round(10_000 * scale)),
    photos: Math.max(1, Math.round(20 * scale)),
  };
}

/**
 * Add a few days of chat to a directory made by `generateChat`.
 * @throws Error (from better-sqlite3) when the database is missing or not a chat database.
 */
export async function mutateChat(dir: string, opts: CorpusOptions = {}): Promise<MutationStats> {
  const started = performance.now();
  const scale = opts.scale ?? 1;
  const seed = opts.seed ?? 1;
  const counts = mutationCounts(scale);
  const rng = createRng(seed, 'mutate');
  const dbPath = join(dir, DB_PATH);
  const db = new Database(dbPath, { fileMustExist: true });
  const newMedia: MediaFile[] = [];
  const touched = new Set<number>();
  let endSec = 0;
  try {
    // What a chat app does: rollback journal, durable commits, one transaction per message.
    db.pragma('journal_mode = DELETE');
    db.pragma('synchronous = NORMAL');
    const chats = db.prepare('SELECT id, is_group AS isGroup FROM chats ORDER BY id').all() as {
      id: number;
      isGroup: number;
    }[];
    const members = new Map<number, number[]>();
    for (const row of db
      .prepare('SELECT chat_id AS chatId, contact_id AS contactId FROM chat_members ORDER BY 1, 2')
      .all() as { chatId: number; contactId: number }[]) {
      const list = members.get(row.chatId) ?? [];
      list.push(row.contactId);
      members.set(row.chatId, list);
    }
    const last = db.prepare('SELECT max(id) AS id, max(ts) AS ts FROM messages').get() as {
      id: number;
      ts: number;
    };
    const photosBefore = (
      db.prepare("SELECT count(*) AS n FROM messages WHERE media_ref LIKE '%.jpg'").get() as {
        n: number;
      }
    ).n;

    const insMsg = db.prepare(
      'INSERT INTO messages(id, chat_id, sender, ts, status, body, media_ref, quoted_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const updChat = db.prepare(
      'UPDATE chats SET last_message_id = ?, last_ts = ?, unread = unread + ? WHERE id = ?',
    );
    // The chats of the moment carry on: weight each chat by its messages of the last 3 days
    // (all chats by their history if the corpus is too small to have any).
    const recent = (since: number): Map<number, number> =>
      new Map(
        (
          db
            .prepare(
              'SELECT chat_id AS chatId, count(*) AS n FROM messages WHERE ts >= ? GROUP BY chat_id',
            )
            .all(since) as { chatId: number; n: number }[]
        ).map((r) => [r.chatId, r.n]),
      );
    let perChat = recent(last.ts - 3 * 86400 * 1000);
    if (perChat.size === 0) perChat = recent(0);
    const sample = weightedSampler(chats.map((c) => perChat.get(c.id) ?? 0));
    // Three days after the last message, 10k messages: photos every ~500th message.
    const startSec = Math.floor(last.ts / 1000) + 86400;
    const step = (3 * 86400) / counts.messages;
    const photoEvery = counts.messages / counts.photos;
    let chatIdx = sample(rng.next());
    // Batches of 100 messages per transaction: the app commits as messages arrive; batching
    // keeps the step fast without changing which pages end up different.
    for (let start = 0; start < counts.messages; start += 100) {
      db.transaction(() => {
        for (let i = start; i < Math.min(counts.messages, start + 100); i++) {
          if (rng.next() > 0.7) chatIdx = sample(rng.next());
          const chat = chats[chatIdx] as { id: number; isGroup: number };
          const people = members.get(chat.id) ?? [0];
          const fromMe = rng.next() < 0.45;
          const sender = fromMe ? 0 : (people[Math.floor(rng.next() * people.length)] as number);
          const tsSec = Math.floor(startSec + (i + rng.next() * 0.99) * step);
          const ts = tsSec * 1000 + rng.int(0, 999);
          let body: string | null = messageBody(rng);
          let ref: string | null = null;
          const k = newMedia.length;
          if (k < counts.photos && i >= Math.floor(k * photoEvery + photoEvery / 2)) {
            const no = photosBefore + k;
            ref = `${IMAGES_DIR}/IMG-${ymd(tsSec)}-WA${String(no).padStart(5, '0')}.jpg`;
            newMedia.push({ path: ref, size: rng.int(100 * 1024, 700 * 1024), mtime: tsSec });
            if (rng.next() < 0.7) body = null;
          }
          const id = last.id + i + 1;
          const quoted = rng.next() < 0.03 ? rng.int(1, id - 1) : null;
          insMsg.run(id, chat.id, sender, ts, fromMe ? 4 : 0, body, ref, quoted);
          updChat.run(id, ts, fromMe ? 0 : 1, chat.id);
          touched.add(chat.id);
          endSec = tsSec;
        }
      })();
    }
  } finally {
    db.close();
  }
  await utimes(dbPath, endSec + 60, endSec + 60);
  await mkdir(join(dir, IMAGES_DIR), { recursive: true });
  let mediaBytes = 0;
  for (const m of newMedia) {
    await writeMediaFile(dir, seed, m);
    mediaBytes += m.size;
  }
  await fixDirMtimes(dir);
  return {
    ...counts,
    chatsTouched: touched.size,
    mediaBytes,
    newFiles: newMedia.map((m) => m.path),
    seconds: (performance.now() - started) / 1000,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
    },
  });
  if (values.dir === undefined) {
    console.error('usage: mutate --dir DIR [--scale 1.0] [--seed N]');
    process.exitCode = 2;
    return;
  }
  const s = await mutateChat(values.dir, {
    scale: numberOption('scale', values.scale, 1, 0),
    seed: numberOption('seed', values.seed, 1, 0),
  });
  console.log(
    `${values.dir}: +${s.messages} messages in ${s.chatsTouched} chats, +${s.photos} photos ` +
      `(${(s.mediaBytes / 1e6).toFixed(1)} MB); ${s.seconds.toFixed(1)} s`,
  );
}

if (isMain(import.meta.url)) runMain(main);
