/**
 * The UI server runs the CLI's own commands in-process: the same `CommandSpec.run` that
 * `backvault backup --device DIR` runs, with a context whose progress goes to the page
 * instead of a terminal bar, and whose errors become the same `{code, message, hint}` (and
 * exit code) the CLI prints. Nothing of the engine or the device profile is reimplemented.
 */
import { PassThrough } from 'node:stream';
import type { Progress } from 'backvault/backup';
import { BackvaultError, type ErrorCode } from 'backvault/errors';
import { parseCommandArgs } from '../cli/args.js';
import { COMMON_OPTIONS, type CommandSpec } from '../cli/command.js';
import { CliContext, type CliIo, type CommandResult } from '../cli/context.js';
import { exitCodeFor } from '../cli/exit-codes.js';
import { cliWords } from '../cli/hints.js';
import { localError } from '../cli/local-errors.js';

/** An error as the page shows it: the CLI's code, sentence, hint and exit code. */
export interface UiError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly hint: string;
  /** The exit code `backvault` would have ended with. */
  readonly exitCode: number;
}

/** A CLI context for the UI: never a terminal (so never a prompt), progress to a callback. */
export class UiCommandContext extends CliContext {
  readonly #sink: ((p: Progress) => void) | undefined;

  constructor(io: CliIo, sink?: (p: Progress) => void) {
    super(io, true);
    this.#sink = sink;
  }

  /** The page's progress callback (the CLI's would draw a bar on a terminal). */
  override progressSink(): ((p: Progress) => void) | undefined {
    return this.#sink;
  }
}

/** Streams for an in-process command: no terminal, output discarded (results come as JSON). */
export function uiIo(env: Readonly<Record<string, string | undefined>>, cwd: string): CliIo {
  const sink = { write: () => true };
  return { stdout: sink, stderr: sink, stdin: new PassThrough(), env, cwd };
}

/**
 * Runs `spec` with `argv` (flags as on the command line) in this process.
 * @returns the command's JSON result, or its result error mapped as the CLI maps it.
 * @throws a {@link UiCommandError} carrying the CLI's code, message and hint.
 */
export async function runCommand(
  spec: CommandSpec,
  argv: readonly string[],
  opts: {
    env: Readonly<Record<string, string | undefined>>;
    cwd: string;
    onProgress?: (p: Progress) => void;
    /** Secrets to keep out of every message (e.g. a key passed through the environment). */
    secrets?: readonly string[];
  },
): Promise<Record<string, unknown>> {
  const ctx = new UiCommandContext(uiIo(opts.env, opts.cwd), opts.onProgress);
  ctx.addSecret(...(opts.secrets ?? []));
  let result: CommandResult;
  try {
    const parsed = parseCommandArgs(
      [...argv, '--json'],
      { ...spec.options, ...COMMON_OPTIONS },
      spec.positionals,
    );
    result = await spec.run(parsed, ctx);
  } catch (e) {
    throw new UiCommandError(toUiError(e, ctx));
  }
  if (result.error) throw new UiCommandError(toUiError(result.error, ctx), result.json);
  return result.json;
}

/** A command failed; `error` is what the page shows, `partial` what it still returned. */
export class UiCommandError extends Error {
  readonly error: UiError;
  readonly partial: Record<string, unknown> | undefined;
  constructor(error: UiError, partial?: Record<string, unknown>) {
    super(`${error.code}: ${error.message}`);
    this.name = 'UiCommandError';
    this.error = error;
    this.partial = partial;
  }
}

/**
 * Maps any thrown value as the CLI's runner does (local conditions first, then the error's
 * own code, else INTERNAL), with every registered secret redacted.
 */
export function toUiError(thrown: unknown, ctx?: CliContext): UiError {
  if (thrown instanceof UiCommandError) return thrown.error;
  const e = localError(thrown) ?? thrown;
  // As the CLI prints them: the SDK's advice in the CLI's words (the page runs its commands).
  const redact = (s: string): string => cliWords(ctx ? ctx.redact(s) : s);
  if (e instanceof BackvaultError) {
    return {
      code: e.code,
      message: redact(e.message),
      hint: redact(e.hint),
      exitCode: exitCodeFor(e.code),
    };
  }
  return {
    code: 'INTERNAL',
    message: redact(e instanceof Error ? e.message : String(e)),
    hint: 'This is a bug in backvault; rerun with BACKVAULT_DEBUG=1 for details and report it.',
    exitCode: exitCodeFor('INTERNAL'),
  };
}
