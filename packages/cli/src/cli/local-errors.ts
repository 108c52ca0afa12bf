/**
 * The one place where failures of this machine (its disks, its ports, its missing S3
 * credentials) become their own typed errors, instead of "check the network" (UNAVAILABLE)
 * or "a bug in backvault" (INTERNAL). The engine and the stores report a system error as is
 * or wrapped (`UnavailableError` with the system error as `cause`); this module looks
 * through the wrapping for the errno code and decides.
 *
 * | errno / situation                   | error                   | exit |
 * | ----------------------------------- | ----------------------- | ---- |
 * | ENOSPC, EDQUOT                      | DiskFullError           | 8    |
 * | EROFS                               | ReadOnlyError           | 8    |
 * | EACCES, EPERM                       | PermissionDeniedError   | 8    |
 * | EADDRINUSE                          | PortInUseError          | 8    |
 * | ENOENT below a read-only folder     | ReadOnlyError           | 8    |
 * | ENOTDIR, EEXIST of mkdir (a file    | UsageError              | 2    |
 * |   where a folder should be)         |                         |      |
 * | ENAMETOOLONG                        | UsageError              | 2    |
 * | AWS SDK CredentialsProviderError    | NoCredentialsError      | 2    |
 *
 * A missing source folder is decided where it is known (`backup`: NoSourceError, exit 2).
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  BackvaultError,
  DiskFullError,
  NoCredentialsError,
  PermissionDeniedError,
  PortInUseError,
  ReadOnlyError,
  UsageError,
} from 'backvault/errors';

/** The fields of a Node system error that matter here. */
interface SystemErrorLike {
  code?: unknown;
  syscall?: unknown;
  path?: unknown;
  dest?: unknown;
  address?: unknown;
  port?: unknown;
  name?: unknown;
  cause?: unknown;
}

const LOCAL_CODES: ReadonlySet<string> = new Set([
  'DISK_FULL',
  'READ_ONLY',
  'PERMISSION_DENIED',
  'PORT_IN_USE',
  'NO_CREDENTIALS',
]);

/** Plain words for the system call that failed (no internal terms in a user's message). */
const DOING: Readonly<Record<string, string>> = {
  open: 'could not open a file',
  write: 'could not write',
  mkdir: 'could not create a folder',
  mkdtemp: 'could not create a folder',
  rename: 'could not move a file into place',
  unlink: 'could not delete a file',
  rmdir: 'could not delete a folder',
  rm: 'could not delete',
  scandir: 'could not list a folder',
  opendir: 'could not list a folder',
  stat: 'could not look at a file',
  lstat: 'could not look at a file',
  copyfile: 'could not copy a file',
  symlink: 'could not create a link',
  utime: 'could not set a time',
  futime: 'could not set a time',
  chmod: 'could not set permissions',
  fsync: 'could not flush to disk',
  read: 'could not read',
  listen: 'could not listen',
};

function chain(e: unknown): SystemErrorLike[] {
  const out: SystemErrorLike[] = [];
  for (let c: unknown = e, i = 0; c && typeof c === 'object' && i < 6; i++) {
    out.push(c as SystemErrorLike);
    c = (c as SystemErrorLike).cause;
  }
  return out;
}

/** Where the wrapped message says the store lives (`… in /repo: EROFS`), if anywhere. */
function pathOf(found: SystemErrorLike, outer: unknown, where: string | undefined): string {
  if (typeof found.path === 'string') return found.path;
  // `… in /repo: EROFS` (storage) or `cannot write … /dir/file: ENOSPC` (key ceremony).
  const m =
    outer instanceof Error
      ? (/ in (\/[^:]*): E[A-Z]+$/.exec(outer.message) ??
        / (\/[^\s:]*): E[A-Z]+$/.exec(outer.message))
      : null;
  return m?.[1] ?? where ?? 'a local path';
}

/**
 * The local-condition error that `e` is (or wraps), or `undefined` when it is something
 * else. `where` names the path when the error does not (e.g. the restore target). Already-typed backvault errors of other kinds are left alone unless they wrap a
 * system error of this machine (LocalStorage's UnavailableError does).
 */
export function localError(e: unknown, where?: string): BackvaultError | undefined {
  if (e instanceof BackvaultError && LOCAL_CODES.has(e.code)) return e;
  const links = chain(e);
  for (let c of links) {
    if (c.name === 'CredentialsProviderError') {
      const m = e instanceof Error ? /(s3:\/\/[^?\s:]+)/.exec(e.message) : null;
      return new NoCredentialsError(m?.[1] ?? 'the s3:// repository', { cause: e });
    }
    // A system error passed back from a worker thread keeps only its message
    // ("ENOSPC: no space left on device, write '/path'"): read the code from there.
    const fromMessage =
      typeof c.code !== 'string' && c instanceof Error
        ? /^(E[A-Z]+): [^,]*, (\w+)(?: '([^']*)')?/.exec(c.message)
        : null;
    if (fromMessage) {
      c = { code: fromMessage[1], syscall: fromMessage[2], path: fromMessage[3], cause: c.cause };
    }
    const code = typeof c.code === 'string' ? c.code : undefined;
    if (code === undefined) continue;
    const syscall = typeof c.syscall === 'string' ? c.syscall : '';
    const what = DOING[syscall] ?? 'could not use it';
    switch (code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return new DiskFullError(pathOf(c, e, where), what, { cause: e });
      case 'EROFS':
        return new ReadOnlyError(pathOf(c, e, where), what, { cause: e });
      case 'EACCES':
      case 'EPERM':
        return new PermissionDeniedError(pathOf(c, e, where), what, { cause: e });
      case 'ENOENT': {
        // Creating a folder on a read-only disk can fail as ENOENT (recursive mkdir): ask
        // the nearest existing folder whether it takes writes.
        if (typeof c.path !== 'string') break;
        const refused = refusedAncestor(c.path);
        if (refused === 'EROFS') return new ReadOnlyError(c.path, what, { cause: e });
        if (refused === 'EACCES') return new PermissionDeniedError(c.path, what, { cause: e });
        break;
      }
      case 'EEXIST':
        // A recursive mkdir meeting a file on its way says EEXIST, not ENOTDIR.
        if (syscall === 'mkdir') return fileOnPath(pathOf(c, e, where), what);
        break;
      case 'ENOTDIR':
        // `--state afile/state.json`, `--device afile/dev`: a typo, never a bug or an outage.
        return fileOnPath(pathOf(c, e, where), what);
      case 'ENAMETOOLONG':
        return new UsageError(
          `a name in this path is too long for the file system: ${pathOf(c, e, where).slice(0, 200)}…`,
          'Give a shorter path.',
        );
      case 'EADDRINUSE': {
        const host = typeof c.address === 'string' ? c.address : 'the address';
        const port = typeof c.port === 'number' ? `:${c.port}` : '';
        return new PortInUseError(`${host}${port}`);
      }
      default:
        break;
    }
  }
  return undefined;
}

function fileOnPath(path: string, what: string): UsageError {
  return new UsageError(
    `a part of this path is a file, not a folder: ${path} (${what})`,
    'Give a path whose folders are folders.',
  );
}

/** Why the nearest existing folder above `path` refuses writes, if it does. */
function refusedAncestor(path: string): 'EROFS' | 'EACCES' | undefined {
  let dir = dirname(path);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EROFS'
      ? 'EROFS'
      : code === 'EACCES' || code === 'EPERM'
        ? 'EACCES'
        : undefined;
  }
}
