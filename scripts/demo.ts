/**
 * `make demo`: the backvault story told through the real CLI, on the embedded default (a local
 * directory plays the cloud). Each step prints the command a user would type and its output.
 *
 * The story is a list of steps (see STEPS at the bottom) sharing one DemoContext, so the
 * vault chapter (enable with a password, wrong guesses counting down, …) slots in as more
 * steps without touching the others.
 *
 * Run: node dist/scripts/demo.js   (work directory: .tmp/demo, or BACKVAULT_DEMO_DIR)
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { DB_PATH, generateChat } from '../bench/gen-chat.js';
import { mutateChat } from '../bench/mutate.js';
import { diffTrees, hashTree } from '../bench/tree-hash.js';
import { vaultSteps } from './demo-vault.js';
import { formatBytes, plural } from '#cli/cli/format.js';

/** The compiled CLI, located from this file (dist/scripts → dist/src/cli). */
const MAIN_JS = fileURLToPath(new URL('../../packages/cli/dist/cli/main.js', import.meta.url));
const SCALE = 0.02;
const SEED = 7;

const tty = Boolean(process.stdout.isTTY) && process.env.NO_COLOR === undefined;
const bold = (s: string): string => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string): string => (tty ? `\x1b[2m${s}\x1b[0m` : s);
const green = (s: string): string => (tty ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string): string => (tty ? `\x1b[31m${s}\x1b[0m` : s);

const mib = formatBytes;

/** Result of one CLI run. */
interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** What the steps share. */
export interface DemoContext {
  /** Work directory; every path shown is relative to it. */
  root: string;
  /** The "cloud": a local directory used as the repository. */
  cloud: string;
  /** Environment for CLI runs (BACKVAULT_KEY is set once a key exists). */
  env: Record<string, string | undefined>;
  /** A message text from the chat, to look for in the cloud. */
  probeText?: string;
  /** Facts gathered along the way, for the closing summary. */
  facts: string[];
}

let lastBlank = true;

/** Print lines of narrative; never two blank lines in a row. */
function say(...lines: string[]): void {
  for (const l of lines) {
    if (l === '' && lastBlank) continue;
    console.log(l);
    lastBlank = l === '';
  }
}

/** Run `backvault ARGS` in the demo directory, echoing the command and its output. */
async function backvault(
  ctx: DemoContext,
  args: string[],
  opts: { expectFail?: boolean; shown?: string; quiet?: boolean } = {},
): Promise<CliRun> {
  say('', `  ${dim('$')} ${bold(opts.shown ?? `backvault ${args.join(' ')}`)}`);
  const child = spawn(process.execPath, [MAIN_JS, ...args], {
    cwd: ctx.root,
    env: ctx.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('close', res);
  });
  if (!opts.quiet)
    say(
      ...stdout
        .split('\n')
        .filter((x) => x !== '')
        .map((l) => `    ${l}`),
    );
  say(
    ...stderr
      .split('\n')
      .filter((x) => x !== '')
      .map((l) => `    ${red(l)}`),
  );
  if (opts.expectFail) say(`    ${dim(`(exit code ${code})`)}`);
  if ((code === 0) === Boolean(opts.expectFail)) {
    throw new Error(
      `demo: \`backvault ${args.join(' ')}\` exited ${code}${opts.expectFail ? ', expected a failure' : ''}`,
    );
  }
  return { code, stdout, stderr };
}

