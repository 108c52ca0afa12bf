/**
 * The one place that maps error codes to process exit codes. Scripts rely on these numbers;
 * they are part of the product and never change meaning.
 */
import { BackvaultError, type ErrorCode } from 'backvault/errors';

/** Process exit codes of the `backvault` command. */
export const ExitCode = {
  /** Success. */
  OK: 0,
  /** Anything not listed below, including unexpected internal errors. */
  FAILURE: 1,
  /** The command line was wrong (bad flag, missing argument, malformed key, occupied target). */
  USAGE: 2,
  /** Wrong backup key or wrong password. */
  WRONG_SECRET: 3,
  /** Integrity failure: corrupted, tampered, missing or rolled-back data. */
  INTEGRITY: 4,
  /** The vault destroyed the key after too many wrong passwords. */
  LOCKED: 5,
  /** Storage or vault unreachable; retrying later may help. */
  UNAVAILABLE: 6,
  /** A snapshot was saved without some files (they could not be read). */
  PARTIAL: 7,
  /** This machine refused: a disk full or read-only, permission denied, a port in use. */
  LOCAL: 8,
  /** Stopped by Ctrl-C (128 + SIGINT), as shells expect. */
  INTERRUPTED: 130,
} as const;

/**
 * Exit code per error code. A `Record` over every `ErrorCode`, so adding a code to
 * `src/errors.ts` without deciding its exit code fails to compile.
 */
const EXIT_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  USAGE: ExitCode.USAGE,
  INVALID_KEY: ExitCode.USAGE,
  TARGET_NOT_EMPTY: ExitCode.USAGE,
  // The password was refused before anything was sent; the user fixes the input.
  WEAK_PASSWORD: ExitCode.USAGE,
  WRONG_KEY: ExitCode.WRONG_SECRET,
  WRONG_PASSWORD: ExitCode.WRONG_SECRET,
  CORRUPT: ExitCode.INTEGRITY,
  MISSING_OBJECT: ExitCode.INTEGRITY,
  ROLLBACK: ExitCode.INTEGRITY,
  LOCKED: ExitCode.LOCKED,
  UNAVAILABLE: ExitCode.UNAVAILABLE,
  NOT_FOUND: ExitCode.FAILURE,
  NO_REPOSITORY: ExitCode.FAILURE,
  VAULT_MISMATCH: ExitCode.FAILURE,
  UNAUTHORIZED: ExitCode.FAILURE,
  FORBIDDEN: ExitCode.FAILURE,
  CONFLICT: ExitCode.FAILURE,
  RATE_LIMITED: ExitCode.UNAVAILABLE,
  BAD_REQUEST: ExitCode.FAILURE,
  UNSUPPORTED_VERSION: ExitCode.FAILURE,
  INTERNAL: ExitCode.FAILURE,
  PARTIAL: ExitCode.PARTIAL,
  // `enable` of an account that already has a record (was CONFLICT before issue 19).
  ALREADY_ENABLED: ExitCode.FAILURE,
  DISK_FULL: ExitCode.LOCAL,
  READ_ONLY: ExitCode.LOCAL,
  PERMISSION_DENIED: ExitCode.LOCAL,
  PORT_IN_USE: ExitCode.LOCAL,
  // The user fixes the command line or the environment.
  NO_SOURCE: ExitCode.USAGE,
  NO_CREDENTIALS: ExitCode.USAGE,
  // Key slots (issue 13): no slot for this key is a wrong secret; a damaged, swapped or
  // unlisted slot is an integrity failure of the store.
  NO_KEY_SLOT: ExitCode.WRONG_SECRET,
  KEY_SLOT_CORRUPT: ExitCode.INTEGRITY,
  KEY_SLOT_MISMATCH: ExitCode.INTEGRITY,
  // Raised by the browser SDK only; listed for the Record.
  PRF_UNSUPPORTED: ExitCode.USAGE,
  PASSKEY_CANCELLED: ExitCode.FAILURE,
  // Browser-only (issue 19): a page's origin the vault does not list. The fix is the vault's
  // configuration, not a retry.
  CORS_ORIGIN_NOT_ALLOWED: ExitCode.FAILURE,
  VAULT_CORS_BLOCKED: ExitCode.FAILURE,
};

/** Exit code for a stable error code. */
export function exitCodeFor(code: ErrorCode): number {
  return EXIT_BY_CODE[code];
}

/** Exit code for anything thrown: typed errors by their code, everything else 1. */
export function exitCodeForError(e: unknown): number {
  return e instanceof BackvaultError ? exitCodeFor(e.code) : ExitCode.FAILURE;
}

/** What each exit code means, in the words of `--help` and README. */
const EXIT_MEANING: Readonly<Record<number, string>> = {
  [ExitCode.OK]: 'success',
  [ExitCode.FAILURE]: 'other errors',
  [ExitCode.USAGE]: 'fix the command line or the environment',
  [ExitCode.WRONG_SECRET]: 'wrong key or password',
  [ExitCode.INTEGRITY]: 'stored data damaged, missing or rolled back',
  [ExitCode.LOCKED]: 'the vault destroyed the key (too many wrong passwords)',
  [ExitCode.UNAVAILABLE]: 'storage or vault unreachable, or busy: retry later',
  [ExitCode.PARTIAL]: 'snapshot saved without some files',
  [ExitCode.LOCAL]: 'this machine refused: disk full or read-only, permission, port',
  [ExitCode.INTERRUPTED]: 'stopped by Ctrl-C',
};

/**
 * Every exit code with its meaning and every code that leads to it, from the table above,
 * so that `--help` and the README cannot drift (a test compares the README with this).
 */
export function exitCodeTable(): { exit: number; meaning: string; codes: string[] }[] {
  const byExit = new Map<number, string[]>();
  for (const [code, exit] of Object.entries(EXIT_BY_CODE)) {
    byExit.set(exit, [...(byExit.get(exit) ?? []), code]);
  }
  byExit.set(ExitCode.INTERRUPTED, ['INTERRUPTED']);
  byExit.set(ExitCode.OK, []);
  return [...byExit.keys()]
    .sort((a, b) => a - b)
    .map((exit) => ({
      exit,
      meaning: EXIT_MEANING[exit] ?? '',
      codes: [...(byExit.get(exit) ?? [])].sort(),
    }));
}

/** Lines for `backvault --help`: every exit code and every error code the CLI prints. */
export function exitCodeHelp(): string[] {
  const lines: string[] = [];
  for (const { exit, meaning, codes } of exitCodeTable()) {
    const head = `  ${String(exit).padEnd(4)} ${meaning}${codes.length ? ':' : ''}`;
    lines.push(head);
    // Codes wrapped under the meaning, at most ~90 columns.
    let line = '';
    for (const c of codes) {
      const next = line ? `${line}, ${c}` : c;
      if (next.length > 84) {
        lines.push(`       ${line},`);
        line = c;
      } else line = next;
    }
    if (line) lines.push(`       ${line}`);
  }
  return lines;
}
