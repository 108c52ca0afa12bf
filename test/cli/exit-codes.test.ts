import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BackvaultError,
  CorruptBackupError,
  LockedError,
  UnavailableError,
  WrongKeyError,
  WrongPasswordError,
} from '../../src/errors.js';
import { ExitCode, exitCodeFor, exitCodeForError } from '../../src/cli/exit-codes.js';

describe('exit codes', () => {
  it('follow the documented table', () => {
    const expected: Record<string, number> = {
      USAGE: 2,
      INVALID_KEY: 2,
      TARGET_NOT_EMPTY: 2,
      WEAK_PASSWORD: 2,
      WRONG_KEY: 3,
      WRONG_PASSWORD: 3,
      CORRUPT: 4,
      MISSING_OBJECT: 4,
      ROLLBACK: 4,
      LOCKED: 5,
      UNAVAILABLE: 6,
      NOT_FOUND: 1,
      NO_REPOSITORY: 1,
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
});
