/**
 * A way to protect the backup key (and to get it back on a new device). The "choose
 * protection" and "restore" pages list {@link METHODS} (methods/index.ts) and hand the chosen
 * one a host element: adding a protection (a passkey) is one more module implementing this.
 */
import type { UiState } from '../api.js';

/** What an enable flow gets from the page. */
export interface EnableContext {
  readonly state: UiState;
  /**
   * Asks the server for the key to protect: a new one for a new device (for the repository
   * the page's field names), or this device's. Returns it as 64 digits in 16 groups.
   * `protection` tells the server which one is being added (a passkey may join any device).
   */
  start(
    protection?: string,
  ): Promise<{ pendingId: string; backupKey: string; repo: string; existingDevice: boolean }>;
  /**
   * Writes the device once the protection is in place (see `POST /api/enable/finish`), then
   * shows that it is on (`done`: the sentence to show, for a protection added to a device).
   */
  finish(body: Record<string, unknown>, done?: string): Promise<void>;
}

/** What a restore flow gets from the page. */
export interface RestoreContext {
  readonly state: UiState;
  /**
   * Hands the recovered backup key (64 digits, any spacing) to the local server, which
   * restores and sets up this device; `extra` goes with it (e.g. the pinned vault key).
   */
  recovered(backupKey: string, protection: string, extra?: Record<string, unknown>): Promise<void>;
  /** The repository the page's field names (where the backups are). */
  repo(): string;
}

/** One protection: the password at the vault, the 64-digit key, a passkey. */
export interface ProtectionMethod {
  /** Stable id, also the `protection` sent to the server (`password`, `recovery-key`, …). */
  readonly id: string;
  /** Short name for the choice ("Password"). */
  readonly title: string;
  /** One or two sentences on what it means for the user. */
  readonly summary: string;
  /** Why it cannot be used here (e.g. no vault configured), or undefined when it can. */
  unavailable(state: UiState): string | undefined;
  /** Renders the enable flow into `host`. */
  renderEnable(host: HTMLElement, ctx: EnableContext): void;
  /** Renders the restore flow into `host`. */
  renderRestore(host: HTMLElement, ctx: RestoreContext): void;
}
