/**
 * What the vault commands share: the `--vault/--account/--token/--vault-key` flags, the
 * bearer token (given, or fetched from a `--dev-auth` vault), the SDK client, and reading
 * passwords (environment variable or hidden prompt, typed twice when it is a new one).
 *
 * There is no `--password VALUE`: a password typed as an argument lands in shell history and
 * in `ps` output. `--password` is a mode switch; the password itself comes from
 * `BACKVAULT_PASSWORD` or the prompt.
 */
import type { SeenEvent } from 'backvault/client';
import { RateLimitedError, RollbackError, UsageError, hasCode } from 'backvault/errors';
import { writePrivateFile } from 'backvault/node';
import type { SnapshotHead } from 'backvault/wire';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
// Types only: the SDK (TypeBox schemas, OPAQUE) is loaded when a vault is actually used,
// so `backup` and `restore` with a 64-digit key do not pay its memory.
import type { TokenSource, VaultClient } from 'backvault/client';
import { booleanOption, stringOption, type OptionSpec, type OptionValues } from './args.js';
import type { CliContext } from './context.js';
import { judgeNewPassword } from './password-strength.js';
import { canPrompt, promptHidden } from './prompt.js';

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
      const { VaultClient, requestDevToken } = await import('backvault/client');
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
  const { VaultClient } = await import('backvault/client');
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

// --- Issue 15: what the user sees of the vault's events, pacing and snapshot head -------

/** What a password restore learned from the vault, kept per run for the restore command. */
interface VaultRestoreInfo {
  readonly head: SnapshotHead | null;
  readonly lines: readonly string[];
}
const restoreInfo = new WeakMap<CliContext, VaultRestoreInfo>();

/** `restore` flag: restore even when the repository is older than the vault's head. */
export const VAULT_HEAD_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  'accept-older-than-vault': {
    type: 'boolean',
    description:
      "restore even if the repository's latest snapshot is older than the one the vault recorded (a rolled-back store)",
  },
};

/** "wrong passwords are paced: next try after 14:07 UTC" for a RATE_LIMITED login. */
async function pacedError(e: RateLimitedError, now: number): Promise<RateLimitedError> {
  const { formatNextTry } = await import('backvault/client');
  const at = now + e.retryAfterSeconds * 1000;
  const out = new RateLimitedError(e.retryAfterSeconds);
  out.message = `wrong passwords are paced to protect your key: next try after ${formatNextTry(at, now)}`;
  return out;
}

/** The file in a device directory that remembers the last vault event this device saw. */
const SEEN_FILE = 'vault-events-seen.json';

async function readSeen(dir: string | undefined): Promise<SeenEvent | undefined> {
  if (dir === undefined) return undefined;
  try {
    const v = JSON.parse(await readFile(join(dir, SEEN_FILE), 'utf8')) as Partial<SeenEvent>;
    return typeof v.seq === 'number' && typeof v.hash === 'string'
      ? { seq: v.seq, hash: v.hash }
      : undefined;
  } catch {
    return undefined;
  }
}

async function writeSeen(dir: string | undefined, seen: SeenEvent | undefined): Promise<void> {
  if (dir === undefined || seen === undefined) return;
  await writePrivateFile(join(dir, SEEN_FILE), JSON.stringify(seen)).catch(() => undefined);
}

/**
 * The security-event sentence for `status` and `restore`, checked against what the device
 * in `deviceDir` saw last time (and remembered for next time).
 * @throws RollbackError when the vault's log was cut back or rewritten since; the other
 *   errors of `VaultClient.events`.
 */
export async function vaultEventLines(
  client: VaultClient,
  backupKey: Uint8Array,
  opts: { readonly justRestored: boolean; readonly deviceDir?: string },
): Promise<string[]> {
  return (await vaultEvents(client, backupKey, opts)).lines;
}

/**
 * {@link vaultEventLines}, with the log itself (each guess with its outcome) for `--json`.
 */