/** Every file below `dir` with its size, sorted by name. */
async function listFiles(dir: string): Promise<{ name: string; size: number }[]> {
  const out: { name: string; size: number }[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const full = join(e.parentPath, e.name);
    out.push({ name: relative(dir, full).split(sep).join('/'), size: (await stat(full)).size });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** How many files below `dir` contain `needle`. */
async function filesContaining(dir: string, needle: Buffer): Promise<number> {
  let hits = 0;
  for (const f of await listFiles(dir)) {
    if ((await readFile(join(dir, f.name))).includes(needle)) hits++;
  }
  return hits;
}

/** One chapter of the story. */
export interface DemoStep {
  title: string;
  run(ctx: DemoContext): Promise<void>;
}

const makeChat: DemoStep = {
  title: 'A chat history on the old phone',
  async run(ctx) {
    const chat = join(ctx.root, 'old-phone', 'chat');
    const s = await generateChat(chat, { scale: SCALE, seed: SEED });
    const db = new Database(join(chat, DB_PATH), { readonly: true });
    try {
      const row = db
        .prepare(
          "SELECT body FROM messages WHERE length(body) BETWEEN 40 AND 80 AND body NOT GLOB '*[^ -~]*' ORDER BY id LIMIT 1",
        )
        .get() as { body: string } | undefined;
      ctx.probeText = row?.body;
    } finally {
      db.close();
    }
    say(
      `  old-phone/chat/ holds ${s.messages.toLocaleString('en')} messages in ${s.chats} chats (SQLite, ${mib(s.dbBytes)}),`,
      `  ${s.photos} photos and ${s.voiceNotes} voice notes (${mib(s.mediaBytes)}): ${s.files} files, ${mib(s.totalBytes)}.`,
    );
    if (ctx.probeText) say(`  One of the messages: "${ctx.probeText}"`);
  },
};

const generateKey: DemoStep = {
  title: 'The 64-digit backup key',
  async run(ctx) {
    say(
      '  The phone makes a random 256-bit key and shows it once, as 64 digits. Whoever holds',
      '  it can restore; nobody else can — not the cloud, not us.',
    );
    const r = await backvault(ctx, ['key', 'generate']);
    const key = r.stdout.trim();
    const keyFile = join(ctx.root, 'backup-key.txt');
    await writeFile(keyFile, `${key}\n`, { mode: 0o600 });
    await chmod(keyFile, 0o600);
    ctx.env.BACKVAULT_KEY = key;
    say(
      '',
      '  We keep it in backup-key.txt (mode 0600) and hand it to the CLI through the environment;',
      '  there is no --key flag, because a key typed as an argument lands in shell history and `ps`:',
      '',
      `  ${dim('$')} ${bold('export BACKVAULT_KEY="$(cat backup-key.txt)"')}`,
    );
  },
};

const firstBackup: DemoStep = {
  title: 'Back up to the cloud',
  async run(ctx) {
    ctx.env.BACKVAULT_STATE = join(ctx.root, 'old-phone', 'state.json');
    await backvault(ctx, ['backup', 'old-phone/chat', '--init', '--repo', 'cloud']);
    say(
      '',
      '  Everything was chunked, compressed where it pays, encrypted (AES-256-GCM) on the phone',
      '  and only then written to cloud/.',
    );
  },
};

const inspectCloud: DemoStep = {
  title: 'What the cloud can see',
  async run(ctx) {
    const files = await listFiles(ctx.cloud);
    const groups = new Map<string, { count: number; bytes: number; sample: string }>();
    for (const f of files) {
      const top = f.name.includes('/') ? `${f.name.split('/')[0]}/` : f.name;
      const g = groups.get(top) ?? { count: 0, bytes: 0, sample: f.name };
      g.count++;
      g.bytes += f.size;
      groups.set(top, g);
    }
    say(`  cloud/ holds ${files.length} objects:`);
    for (const [top, g] of groups) {
      say(
        `    ${top.padEnd(12)} ${plural(g.count, 'object').padStart(11)} ${mib(g.bytes).padStart(10)}   e.g. ${g.sample}`,
      );
    }
    say(
      '',
      '  Chunks are packed into a few large objects named by the SHA-256 of their ciphertext;',
      '  inside, chunks are named by keyed MACs. No name reveals a file or a message.',
      '',
    );
    const chat = join(ctx.root, 'old-phone', 'chat');
    const probes: [string, Buffer][] = [
      ['the SQLite file header "SQLite format 3"', Buffer.from('SQLite format 3\0')],
    ];
    if (ctx.probeText) probes.push([`the message "${ctx.probeText}"`, Buffer.from(ctx.probeText)]);
    for (const [label, needle] of probes) {
      const inChat = await filesContaining(chat, needle);
      const inCloud = await filesContaining(ctx.cloud, needle);
      const verdict = inCloud === 0 ? green('0 objects') : red(`${inCloud} objects`);
      say(
        `  searching for ${label}:`,
        `    on the phone: found in ${inChat} file(s); in the cloud: ${verdict}`,
      );
      if (inCloud !== 0) throw new Error(`demo: plaintext found in the cloud: ${label}`);
    }
    ctx.facts.push('the cloud held no plaintext: no SQLite header, no message text');
  },
};

const restoreOnNewPhone: DemoStep = {
  title: 'The phone is lost: restore on a new one',
  async run(ctx) {
    say(
      '  The new phone has nothing but the cloud and the key the user wrote down (typed with',
      '  dashes this time: spaces, dashes and case do not matter).',
    );
    const key = ctx.env.BACKVAULT_KEY ?? '';
    await writeFile(join(ctx.root, 'typed-key.txt'), `${key.toUpperCase().replace(/ /g, '-')}\n`, {
      mode: 0o600,
    });
    // A new device: no key in the environment, no state file yet.
    const saved = { key: ctx.env.BACKVAULT_KEY, state: ctx.env.BACKVAULT_STATE };
    delete ctx.env.BACKVAULT_KEY;
    ctx.env.BACKVAULT_STATE = join(ctx.root, 'new-phone', 'state.json');
    await backvault(ctx, [
      'restore',
      'new-phone/chat',
      '--repo',
      'cloud',
      '--key-file',
      'typed-key.txt',
    ]);
    ctx.env.BACKVAULT_KEY = saved.key;
    ctx.env.BACKVAULT_STATE = saved.state;

    const a = await hashTree(join(ctx.root, 'old-phone', 'chat'));
    const b = await hashTree(join(ctx.root, 'new-phone', 'chat'));
    const d = diffTrees(a, b);
    if (d.content.length > 0 || d.metadata.length > 0) {
      throw new Error(
        `demo: restored tree differs: ${[...d.content, ...d.metadata].slice(0, 5).join(', ')}`,
      );
    }
    const bytes = a.reduce((n, f) => n + f.size, 0);
    say(
      '',
      `  Compared by SHA-256: all ${a.length} files (${mib(bytes)}) are ${green('identical byte for byte')},`,
      '  with their modes and modification times.',
    );
    if (ctx.probeText) {
      const db = new Database(join(ctx.root, 'new-phone', 'chat', DB_PATH), { readonly: true });
      try {
        const found = db
          .prepare('SELECT count(*) AS n FROM messages WHERE body = ?')
          .get(ctx.probeText) as { n: number };
        say(
          `  The message "${ctx.probeText}" is back (${found.n} match in the restored database).`,
        );
      } finally {
        db.close();
      }
    }
    ctx.facts.push(`restore on a new device was byte-identical (${a.length} files)`);
  },
};

const wrongKey: DemoStep = {
  title: 'A wrong key is refused at once',
  async run(ctx) {
    const other = (
      await backvault(ctx, ['key', 'generate'], {
        quiet: true,
        shown: 'backvault key generate > wrong-key.txt',
      })
    ).stdout.trim();
    await writeFile(join(ctx.root, 'wrong-key.txt'), `${other}\n`, { mode: 0o600 });
    const r = await backvault(
      ctx,
      ['restore', 'stranger/chat', '--repo', 'cloud', '--key-file', 'wrong-key.txt'],
      {
        expectFail: true,
      },
    );
    if (!r.stderr.startsWith('WRONG_KEY:') || r.code !== 3) {
      throw new Error('demo: expected WRONG_KEY with exit code 3');
    }
    if (await stat(join(ctx.root, 'stranger')).catch(() => undefined)) {
      throw new Error('demo: a wrong key left files behind');
    }
    say(
      '',
      '  The repository carries a key check value, so a wrong key is told apart from damaged data',
      '  before any backup data is read — and nothing was written to stranger/.',
    );
    ctx.facts.push('a wrong key was refused with WRONG_KEY (exit 3)');
  },
};

const incremental: DemoStep = {
  title: 'A few days later: an incremental backup',
  async run(ctx) {
    const m = await mutateChat(join(ctx.root, 'old-phone', 'chat'), {
      scale: SCALE,
      seed: SEED + 1,
    });
    const db = (await stat(join(ctx.root, 'old-phone', 'chat', DB_PATH))).size;
    say(
      `  ${m.messages} new messages in ${m.chatsTouched} chats and ${plural(m.photos, 'new photo')} (${mib(m.mediaBytes)});`,
      `  the message database (${mib(db)}) changed in pages all over the file.`,
      '  This time with --json, as a script would:',
    );
    const r = await backvault(ctx, [
      'backup',
      'old-phone/chat',
      '--init',
      '--repo',
      'cloud',
      '--json',
    ]);
    const b = JSON.parse(r.stdout) as {
      bytesRead: number;
      bytesStoredNew: number;
      bytesNew: number;
      seq: number;
    };
    const pct = ((100 * b.bytesStoredNew) / Math.max(1, b.bytesRead)).toFixed(1);
    say(
      '',
      `  Snapshot ${b.seq}: read ${mib(b.bytesRead)}, uploaded ${green(mib(b.bytesStoredNew))} (${pct}% of the chat):`,
      '  the new photos and the changed database pages, nothing else.',
    );
    ctx.facts.push(
      `the second backup uploaded ${mib(b.bytesStoredNew)} of ${mib(b.bytesRead)} (${pct}%)`,
    );
    await backvault(ctx, ['snapshots', '--repo', 'cloud']);
    await backvault(ctx, ['check', '--repo', 'cloud']);
  },
};

/** The story, in order. The vault chapter adds its steps here. */
export const STEPS: readonly DemoStep[] = [
  makeChat,
  generateKey,
  firstBackup,
  inspectCloud,
  restoreOnNewPhone,
  wrongKey,
  incremental,
  ...vaultSteps({ backvault, say, filesContaining }),
];

async function main(): Promise<void> {
  const started = performance.now();
  const root = resolve(process.env.BACKVAULT_DEMO_DIR ?? join('.tmp', 'demo'));
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('BACKVAULT_')) delete env[k];
  // The devices' default state and data live in the demo's directory, never in the user's
  // home: a second run creates a new repository at the same place, which the state of the
  // first run would rightly report as a replaced repository (ROLLBACK).
  env.XDG_STATE_HOME = join(root, 'home', 'state');
  env.XDG_DATA_HOME = join(root, 'home', 'data');
  const ctx: DemoContext = { root, cloud: join(root, 'cloud'), env, facts: [] };

  say(
    bold('backvault demo: end-to-end encrypted chat backups with a 64-digit key'),
    dim(`(working in ${relative(process.cwd(), root) || root})`),
  );
  let n = 0;
  for (const step of STEPS) {
    n++;
    say('', bold(`━━ ${n}. ${step.title} ${'━'.repeat(Math.max(3, 70 - step.title.length))}`), '');
    await step.run(ctx);
  }
  say('', bold('━━ Summary ' + '━'.repeat(72)), '');
  for (const f of ctx.facts) say(`  ✓ ${f}`);
  say(
    '',
    `  Done in ${((performance.now() - started) / 1000).toFixed(1)} s. Everything is left in ${relative(process.cwd(), root) || root}/ to look at.`,
  );
}

main().catch((e: unknown) => {
  console.error(`demo failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
