/**
 * The one place that maps error codes to process exit codes. Scripts rely on these numbers;
 * they are part of the product and never change meaning.
 */
import { BackvaultError, type ErrorCode } from '../errors.js';

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
};

/** Exit code for a stable error code. */
export function exitCodeFor(code: ErrorCode): number {
  return EXIT_BY_CODE[code];
}

/** Exit code for anything thrown: typed errors by their code, everything else 1. */
export function exitCodeForError(e: unknown): number {
  return e instanceof BackvaultError ? exitCodeFor(e.code) : ExitCode.FAILURE;
}

/** Lines for `backvault --help`, generated from the table above so the help cannot drift. */
export function exitCodeHelp(): string[] {
  const byExit = new Map<number, ErrorCode[]>();
  for (const [code, exit] of Object.entries(EXIT_BY_CODE) as [ErrorCode, number][]) {
    if (exit === ExitCode.FAILURE) continue;
    byExit.set(exit, [...(byExit.get(exit) ?? []), code]);
  }
  const lines = [`  ${ExitCode.OK}    success`];
  for (const exit of [...byExit.keys()].sort((a, b) => a - b)) {
    lines.push(`  ${String(exit).padEnd(4)} ${(byExit.get(exit) ?? []).join(', ')}`);
  }
  lines.push(`  ${ExitCode.FAILURE}    any other error (INTERNAL, NO_REPOSITORY, NOT_FOUND, …)`);
  lines.push(`  ${ExitCode.INTERRUPTED}  interrupted (Ctrl-C)`);
  return lines;
}
