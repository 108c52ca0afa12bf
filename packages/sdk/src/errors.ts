/**
 * The error taxonomy of backvault: one class per kind of failure a caller acts on,
 * each with a stable `code`. Wrong key and damaged data are never the same error.
 *
 * Messages never contain secrets (keys, passwords, tokens, envelopes, OPAQUE messages).
 * The CLI maps codes to exit codes in one place (`src/cli/exit-codes.ts`), the vault maps
 * them to HTTP statuses in one place (`src/vault/http-errors.ts`).
 *
 * This module imports nothing and runs everywhere (Node and browsers).
 *
 * @packageDocumentation
 */

/**
 * The SDK's words for what to do next, in the names of its functions and options (never a
 * command line). Each sentence that the CLI says in its own words (flags, commands) is here
 * once: `src/cli/hints.ts` maps every entry to the CLI's sentence, and a `Record` over these
 * keys makes a missing translation fail to compile.
 */
export const HINTS = {
  usage: 'Check the arguments against the documentation of the function you called.',
  corrupt:
    'The store altered or damaged this data. Run `check()` to see what is affected; restore an older snapshot if needed.',
  missing: 'The store lost or deleted data. Run `check()` to see what is affected.',
  damagedHead:
    'This damaged snapshot object may be the newest snapshot, so no older one is taken as the latest (that could hide a rollback) and every command stops here: an older snapshot cannot be restored either while it is there. A backup (`backup()`) on the device that saw it as its latest chains onto it and heals this; elsewhere, to go on without it, delete that object from the store; if this device had seen it, then accept the newest snapshot that remains with `acceptRollback()`.',
  damagedLock:
    'This object under `locks/` is not a lock written with this key (damaged, or left by another program such as a sync client). Backups, prunes and forgets refuse to run beside an object they cannot read. If no operation of any version runs on this repository, delete that object from the store; `check()` lists every such object.',
  rollback:
    'The store is serving an old copy of the backup. Do not trust it; contact your storage provider.',
  noRepository:
    'Check the storage location and that the drive or bucket is reachable; `initRepository()` (or `backup()` with `init: true`) creates a repository.',
  vanishedRepository:
    'Check that the drive or bucket is mounted and reachable and that the storage location is right. To really start a new repository at this place, call `initRepository()` with `{ replaceMissing: true }`.',
  targetNotEmpty: 'Choose an empty directory, or pass `force: true`.',
  targetNotDirectory:
    'Give a directory that is absent or empty (or holds an earlier restore, with `force: true`).',
  targetMountPoint:
    'Give a new folder inside it as `target`: a restore is written beside its target and moved in by rename, which cannot cross into another file system.',
  targetInnerMount:
    'Restore into an empty folder (`target`), or unmount it first: a restore moves files in by rename, which cannot cross into another file system.',
  mergeConflict:
    'Move those directories away, restore into an empty directory, or pass `delete: true` (with `force: true`) to make the target exactly the snapshot (files not in it are deleted).',
  partial:
    'To restore every file that still verifies and list the damaged ones, restore again with `partial: true`.',
  includeMissing:
    'Check the path (`include`): it is relative to the backed-up folder, `/`-separated.',
  noSnapshots: 'Run `backup()` first.',
  noSuchSnapshot: 'Call `listSnapshots()` to list them.',
  noSuchPath: 'Check the path: it is relative to the backed-up folder, `/`-separated.',
  treeAsChunk:
    'This tree was stored only as a file chunk with the same bytes (a bug of backvault 0.1). Back up the same source again (`backup()`): it stores the tree again and the snapshot restores.',
  vaultMismatch:
    'You may be talking to the wrong or an impostor vault: check the vault URL (`baseUrl`). If its operator changed its key, `info()` shows the new one; pin it (`pinnedServerPublicKey`) only after checking it with them.',
  vaultUrl: 'Pass `baseUrl` such as https://vault.example.com or http://127.0.0.1:8787.',
  vaultNoRecord:
    'This account has no password-protected backup key on this vault (never enabled, or disabled). Check the vault URL (`baseUrl`) and the account of the token.',
  vaultNotVault: 'Is `baseUrl` the URL of a backvault vault?',
  portInUse: 'Stop that process, or choose another port.',
  noCredentials:
    'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass `credentials` to the S3 store, then try again.',
  diskFull:
    'Free some space or choose another disk, then try again: nothing incomplete was committed.',
  keySlotList: 'Then list the key slots (`listKeySlots()`).',
  keySlotListWithKey: 'Then list the key slots (`listKeySlots()`) with the 64-digit key.',
  keySlotSee: 'See `listKeySlots()`.',
  alreadyEnabled:
    'To protect the key with a new password, call `changePassword()` from a device that holds the backup key; `disable()` removes the protection.',
  retentionField: 'E.g. `{ last: 3, daily: 7, monthly: -1 }` (-1 keeps all).',
  retentionEmpty:
    'Give at least one of `last`, `hourly`, `daily`, `weekly`, `monthly`, `yearly` (a count of at least 1, or -1 for all) or `within` (a duration).',
} as const;

