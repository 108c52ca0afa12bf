/** `backvault key generate`: make a new random 64-digit backup key. */
import { formatBackupKey, generateBackupKey } from '../../format/key-encoding.js';
import type { CommandSpec } from '../command.js';

/** `key generate` */
export const keyGenerateCommand: CommandSpec = {
  path: ['key', 'generate'],
  summary: 'print a new random 64-digit backup key',
  usage: 'key generate [--json]',
  positionals: [],
  options: {},
  details: [
    'Prints a new random 256-bit backup key as 64 hexadecimal digits in 16 groups of 4.',
    'Write it down or store it in a password manager: it is the only way to restore the',
    'backups made with it. Save it to a file readable only by you, then use --key-file:',
    '',
    '  (umask 077; backvault key generate > ~/.backvault-key)',
  ],
  examples: ['backvault key generate', 'backvault key generate --json'],
  async run() {
    const key = formatBackupKey(generateBackupKey());
    return { json: { key }, human: [key] };
  },
};
