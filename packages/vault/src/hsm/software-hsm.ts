/**
 * The in-process software HSM: the embedded default. It keeps the OPAQUE server setup and
 * a 256-bit sealing key in memory (private fields), loaded from a key file created 0600
 * on first start, or from the environment variable `BACKVAULT_HSM_KEYS`.
 *
 * Key material format (file content, or the value of `BACKVAULT_HSM_KEYS`), JSON:
 * `{ "format": "backvault-hsm-keys", "version": 1, "serverSetup": "<OPAQUE server setup
 * string>", "sealingKey": "<32 bytes base64url>" }`. Changing `serverSetup` invalidates
 * every record (and the pinned public key); a fleet shares one key set.
 *
 * This is no real HSM: whoever reads the process memory or the key file has the secrets.
 * It exists so the embedded vault has the same boundary as one with PKCS#11.
 */
import { promises as fsp, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import { UsageError } from 'backvault/errors';
import { writePrivateFile } from 'backvault/node';
import { createMemorySealer, OpaqueCore, type OpaqueCoreOptions } from './opaque-core.js';

const KEYS_FORMAT = 'backvault-hsm-keys';

/** The name of the environment variable that may carry the key material. */
export const HSM_KEYS_ENV = 'BACKVAULT_HSM_KEYS';

/** Key material of the software HSM (see the module comment for the JSON form). */
export interface SoftwareHsmKeys {
  readonly serverSetup: string;
  readonly sealingKey: Uint8Array;
}

/** Options of {@link openSoftwareHsm}. */
export interface SoftwareHsmOptions extends OpaqueCoreOptions {
  /** Key file path; created 0600 (atomically) when missing. Ignored if `keys` is given. */
  readonly keyFile?: string;
  /** Key material given directly (e.g. parsed from `BACKVAULT_HSM_KEYS`). */
  readonly keys?: SoftwareHsmKeys;
}

/** Creates fresh key material (a new fleet identity). */
export async function generateSoftwareHsmKeys(): Promise<SoftwareHsmKeys> {
  await opaque.ready;
  return { serverSetup: opaque.server.createSetup(), sealingKey: randomBytes(32) };
}

/** Serialises key material to the documented JSON form. Handle the result as a secret. */
export function encodeSoftwareHsmKeys(keys: SoftwareHsmKeys): string {
  return JSON.stringify({
    format: KEYS_FORMAT,
    version: 1,
    serverSetup: keys.serverSetup,
    sealingKey: Buffer.from(keys.sealingKey).toString('base64url'),
  });
}

/**
 * Parses the documented JSON form.
 * @throws UsageError if it is not valid key material (the message never echoes it).
 */
export function decodeSoftwareHsmKeys(text: string): SoftwareHsmKeys {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UsageError('HSM key material is not valid JSON', 'See src/hsm/software-hsm.ts.');
  }
  const o = v as Record<string, unknown>;
  if (
    typeof v !== 'object' ||
    v === null ||
    o.format !== KEYS_FORMAT ||
    o.version !== 1 ||
    typeof o.serverSetup !== 'string' ||
    typeof o.sealingKey !== 'string'
  ) {
    throw new UsageError('HSM key material has the wrong format', 'See src/hsm/software-hsm.ts.');
  }
  const sealingKey = Buffer.from(o.sealingKey, 'base64url');
  if (sealingKey.length !== 32) {
    throw new UsageError('HSM sealing key must be 32 bytes', 'See src/hsm/software-hsm.ts.');
  }
  return { serverSetup: o.serverSetup, sealingKey };
}

function checkPrivate(st: Stats, path: string): void {
  if ((st.mode & 0o077) !== 0) {
    throw new UsageError(
      `HSM key file ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)})`,
      `Run: chmod 600 ${path}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new UsageError(`HSM key file ${path} belongs to another user`, 'Fix its owner.');
  }
}

/**
 * Reads an existing key file (e.g. one written by `vault import`), refusing an unsafe one.
 * @throws UsageError if the file is group/other accessible, owned by another user or
 *   malformed; the ENOENT error of `stat` if it does not exist.
 */
export async function readKeyFile(path: string): Promise<SoftwareHsmKeys> {
  const st = await fsp.stat(path);
  checkPrivate(st, path);
  return decodeSoftwareHsmKeys(await fsp.readFile(path, 'utf8'));
}

/**
 * Reads the key file, or creates it with fresh keys when it does not exist. Creation is
 * atomic: written to a private temporary file (0600, O_EXCL), fsynced, then hard-linked
 * into place (fails if another process won the race, whose file is then read).
 * @throws UsageError if the file is group/other accessible, owned by another user or malformed.
 */
export async function loadOrCreateKeyFile(path: string): Promise<SoftwareHsmKeys> {
  try {
    return await readKeyFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const keys = await generateSoftwareHsmKeys();
  // Another process may win the race to create the file: then its keys are the keys.
  if (!(await writePrivateFile(path, encodeSoftwareHsmKeys(keys), { exclusive: true }))) {
    return loadOrCreateKeyFile(path);
  }
  return keys;
}

/**
 * Software implementation of the `Hsm` interface: {@link OpaqueCore} with the sealing keys in
 * process memory (`createMemorySealer`). Byte layouts are those of `opaque-core.ts`, shared
 * with the PKCS#11 HSM, so a mixed fleet interoperates. Create with {@link openSoftwareHsm}.
 * Secrets live in private fields, so they never show in `util.inspect` or JSON.
 */
export class SoftwareHsm extends OpaqueCore {
  /** Use {@link openSoftwareHsm}; `opaque.ready` must have resolved. */
  constructor(keys: SoftwareHsmKeys, options: SoftwareHsmOptions = {}) {
    super(keys.serverSetup, createMemorySealer(keys.sealingKey), {
      ...(options.loginStateTtlMs !== undefined
        ? { loginStateTtlMs: options.loginStateTtlMs }
        : {}),
      ...(options.registrationTicketTtlMs !== undefined
        ? { registrationTicketTtlMs: options.registrationTicketTtlMs }
        : {}),
      ...(options.now ? { now: options.now } : {}),
    });
  }
}

/**
 * Opens a software HSM from explicit keys, a key file (created when missing), or
 * `BACKVAULT_HSM_KEYS` (in that order of precedence: `keys`, env, `keyFile`).
 * @throws UsageError if no source is given, or the key file is unsafe or malformed.
 */
export async function openSoftwareHsm(options: SoftwareHsmOptions = {}): Promise<SoftwareHsm> {
  await opaque.ready;
  let keys = options.keys;
  const env = process.env[HSM_KEYS_ENV];
  if (!keys && env) keys = decodeSoftwareHsmKeys(env);
  if (!keys && options.keyFile) keys = await loadOrCreateKeyFile(options.keyFile);
  if (!keys) {
    throw new UsageError(`software HSM needs a key file or ${HSM_KEYS_ENV}`);
  }
  return new SoftwareHsm(keys, options);
}
