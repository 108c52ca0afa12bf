/**
 * The SDK's errors, as an app developer meets them:
 * - every error class that code reachable from an entry point (`backvault/client`,
 *   `backvault/backup`, `backvault/storage`, `backvault`) throws or returns is exported by
 *   that entry point, with the codes (`ERROR_CODES`) and type guards (`hasCode`,
 *   `isBackvaultError`), found by reading the source (TypeScript's parser), not by a list;
 * - no message or hint in the SDK's source speaks the CLI (`--flags`, `backvault COMMAND`),
 *   every error class constructed with its default hint neither;
 * - the CLI still says its own words: each SDK hint has a CLI sentence, swapped in.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { CLI_HINTS, cliWords } from '#cli/cli/hints.js';
import * as errors from '#sdk/errors.js';

/** The repository root (this file runs as dist/test/client/sdk-errors.test.js). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const ENTRIES = {
  'backvault/client': 'packages/sdk/src/client/index.ts',
  'backvault/backup': 'packages/sdk/src/backup/index.ts',
  'backvault/engine': 'packages/sdk/src/backup/engine.ts',
  'backvault/storage': 'packages/sdk/src/storage/index.ts',
  'backvault/node': 'packages/sdk/src/node-entry.ts',
  backvault: 'packages/sdk/src/index.ts',
} as const;

/** Built-ins (not ours to export). */
const BUILTIN = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'DOMException']);

/**
 * Thrown inside the engine and caught there, never seen by a caller (checked by the
 * engine's tests), with why.
 */
const INTERNAL: Readonly<Record<string, string>> = {
  SourceReadError:
    "the worker pool's report of an unreadable source file: the archiver records the file as skipped",
  PoolClosedError:
    'a worker thread leaving its job because the pool is closing: it becomes the worker’s answer, and the pool has already settled every caller’s job with its own error',
  RepositoryChangedError:
    'the restorer telling the restore command that a prune replaced what it read: the command starts again, and on its last pass the restorer is never told to throw it (test/backup/beside-prune.test.ts)',
};

async function parse(file: string): Promise<ts.SourceFile> {
  return ts.createSourceFile(file, await readFile(file, 'utf8'), ts.ScriptTarget.Latest, true);
}

