/**
 * The shape of a CLI command, and the flags and helpers several commands share. The command
 * table itself is `commands/index.ts`; new commands (the vault ones) are added there.
 */
import { dirname } from 'node:path';
import type { LockWait, RepoAccess } from 'backvault/backup';
import { installNodePlatform, makeDirectories } from 'backvault/node';
import {
  stringOption,
  type OptionSpec,
  type OptionValues,
  type ParsedArgs,
  type PositionalSpec,
} from './args.js';
import type { CliContext, CommandResult } from './context.js';
import { resolveDeviceSource, type DeviceUse } from './device-source.js';
import {
  KEY_PROMPT_TRIES,
  keyWillBePrompted,
  promptBackupKey,
  readBackupKey,
} from './key-input.js';
import { NoRepositoryError, UsageError, WrongKeyError } from 'backvault/errors';
import { formatBackupKey } from 'backvault/format';
import type { Storage, StoreEvent } from 'backvault/storage';
import { resolveStatePath } from './state-path.js';
import {
  INTERACTIVE_RETRY_FOR_MS,
  parseRateLimit,
  parseRetryFor,
  withNetwork,
  withoutRetry,
  type NetworkOptions,
} from 'backvault/storage';

// Commands reach into the engine's rooms directly (key slots, the state file): the Node
// platform must be in place before any of them runs.
installNodePlatform();

/** One command of the table, e.g. `backup` or `key generate`. */
export interface CommandSpec {
  /** Words that select it: `['backup']`, `['key', 'generate']`. */
  path: readonly string[];
  /** One line for the command list. */
  summary: string;
  /** Usage line without the `backvault` prefix, e.g. `backup DIR --repo URL [options]`. */
  usage: string;
  positionals: readonly PositionalSpec[];
  /** Flags besides `--help` and `--json`, which every command has. */
  options: Readonly<Record<string, OptionSpec>>;
  /** Paragraphs shown under the usage in `--help`. */
  details?: readonly string[];
  examples?: readonly string[];
  run(args: ParsedArgs, ctx: CliContext): Promise<CommandResult>;
}

/** Flags every command has. */
export const COMMON_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  json: { type: 'boolean', description: 'print exactly one JSON object on stdout (for scripts)' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

/** Flags of the commands that draw a progress bar (backup, restore, check, prune). */
export const PROGRESS_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  progress: {
    type: 'boolean',
    negatable: true,
    description: 'draw a progress bar on a terminal (default; --no-progress turns it off)',
  },
  quiet: {
    type: 'boolean',
    short: 'q',
    description: 'no progress bar and no summary on success; errors are still printed',
  },
};

/** Flags of every command that opens a repository. */
export const REPO_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  repo: {
    type: 'string',
    valueName: 'URL',
    description:
      'repository: a path, file:///abs/path, or s3://BUCKET/PREFIX?endpoint=URL&region=R (env BACKVAULT_REPO)',
  },
  'key-file': {
    type: 'string',
    valueName: 'FILE',
    description: 'file holding the 64-digit backup key ("-" = stdin; env BACKVAULT_KEY)',
  },
  state: {
    type: 'string',
    valueName: 'FILE',
    description:
      'rollback-detection state file (env BACKVAULT_STATE; default $XDG_STATE_HOME/backvault/state.json)',
  },
  'retry-for': {
    type: 'string',
    valueName: 'DURATION',
    description:
      'keep retrying an unreachable store this long, e.g. 30s, 15m, 1h (default 15m for backup, 1m otherwise; 0 = no retry)',
  },
  'retry-lock': {
    type: 'string',
    valueName: 'DURATION',
    description:
      "wait this long for another process's lock on the repository (backup, prune, forget, check --repair), e.g. 5m (default 0: fail at once)",
  },
};

/** Bandwidth flags of the commands that move pack data (backup, restore, check, prune, verify). */
export const LIMIT_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  'limit-upload': {
    type: 'string',
    valueName: 'KiB/s',
    description: 'upload at most this many KiB per second (as restic)',
  },
  'limit-download': {
    type: 'string',
    valueName: 'KiB/s',
    description: 'download at most this many KiB per second (as restic)',
  },
};

