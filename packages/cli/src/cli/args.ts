/**
 * Command-line parsing on top of `node:util` parseArgs, with our own validation so that every
 * mistake becomes one clear `USAGE:` line — and so that no value the user typed is echoed back
 * when it might be a secret (a key pasted in the wrong place).
 */
import { parseArgs } from 'node:util';
import { UsageError } from 'backvault/errors';
import { closest } from './suggest.js';

/** One flag of a command. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** One-letter alias, e.g. `h` for `-h`. */
  short?: string;
  /** For booleans: also accept `--no-NAME`; the last one given wins. */
  negatable?: boolean;
  /** Placeholder shown in help, e.g. `URL`. */
  valueName?: string;
  /** One line (or a few) of help. */
  description: string;
  /** Hidden from help (e.g. the `--key` trap that only exists to explain why it does not). */
  hidden?: boolean;
  /** For strings: may be given several times; read every value with {@link stringOptions}. */
  multiple?: boolean;
}

/** Separates the values of a `multiple` option inside {@link OptionValues} (never in argv). */
const MULTI_SEP = '\0';

/** One positional argument of a command. */
export interface PositionalSpec {
  /** Upper-case placeholder shown in help and errors, e.g. `DIR`. */
  name: string;
  required: boolean;
}

/** Parsed flags: strings for string options, booleans for boolean ones; absent when not given. */
export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

/** The result of parsing one command's arguments. */
export interface ParsedArgs {
  values: OptionValues;
  positionals: string[];
}

/** Flags that would put a secret on the command line; refused with an explanation. */
const SECRET_FLAGS: Readonly<Record<string, readonly [string, string]>> = {
  key: [
    'there is no --key flag: a key on the command line lands in shell history and in `ps` output',
    'Use --key-file FILE or the BACKVAULT_KEY environment variable.',
  ],
  password: [
    'there is no --password flag taking a value: a password on the command line lands in shell history and in `ps` output',
    'Type it at the prompt or set BACKVAULT_PASSWORD.',
  ],
};

const ORDINAL = ['1st', '2nd', '3rd'];

/**
 * Parse `args` (the words after the command name) against a command's flags and positionals.
 * @throws UsageError on an unknown flag, a missing or superfluous value, or a wrong number of
 *   positional arguments. The message names the flag, never a value that could be a secret.
 */
export function parseCommandArgs(
  args: readonly string[],
  options: Readonly<Record<string, OptionSpec>>,
  positionals: readonly PositionalSpec[],
): ParsedArgs {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, spec] of Object.entries(options)) {
    config[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
    if (spec.negatable) config[`no-${name}`] = { type: 'boolean' };
  }
  // strict: false so that we can word every error ourselves (parseArgs' own messages would
  // echo `--key=<the key>` back).
  const { tokens } = parseArgs({
    args: [...args],
    options: config,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const values: Record<string, string | boolean | undefined> = {};
  const found: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') {
      found.push(token.value);
      continue;
    }
    if (token.kind !== 'option') continue;
    const secretHint = SECRET_FLAGS[token.name];
    if (secretHint && !(token.name in options)) throw new UsageError(...secretHint);
    const negated = token.name.startsWith('no-') && options[token.name.slice(3)]?.negatable;
    const name = negated ? token.name.slice(3) : token.name;
    const spec = options[name];
    if (!spec) {
      const known = Object.entries(options)
        .filter(([, o]) => !o.hidden)
        .map(([n]) => n);
      const near = token.rawName.startsWith('--') ? closest(token.name, known) : undefined;
      throw new UsageError(
        `unknown option ${token.rawName}${near ? ` (did you mean --${near}?)` : ''}`,
      );
    }
    if (spec.type === 'boolean' || negated) {
      if (token.value !== undefined) {
        throw new UsageError(`option ${token.rawName} does not take a value`);
      }
      values[name] = !negated;
    } else {
      if (token.value === undefined) {
        throw new UsageError(
          `option ${token.rawName} needs a value (${spec.valueName ?? 'VALUE'})`,
        );
      }
      // `--repo --json` is a forgotten value, but base64url keys (fleet keys, pinned vault
      // keys) start with "-" one time in 64: only refuse what looks like an option.
      if (!token.inlineValue && /^(--.|-[a-zA-Z]$)/.test(token.value)) {
        throw new UsageError(
          `option ${token.rawName} needs a value (${spec.valueName ?? 'VALUE'}); to pass one starting with "-", write ${token.rawName}=VALUE`,
        );
      }
      const prev = values[name];
      values[name] =
        spec.multiple && typeof prev === 'string'
          ? `${prev}${MULTI_SEP}${token.value}`
          : token.value;
    }
  }
  const required = positionals.filter((p) => p.required).length;
  if (found.length < required) {
    const missing = positionals.slice(found.length).filter((p) => p.required);
    throw new UsageError(`missing argument ${missing.map((p) => p.name).join(' ')}`);
  }
  if (found.length > positionals.length) {
    // The value is not echoed: a key or password pasted in the wrong place must not be printed.
    const n = positionals.length + 1;
    const nth = ORDINAL[n - 1] ?? `${n}th`;
    throw new UsageError(
      positionals.length === 0
        ? `unexpected argument (the ${nth}): this command takes no arguments`
        : `unexpected argument (the ${nth}): expected only ${positionals.map((p) => p.name).join(' ')}`,
    );
  }
  return { values, positionals: found };
}

/** A string flag's value, or `undefined`. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** Every value of a `multiple` string flag, in the order given (empty when absent). */
export function stringOptions(values: OptionValues, name: string): string[] {
  const v = values[name];
  return typeof v === 'string' ? v.split(MULTI_SEP) : [];
}

/** A boolean flag's value, or `fallback` when not given. */
export function booleanOption(values: OptionValues, name: string, fallback = false): boolean {
  const v = values[name];
  return typeof v === 'boolean' ? v : fallback;
}
