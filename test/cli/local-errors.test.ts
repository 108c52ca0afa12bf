/**
 * The table of local conditions: each errno (bare, or wrapped the way LocalStorage wraps it)
 * and each situation maps to its own code, exit code and hint — never UNAVAILABLE ("check
 * the network") nor INTERNAL ("a bug in backvault").
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnavailableError } from '#sdk/errors.js';
import { exitCodeFor } from '#cli/cli/exit-codes.js';
import { localError } from '#cli/cli/local-errors.js';
import { cliWords } from '#cli/cli/hints.js';

function sysError(code: string, syscall: string, path?: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${syscall} '${path ?? ''}'`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  if (path !== undefined) e.path = path;
  return e;
}

describe('local errors', () => {
  const table: [string, unknown, string, number, RegExp, RegExp][] = [
    [
      'ENOSPC writing a restored file',
      sysError('ENOSPC', 'write', '/mnt/full/out/a.jpg'),
      'DISK_FULL',
      8,
      /^no space left on the disk holding \/mnt\/full\/out\/a\.jpg \(could not write\)$/,
      /Free some space/,
    ],
    [
      'ENOSPC from a worker thread (only the message survives)',
      new Error('ENOSPC: no space left on device, write'),
      'DISK_FULL',
      8,
      /^no space left on the disk holding a local path \(could not write\)$/,
      /Free some space/,
    ],
    [
      'EDQUOT',
      sysError('EDQUOT', 'open', '/home/u/x'),
      'DISK_FULL',
      8,
      /no space left/,
      /Free some space/,
    ],
    [
      'EROFS wrapped by the local store',
      new UnavailableError('cannot write data/ab in /mnt/ro/repo: EROFS', {
        cause: sysError('EROFS', 'open', '/mnt/ro/repo/data/ab.tmp'),
      }),
      'READ_ONLY',
      8,
      /^the disk holding \/mnt\/ro\/repo\/data\/ab\.tmp is read-only \(could not open a file\)$/,
      /writable location/,
    ],
    [
      'EACCES on the source',
      sysError('EACCES', 'scandir', '/home/u/chat/private'),
      'PERMISSION_DENIED',
      8,
      /^permission denied: \/home\/u\/chat\/private \(could not list a folder\)$/,
      /permissions/,
    ],
    [
      'EPERM',
      sysError('EPERM', 'rename', '/x/y'),
      'PERMISSION_DENIED',
      8,
      /could not move a file into place/,
      /permissions/,
    ],
    [
      'EADDRINUSE',
      Object.assign(sysError('EADDRINUSE', 'listen'), { address: '127.0.0.1', port: 8787 }),
      'PORT_IN_USE',
      8,
      /^another process is already listening on 127\.0\.0\.1:8787$/,
      /another --port/,
    ],
    [
      'missing S3 credentials (AWS SDK), wrapped',
      new UnavailableError(
        'S3 could not read config at s3://bucket/chat?endpoint=http://127.0.0.1:9000&region=r: CredentialsProviderError',
        {
          cause: Object.assign(new Error('Could not load credentials from any providers'), {
            name: 'CredentialsProviderError',
          }),
        },
      ),
      'NO_CREDENTIALS',
      2,
      /^no S3 credentials found for s3:\/\/bucket\/chat$/,
      /AWS_ACCESS_KEY_ID/,
    ],
  ];
  for (const [name, thrown, code, exit, message, hint] of table) {
    it(`${name} → ${code}, exit ${exit}`, () => {
      const e = localError(thrown);
      assert.ok(e, 'recognised');
      assert.equal(e.code, code);
      assert.equal(exitCodeFor(e.code), exit);
      assert.match(e.message, message);
      // The hint as the CLI prints it (the error itself speaks the SDK's words).
      assert.match(cliWords(e.hint), hint);
    });
  }

  it('leaves network and other failures alone', () => {
    assert.equal(
      localError(new UnavailableError('S3 down', { cause: sysError('ECONNREFUSED', 'connect') })),
      undefined,
    );
    assert.equal(localError(new TypeError('boom')), undefined);
    assert.equal(localError(sysError('EIO', 'read', '/x')), undefined);
  });
});
