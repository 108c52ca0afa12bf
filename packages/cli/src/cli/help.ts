/** Help texts, generated from the command table so they cannot drift from the parser. */
import type { OptionSpec } from './args.js';
import { COMMON_OPTIONS, type CommandSpec } from './command.js';
import { exitCodeHelp, exitCodeTable } from './exit-codes.js';

const NAME = 'backvault';

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const rows = Object.entries(options)
    .filter(([, o]) => !o.hidden)
    .map(([name, o]) => {
      const flag =
        o.type === 'boolean' && o.negatable
          ? `--[no-]${name}`
          : `--${name}${o.valueName ? ` ${o.valueName}` : ''}`;
      return [o.short ? `-${o.short}, ${flag}` : `    ${flag}`, o.description] as const;
    });
  const width = Math.max(...rows.map(([f]) => f.length));
  return rows.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`);
}

/** `backvault --help`. */
export function mainHelp(commands: readonly CommandSpec[], version: string): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  return [
    `${NAME} ${version} — end-to-end encrypted, incremental chat backups`,
    '',
    'Usage:',
    `  ${NAME} COMMAND [ARGS] [--json]`,
    `  ${NAME} help COMMAND        (or: ${NAME} COMMAND --help; add --json for JSON)`,
    `  ${NAME} --version`,
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    'Environment:',
    '  BACKVAULT_KEY    the 64-digit backup key (instead of --key-file; never a --key flag)',
    '  BACKVAULT_REPO   default for --repo',
    '  BACKVAULT_STATE  rollback-detection state file (default $XDG_STATE_HOME/backvault/state.json)',
    '  BACKVAULT_DEBUG  set to 1 to print stack traces of internal errors',
    '  BACKVAULT_DEVICE        device profile directory (default $XDG_DATA_HOME/backvault/device)',
    '  BACKVAULT_PASSWORD      the password (instead of the hidden prompt)',
    '  BACKVAULT_NEW_PASSWORD  the new password for `password change`',
    '  BACKVAULT_VAULT, BACKVAULT_ACCOUNT  defaults for --vault and --account',
    '  BACKVAULT_TOKEN         the account token (JWT) from your app, instead of --token',
    '  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION  credentials for s3:// repositories',
    '',
    'Output: human-readable lines on stdout; with --json exactly one JSON object on stdout',
    '(errors too: {"error": {"code", "message", "hint"}}). Errors also print one line on',
    'stderr starting with a stable code, e.g. "WRONG_KEY: …". A progress bar is drawn on',
    'stderr only when it is a terminal.',
    '',
    'Exit codes:',
    ...exitCodeHelp(),
  ].join('\n');
}

/** `backvault help COMMAND` / `backvault COMMAND --help`. */
export function commandHelp(c: CommandSpec): string {
  const lines = [
    `${NAME} ${c.path.join(' ')} — ${c.summary}`,
    '',
    'Usage:',
    `  ${NAME} ${c.usage}`,
  ];
  if (c.details?.length) lines.push('', ...c.details);
  lines.push('', 'Options:', ...optionLines({ ...c.options, ...COMMON_OPTIONS }));
  if (c.examples?.length) lines.push('', 'Examples:', ...c.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

/** Help for a group of commands such as `key`. */
export function groupHelp(group: string, members: readonly CommandSpec[]): string {
  const width = Math.max(...members.map((c) => c.path.join(' ').length));
  return [
    `${NAME} ${group} — subcommands:`,
    '',
    ...members.map((c) => `  ${NAME} ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    `Run \`${NAME} help ${group} SUBCOMMAND\` for details.`,
  ].join('\n');
}

/** `backvault help help`. */
export function helpHelp(): string {
  return [
    `${NAME} help — show help`,
    '',
    'Usage:',
    `  ${NAME} help                 the commands, environment and exit codes`,
    `  ${NAME} help COMMAND         one command: usage, options, examples`,
    `  ${NAME} help GROUP           the subcommands of a group (e.g. \`key\`, \`vault\`)`,
    `  ${NAME} help help            this text`,
    '',
    'Every form takes --json and then prints one JSON object instead.',
  ].join('\n');
}

/** `backvault --help --json`: the command list and the exit codes, for scripts. */
export function mainHelpJson(
  commands: readonly CommandSpec[],
  version: string,
): Record<string, unknown> {
  return {
    version,
    commands: commands.map((c) => ({ command: c.path.join(' '), summary: c.summary })),
    exitCodes: exitCodeTable(),
  };
}

/** `backvault help COMMAND --json`. */
export function commandHelpJson(c: CommandSpec): Record<string, unknown> {
  return {
    command: c.path.join(' '),
    summary: c.summary,
    usage: `${NAME} ${c.usage}`,
    options: Object.entries({ ...c.options, ...COMMON_OPTIONS })
      .filter(([, o]) => !o.hidden)
      .map(([name, o]) => ({
        name: `--${name}`,
        ...(o.short ? { short: `-${o.short}` } : {}),
        type: o.type,
        ...(o.valueName ? { value: o.valueName } : {}),
        ...(o.negatable ? { negatable: true } : {}),
        description: o.description,
      })),
    arguments: c.positionals.map((p) => ({ name: p.name, required: p.required })),
    details: c.details ?? [],
    examples: c.examples ?? [],
  };
}
