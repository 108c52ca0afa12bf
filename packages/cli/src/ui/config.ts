/**
 * What `backvault ui` was started with, read once by the command and passed to the server.
 * Nothing here is secret except the vault token (`vaultToken`), which never reaches the page:
 * the vault proxy adds it to the requests it forwards.
 */

/** The UI server's configuration. */
export interface UiConfig {
  /** The device profile directory (may not exist yet: a new device). */
  readonly deviceDir: string;
  /** Only `127.0.0.1` is accepted (checked by the server). */
  readonly host?: string;
  /** 0 = any free port. */
  readonly port?: number;
  /** Vault base URL for a device that has none yet (`--vault`/`BACKVAULT_VAULT`). */
  readonly vaultUrl?: string;
  /** Vault account for a device that has none yet (`--account`/`BACKVAULT_ACCOUNT`). */
  readonly account?: string;
  /** Repository to suggest for a new device (`--repo`/`BACKVAULT_REPO`). */
  readonly repo?: string;
  /** The chat folder to back up and restore into (`--folder`). */
  readonly folder?: string;
  /** The environment and working directory the in-process commands see. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** The app's bearer token for the vault (`--token`/`BACKVAULT_TOKEN`), if given. */
  readonly vaultToken?: string;
}