/** Every stable error code. Scripts may match on these; they never change meaning. */
export const ERROR_CODES = [
  'USAGE',
  'INVALID_KEY',
  'WRONG_KEY',
  'WRONG_PASSWORD',
  'WEAK_PASSWORD',
  'CORRUPT',
  'MISSING_OBJECT',
  'ROLLBACK',
  'LOCKED',
  'UNAVAILABLE',
  'NOT_FOUND',
  'NO_REPOSITORY',
  'TARGET_NOT_EMPTY',
  'VAULT_MISMATCH',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'CONFLICT',
  'RATE_LIMITED',
  'BAD_REQUEST',
  'UNSUPPORTED_VERSION',
  'INTERNAL',
  'PARTIAL',
  // The SDK's own misuse of the vault (issue 19).
  'ALREADY_ENABLED',
  // Local conditions of this machine (issue 12): never "check the network" nor "a bug".
  'DISK_FULL',
  'READ_ONLY',
  'PERMISSION_DENIED',
  'NO_SOURCE',
  'PORT_IN_USE',
  'NO_CREDENTIALS',
  // Key slots and passkeys (issue 13).
  'NO_KEY_SLOT',
  'KEY_SLOT_CORRUPT',
  'KEY_SLOT_MISMATCH',
  'PRF_UNSUPPORTED',
  'PASSKEY_CANCELLED',
  // Web apps on another origin than the vault (issue 19).
  'CORS_ORIGIN_NOT_ALLOWED',
  'VAULT_CORS_BLOCKED',
] as const;

/** A stable error code (one of {@link ERROR_CODES}). */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base class: `code` is stable, `hint` says what to do next. */
export class BackvaultError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  constructor(code: ErrorCode, message: string, hint = '', options?: { cause?: unknown }) {
    super(message, options);
    // Where classes are compiled to ES5 functions (React Native's Babel, the phone check's
    // TypeScript lowering), Error() returns a plain Error: restore the subclass's prototype
    // so `instanceof` and the class's members hold. A no-op where classes are native.
    Object.setPrototypeOf(this, new.target.prototype);
    this.name = new.target.name;
    this.code = code;
    this.hint = hint;
  }
}

/** The command line or an API call was malformed. Fix the arguments. */
export class UsageError extends BackvaultError {
  constructor(message: string, hint: string = HINTS.usage) {
    super('USAGE', message, hint);
  }
}

/** A 64-digit key was typed wrong (bad character or length). Never contains the key. */
export class InvalidKeyError extends BackvaultError {
  constructor(message: string) {
    super(
      'INVALID_KEY',
      message,
      'A backup key is 64 hexadecimal digits (0-9, a-f), in 16 groups of 4.',
    );
  }
}

/** The key is well-formed but is not this repository's key (key check value mismatch). */
export class WrongKeyError extends BackvaultError {
  constructor(message = 'this backup key does not open this repository') {
    super('WRONG_KEY', message, 'Check the 64-digit key; the backup itself was not read.');
  }
}

/** OPAQUE login failed: the password is wrong. `attemptsLeft` guesses remain before lockout. */
export class WrongPasswordError extends BackvaultError {
  readonly attemptsLeft: number;
  constructor(attemptsLeft: number) {
    super(
      'WRONG_PASSWORD',
      `${attemptsLeft} attempt${attemptsLeft === 1 ? '' : 's'} left`,
      attemptsLeft > 0
        ? 'Try again carefully: after the last attempt the backup key is destroyed for good.'
        : 'The backup key has been destroyed. Use the 64-digit key if you have it.',
    );
    this.attemptsLeft = attemptsLeft;
  }
}

