/**
 * `restore --password`: everything that can be checked is checked before a guess is spent,
 * and on a terminal the user sees how many guesses are left before typing.
 *
 * Order (each step costs no attempt): the repository exists and is a backvault repository;
 * the restore target is usable; the vault answers and presents the pinned key; the account
 * has a record, and it is not locked (a locked account is reported without asking for a
 * password). Then the password: the prompt names the attempts left, the last attempt gets
 * a plain warning, a wrong password asks again (each retry is a new guess, and says so),
 * and the guess that reaches the limit is reported as LOCKED (exit 5), never as
 * "0 attempts left".
 */
import { access, constants, readdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  LockedError,
  NoRepositoryError,
  NotFoundError,
  TargetNotEmptyError,
  VaultMismatchError,
  UsageError,
  WrongPasswordError,
} from 'backvault/errors';
import type { CliContext } from './context.js';
import { plural } from './format.js';
import { localError } from './local-errors.js';
import { canPrompt, promptHidden } from './prompt.js';
import { vaultClient } from './vault-access.js';
import type { OptionValues } from './args.js';
import type { VaultClient } from 'backvault/client';

/** What `restore` tells this module about its target before the key is needed. */
interface RestoreTarget {
  readonly target: string;
  readonly force: boolean;
}

const targets = new WeakMap<CliContext, RestoreTarget>();

/** Called by `restore` before it resolves the key, so the target is checked before a guess. */
export function expectRestoreTarget(ctx: CliContext, target: string, force: boolean): void {
  targets.set(ctx, { target, force });
}

/**
 * The checks that need no vault: the repository at `repoUrl` exists, and the restore
 * target (if `restore` announced one) is absent or empty (or `--force`) with a writable
 * parent.
 * @throws NoRepositoryError, TargetNotEmptyError, the local-condition errors
 *   (READ_ONLY, PERMISSION_DENIED), UnavailableError from the store.
 */
export async function preflightRestore(
  ctx: CliContext,
  repoUrl: string | undefined,
): Promise<void> {
  if (repoUrl) {
    const { openStorage } = await import('backvault/node');
    const { repositoryExists } = await import('backvault/backup');
    const storage = await openStorage(repoUrl);
    try {
      if (!(await repositoryExists(storage))) throw new NoRepositoryError(storage.location);
    } finally {
      await storage.close();
    }
  }
  const t = targets.get(ctx);
  if (!t) return;
  const st = await stat(t.target).catch(() => undefined);
  if (st && !t.force && (!st.isDirectory() || (await readdir(t.target)).length > 0)) {
    throw new TargetNotEmptyError(t.target);
  }
  // The temporary directory is made beside the target: its parent must take writes.
  let parent = dirname(t.target);
  while (!(await stat(parent).catch(() => undefined)) && dirname(parent) !== parent) {
    parent = dirname(parent);
  }
  try {
    await access(parent, constants.W_OK);
  } catch (e) {
    throw localError(e) ?? e;
  }
}

/** A sentence for the warning before the last attempt. */
export const LAST_ATTEMPT_WARNING =
  'warning: this is the LAST attempt — if this password is wrong, the vault destroys the backup key for good';

/**
 * Get the backup key from the vault with the password, after the checks above.
 * @returns the key and the vault key that was pinned for the login.
 * @throws VaultMismatchError before any guess when the vault is not the pinned one;
 *   NotFoundError when the account has no record; LockedError when it is locked, or when
 *   this guess used the last attempt; WrongPasswordError (no terminal to ask again);
 *   the SDK's errors.
 */
export async function recoverWithPassword(
  ctx: CliContext,
  values: OptionValues,
  target: { vaultUrl: string; account: string; pinned: string | undefined },
  /**
   * The one guess (default `client.recover`). A seam for whatever wraps the login, e.g.
   * issue 15's `recoverFromVault` (events, pacing, snapshot head).
   */
  guess: (client: VaultClient, password: string) => Promise<Uint8Array> = (c, password) =>
    c.recover({ password }),
): Promise<{ backupKey: Uint8Array; pinned: string }> {
  const { vaultUrl, account } = target;
  // Reachable, and the pinned vault (first contact pins what it says now).
  const info = await (await vaultClient(ctx, values, { vaultUrl, account })).info();
  if (target.pinned !== undefined && target.pinned !== info.serverPublicKey) {
    throw new VaultMismatchError();
  }
  const pinned = target.pinned ?? info.serverPublicKey;
  const client = await vaultClient(ctx, values, { vaultUrl, account, pinned });
  // The account's record and its attempts left: not a guess.
  let status;
  try {
    status = await client.status();
  } catch (e) {
    if (e instanceof NotFoundError) {
      throw new NotFoundError(
        `the vault has no password-protected key for account ${account}`,
        'Check --vault and --account; if password protection was disabled, restore with the 64-digit key.',
      );
    }
    throw e;
  }
  // A record at 0 attempts is locked even before the vault has written its tombstone.
  if (status.state === 'locked' || status.attemptsLeft <= 0) {
    throw new LockedError(
      `the vault destroyed the backup key of account ${account} after too many wrong passwords`,
    );
  }
  let left = status.attemptsLeft;
  const fromEnv = ctx.io.env.BACKVAULT_PASSWORD;
  const interactive = !(fromEnv !== undefined && fromEnv !== '') && canPrompt(ctx.io);
  for (;;) {
    let password: string;
    if (interactive) {
      if (left === 1) ctx.note(LAST_ATTEMPT_WARNING);
      password = await promptHidden(
        ctx.io,
        `Vault password for ${account} (${plural(left, 'attempt')} left; input hidden): `,
      );
    } else if (fromEnv !== undefined && fromEnv !== '') {
      password = fromEnv;
    } else {
      throw new UsageError(
        'no password given',
        'Set BACKVAULT_PASSWORD or run on a terminal to be asked.',
      );
    }
    ctx.addSecret(password);
    try {
      return { backupKey: await guess(client, password), pinned };
    } catch (e) {
      if (!(e instanceof WrongPasswordError)) throw e;
      left = e.attemptsLeft;
      if (left <= 0) {
        throw new LockedError(
          'wrong password, and that was the last attempt: the vault destroyed the backup key',
        );
      }
      if (!interactive) throw e;
      ctx.note(`wrong password: ${plural(left, 'attempt')} left. Each retry is a new guess.`);
    }
  }
}
