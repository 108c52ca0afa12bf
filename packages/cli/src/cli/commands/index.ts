/**
 * The command table. Order is the order of `backvault --help`. The vault commands
 * (`enable`, `password change`, `disable`, `status`, `vault serve`) join this list.
 */
import type { CommandSpec } from '../command.js';
import { backupCommand } from './backup.js';
import { checkCommand } from './check.js';
import { verifyCommand } from './verify.js';
import { initCommand } from './init.js';
import { keyAddCommand, keyGenerateCommand, keyListCommand, keyRemoveCommand } from './key.js';
import { pruneCommand } from './prune.js';
import { forgetCommand } from './forget.js';
import { restoreCommand } from './restore.js';
import { snapshotsCommand } from './snapshots.js';
import { enableCommand } from './enable.js';
import { diffCommand, lsCommand, statsCommand } from './inspect.js';
import { acceptRollbackCommand, pinCommand } from './way-forward.js';
import { disableCommand, passwordChangeCommand, statusCommand } from './vault-device.js';
import { vaultServeCommand } from './vault-serve.js';
import { uiCommand } from './ui.js';
import {
  vaultExportCommand,
  vaultImportCommand,
  vaultKeygenCommand,
  vaultTransportKeyCommand,
} from './vault-keys.js';

/** Every command, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  keyGenerateCommand,
  keyListCommand,
  keyAddCommand,
  keyRemoveCommand,
  initCommand,
  backupCommand,
  restoreCommand,
  snapshotsCommand,
  lsCommand,
  diffCommand,
  statsCommand,
  checkCommand,
  verifyCommand,
  forgetCommand,
  pruneCommand,
  enableCommand,
  statusCommand,
  passwordChangeCommand,
  disableCommand,
  uiCommand,
  pinCommand,
  acceptRollbackCommand,
  vaultServeCommand,
  vaultTransportKeyCommand,
  vaultKeygenCommand,
  vaultExportCommand,
  vaultImportCommand,
];