/** The source files an entry point loads (static and dynamic imports, not type-only). */
async function reachable(entry: string): Promise<string[]> {
  const seen = new Set<string>();
  const queue = [join(ROOT, entry)];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const sf = await parse(file);
    const specs: string[] = [];
    const visit = (n: ts.Node): void => {
      if (ts.isImportDeclaration(n) && !n.importClause?.isTypeOnly) {
        specs.push((n.moduleSpecifier as ts.StringLiteral).text);
      } else if (ts.isExportDeclaration(n) && !n.isTypeOnly && n.moduleSpecifier) {
        specs.push((n.moduleSpecifier as ts.StringLiteral).text);
      } else if (
        ts.isCallExpression(n) &&
        n.expression.kind === ts.SyntaxKind.ImportKeyword &&
        n.arguments[0] &&
        ts.isStringLiteral(n.arguments[0])
      ) {
        specs.push(n.arguments[0].text);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
    for (const s of specs) {
      if (!s.startsWith('.')) continue;
      queue.push(resolve(dirname(file), s.replace(/\.js$/, '.ts')));
    }
  }
  return [...seen].sort();
}

/** Names of the classes `new X(...)`-ed in `file` whose name ends in Error. */
async function errorClassesMade(file: string): Promise<Set<string>> {
  const out = new Set<string>();
  const visit = (n: ts.Node): void => {
    if (ts.isNewExpression(n) && ts.isIdentifier(n.expression)) {
      const name = n.expression.text;
      if (/Error$/.test(name) && !BUILTIN.has(name)) out.add(name);
    }
    ts.forEachChild(n, visit);
  };
  visit(await parse(file));
  return out;
}

/** Words of the CLI: a `--flag`, or `backvault COMMAND`. */
const CLI_WORDS = [
  /(^|[\s(`'"])--[a-z][a-z-]*/,
  /`backvault\b/,
  /\b(run|in) the command\b/,
  /\bbackvault (help|init|backup|restore|check|prune|forget|snapshots|ls|diff|stats|key|password|enable|disable|pin|accept-rollback|status|verify|ui|serve)\b/,
];

/** String literals in the SDK that are not messages to a user, with why. */
const NOT_MESSAGES: Readonly<Record<string, string>> = {
  '--expose-gc': 'a V8 flag the worker threads set on themselves (workers/gc.ts)',
  '--input-type': "a node flag the worker pool keeps out of the workers' execArgv",
  '--eval': "a node flag the worker pool keeps out of the workers' execArgv",
  '--print': "a node flag the worker pool keeps out of the workers' execArgv",
  '--input-type=': "a node flag the worker pool keeps out of the workers' execArgv",
  '--eval=': "a node flag the worker pool keeps out of the workers' execArgv",
  '--print=': "a node flag the worker pool keeps out of the workers' execArgv",
  'INSECURE dev token for an account (only with --dev-auth on loopback)':
    "the vault route's summary in the wire protocol: it documents the vault server's flag",
};

async function sdkFiles(): Promise<string[]> {
  const out: string[] = [join(ROOT, 'packages/sdk/src/errors.ts')];
  for (const d of ['backup', 'storage', 'client', 'format', 'wire']) {
    for (const e of await readdir(join(ROOT, 'packages/sdk/src', d), { recursive: true })) {
      if (e.endsWith('.ts')) out.push(join(ROOT, 'packages/sdk/src', d, e));
    }
  }
  return out.sort();
}

/** Every string literal and template text in `file`, with its line. */
async function strings(file: string): Promise<{ text: string; line: number }[]> {
  const sf = await parse(file);
  const out: { text: string; line: number }[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) return;
    if (
      ts.isStringLiteral(n) ||
      ts.isNoSubstitutionTemplateLiteral(n) ||
      ts.isTemplateHead(n) ||
      ts.isTemplateMiddle(n) ||
      ts.isTemplateTail(n)
    ) {
      out.push({ text: n.text, line: sf.getLineAndCharacterOfPosition(n.getStart()).line + 1 });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

describe('SDK errors: exported where they are thrown, in the SDK’s words', () => {
  for (const [name, entry] of Object.entries(ENTRIES)) {
    it(`${name} exports every error class its code throws, the codes and the type guards`, async () => {
      const files = await reachable(entry);
      assert.ok(files.length > 3, `${name} reaches its modules`);
      const made = new Map<string, string>();
      for (const f of files) {
        for (const c of await errorClassesMade(f)) made.set(c, relative(ROOT, f));
      }
      assert.ok(made.has('UsageError'), `${name} throws UsageError somewhere`);
      const mod = (await import(
        pathToFileURL(
          join(
            ROOT,
            entry.replace(/^packages\/sdk\/src\//, 'packages/sdk/dist/').replace(/\.ts$/, '.js'),
          ),
        ).href
      )) as Record<string, unknown>;
      for (const [cls, where] of made) {
        if (INTERNAL[cls]) continue;
        const exported = mod[cls] as { prototype?: unknown } | undefined;
        assert.equal(typeof exported, 'function', `${name} exports ${cls} (thrown in ${where})`);
        assert.ok(
          exported === errors.BackvaultError ||
            exported?.prototype instanceof errors.BackvaultError,
          `${cls} is a BackvaultError (code and hint)`,
        );
      }
      for (const api of ['BackvaultError', 'ERROR_CODES', 'hasCode', 'isBackvaultError', 'HINTS'])
        assert.ok(api in mod, `${name} exports ${api}`);
      assert.deepEqual(mod.ERROR_CODES, errors.ERROR_CODES);
    });
  }

  it('no message or hint in the SDK source names a CLI flag or command', async () => {
    // The detector sees the CLI's words: every CLI sentence trips it.
    for (const cli of Object.values(CLI_HINTS))
      assert.ok(
        CLI_WORDS.some((re) => re.test(cli)),
        `the scan would see CLI words in: ${cli}`,
      );
    const found: string[] = [];
    for (const f of await sdkFiles()) {
      for (const { text, line } of await strings(f)) {
        if (NOT_MESSAGES[text]) continue;
        // The CORS errors are addressed to the vault's operator: only the vault's own
        // `--cors-origin` fixes them (VaultCorsBlockedError, the no-answer diagnosis).
        if (text.includes('--cors-origin')) continue;
        if (CLI_WORDS.some((re) => re.test(text)))
          found.push(`${relative(ROOT, f)}:${line}: ${text.slice(0, 100)}`);
      }
    }
    assert.deepEqual(found, []);
  });

  it('no error class, built with its default hint, speaks the CLI', () => {
    const made: errors.BackvaultError[] = [];
    for (const [name, value] of Object.entries(errors)) {
      if (typeof value !== 'function' || !(value.prototype instanceof errors.BackvaultError))
        continue;
      // Every constructor takes (message-ish, …): strings and numbers fill the required ones.
      const C = value as new (...args: unknown[]) => errors.BackvaultError;
      const e =
        name === 'WrongPasswordError' || name === 'RateLimitedError' ? new C(3) : new C('x', 'y');
      made.push(e);
    }
    made.push(new errors.WrongPasswordError(0));
    assert.ok(made.length >= 25, `constructed ${made.length} error classes`);
    for (const e of made) {
      // Addressed to the vault's operator, not the app: only the vault's own flag fixes it.
      if (e instanceof errors.VaultCorsBlockedError) continue;
      for (const re of CLI_WORDS) {
        assert.doesNotMatch(`${e.message} ${e.hint}`, re, `${e.name}: ${e.hint}`);
      }
    }
    for (const hint of Object.values(errors.HINTS))
      for (const re of CLI_WORDS) assert.doesNotMatch(hint, re);
  });

  it('the CLI says each SDK hint in its own words (flags and commands)', () => {
    for (const key of Object.keys(errors.HINTS) as (keyof typeof errors.HINTS)[]) {
      const cli = CLI_HINTS[key];
      assert.notEqual(cli, errors.HINTS[key], `${key} has CLI words`);
      assert.equal(cliWords(errors.HINTS[key]), cli);
    }
    // A composed hint (the restore's CORRUPT with the `partial` advice) is swapped piece by piece.
    assert.equal(
      cliWords(`${errors.HINTS.corrupt} ${errors.HINTS.partial}`),
      `${CLI_HINTS.corrupt} ${CLI_HINTS.partial}`,
    );
    assert.match(cliWords(new errors.TargetNotEmptyError('/t').hint), /pass --force\.$/);
    assert.match(cliWords(new errors.UsageError('x').hint), /`backvault --help`/);
  });
});

describe('SDK operations called from JavaScript with what TypeScript would refuse', () => {
  it('no options, or no storage: USAGE naming the call, never a TypeError from inside', async () => {
    const engine = await import('#sdk/backup/index.js');
    const calls: [string, () => Promise<unknown>][] = [
      [
        'backup() takes an options object',
        () => (engine.backup as (o?: unknown) => Promise<unknown>)(),
      ],
      [
        'restore() takes an options object',
        () => (engine.restore as (o: unknown) => Promise<unknown>)(null),
      ],
      ['check() needs `storage`', () => (engine.check as (o: unknown) => Promise<unknown>)({})],
      [
        'listSnapshots() takes an options object',
        () => (engine.listSnapshots as (o: unknown) => Promise<unknown>)('/tmp/repo'),
      ],
      [
        'backup() needs `storage`',
        () => (engine.backup as (o: unknown) => Promise<unknown>)({ storage: '/tmp/repo' }),
      ],
    ];
    for (const [message, call] of calls) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(errors.hasCode(e, 'USAGE'), `${message}: ${String(e)}`);
        assert.ok((e as Error).message.startsWith(message), (e as Error).message);
        return true;
      });
    }
  });
});
