/**
 * The CLI runner: picks the command, parses its flags, runs it, prints the result or the
 * error, and returns the exit code. Everything process-level (streams, env, signals, exit)
 * is injected by `main.ts`, so this module never touches globals.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackvaultError, UsageError, type ErrorCode } from '../errors.js';
import { booleanOption, parseCommandArgs } from './args.js';
import { COMMON_OPTIONS, type CommandSpec } from './command.js';
import { COMMANDS } from './commands/index.js';
import { CliContext, type CliIo } from './context.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { commandHelp, groupHelp, mainHelp } from './help.js';
import { PromptInterrupted } from './prompt.js';

/** The backvault version, from the package.json nearest above this file. */
export function cliVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'backvault' && pkg.version) return pkg.version;
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
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

/** Printed on Ctrl-C. The engine commits atomically, so stopping at any instant is safe. */
export const INTERRUPTED_MESSAGE = 'stopped by Ctrl-C before completion';
export const INTERRUPTED_HINT =
  'Nothing partial was committed: the last complete snapshot and the restore target are as they were. Run the command again.';

/**
 * Write the interruption note (one line on stderr, plus the JSON error with `--json`).
 * Called by the SIGINT handler and by a prompt that sees Ctrl-C.
 */
export function reportInterrupted(io: CliIo, json: boolean): number {
  // Start of line + erase, in case a progress bar is on screen.
  const prefix = io.stderr.isTTY ? '\r\x1b[2K' : '';
  io.stderr.write(`${prefix}${errorLine('INTERRUPTED', INTERRUPTED_MESSAGE, INTERRUPTED_HINT)}\n`);
  if (json) {
    io.stdout.write(
      `${JSON.stringify(jsonError('INTERRUPTED', INTERRUPTED_MESSAGE, INTERRUPTED_HINT))}\n`,
    );
  }
  return ExitCode.INTERRUPTED;
}

/** Report any thrown value; returns the exit code. Secrets are redacted from every message. */
function reportError(e: unknown, io: CliIo, json: boolean, ctx?: CliContext): number {
  ctx?.clearProgress();
  if (e instanceof PromptInterrupted) return reportInterrupted(io, json);
  const redact = (s: string): string => (ctx ? ctx.redact(s) : s);
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
  if (io.env.BACKVAULT_DEBUG === '1' && e instanceof Error && e.stack) {
    io.stderr.write(`${redact(e.stack)}\n`);
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
    throw new UsageError(
      word.startsWith('-')
        ? `expected a command before ${ECHOABLE.test(word.replace(/^-+/, '')) ? word : 'options'}`
        : `unknown command${ECHOABLE.test(word) ? ` "${word}"` : ''}`,
    );
  }
  const group = argv.slice(0, depth).join(' ');
  return { kind: 'group', group, members: candidates, rest: argv.slice(depth) };
}

/**
 * Run the CLI with `argv` (without `node` and the script path).
 * @returns the process exit code (see `exit-codes.ts`).
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  // Known before parsing, so even a usage error is reported as JSON when asked.
  const json = argv.includes('--json');
  const out = (text: string): number => {
    io.stdout.write(`${text}\n`);
    return ExitCode.OK;
  };
  let ctx: CliContext | undefined;
  try {
    const first = argv[0];
    if (first === undefined) throw new UsageError('no command given');
    if (first === '--help' || first === '-h') return out(mainHelp(COMMANDS, cliVersion()));
    if (first === '--version' || first === '-V') {
      return json
        ? out(JSON.stringify({ version: cliVersion() }))
        : out(`backvault ${cliVersion()}`);
    }
    if (first === 'help') {
      const words = argv.slice(1).filter((w) => !w.startsWith('-'));
      if (words.length === 0) return out(mainHelp(COMMANDS, cliVersion()));
      const r = resolveCommand(words);
      return out(r.kind === 'command' ? commandHelp(r.spec) : groupHelp(r.group, r.members));
    }
    const r = resolveCommand(argv);
    if (r.kind === 'group') {
      if (r.rest.includes('--help') || r.rest.includes('-h'))
        return out(groupHelp(r.group, r.members));
      const sub = r.rest[0];
      throw new UsageError(
        sub === undefined || sub.startsWith('-')
          ? `missing subcommand: ${r.members.map((m) => m.path.join(' ')).join(', ')}`
          : `unknown subcommand${ECHOABLE.test(sub) ? ` "${r.group} ${sub}"` : ''}; expected ${r.members.map((m) => m.path.join(' ')).join(', ')}`,
        `Run \`backvault help ${r.group}\`.`,
      );
    }
    const { spec } = r;
    // --help wins over any other mistake on the line.
    if (r.rest.includes('--help') || r.rest.includes('-h')) return out(commandHelp(spec));
    const parsed = parseCommandArgs(
      r.rest,
      { ...spec.options, ...COMMON_OPTIONS },
      spec.positionals,
    );
    ctx = new CliContext(io, booleanOption(parsed.values, 'json'));
    const result = await spec.run(parsed, ctx);
    ctx.clearProgress();
    if (result.error) {
      if (!json) io.stdout.write(result.human.map((l) => `${l}\n`).join(''));
      const e = result.error;
      io.stderr.write(`${errorLine(e.code, ctx.redact(e.message), ctx.redact(e.hint))}\n`);
      if (json) {
        const error = { code: e.code, message: ctx.redact(e.message), hint: ctx.redact(e.hint) };
        io.stdout.write(`${JSON.stringify({ ...result.json, error })}\n`);
      }
      return exitCodeFor(e.code);
    }
    if (json) return out(JSON.stringify(result.json));
    io.stdout.write(result.human.map((l) => `${l}\n`).join(''));
    return ExitCode.OK;
  } catch (e) {
    return reportError(e, io, json, ctx);
  }
}