/** The password does not meet the minimum rules. */
export class WeakPasswordError extends BackvaultError {
  constructor(
    message: string,
    hint = 'Use at least 6 characters including a letter; longer is better.',
  ) {
    super('WEAK_PASSWORD', message, hint);
  }
}

/** Stored data failed authentication or does not parse: corrupted or tampered with. */
export class CorruptBackupError extends BackvaultError {
  /** The storage object concerned, if known (a name, never content). */
  readonly object: string | undefined;
  constructor(message: string, object?: string, options?: { cause?: unknown }) {
    // A message taken from an earlier error (a check problem rethrown) already names it.
    const named = !object || message.endsWith(` (${object})`);
    super('CORRUPT', named ? message : `${message} (${object})`, HINTS.corrupt, options);
    this.object = object;
  }
}

/** An object the repository refers to is not in the store. */
export class MissingObjectError extends BackvaultError {
  readonly object: string;
  constructor(object: string, hint: string = HINTS.missing) {
    super('MISSING_OBJECT', `object is missing from the store: ${object}`, hint);
    this.object = object;
  }
}

/** The store served a snapshot older than one this device has already seen. */
export class RollbackError extends BackvaultError {
  constructor(message: string) {
    super('ROLLBACK', message, HINTS.rollback);
  }
}

/** The vault destroyed the key after too many wrong passwords. Permanent. */
export class LockedError extends BackvaultError {
  constructor(message = 'the backup key was destroyed after too many wrong passwords') {
    super(
      'LOCKED',
      message,
      'The password can no longer recover this backup. Use the 64-digit key if you have one.',
    );
  }
}

/** Storage or vault could not be reached or failed transiently. Retrying later may help. */
export class UnavailableError extends BackvaultError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, 'Check the network and the service, then retry.', options);
  }
}

/** Something asked for does not exist (vault record, snapshot id). */
export class NotFoundError extends BackvaultError {
  constructor(message: string, hint = '') {
    super('NOT_FOUND', message, hint);
  }
}

/** There is no backvault repository at the given location. */
export class NoRepositoryError extends BackvaultError {
  constructor(location: string, why?: string, hint: string = HINTS.noRepository) {
    super('NO_REPOSITORY', `no backvault repository at ${location}${why ? `: ${why}` : ''}`, hint);
  }
}

/** Restore target exists and is not empty. */
export class TargetNotEmptyError extends BackvaultError {
  constructor(target: string) {
    super('TARGET_NOT_EMPTY', `restore target is not empty: ${target}`, HINTS.targetNotEmpty);
  }
}

/** The vault's OPAQUE server key differs from the one pinned on this device. */
export class VaultMismatchError extends BackvaultError {
  constructor(
    message = 'the vault presented a different server key than the one pinned on this device',
  ) {
    super('VAULT_MISMATCH', message, HINTS.vaultMismatch);
  }
}

/** The repository or message uses a format version this build does not understand. */
export class UnsupportedVersionError extends BackvaultError {
  constructor(message: string) {
    super('UNSUPPORTED_VERSION', message, 'Upgrade backvault.');
  }
}

/**
 * Throw `signal.reason` when `signal` has aborted: how every operation of the SDK stops on
 * an abort (it rejects with the signal's reason, a DOMException named `AbortError` for a
 * plain `abort()`; no backvault code, since nothing failed). Unlike
 * `AbortSignal.prototype.throwIfAborted`, also works with AbortSignal polyfills (React Native).
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/** True when `e` is a backvault error (any code). */
export function isBackvaultError(e: unknown): e is BackvaultError {
  return e instanceof BackvaultError;
}

/** True when `e` is a backvault error with the given code. */
export function hasCode(e: unknown, code: ErrorCode): e is BackvaultError {
  return e instanceof BackvaultError && e.code === code;
}

// --- Added for the vault (issue 3): protocol-level errors the HTTP layer maps in
// `src/vault/http-errors.ts`. Additive only; codes already existed above.

/** A request or protocol message was malformed, expired or out of order. Nothing changed. */
export class BadRequestError extends BackvaultError {
  constructor(message: string, hint = 'Fix the request; start the protocol step again.') {
    super('BAD_REQUEST', message, hint);
  }
}

