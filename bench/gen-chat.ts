/**
 * Deterministic generator of a realistic chat directory for the backup benchmark:
 *
 *   Databases/msgstore.db   SQLite (journal_mode=DELETE, one file), ~1.3 M messages ≈ 200 MB
 *   Media/Images/*.jpg      ~2,000 photos, random bytes, 100–700 KB
 *   Media/Voice/*.opus      ~300 voice notes, random bytes, 20–200 KB
 *   settings.json           a small file
 *
 * Same seed and scale give byte-identical files and identical mtimes, on any machine with the
 * same better-sqlite3 build (the SQLite version is written into the database header).
 *
 * CLI: node dist/bench/gen-chat.js --out DIR [--scale 1.0] [--seed N]
 */
import { createCipheriv, createHash } from 'node:crypto';
import { utimesSync } from 'node:fs';
import { mkdir, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { isMain, numberOption, runMain } from './cli-util.js';
import { createRng, type Rng } from './prng.js';
import { FOREIGN_WORDS, NAMES, SUBJECTS, WORDS } from './words.js';

/** Paths inside a generated chat directory (relative, `/`-separated). */
export const DB_PATH = 'Databases/msgstore.db';
export const IMAGES_DIR = 'Media/Images';
export const VOICE_DIR = 'Media/Voice';

/** First message: 2019-01-01T00:00:00Z. Last: 2024-06-01. Seconds since the epoch. */
const HISTORY_START = 1_546_300_800;
const HISTORY_END = 1_717_200_000;
/** mtime given to every directory of the corpus (a fixed instant, so trees compare equal). */
export const DIR_MTIME = HISTORY_END + 3600;

/** How many of each thing a corpus of the given scale holds. */
export interface CorpusCounts {
  messages: number;
  chats: number;
  contacts: number;
  photos: number;
  voiceNotes: number;
}

/** What {@link generateChat} made. Sizes in bytes. */
export interface ChatStats extends CorpusCounts {
  scale: number;
  seed: number;
  /** Every regular file in the directory. */
  files: number;
  dbBytes: number;
  mediaBytes: number;
  totalBytes: number;
  seconds: number;
}

/** Options of {@link generateChat} and of the mutation step. */
export interface CorpusOptions {
  /** 1.0 is the ~1 GB chat of issue 2; 0.01 runs in about a second. Default 1. */
  scale?: number;
  /** PRNG seed. Default 1. */
  seed?: number;
}

/**
 * Number of messages, chats, contacts, photos and voice notes at a scale. Chats and contacts
 * grow with the square root: a user with 10× the messages does not have 10× the friends.
 * @throws RangeError when scale is not a positive finite number.
 */
export function corpusCounts(scale: number): CorpusCounts {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError('scale must be > 0');
  return {
    messages: Math.max(100, Math.round(1_300_000 * scale)),
    chats: Math.max(4, Math.round(400 * Math.sqrt(scale))),
    contacts: Math.max(6, Math.round(600 * Math.sqrt(scale))),
    photos: Math.max(1, Math.round(2000 * scale)),
    voiceNotes: Math.max(1, Math.round(300 * scale)),
  };
}

/** SQL schema of the message database (a simplified WhatsApp/Signal-like store). */
export const SCHEMA = `
CREATE TABLE contacts(
  id INTEGER PRIMARY KEY, jid TEXT NOT NULL UNIQUE, display_name TEXT, phone TEXT, status TEXT);
CREATE TABLE chats(
  id INTEGER PRIMARY KEY, jid TEXT NOT NULL UNIQUE, subject TEXT, is_group INTEGER NOT NULL,
  created_ts INTEGER NOT NULL, last_message_id INTEGER, last_ts INTEGER,
  unread INTEGER NOT NULL DEFAULT 0, archived INTEGER NOT NULL DEFAULT 0);
CREATE TABLE chat_members(
  chat_id INTEGER NOT NULL, contact_id INTEGER NOT NULL, PRIMARY KEY(chat_id, contact_id)
) WITHOUT ROWID;
CREATE TABLE messages(
  id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, sender INTEGER, ts INTEGER NOT NULL,
  status INTEGER NOT NULL, body TEXT, media_ref TEXT, quoted_id INTEGER);
CREATE INDEX messages_chat_ts ON messages(chat_id, ts);
`;

/**
 * A message body: mostly short lines, some paragraphs, words drawn with a skew towards the
 * head of the vocabulary (like real text), a little non-ASCII and emoji.
 */
export function messageBody(rng: Rng): string {
  const r = rng.next();
  const n = r < 0.5 ? rng.int(1, 10) : r < 0.86 ? rng.int(8, 34) : rng.int(30, 120);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    if (rng.next() < 0.02) {
      parts.push(rng.pick(FOREIGN_WORDS));
    } else {
      const u = rng.next();
      parts.push(WORDS[Math.floor(WORDS.length * u * u)] as string);
    }
  }
  const first = parts[0] as string;
  parts[0] = first.charAt(0).toUpperCase() + first.slice(1);
  const end = rng.next();
  return parts.join(' ') + (end < 0.4 ? '' : end < 0.7 ? '.' : end < 0.85 ? '!' : '?');
}