/**
 * The network options given by `--retry-for`, `--limit-upload` and `--limit-download`.
 * @throws UsageError on a malformed duration or limit.
 */
export function networkOptionsOf(values: OptionValues): NetworkOptions {
  const retryFor = stringOption(values, 'retry-for');
  const up = stringOption(values, 'limit-upload');
  const down = stringOption(values, 'limit-download');
  return {
    ...(retryFor !== undefined ? { retryFor: parseRetryFor(retryFor, '--retry-for') } : {}),
    ...(up !== undefined ? { limitUpload: parseRateLimit('--limit-upload', up) } : {}),
    ...(down !== undefined ? { limitDownload: parseRateLimit('--limit-download', down) } : {}),
  };
}

/** Everything needed to reach a repository, resolved from flags and environment. */
export interface RepoTarget {
  url: string;
  access: RepoAccess;
}

/**
 * The network options the engine's main operation gets beside its `signal`. Given a signal,
 * the SDK wraps the store again (the retry layer is replaced, the layers under it are kept):
 * these make its retry layer the one `withRepository` built (`--retry-for`, the outage
 * line), not the SDK's default.
 */
export type RepoNetwork = Required<Pick<NetworkOptions, 'retryFor' | 'onStoreEvent'>>;

/**
 * Resolve `--repo`, the key and the state file, open the store, run `fn`, and close the store
 * whatever happens. The key is read before the store is opened so a typo fails fast, offline.
 * The store's requests stop at the first Ctrl-C during the command's main operation (see
 * interrupt.ts): waits end, requests in flight are cancelled where the store can.
 * @throws UsageError when `--repo` is missing or the key is absent; InvalidKeyError for a
 *   malformed key; whatever `openStorage` and `fn` throw.
 */
export async function withRepository<T>(
  ctx: CliContext,
  values: OptionValues,
  opts: {
    allowPrompt: boolean;
    device?: DeviceUse;
    retryForMs?: number;
    /** Told the name of each object once a `put` of it succeeded (see {@link tellingPuts}). */
    onStored?: (name: string) => void;
  },
  fn: (access: RepoAccess, network: RepoNetwork) => Promise<T>,
): Promise<T> {
  // Malformed network flags fail before anything is read or opened.
  const network = networkOptionsOf(values);
  const retryLockFlag = stringOption(values, 'retry-lock');
  const retryLock =
    retryLockFlag === undefined ? undefined : parseRetryFor(retryLockFlag, '--retry-lock');
  // `--device DIR` (and `restore --password`) supply repository, key and state themselves.
  const source = await resolveDeviceSource(ctx, values, opts.device ?? 'use');
  const url = source?.repo ?? stringOption(values, 'repo') ?? ctx.io.env.BACKVAULT_REPO;
  if (!url) throw new UsageError('missing --repo URL (or set BACKVAULT_REPO)');
  const keyOpts = { keyFile: stringOption(values, 'key-file'), allowPrompt: opts.allowPrompt };
  // A key typed at the prompt that does not open the repository is asked again (a typo in
  // 64 digits is easy); keys from a file or the environment are not.
  const typed = source?.backupKey === undefined && keyWillBePrompted(ctx, keyOpts);
  let backupKey = source?.backupKey ?? (await readBackupKey(ctx, keyOpts));
  const stateFlag = stringOption(values, 'state');
  const statePath =
    stateFlag === undefined && source?.statePath
      ? source.statePath
      : resolveStatePath(stateFlag, ctx.io.env, ctx.io.cwd);
  // The state file is small and private to this user: it says which snapshots they have seen.
  await makeDirectories(dirname(statePath), 0o700);
  const { openStorage } = await import('backvault/node');
  // Retries, bandwidth limits and the outage line wrap every store the same way. A store
  // opened after a Ctrl-C was honoured (a step after the operation completed) is not stopped.
  const onStoreEvent = (e: StoreEvent): void => ctx.storeEvent(e);
  const retryFor = network.retryFor ?? opts.retryForMs ?? INTERACTIVE_RETRY_FOR_MS;
  const signal = ctx.interrupt.signal.aborted ? undefined : ctx.interrupt.signal;
  // Under the retry layer, which the engine replaces when it gets a signal.
  const opened = withoutRetry(await openStorage(url));
  const storage = withNetwork(opts.onStored ? tellingPuts(opened, opts.onStored) : opened, {
    ...network,
    retryFor,
    onStoreEvent,
    ...(signal ? { signal } : {}),
  });
  try {
    for (let i = 1; ; i++) {
      try {
        return await fn(
          {
            storage,
            backupKey: await keyOfRepository(ctx, storage, backupKey, statePath),
            statePath,
            ...(retryLock
              ? { retryLock, onLockWait: (w: LockWait) => ctx.note(lockWaitLine(w)) }
              : {}),
          },
          { retryFor, onStoreEvent },
        );
      } catch (e) {
        if (!typed || !(e instanceof WrongKeyError) || i >= KEY_PROMPT_TRIES) throw e;
        ctx.note(
          'WRONG_KEY: this key does not open this repository — check the digits and type it again.',
        );
        backupKey = await promptBackupKey(ctx);
      }
    }
  } finally {
    await storage.close();
  }
}

