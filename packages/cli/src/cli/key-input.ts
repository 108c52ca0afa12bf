/**
 * Where the CLI gets the 64-digit backup key from: `--key-file FILE`, else `BACKVAULT_KEY`,
 * else (for commands that read an existing repository, on a terminal) a hidden prompt.
 *
 * There is deliberately no `--key` flag: a key typed as an argument lands in shell history
 * and in every other user's `ps` output.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BackvaultError, InvalidKeyError, UsageError } from 'backvault/errors';
import { formatBackupKey, parseBackupKey } from 'backvault/format';
import type { CliContext } from './context.js';
import { canPrompt, promptHidden } from './prompt.js';

/** Help text shared by every command that takes a key. */
export const KEY_SOURCES_HELP = [
  'The backup key (64 hexadecimal digits; spaces, dashes, line breaks and case do not matter)',
  'comes from --key-file FILE (use "-" for standard input), else from the BACKVAULT_KEY',
  'environment variable. There is no --key flag on purpose: a key typed on the command line',
  'lands in your shell history and in the process list that other users can read.',
];

/** Options for {@link readBackupKey}. */
export interface KeySourceOptions {
  /** The `--key-file` value, if given. */
  keyFile: string | undefined;
  /** Whether a hidden prompt may be used when no file or variable is given. */
  allowPrompt: boolean;
}

/** A key source has a defined name; the key never appears in a message, only where it came from. */
function parseFrom(text: string, source: string, ctx: CliContext): Uint8Array {
  ctx.addSecret(text.trim(), text.replace(/[\s-]/g, ''));
  let key: Uint8Array;
  try {
    key = parseBackupKey(text);
  } catch (e) {
    if (e instanceof BackvaultError && e.code === 'INVALID_KEY') {
      throw new InvalidKeyError(`${source}: ${ctx.redact(e.message)}`);
    }
    throw e;
  }
  const formatted = formatBackupKey(key);
  ctx.addSecret(formatted, formatted.replace(/[\s-]/g, ''), Buffer.from(key).toString('hex'));
  return key;
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Read and parse the backup key.
 * @throws InvalidKeyError when the key is malformed (the message names the source and the
 *   offending character, never the key).
 * @throws UsageError when no key is given, or the key file cannot be read.
 */
export async function readBackupKey(ctx: CliContext, opts: KeySourceOptions): Promise<Uint8Array> {
  const { io } = ctx;
  if (opts.keyFile !== undefined) {
    if (opts.keyFile === '-') return parseFrom(await readStdin(io.stdin), 'key from stdin', ctx);
    const path = resolve(io.cwd, opts.keyFile);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      const why =
        (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot read it';
      throw new UsageError(
        `--key-file ${opts.keyFile}: ${why}`,
        'Give the file holding the 64-digit key.',
      );
    }
    return parseFrom(text, `key file ${opts.keyFile}`, ctx);
  }
  const fromEnv = io.env.BACKVAULT_KEY;
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return parseFrom(fromEnv, 'BACKVAULT_KEY', ctx);
  }
  if (opts.allowPrompt && canPrompt(io)) return promptBackupKey(ctx);
  throw new UsageError(
    'no backup key given',
    opts.allowPrompt
      ? 'Pass --key-file FILE or set BACKVAULT_KEY (or run on a terminal to be asked).'
      : 'Pass --key-file FILE or set BACKVAULT_KEY; `backvault key generate` makes a new key.',
  );
}

/** True when {@link readBackupKey} would ask on the terminal (no file, no variable). */
export function keyWillBePrompted(ctx: CliContext, opts: KeySourceOptions): boolean {
  return (
    opts.keyFile === undefined &&
    (ctx.io.env.BACKVAULT_KEY ?? '').trim() === '' &&
    opts.allowPrompt &&
    canPrompt(ctx.io)
  );
}

/** How many times a typed key is asked for before giving up. */
export const KEY_PROMPT_TRIES = 3;

/**
 * Ask for the key on the terminal; a malformed one (a letter that is not a hex digit, a
 * digit too many or too few) is explained and asked again, up to {@link KEY_PROMPT_TRIES}.
 * @throws InvalidKeyError after the last try; PromptInterrupted on Ctrl-C.
 */
export async function promptBackupKey(ctx: CliContext): Promise<Uint8Array> {
  for (let i = 1; ; i++) {
    const typed = await promptHidden(ctx.io, 'Backup key (64 digits, input hidden): ');
    try {
      return parseFrom(typed, 'typed key', ctx);
    } catch (e) {
      if (!(e instanceof InvalidKeyError) || i >= KEY_PROMPT_TRIES) throw e;
      ctx.note(`${e.code}: ${e.message} — type it again.`);
    }
  }
}
