/**
 * Builds and runs the phone check (test/phone/hermes-main.ts) on Hermes:
 *
 *  1. makes its input in Node: a real SQLite database (better-sqlite3) and media-like random
 *     bytes (the in-memory tree), every vectors/*.json, and a seed for the run's randomness;
 *  2. bundles the device SDK core with esbuild as one script (platform neutral: any `node:`
 *     import fails the build — nothing of Node gets in);
 *  3. lowers it to ES5 with TypeScript (Hermes 0.12 has no class syntax; React Native does the
 *     same with Babel), keeping BigInt;
 *  4. runs it on node_modules/hermes-engine-cli/linux64-bin/hermes and reads its lines.
 *
 * `make test-phone` runs it through run.ts; test/phone/hermes.test.ts in the suite.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { build } from 'esbuild';
import ts from 'typescript';

const here = fileURLToPath(new URL('.', import.meta.url));
/** The repository root (this file runs from dist/test/phone/). */
export const ROOT = resolve(here, '../../..');
const require = createRequire(import.meta.url);

/** The Hermes binary of hermes-engine-cli (Linux x86-64 host build). */
export function hermesBinary(): string {
  const pkg = require.resolve('hermes-engine-cli/package.json');
  return join(pkg, '..', 'linux64-bin', 'hermes');
}

function chatDatabase(path: string): void {
  const db = new Database(path);
  db.pragma('journal_mode = DELETE');
  db.pragma('page_size = 4096');
  db.exec(
    'CREATE TABLE messages (id INTEGER PRIMARY KEY, chat INTEGER, body TEXT, ts INTEGER); CREATE INDEX by_chat ON messages(chat, ts);',
  );
  const ins = db.prepare('INSERT INTO messages (chat, body, ts) VALUES (?, ?, ?)');
  const words = ['hello', 'see you', 'on my way', 'lunch?', 'ok', 'thanks!', 'call me', 'haha'];
  db.transaction(() => {
    for (let i = 0; i < 12_000; i++)
      ins.run(i % 23, `${words[i % 8]} ${words[(i * 5) % 8]} #${i}`, 1_700_000_000 + i);
  })();
  db.close();
}

/** The in-memory tree's files, made in Node: a SQLite database and media. */
async function treeInput(): Promise<
  { path: string; b64: string; mode: number; mtimeNs: string }[]
> {
  const dir = await mkdtemp(join(tmpdir(), 'bv-phone-'));
  try {
    chatDatabase(join(dir, 'msgstore.db'));
    const db = await readFile(join(dir, 'msgstore.db'));
    const file = (path: string, data: Uint8Array, mode: number, mtimeNs: bigint) => ({
      path,
      b64: Buffer.from(data).toString('base64'),
      mode,
      mtimeNs: String(mtimeNs),
    });
    return [
      file('/chat/msgstore.db', db, 0o600, 1_733_500_000_123_456_789n),
      file('/chat/media/photo-0.jpg', randomBytes(1_600_000), 0o644, 1_733_400_000_000_000_000n),
      file('/chat/media/photo-1.jpg', randomBytes(350_000), 0o644, 1_733_400_001_000_000_000n),
      file('/chat/media/voice-0.opus', randomBytes(120_000), 0o640, 1_733_400_002_000_000_000n),
      file(
        '/chat/notes/übersicht.txt',
        new TextEncoder().encode('ünïcødé ✓ '.repeat(3000)),
        0o644,
        1_700_000_000_000_000_000n,
      ),
      file('/chat/empty', new Uint8Array(0), 0o644, 1_700_000_000_000_000_000n),
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Bundle and lower the phone check; returns the script's path. */
export async function buildPhone(outDir: string): Promise<{ script: string; bytes: number }> {
  const vectors: Record<string, unknown> = {};
  for (const f of (await readdir(join(ROOT, 'vectors'))).sort())
    if (f.endsWith('.json'))
      vectors[f.slice(0, -5)] = JSON.parse(await readFile(join(ROOT, 'vectors', f), 'utf8'));
  const input = { vectors, tree: await treeInput(), seed: randomBytes(32).toString('hex') };

  const bundled = await build({
    entryPoints: [join(ROOT, 'dist/test/phone/hermes-main.js')],
    bundle: true,
    write: false,
    format: 'iife',
    // Neutral: no Node built-ins to fall back on, so a `node:` import anywhere in what the
    // phone check reaches fails the build.
    platform: 'neutral',
    mainFields: ['module', 'main'],
    target: 'es2019',
    logLevel: 'silent',
  });
  const code = (bundled.outputFiles[0] as { text: string }).text;
  // Hermes 0.12 has no class syntax (React Native lowers it with Babel): ES5, BigInt kept.
  const lowered = ts.transpileModule(code, {
    compilerOptions: {
      target: ts.ScriptTarget.ES5,
      module: ts.ModuleKind.None,
      downlevelIteration: true,
      removeComments: true,
    },
    reportDiagnostics: false,
  }).outputText;
  await mkdir(outDir, { recursive: true });
  const script = join(outDir, 'phone.js');
  const text = `globalThis.PHONE_INPUT = ${JSON.stringify(input)};\n${lowered}`;
  await writeFile(script, text);
  return { script, bytes: text.length };
}

/** Build, run on Hermes, and return what it printed. */
export async function runPhone(): Promise<{
  lines: string[];
  passed: number;
  failed: number;
  skipped: number;
  ok: boolean;
  stderr: string;
}> {
  const out = await mkdtemp(join(tmpdir(), 'bv-phone-build-'));
  try {
    const { script } = await buildPhone(out);
    const r = await promisify(execFile)(hermesBinary(), ['-w', script], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 10 * 60 * 1000,
    }).catch((e: { stdout?: string; stderr?: string; message: string }) => ({
      stdout: e.stdout ?? '',
      stderr: `${e.stderr ?? ''}\n${e.message}`,
    }));
    const lines = r.stdout.trim().split('\n');
    const m = /^phone: (\d+) passed, (\d+) failed, (\d+) skipped$/.exec(lines.at(-1) ?? '');
    const passed = Number(m?.[1] ?? 0);
    const failed = m ? Number(m[2]) : 1;
    const skipped = Number(m?.[3] ?? 0);
    return { lines, passed, failed, skipped, ok: !!m && failed === 0, stderr: r.stderr };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