export async function vaultEvents(
  client: VaultClient,
  backupKey: Uint8Array,
  opts: { readonly justRestored: boolean; readonly deviceDir?: string },
): Promise<{ lines: string[]; events: readonly Record<string, unknown>[] }> {
  const { describeGuesses, formatNextTry: fmt, guessOutcomes } = await import('backvault/client');
  const seen = await readSeen(opts.deviceDir);
  const r = await client.events({
    backupKey,
    justRestored: opts.justRestored,
    ...(seen ? { seen } : {}),
  });
  await writeSeen(opts.deviceDir, r.latest);
  const lines = [describeGuesses(r.guesses)];
  if (r.log.nextTryAt) {
    lines.push(`wrong passwords are paced: next try after ${fmt(Date.parse(r.log.nextTryAt))}`);
  }
  const events = guessOutcomes(r.log.events).map(({ hash: _h, at, ...e }) => ({
    ...e,
    at: new Date(at).toISOString(),
  }));
  return { lines, events };
}

/**
 * `restore --password`: the key and the vault's snapshot head, and what to tell the user
 * about the account's events. A paced login says when the next try is possible.
 * @throws the errors of `VaultClient.recoverWithHead` (RateLimitedError with the time).
 */
export async function recoverFromVault(
  ctx: CliContext,
  client: VaultClient,
  password: string,
  deviceDir?: string,
): Promise<Uint8Array> {
  let got: { backupKey: Uint8Array; head: SnapshotHead | null };
  try {
    got = await client.recoverWithHead({ password });
  } catch (e) {
    if (e instanceof RateLimitedError) throw await pacedError(e, Date.now());
    throw e;
  }
  let lines: string[];
  try {
    lines = await vaultEventLines(client, got.backupKey, {
      justRestored: true,
      ...(deviceDir !== undefined ? { deviceDir } : {}),
    });
  } catch (e) {
    if (hasCode(e, 'ROLLBACK') || hasCode(e, 'CORRUPT')) throw e;
    lines = [`could not read the vault's event log: ${(e as Error).message}`];
  }
  restoreInfo.set(ctx, { head: got.head, lines });
  return got.backupKey;
}

/**
 * Before a restore whose key came from the vault: the repository's latest snapshot must
 * not be older than the head the vault recorded (a new device cannot tell otherwise).
 * Returns the lines to show (the event sentence).
 * @throws RollbackError naming the vault's sequence, unless --accept-older-than-vault.
 */
export async function checkVaultHead(
  ctx: CliContext,
  values: OptionValues,
  latest: () => Promise<{ readonly seq: number; readonly id: string } | undefined>,
): Promise<string[]> {
  const info = restoreInfo.get(ctx);
  if (!info) return [];
  const lines = info.lines.map((l) => `  ${l}`);
  const head = info.head;
  if (!head) return lines;
  const top = await latest();
  const older = !top || top.seq < head.seq || (top.seq === head.seq && top.id !== head.snapshotId);
  if (!older) return lines;
  const what = `the repository's latest snapshot is ${top ? `seq ${top.seq}` : 'missing'}, but the vault recorded snapshot ${head.snapshotId.slice(0, 8)} (seq ${head.seq}) for this account`;
  if (booleanOption(values, 'accept-older-than-vault')) {
    return [...lines, `  warning: ${what}; restoring anyway (--accept-older-than-vault)`];
  }
  throw new RollbackError(what);
}

/**
 * After `backup --device` in password mode: raises the vault's snapshot head to this
 * backup (with the key proof). Never fails the backup: problems become a warning.
 */
export async function recordHeadInVault(
  ctx: CliContext,
  values: OptionValues,
  r: { readonly snapshotId: string; readonly seq: number },
): Promise<void> {
  const flag = stringOption(values, 'device');
  if (flag === undefined) return;
  const { loadDevice, resolveDeviceDir } = await import('../device/profile.js');
  const d = await loadDevice(resolveDeviceDir(flag, ctx.io.env, ctx.io.cwd));
  const p = d.profile;
  if (p.mode !== 'password' || !p.vaultUrl || !p.account || !p.serverPublicKey) return;
  try {
    const client = await vaultClient(ctx, values, {
      vaultUrl: p.vaultUrl,
      account: p.account,
      pinned: p.serverPublicKey,
    });
    await client.recordHead({
      backupKey: d.backupKey,
      head: { seq: r.seq, snapshotId: r.snapshotId },
    });
  } catch (e) {
    ctx.note(
      `warning: the vault did not record snapshot seq ${r.seq} as this account's latest: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}