/** No valid credential (token missing, forged, expired or for another audience). */
export class UnauthorizedError extends BackvaultError {
  constructor(message = 'missing or invalid bearer token') {
    super('UNAUTHORIZED', message, 'Obtain a fresh token from your app and retry.');
  }
}

/** The caller is known but not allowed (e.g. the backup-key proof does not match). */
export class ForbiddenError extends BackvaultError {
  constructor(message: string, hint = '') {
    super('FORBIDDEN', message, hint);
  }
}

/** The state changed underneath the request (replayed or superseded step, existing record). */
export class ConflictError extends BackvaultError {
  constructor(message: string, hint = 'Read the current state and start again.') {
    super('CONFLICT', message, hint);
  }
}

/** Too many requests from this client or for this account. Retry after `retryAfterSeconds`. */
export class RateLimitedError extends BackvaultError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super(
      'RATE_LIMITED',
      `too many requests; retry in ${retryAfterSeconds} s`,
      'Wait and retry; the limit protects the account.',
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A bug or an unexpected failure. Nothing secret is in the message. */
export class InternalError extends BackvaultError {
  constructor(message = 'internal error', options?: { cause?: unknown }) {
    super('INTERNAL', message, 'Report this with the request id from the logs.', options);
  }
}

// --- Added for the CLI's local conditions (issue 12). Additive only. Each names the path
// (never content) and says what the user can do about it on this machine.

/** A local disk is full (ENOSPC, EDQUOT). Nothing partial was committed. */
export class DiskFullError extends BackvaultError {
  readonly path: string;
  constructor(path: string, what: string, options?: { cause?: unknown }) {
    super(
      'DISK_FULL',
      `no space left on the disk holding ${path} (${what})`,
      HINTS.diskFull,
      options,
    );
    this.path = path;
  }
}

/** A local file system is mounted read-only (EROFS). */
export class ReadOnlyError extends BackvaultError {
  readonly path: string;
  constructor(path: string, what: string, options?: { cause?: unknown }) {
    super(
      'READ_ONLY',
      `the disk holding ${path} is read-only (${what})`,
      'Choose a writable location, or remount the disk read-write.',
      options,
    );
    this.path = path;
  }
}

/** The operating system refused access to a local path (EACCES, EPERM). */
export class PermissionDeniedError extends BackvaultError {
  readonly path: string;
  constructor(path: string, what: string, options?: { cause?: unknown }) {
    super(
      'PERMISSION_DENIED',
      `permission denied: ${path} (${what})`,
      'Check the owner and permissions of that path, or run as a user who may use it.',
      options,
    );
    this.path = path;
  }
}

/** The folder to back up does not exist, or is not a folder. */
export class NoSourceError extends BackvaultError {
  constructor(message: string) {
    super('NO_SOURCE', message, 'Give the folder to back up; check the spelling of the path.');
  }
}

/** `vault serve` cannot listen: the address is taken by another process (EADDRINUSE). */
export class PortInUseError extends BackvaultError {
  constructor(address: string) {
    super('PORT_IN_USE', `another process is already listening on ${address}`, HINTS.portInUse);
  }
}

/** An s3:// repository was given but no AWS credentials could be found. */
export class NoCredentialsError extends BackvaultError {
  constructor(location: string, options?: { cause?: unknown }) {
    super(
      'NO_CREDENTIALS',
      `no S3 credentials found for ${location}`,
      HINTS.noCredentials,
      options,
    );
  }
}

// --- Added for key slots and passkey protection (issue 13). Additive only. Each error names
// a slot by its id (public), never a key, a PRF output or a wrapped key.

/** The other ways into a backup, named by every key-slot and passkey error. */
const OTHER_PROTECTIONS =
  'Use another protection: the 64-digit backup key, the vault password, another recovery key or passkey.';

/**
 * No key slot of this repository belongs to this passkey or recovery key: it was never added,
 * it was removed, or the store deleted its slot.
 */
export class NoKeySlotError extends BackvaultError {
  constructor(message: string, hint = OTHER_PROTECTIONS) {
    super('NO_KEY_SLOT', message, hint);
  }
}

/**
 * A key slot is malformed, fails authentication, sits under another slot's name, or unwraps a
 * key that does not open the repository: the store damaged or swapped it (or, for a passkey,
 * the authenticator is not the one that made the slot). Never reported as a wrong key.
 */
export class KeySlotCorruptError extends BackvaultError {
  /** The slot object concerned (`keys/<id>`), never content. */
  readonly object: string | undefined;
  constructor(message: string, object?: string) {
    super(
      'KEY_SLOT_CORRUPT',
      object ? `${message} (${object})` : message,
      `The store altered this key slot, or this is not the passkey that made it. ${OTHER_PROTECTIONS} ${HINTS.keySlotList}`,
    );
    this.object = object;
  }
}

/**
 * The sealed slot manifest (`keys/manifest`) disagrees with the slots in the store: a slot is
 * listed but gone, present but not listed (removed earlier and put back), or changed; or the
 * manifest itself is gone. The slot is not used.
 */
export class KeySlotMismatchError extends BackvaultError {
  constructor(message: string) {
    super(
      'KEY_SLOT_MISMATCH',
      message,
      `The store deleted, replaced or replayed key slots. ${OTHER_PROTECTIONS} ${HINTS.keySlotListWithKey}`,
    );
  }
}

/**
 * This browser or authenticator cannot derive a key from a passkey (no WebAuthn, or no PRF
 * extension): passkey protection is not available here.
 */
export class PrfUnsupportedError extends BackvaultError {
  constructor(message = 'this browser or authenticator cannot protect a backup with a passkey') {
    super(
      'PRF_UNSUPPORTED',
      message,
      'Passkey protection needs WebAuthn with the PRF extension. Choose a vault password or the 64-digit key instead, or use a passkey provider that supports PRF.',
    );
  }
}

/** The user cancelled the passkey prompt, or it timed out. Nothing changed; ask again. */
export class PasskeyCancelledError extends BackvaultError {
  constructor(message = 'the passkey request was cancelled or timed out') {
    super(
      'PASSKEY_CANCELLED',
      message,
      `Try again and confirm with your passkey. ${OTHER_PROTECTIONS}`,
    );
  }
}

// --- Added for web apps on another origin than the vault (issue 19). Additive only.

/**
 * In a browser: the vault answered this page, but without CORS permission for the page's
 * origin, so the browser withheld the answer (or, for a request that needs a preflight,
 * never sent it). Not a network failure: retrying does not help until the vault's operator
 * lists the page's origin (`vault serve --cors-origin <pageOrigin>`).
 *
 * The SDK raises it only after checking: the failed `fetch` was a TypeError (all a page is
 * told), a CORS-mode request to the vault failed too, and a `no-cors` request to the same
 * vault got an answer (see `src/client/http-errors.ts`). The vault answers a refused
 * preflight with `CORS_ORIGIN_NOT_ALLOWED`, which a page never gets to read.
 */
export class VaultCorsBlockedError extends BackvaultError {
  /** The page's origin (`location.origin`), e.g. `https://chat.example`; `null` if opaque. */
  readonly pageOrigin: string;
  /** The vault's origin, e.g. `https://vault.example`. */
  readonly vaultOrigin: string;
  constructor(pageOrigin: string, vaultOrigin: string, options?: { cause?: unknown }) {
    super(
      'VAULT_CORS_BLOCKED',
      `the browser blocked this page (origin ${pageOrigin}) from the vault at ${vaultOrigin}: the vault answers, but does not allow this origin (CORS)`,
      pageOrigin === 'null'
        ? 'This page has an opaque origin (a file: page or a sandboxed frame), which a vault never allows: serve the app from an http or https origin and have the vault list it with --cors-origin, or call the vault from where CORS does not apply (e.g. Electron’s main process).'
        : `The vault's operator must add this page's origin: \`vault serve --cors-origin ${pageOrigin}\` (exactly this origin; repeat the flag for several). The network is not the problem.`,
      options,
    );
    this.pageOrigin = pageOrigin;
    this.vaultOrigin = vaultOrigin;
  }
}

// --- Added for an honest SDK (issue 19). Additive only.

/**
 * `enable()` for an account whose vault record already exists (active or locked): a second
 * enable would replace the protection without proving the key. Nothing changed.
 */
export class AlreadyEnabledError extends BackvaultError {
  constructor(message = 'this account already protects a backup key on this vault') {
    super('ALREADY_ENABLED', message, HINTS.alreadyEnabled);
  }
}
