/**
 * Setups in progress in the settings screen: a backup key being protected, between
 * `POST /api/enable/start` and `POST /api/enable/finish`. In memory only; one at a time.
 */

/** A backup key being protected. */
export interface PendingEnable {
  readonly backupKey: Uint8Array;
  readonly repo: string;
  /** True when the device exists and gains a protection (password, passkey). */
  readonly existing: boolean;
  /** A new device's repository was created for a passkey slot (bound to its repo id). */
  repoCreated?: boolean;
  readonly at: number;
}

/** How long a shown key waits for its confirmation. */
export const PENDING_TTL_MS = 30 * 60_000;

/** pendingId → setup. */
export const pending = new Map<string, PendingEnable>();
