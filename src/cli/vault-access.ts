/**
 * What the vault commands share: the `--vault/--account/--token/--vault-key` flags, the
 * bearer token (given, or fetched from a `--dev-auth` vault), the SDK client, and reading
 * passwords (environment variable or hidden prompt, typed twice when it is a new one).
 *
 * There is no `--password VALUE`: a password typed as an argument lands in shell history and
 * in `ps` output. `--password` is a mode switch; the password itself comes from
 * `BACKVAULT_PASSWORD` or the prompt.
 */
import { UsageError } from '../errors.js';
// Types only: the SDK (TypeBox schemas, OPAQUE) is loaded when a vault is actually used,
// so `backup` and `restore` with a 64-digit key do not pay its memory.
import type { TokenSource, VaultClient } from '../client/vault-client.js';
import { stringOption, type OptionSpec, type OptionValues } from './args.js';
import type { CliContext } from './context.js';
import { canPrompt, promptHidden } from './prompt.js';
import { judgeNewPassword } from './password-strength.js';

/** Flags naming the vault and the account. */
export const VAULT_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  vault: {
    type: 'string',
    valueName: 'URL',
    description: 'Backup Key Vault base URL, e.g. http://127.0.0.1:8787 (env BACKVAULT_VAULT)',
  },
  account: {
    type: 'string',
    valueName: 'ID',
    description: 'account id at the vault (the token subject; env BACKVAULT_ACCOUNT)',
  },
  token: {
    type: 'string',
    valueName: 'JWT',
    description:
      "bearer token from your app's auth (env BACKVAULT_TOKEN); a --dev-auth vault issues one itself",
  },
  'vault-key': {
    type: 'string',
    valueName: 'KEY',
    description:
      "the vault's OPAQUE server public key to pin (default: the device's pinned key, else what the vault says on first contact)",
  },
};

/** Environment variables read by the vault commands. */
export const VAULT_ENV_HELP = [
  'Passwords come from BACKVAULT_PASSWORD (a new one for `password change`: BACKVAULT_NEW_PASSWORD)',
  'or a hidden prompt; a new password is asked twice. Rules: at least 6 characters with a letter;',
  'very common passwords are refused and weak ones need confirming (--allow-weak without a terminal).',
  'Tokens: --token or BACKVAULT_TOKEN; a vault started with --dev-auth (loopback demo only)',
  'hands out tokens itself, and the CLI then fetches one for --account.',
];

/** `--vault` or `BACKVAULT_VAULT`, if any. */
export function vaultUrlOption(ctx: CliContext, values: OptionValues): string | undefined {
  return stringOption(values, 'vault') ?? (ctx.io.env.BACKVAULT_VAULT || undefined);
}

/** `--account` or `BACKVAULT_ACCOUNT`, if any. */
export function accountOption(ctx: CliContext, values: OptionValues): string | undefined {
  return stringOption(values, 'account') ?? (ctx.io.env.BACKVAULT_ACCOUNT || undefined);
}

/**
 * The token for `account` at `vaultUrl`: `--token`, else `BACKVAULT_TOKEN`, else — only when
 * the vault says it runs `--dev-auth` — a dev token fetched on first use.
 */
export function tokenSource(
  ctx: CliContext,
  values: OptionValues,
  vaultUrl: string,
  account: string,
): TokenSource {
  const given = stringOption(values, 'token') ?? (ctx.io.env.BACKVAULT_TOKEN || undefined);
  if (given) {
    ctx.addSecret(given);
    return given;
  }
  let cached: Promise<string> | undefined;
  return () => {
    cached ??= (async () => {
      const { VaultClient, requestDevToken } = await import('../client/vault-client.js');
      const info = await new VaultClient({ baseUrl: vaultUrl }).info();
      if (!info.devAuth) {
        throw new UsageError(
          'the vault needs a token for this account',
          "Pass --token JWT or set BACKVAULT_TOKEN (issued by your app's auth).",
        );
      }
      const token = await requestDevToken({ baseUrl: vaultUrl, account });
      ctx.addSecret(token);
      return token;
    })();
    return cached;
  };
}

/** Everything needed to make a client for one account. */
export interface VaultTarget {
  readonly vaultUrl: string;
  readonly account: string;
  /** Pinned server public key, if known. */
  readonly pinned?: string;
}

/**
 * An SDK client for `target`, with the token resolved from flags or a dev-auth vault.
 * @throws UsageError when the URL is not http(s).
 */
export async function vaultClient(
  ctx: CliContext,
  values: OptionValues,
  target: VaultTarget,
): Promise<VaultClient> {
  const { VaultClient } = await import('../client/vault-client.js');
  return new VaultClient({
    baseUrl: target.vaultUrl,
    token: tokenSource(ctx, values, target.vaultUrl, target.account),
    ...(target.pinned ? { pinnedServerPublicKey: target.pinned } : {}),
  });
}

/**
 * Reads a password from `envName` or a hidden prompt. For a new password (`confirm`), it is
 * judged at once (rules, then zxcvbn: see password-strength.ts), before any network call and
 * before it is asked a second time on a terminal.
 * @throws UsageError when there is neither the variable nor a terminal, or the two entries
 *   differ; WeakPasswordError when a new password breaks the rules.
 */
export async function readPassword(
  ctx: CliContext,
  opts: {
    envName: string;
    question: string;
    confirm: boolean;
    /** For a new password: `--allow-weak`, and words an attacker knows (the account). */
    allowWeak?: boolean;
    userInputs?: readonly string[];
  },
): Promise<string> {
  // A new password is judged (zxcvbn) before it is typed twice and before any network call.
  const judge = (pw: string): Promise<unknown> =>
    judgeNewPassword(ctx, pw, {
      allowWeak: opts.allowWeak ?? false,
      userInputs: opts.userInputs ?? [],
    });
  const fromEnv = ctx.io.env[opts.envName];
  let password: string;
  if (fromEnv !== undefined && fromEnv !== '') {
    password = fromEnv;
    ctx.addSecret(password);
    if (opts.confirm) await judge(password);
  } else if (canPrompt(ctx.io)) {
    password = await promptHidden(ctx.io, opts.question);
    if (opts.confirm) {
      ctx.addSecret(password);
      await judge(password);
      const again = await promptHidden(ctx.io, 'Type it again: ');
      if (again !== password) throw new UsageError('the two passwords differ; nothing was changed');
    }
  } else {
    throw new UsageError(
      'no password given',
      `Set ${opts.envName} or run on a terminal to be asked.`,
    );
  }
  ctx.addSecret(password);
  return password;
}
