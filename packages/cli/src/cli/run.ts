/**
 * The CLI runner: picks the command, parses its flags, runs it, prints the result or the
 * error, and returns the exit code. Everything process-level (streams, env, signals, exit)
 * is injected by `main.ts`, so this module never touches globals.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackvaultError, UsageError, type ErrorCode } from 'backvault/errors';
import { booleanOption, parseCommandArgs } from './args.js';
import { COMMON_OPTIONS, type CommandSpec } from './command.js';
import { COMMANDS } from './commands/index.js';
import { CliContext, type CliIo } from './context.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { printable } from './format.js';
import {
  commandHelp,
  commandHelpJson,
  groupHelp,
  helpHelp,
  mainHelp,
  mainHelpJson,
} from './help.js';
import { cliWords } from './hints.js';
import { localError } from './local-errors.js';
import { Interrupted } from './interrupt.js';
import { PromptInterrupted } from './prompt.js';
import { closest } from './suggest.js';

/** The CLI package's version (@backvault/cli), from the package.json above this file. */
export function cliVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === '@backvault/cli' && pkg.version) return pkg.version;
    } catch {
      // not here; look one level up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

/** A code for the CLI's own conditions that are not errors of the library. */
type CliErrorCode = ErrorCode | 'INTERRUPTED';

/** The JSON error object printed on stdout with `--json`. */
function jsonError(code: CliErrorCode, message: string, hint: string): Record<string, unknown> {
  return { error: { code, message, hint } };
}

/** One stderr line: `CODE: message — hint`, never more than one line. */
export function errorLine(code: CliErrorCode, message: string, hint: string): string {
  const text = hint ? `${code}: ${message} — ${hint}` : `${code}: ${message}`;
  return printable(text.replace(/\s*[\r\n]+\s*/g, ' '));
}

/**
 * Printed on Ctrl-C before the command's operation completed: the engine commits atomically
 * and rejects an abort only before its commit point, so nothing is half-done.
 */
export const INTERRUPTED_MESSAGE = 'stopped by Ctrl-C before completion';
export const INTERRUPTED_HINT =
  'Nothing partial was committed: the last complete snapshot and the restore target are as they were. Run the command again.';

/** What stayed as it was, per interrupted command (the hint of the Ctrl-C line). */
const INTERRUPTED_HINTS: Readonly<Record<string, string>> = {
  backup:
    'Nothing partial was committed: the last complete snapshot is as it was. Run the backup again; it reuses what was already stored.',
  restore: 'Nothing was moved into place: the restore target is as it was. Run the restore again.',
  prune: 'Nothing in use was deleted; run prune again to finish.',
  forget:
    'The oldest snapshots go first, so the history left is shorter but valid; run forget again to finish.',
};

/**
 * A Ctrl-C that exits after the command's operation passed its commit point (a second Ctrl-C
 * during its last steps, or one during a step after it, e.g. a backup's --verify): what was
 * committed stays.
 */
export const COMPLETED_MESSAGE = 'was complete when Ctrl-C stopped it';
const COMPLETED_HINTS: Readonly<Record<string, string>> = {
  backup:
    'The new snapshot is kept; only the steps after it (e.g. retention, --verify) did not finish.',
  restore: 'The restore target holds the snapshot; only the steps after it did not finish.',
};
const COMPLETED_HINT = 'What it did is kept; only the steps after it did not finish.';

/**
 * A second Ctrl-C while an operation whose commit point the CLI cannot see was stopping: the
 * hint says what is true either way (the other commands' usual hints already do).
 */
const UNSURE_HINTS: Readonly<Record<string, string>> = {
  restore:
    'The restore target is as it was, unless the snapshot was already moving into it (--force): the next restore then finishes or undoes that move. Run the restore again.',
};

/**
 * When a Ctrl-C ended the command, against its operation's commit point: `before` it (or
 * no operation), `after` it, or `unsure` (it was stopping, and the CLI cannot tell).
 */
export type InterruptedAt = 'before' | 'after' | 'unsure';

/**
 * The command named by `argv` (e.g. `backup`, `password change`), for the Ctrl-C line;
 * `undefined` when it names none.
 */
export function operationOf(argv: readonly string[]): string | undefined {
  const words = argv.filter((w) => w !== '--json');
  for (const c of COMMANDS) {
    if (c.path.every((p, i) => words[i] === p)) return c.path.join(' ');
  }
  return undefined;
}

/**
 * Write the interruption note (one line on stderr, plus the JSON error with `--json`).
 * Called by the SIGINT handler, for an operation the engine stopped, and by a prompt that
 * sees Ctrl-C.
 * @param operation the command that was stopped, named in the message.
 * @param at where its operation stood (see {@link InterruptedAt}).
 */
export function reportInterrupted(
  io: CliIo,
  json: boolean,
  operation?: string,
  at: InterruptedAt = 'before',
): number {
  // Start of line + erase, in case a progress bar (or the "Stopping…" line) is on screen.
  const prefix = io.stderr.isTTY ? '\r\x1b[2K' : '';
  const message =
    at === 'after'
      ? `${operation ?? 'the command'} ${COMPLETED_MESSAGE}`
      : operation
        ? `${operation} ${INTERRUPTED_MESSAGE}`
        : INTERRUPTED_MESSAGE.replace(/^stopped/, 'Stopped');
  const hint =
    at === 'after'
      ? (operation && COMPLETED_HINTS[operation]) || COMPLETED_HINT
      : (at === 'unsure' && operation && UNSURE_HINTS[operation]) ||
        (operation && INTERRUPTED_HINTS[operation]) ||
        INTERRUPTED_HINT;
  io.stderr.write(`${prefix}${errorLine('INTERRUPTED', message, hint)}\n`);
  if (json) {
    io.stdout.write(`${JSON.stringify(jsonError('INTERRUPTED', message, hint))}\n`);
  }
  return ExitCode.INTERRUPTED;
}

/** Report any thrown value; returns the exit code. Secrets are redacted from every message. */
function reportError(
  thrown: unknown,
  io: CliIo,
  json: boolean,
  ctx?: CliContext,
  spec?: CommandSpec,
): number {
  ctx?.clearProgress();
  // At a prompt, or the engine stopped by the first Ctrl-C before its commit point.
  if (thrown instanceof PromptInterrupted || thrown instanceof Interrupted) {
    const at = thrown instanceof Interrupted && thrown.committed ? 'after' : 'before';
    return reportInterrupted(io, json, spec?.path.join(' '), at);
  }
  // A full or read-only disk, a refused permission, a taken port: this machine's conditions,
  // never "check the network" nor "a bug in backvault".
  let e = localError(thrown) ?? thrown;
  // A mistake on a command's line points to that command's help.
  if (spec && e instanceof UsageError && e.hint === DEFAULT_USAGE_HINT) {
    e = new UsageError(e.message, `Run \`backvault help ${spec.path.join(' ')}\`.`);
  }
  // The SDK's advice (`force: true`, `check()`) in the CLI's words (--force, `backvault check`).
  const redact = (s: string): string => cliWords(ctx ? ctx.redact(s) : s);
  let code: ErrorCode;
  let message: string;
  let hint: string;
  if (e instanceof BackvaultError) {
    code = e.code;
    message = redact(e.message);
    hint = redact(e.hint);
  } else {
    code = 'INTERNAL';
    message = redact(e instanceof Error ? e.message : String(e));
    hint = 'This is a bug in backvault; rerun with BACKVAULT_DEBUG=1 for details and report it.';
  }
  io.stderr.write(`${errorLine(code, message, hint)}\n`);
  if (io.env.BACKVAULT_DEBUG === '1' && thrown instanceof Error && thrown.stack) {
    io.stderr.write(`${redact(thrown.stack)}\n`);
  }
  if (json) io.stdout.write(`${JSON.stringify(jsonError(code, message, hint))}\n`);
  return exitCodeFor(code);
}

type Resolved =
  | { kind: 'command'; spec: CommandSpec; rest: string[] }
  | { kind: 'group'; group: string; members: CommandSpec[]; rest: string[] };

/** Names we are willing to echo in "unknown command": anything else might be a pasted secret. */
const ECHOABLE = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Find the command named by the leading words of `argv`.
 * @throws UsageError for an unknown command.
 */
function resolveCommand(argv: readonly string[]): Resolved {
  let depth = 0;
  let candidates: CommandSpec[] = [...COMMANDS];
  while (depth < argv.length) {
    const word = argv[depth];
    const next = candidates.filter((c) => c.path[depth] === word);
    if (next.length === 0) break;
    candidates = next;
    depth++;
    const exact = candidates.find((c) => c.path.length === depth);
    if (exact) return { kind: 'command', spec: exact, rest: argv.slice(depth) };
  }
  if (depth === 0) {
    const word = argv[0] ?? '';
    if (word.startsWith('-')) {
      throw new UsageError(
        `expected a command before ${ECHOABLE.test(word.replace(/^-+/, '')) ? word : 'options'}`,
      );
    }
    const echo = ECHOABLE.test(word);
    const firsts = [...new Set(COMMANDS.map((c) => c.path[0] ?? '')), 'help'];
    const near = echo ? closest(word, firsts) : undefined;
    throw new UsageError(
      `unknown command${echo ? ` "${word}"` : ''}${near ? `; did you mean \`${near}\`?` : ''}`,
      'Run `backvault --help` for the list of commands.',
    );
  }
  const group = argv.slice(0, depth).join(' ');
  return { kind: 'group', group, members: candidates, rest: argv.slice(depth) };
}

/** The hint a UsageError gets when its thrower named none (see `src/errors.ts`). */
const DEFAULT_USAGE_HINT = new UsageError('').hint;

/** A group (`key`, `vault`, `password`) followed by a missing or unknown subcommand. */
function throwUnknownSub(r: Extract<Resolved, { kind: 'group' }>, sub: string | undefined): never {
  const depth = r.group.split(' ').length;
  const names = r.members.map((m) => m.path.join(' ')).join(', ');
  const near =
    sub !== undefined && ECHOABLE.test(sub)
      ? closest(
          sub,
          r.members.map((m) => m.path[depth] ?? ''),
        )
      : undefined;
  throw new UsageError(
    sub === undefined || sub.startsWith('-')
      ? `missing subcommand: ${names}`
      : near
        ? `unknown subcommand "${r.group} ${sub}"; did you mean \`${r.group} ${near}\`?`
        : `unknown subcommand${ECHOABLE.test(sub) ? ` "${r.group} ${sub}"` : ''}; expected ${names}`,
    `Run \`backvault help ${r.group}\`.`,
  );
}

/**
 * Run the CLI with `argv` (without `node` and the script path).
 * @returns the process exit code (see `exit-codes.ts`).
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  // `backvault --json snapshots …` means `backvault snapshots … --json`.
  let lead = 0;
  while (argv[lead] === '--json') lead++;
  const args = lead > 0 ? [...argv.slice(lead), '--json'] : [...argv];
  // Known before parsing, so even a usage error is reported as JSON when asked.
  const json = args.includes('--json');
  const out = (text: string): number => {
    io.stdout.write(`${text}\n`);
    return ExitCode.OK;
  };
  const outJson = (obj: unknown): number => out(JSON.stringify(obj));
  let ctx: CliContext | undefined;
  let spec: CommandSpec | undefined;
  try {
    const first = args[0];
    if (first === undefined) {
      throw new UsageError(
        'no command given',
        'Run `backvault --help` for the list of commands, or `backvault help COMMAND`.',
      );
    }
    if (first === '--help' || first === '-h') {
      return json
        ? outJson(mainHelpJson(COMMANDS, cliVersion()))
        : out(mainHelp(COMMANDS, cliVersion()));
    }
    if (first === '--version' || first === '-V') {
      return json ? outJson({ version: cliVersion() }) : out(`backvault ${cliVersion()}`);
    }
    if (first === 'help') {
      const words = args.slice(1).filter((w) => !w.startsWith('-'));
      if (words.length === 0) {
        return json
          ? outJson(mainHelpJson(COMMANDS, cliVersion()))
          : out(mainHelp(COMMANDS, cliVersion()));
      }
      if (words[0] === 'help' && words.length === 1) {
        return json ? outJson({ help: helpHelp() }) : out(helpHelp());
      }
      const r = resolveCommand(words);
      if (r.kind === 'command') {
        return json ? outJson(commandHelpJson(r.spec)) : out(commandHelp(r.spec));
      }
      return json
        ? outJson({
            group: r.group,
            commands: r.members.map((m) => ({ command: m.path.join(' '), summary: m.summary })),
          })
        : out(groupHelp(r.group, r.members));
    }
    const r = resolveCommand(args);
    if (r.kind === 'group') {
      if (r.rest.includes('--help') || r.rest.includes('-h'))
        return out(groupHelp(r.group, r.members));
      const sub = r.rest[0];
      throwUnknownSub(r, sub);
    }
    spec = r.spec;
    // --help wins over any other mistake on the line.
    if (r.rest.includes('--help') || r.rest.includes('-h')) {
      return json ? outJson(commandHelpJson(spec)) : out(commandHelp(spec));
    }
    const parsed = parseCommandArgs(
      r.rest,
      { ...spec.options, ...COMMON_OPTIONS },
      spec.positionals,
    );
    ctx = new CliContext(io, booleanOption(parsed.values, 'json'), {
      quiet: booleanOption(parsed.values, 'quiet'),
      progress: booleanOption(parsed.values, 'progress', true),
    });
    const result = await spec.run(parsed, ctx);
    ctx.clearProgress();
    if (result.error) {
      if (!json) io.stdout.write(result.human.map((l) => `${printable(l)}\n`).join(''));
      const e = result.error;
      const words = (s: string): string => cliWords((ctx as CliContext).redact(s));
      io.stderr.write(`${errorLine(e.code, words(e.message), words(e.hint))}\n`);
      if (json) {
        const error = { code: e.code, message: words(e.message), hint: words(e.hint) };
        io.stdout.write(`${JSON.stringify({ ...result.json, error })}\n`);
      }
      return exitCodeFor(e.code);
    }
    if (json) return outJson(result.json);
    if (!ctx.quiet) io.stdout.write(result.human.map((l) => `${printable(l)}\n`).join(''));
    return ExitCode.OK;
  } catch (e) {
    return reportError(e, io, json, ctx, spec);
  }
}