/** `YYYYMMDD` of a Unix time in seconds (UTC). */
export function ymd(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().slice(0, 10).replaceAll('-', '');
}

/** A media file to write: path relative to the chat root, size, mtime in seconds. */
export interface MediaFile {
  path: string;
  size: number;
  mtime: number;
}

/**
 * Write one media file of pseudo-random bytes (AES-256-CTR keystream of a key derived from
 * seed and path: ~2 GB/s, so 1 GB of media costs well under a second of CPU), starting with
 * the format's magic bytes, and set its mtime.
 */
export async function writeMediaFile(root: string, seed: number, file: MediaFile): Promise<void> {
  const key = createHash('sha256').update(`backvault-bench-media|${seed}|${file.path}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const data = cipher.update(Buffer.alloc(file.size));
  // Magic bytes so that tools that sniff file types see a JPEG / an Ogg stream.
  const magic = file.path.endsWith('.jpg')
    ? Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00])
    : Buffer.from('OggS\0', 'latin1');
  magic.copy(data, 0);
  const full = join(root, file.path);
  await writeFile(full, data);
  await utimes(full, file.mtime, file.mtime);
}

/** Give every directory under (and including) `root` the fixed {@link DIR_MTIME}. */
export async function fixDirMtimes(root: string): Promise<void> {
  const entries = await readdir(root, { withFileTypes: true });
  for (const e of entries) if (e.isDirectory()) await fixDirMtimes(join(root, e.name));
  await utimes(root, DIR_MTIME, DIR_MTIME);
}

/** Popularity and lifetime of a chat: active from `born` to `dies` (fractions of the history). */
export interface ChatActivity {
  weight: number;
  born: number;
  dies: number;
}

/**
 * Chat activity: a few chats carry most messages (Zipf-like, s = 1.1), and chats come and go
 * over the years (a third are old friends active from the start, about half still active at
 * the end), so that "the last few days" involve the chats of the moment, not all of them.
 */
export function chatActivity(rng: Rng, chats: number): ChatActivity[] {
  const ranks = Array.from({ length: chats }, (_, i) => i);
  for (let i = ranks.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [ranks[i], ranks[j]] = [ranks[j] as number, ranks[i] as number];
  }
  return ranks.map((r) => {
    const born = r === 0 || rng.next() < 0.33 ? 0 : rng.next() * 0.95;
    const dies = r === 0 || rng.next() < 0.5 ? Infinity : born + 0.05 + rng.next() * 0.65;
    return { weight: 1 / Math.pow(r + 1, 1.1), born, dies };
  });
}

/** Returns a sampler of indexes in proportion to `weights` (binary search on the CDF). */
export function weightedSampler(weights: readonly number[]): (u: number) => number {
  const cdf = new Float64Array(weights.length);
  let acc = 0;
  weights.forEach((w, i) => {
    acc += w;
    cdf[i] = acc;
  });
  return (u: number) => {
    const x = u * acc;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

/** Sum of sizes of the regular files below a directory, and their count. */
export async function treeSize(root: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    files++;
    bytes += (await stat(join(e.parentPath, e.name))).size;
  }
  return { files, bytes };
}

/**
 * Generate a chat directory at `dir` (created; must not exist or be empty).
 * @throws Error when `dir` exists and is not empty, or on I/O failure.
 */
export async function generateChat(dir: string, opts: CorpusOptions = {}): Promise<ChatStats> {
  const started = performance.now();
  const scale = opts.scale ?? 1;
  const seed = opts.seed ?? 1;
  const counts = corpusCounts(scale);
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new Error(`${dir} is not empty`);
  for (const d of ['Databases', IMAGES_DIR, VOICE_DIR])
    await mkdir(join(dir, d), { recursive: true });

  const media = writeDatabase(join(dir, DB_PATH), counts, seed);
  const mediaRng = createRng(seed, 'media-sizes');
  let mediaBytes = 0;
  for (const m of media) {
    m.size = m.path.endsWith('.jpg')
      ? mediaRng.int(100 * 1024, 700 * 1024)
      : mediaRng.int(20 * 1024, 200 * 1024);
    mediaBytes += m.size;
    await writeMediaFile(dir, seed, m);
  }
  const settings = {
    version: 1,
    theme: 'system',
    notifications: { sound: 'default', vibrate: true },
    backup: { frequency: 'daily', includeVideos: false },
  };
  await writeFile(join(dir, 'settings.json'), JSON.stringify(settings, null, 2) + '\n');
  await utimes(join(dir, 'settings.json'), HISTORY_START, HISTORY_START);
  await fixDirMtimes(dir);

  const dbBytes = (await stat(join(dir, DB_PATH))).size;
  const tree = await treeSize(dir);
  return {
    ...counts,
    scale,
    seed,
    files: tree.files,
    dbBytes,
    mediaBytes,
    totalBytes: tree.bytes,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Build the SQLite database; returns the media files its messages reference (size unset). */
function writeDatabase(path: string, counts: CorpusCounts, seed: number): MediaFile[] {
  const rng = createRng(seed, 'messages');
  const db = new Database(path);
  const media: MediaFile[] = [];
  try {
    db.pragma('page_size = 4096');
    // Generation needs no crash safety; the app-like journal mode is set before closing.
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -131072');
    db.exec(SCHEMA);

    const insContact = db.prepare(
      'INSERT INTO contacts(id, jid, display_name, phone, status) VALUES (?, ?, ?, ?, ?)',
    );
    const insChat = db.prepare(
      'INSERT INTO chats(id, jid, subject, is_group, created_ts) VALUES (?, ?, ?, ?, ?)',
    );
    const insMember = db.prepare('INSERT INTO chat_members(chat_id, contact_id) VALUES (?, ?)');
    const members: number[][] = [];
    db.transaction(() => {
      for (let c = 1; c <= counts.contacts; c++) {
        const phone = `+49${String(1500000000 + ((c * 7919) % 99999999)).padStart(10, '0')}`;
        const name = `${rng.pick(NAMES)} ${String.fromCharCode(65 + (c % 26))}.`;
        insContact.run(
          c,
          `${phone.slice(1)}@s.chat`,
          name,
          phone,
          rng.next() < 0.3 ? 'Hey there!' : null,
        );
      }
      const groups = Math.max(1, Math.round(counts.chats * 0.15));
      for (let id = 1; id <= counts.chats; id++) {
        const isGroup = id > counts.chats - groups;
        const created = HISTORY_START - rng.int(0, 86400 * 365);
        let list: number[];
        if (isGroup) {
          const n = rng.int(3, Math.min(30, counts.contacts));
          const set = new Set<number>();
          while (set.size < n) set.add(rng.int(1, counts.contacts));
          list = [...set].sort((a, b) => a - b);
          insChat.run(id, `g${seed}-${id}@g.chat`, rng.pick(SUBJECTS), 1, created * 1000);
        } else {
          list = [((id - 1) % counts.contacts) + 1];
          insChat.run(id, `c${list[0]}-${id}@s.chat`, null, 0, created * 1000);
        }
        for (const m of list) insMember.run(id, m);
        members.push(list);
      }
    })();

    // Media: photo k belongs to a message in the k-th slice of the history, so photos are
    // spread over the years like in a real chat.
    const mediaAt = new Map<number, 'jpg' | 'opus'>();
    for (let k = 0; k < counts.photos; k++) {
      mediaAt.set(Math.floor(((k + rng.next()) * counts.messages) / counts.photos), 'jpg');
    }
    for (let k = 0; k < counts.voiceNotes; k++) {
      let i = Math.floor(((k + rng.next()) * counts.messages) / counts.voiceNotes);
      while (mediaAt.has(i)) i = (i + 1) % counts.messages;
      mediaAt.set(i, 'opus');
    }

    const insMsg = db.prepare(
      'INSERT INTO messages(id, chat_id, sender, ts, status, body, media_ref, quoted_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const updChat = db.prepare('UPDATE chats SET last_message_id = ?, last_ts = ? WHERE id = ?');
    const activity = chatActivity(rng, counts.chats);
    const samplerAt = (f: number): ((u: number) => number) =>
      weightedSampler(activity.map((a) => (a.born <= f && f < a.dies ? a.weight : 0)));
    // The set of active chats drifts: rebuild the sampler every 1% of the history.
    const resample = Math.max(1, Math.floor(counts.messages / 100));
    let sample = samplerAt(0);
    const lastInChat = new Map<number, { id: number; ts: number }>();
    const step = (HISTORY_END - HISTORY_START) / counts.messages;
    let chat = sample(rng.next());
    let photoNo = 0;
    let voiceNo = 0;
    const BATCH = 100_000;
    for (let start = 0; start < counts.messages; start += BATCH) {
      db.transaction(() => {
        const end = Math.min(counts.messages, start + BATCH);
        for (let i = start; i < end; i++) {
          // Conversations come in bursts: usually the next message is in the same chat.
          if (i % resample === 0) sample = samplerAt(i / counts.messages);
          if (rng.next() > 0.8 || i % resample === 0) chat = sample(rng.next());
          const chatId = chat + 1;
          const people = members[chat] as number[];
          const fromMe = rng.next() < 0.45;
          const sender = fromMe ? 0 : (people[Math.floor(rng.next() * people.length)] as number);
          const tsSec = Math.floor(HISTORY_START + (i + rng.next() * 0.99) * step);
          const ts = tsSec * 1000 + rng.int(0, 999);
          const kind = mediaAt.get(i);
          let body: string | null = messageBody(rng);
          let ref: string | null = null;
          if (kind === 'jpg') {
            ref = `${IMAGES_DIR}/IMG-${ymd(tsSec)}-WA${String(photoNo++).padStart(5, '0')}.jpg`;
            if (rng.next() < 0.7) body = null;
          } else if (kind === 'opus') {
            ref = `${VOICE_DIR}/PTT-${ymd(tsSec)}-WA${String(voiceNo++).padStart(5, '0')}.opus`;
            body = null;
          }
          if (ref !== null) media.push({ path: ref, size: 0, mtime: tsSec });
          const quoted = i > 10 && rng.next() < 0.03 ? rng.int(1, i) : null;
          const id = i + 1;
          insMsg.run(id, chatId, sender, ts, fromMe ? rng.int(4, 5) : 0, body, ref, quoted);
          lastInChat.set(chatId, { id, ts });
        }
      })();
    }
    db.transaction(() => {
      for (const [chatId, last] of lastInChat) updChat.run(last.id, last.ts, chatId);
    })();
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
  utimesSync(path, HISTORY_END, HISTORY_END);
  return media;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
      force: { type: 'boolean', default: false },
    },
  });
  if (values.out === undefined) {
    console.error('usage: gen-chat --out DIR [--scale 1.0] [--seed N] [--force]');
    process.exitCode = 2;
    return;
  }
  const scale = numberOption('scale', values.scale, 1, 0);
  const seed = numberOption('seed', values.seed, 1, 0);
  if (values.force) await rm(values.out, { recursive: true, force: true });
  const s = await generateChat(values.out, { scale, seed });
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  console.log(
    `${values.out}: ${s.messages} messages in ${s.chats} chats, ${s.photos} photos, ` +
      `${s.voiceNotes} voice notes; db ${mb(s.dbBytes)} MB, media ${mb(s.mediaBytes)} MB, ` +
      `total ${mb(s.totalBytes)} MB in ${s.files} files; ${s.seconds.toFixed(1)} s`,
  );
}

if (isMain(import.meta.url)) runMain(main);
