import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BackvaultError,
  CorruptBackupError,
  LockedError,
  UnavailableError,
  WrongKeyError,
  WrongPasswordError,
} from '#sdk/errors.js';
import {
  ExitCode,
  exitCodeFor,
  exitCodeForError,
  exitCodeHelp,
  exitCodeTable,
} from '#cli/cli/exit-codes.js';

describe('exit codes', () => {
  it('follow the documented table', () => {
    const expected: Record<string, number> = {
      USAGE: 2,
      INVALID_KEY: 2,
      TARGET_NOT_EMPTY: 2,
      WEAK_PASSWORD: 2,
      NO_SOURCE: 2,
      NO_CREDENTIALS: 2,
      WRONG_KEY: 3,
      WRONG_PASSWORD: 3,
      CORRUPT: 4,
      MISSING_OBJECT: 4,
      ROLLBACK: 4,
      LOCKED: 5,
      UNAVAILABLE: 6,
      PARTIAL: 7,
      DISK_FULL: 8,
      READ_ONLY: 8,
      PERMISSION_DENIED: 8,
      PORT_IN_USE: 8,
      NOT_FOUND: 1,
      NO_REPOSITORY: 1,
      VAULT_MISMATCH: 1,
      CONFLICT: 1,
      INTERNAL: 1,
    };
    for (const [code, exit] of Object.entries(expected)) {
      assert.equal(exitCodeFor(code as BackvaultError['code']), exit, code);
    }
    assert.equal(ExitCode.INTERRUPTED, 130);
  });

  it('map thrown values by their code, anything else to 1', () => {
    assert.equal(exitCodeForError(new WrongKeyError()), 3);
    assert.equal(exitCodeForError(new WrongPasswordError(2)), 3);
    assert.equal(exitCodeForError(new CorruptBackupError('bad', 'data/ab')), 4);
    assert.equal(exitCodeForError(new LockedError()), 5);
    assert.equal(exitCodeForError(new UnavailableError('down')), 6);
    assert.equal(exitCodeForError(new TypeError('boom')), 1);
    assert.equal(exitCodeForError('a string'), 1);
  });

  it('--help and the README list every code the CLI can print, with its exit code', async () => {
    const help = exitCodeHelp().join('\n');
    const readme = await readFile(
      fileURLToPath(new URL('../../../README.md', import.meta.url)),
      'utf8',
    );
    const rows = exitCodeTable();
    const all = rows.flatMap((r) => r.codes);
    for (const c of ['CONFLICT', 'VAULT_MISMATCH', 'PARTIAL', 'NO_REPOSITORY', 'INTERRUPTED']) {
      assert.ok(all.includes(c), c);
    }
    for (const { exit, codes } of rows) {
      const line = readme.split('\n').find((l) => new RegExp(`^\\| ${exit}\\s+\\|`).test(l));
      assert.ok(line, `README has a row for exit ${exit}`);
      for (const c of codes) {
        assert.ok(line.includes(`\`${c}\``), `README row ${exit} names ${c}`);
        assert.match(help, new RegExp(`\\b${c}\\b`), `--help names ${c}`);
      }
    }
  });
});