/** What `--retry-lock` says before each wait: who holds the lock, and until when it waits. */
export function lockWaitLine(w: LockWait, now = Date.now()): string {
  const secs = (ms: number): string => `${Math.max(1, Math.round(ms / 1000))} s`;
  return `${w.message}; trying again in ${secs(w.nextTryAt - now)} (--retry-lock: giving up in ${secs(w.giveUpAt - now)})`;
}

/**
 * A view of `store` whose successful `put`s are told to `onStored`: how the CLI sees a
 * backup's commit point (its snapshot object stored) without reaching into the engine.
 * A view (like `signalView`), so every other method and capability stays the store's own;
 * `put` runs on whatever view it is called on (a `withSignal` view keeps its signal).
 */
export function tellingPuts(store: Storage, onStored: (name: string) => void): Storage {
  const view = Object.create(store) as Storage;
  const put = store.put;
  Object.defineProperty(view, 'put', {
    value: async function (this: Storage, name: string, data: Uint8Array): Promise<void> {
      await put.call(this, name, data);
      onStored(name);
    },
  });
  return view;
}

/**
 * The one place a 64-digit key given to a command becomes the repository's backup key: the
 * key itself when it passes the key check, else the key an added recovery key's slot
 * unwraps (checked against the key check and the slot manifest). Where there is no
 * repository yet (`init`, a first backup) the key is used as given.
 * @throws WrongKeyError when the key is neither; KeySlotCorruptError / KeySlotMismatchError
 *   when its slot was tampered with; UnavailableError.
 */
async function keyOfRepository(
  ctx: CliContext,
  storage: Storage,
  key: Uint8Array,
  statePath: string,
): Promise<Uint8Array> {
  const { unlockWithKey } = await import('backvault/backup');
  let unlocked: Awaited<ReturnType<typeof unlockWithKey>>;
  try {
    unlocked = await unlockWithKey(storage, key, { statePath });
  } catch (e) {
    // No repository yet: the command (init, backup --init) decides what that means.
    if (e instanceof NoRepositoryError) return key;
    throw e;
  }
  if (unlocked.via === 'recovery-key') {
    const f = formatBackupKey(unlocked.backupKey);
    ctx.addSecret(f, f.replace(/ /g, ''));
    if (!ctx.json && !ctx.quiet) {
      ctx.note(`opened with the recovery key of slot ${unlocked.slotId?.slice(0, 8) ?? ''}`);
    }
  }
  return unlocked.backupKey;
}

/**
 * The backup engine, loaded on first use: `--help`, `key generate` and argument errors then
 * answer without loading the engine and the S3 client (a noticeable part of start-up time).
 */
export function loadEngine(): Promise<typeof import('backvault/backup')> {
  return import('backvault/backup');
}
