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
import { constants as fsConstants, promises as fsp, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import {
  BadRequestError,
  ConflictError,
  CorruptBackupError,
  ForbiddenError,
  UsageError,
} from '../errors.js';
import type { Hsm, LoginStart, RegistrationFinish, RegistrationStart } from './hsm.js';

const KEYS_FORMAT = 'backvault-hsm-keys';
const SEAL_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const LABEL_RECORD = 'backvault/hsm/record/v1';
const LABEL_TICKET = 'backvault/hsm/registration-ticket/v1';
const LABEL_LOGIN = 'backvault/hsm/login-state/v1';

/** The name of the environment variable that may carry the key material. */
export const HSM_KEYS_ENV = 'BACKVAULT_HSM_KEYS';

/** Key material of the software HSM (see the module comment for the JSON form). */
export interface SoftwareHsmKeys {
  readonly serverSetup: string;
  readonly sealingKey: Uint8Array;
}

/** Options of {@link openSoftwareHsm}. */
export interface SoftwareHsmOptions {
  /** Key file path; created 0600 (atomically) when missing. Ignored if `keys` is given. */
  readonly keyFile?: string;
  /** Key material given directly (e.g. parsed from `BACKVAULT_HSM_KEYS`). */
  readonly keys?: SoftwareHsmKeys;
  /** Login state lifetime, ms. Default 60 s. */
  readonly loginStateTtlMs?: number;
  /** Registration ticket lifetime, ms. Default 300 s. */
  readonly registrationTicketTtlMs?: number;
  /** Clock (ms since epoch); injectable for tests. */
  readonly now?: () => number;
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

async function fsyncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, fsConstants.O_RDONLY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
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
 * Reads the key file, or creates it with fresh keys when it does not exist. Creation is
 * atomic: written to a private temporary file (0600, O_EXCL), fsynced, then hard-linked
 * into place (fails if another process won the race, whose file is then read).
 * @throws UsageError if the file is group/other accessible, owned by another user or malformed.
 */
export async function loadOrCreateKeyFile(path: string): Promise<SoftwareHsmKeys> {
  try {
    const st = await fsp.stat(path);
    checkPrivate(st, path);
    return decodeSoftwareHsmKeys(await fsp.readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const keys = await generateSoftwareHsmKeys();
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const h = await fsp.open(tmp, 'wx', 0o600);
  try {
    await h.writeFile(encodeSoftwareHsmKeys(keys));
    await h.sync();
  } finally {
    await h.close();
  }
  try {
    await fsp.link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    await fsp.unlink(tmp);
    return loadOrCreateKeyFile(path);
  }
  await fsp.unlink(tmp);
  await fsyncDir(dirname(path));
  return keys;
}

function utf8(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

function aad(label: string, accountId: string, header: Uint8Array): Buffer {
  return Buffer.concat([utf8(label), Buffer.of(0), utf8(accountId), Buffer.of(0), header]);
}

function gcmSeal(key: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(ad);
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

/** Returns the plaintext, or undefined when authentication fails. */
function gcmOpen(key: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Buffer | undefined {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
  const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  try {
    const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, NONCE_BYTES));
    d.setAAD(ad);
    d.setAuthTag(b.subarray(b.length - TAG_BYTES));
    return Buffer.concat([d.update(b.subarray(NONCE_BYTES, b.length - TAG_BYTES)), d.final()]);
  } catch {
    return undefined;
  }
}

/** Header of a sealed ticket/state, authenticated as AAD: version, expiry, binding. */
function encodeHeader(expiresAt: number, binding: string): Buffer {
  const b = utf8(binding);
  if (b.length > 0xffff) throw new BadRequestError('binding too long');
  const h = Buffer.alloc(1 + 8 + 2);
  h.writeUInt8(SEAL_VERSION, 0);
  h.writeBigUInt64BE(BigInt(expiresAt), 1);
  h.writeUInt16BE(b.length, 9);
  return Buffer.concat([h, b]);
}

function decodeHeader(
  sealed: Buffer,
): { header: Buffer; expiresAt: number; binding: string; rest: Buffer } | undefined {
  if (sealed.length < 11 || sealed.readUInt8(0) !== SEAL_VERSION) return undefined;
  const len = sealed.readUInt16BE(9);
  if (sealed.length < 11 + len) return undefined;
  return {
    header: sealed.subarray(0, 11 + len),
    expiresAt: Number(sealed.readBigUInt64BE(1)),
    binding: sealed.subarray(11, 11 + len).toString('utf8'),
    rest: sealed.subarray(11 + len),
  };
}

interface RecordPlain {
  readonly credentialId: string;
  readonly registrationRecord: string;
}

/**
 * Software implementation of {@link Hsm}. Create with {@link openSoftwareHsm}.
 * Secrets live in private fields, so they never show in `util.inspect` or JSON.
 */
export class SoftwareHsm implements Hsm {
  readonly #serverSetup: string;
  readonly #recordKey: Buffer;
  readonly #ticketKey: Buffer;
  readonly #loginKey: Buffer;
  readonly #publicKey: string;
  readonly #loginTtlMs: number;
  readonly #ticketTtlMs: number;
  readonly #now: () => number;

  /** Use {@link openSoftwareHsm}; `opaque.ready` must have resolved. */
  constructor(keys: SoftwareHsmKeys, options: SoftwareHsmOptions = {}) {
    this.#serverSetup = keys.serverSetup;
    const derive = (label: string) =>
      Buffer.from(hkdfSync('sha256', keys.sealingKey, new Uint8Array(0), label, 32));
    // Distinct keys per purpose: a sealed record can never be passed off as a login state.
    this.#recordKey = derive(LABEL_RECORD);
    this.#ticketKey = derive(LABEL_TICKET);
    this.#loginKey = derive(LABEL_LOGIN);
    this.#publicKey = opaque.server.getPublicKey(keys.serverSetup);
    this.#loginTtlMs = options.loginStateTtlMs ?? 60_000;
    this.#ticketTtlMs = options.registrationTicketTtlMs ?? 300_000;
    this.#now = options.now ?? Date.now;
  }

  /** @inheritdoc */
  async serverPublicKey(): Promise<string> {
    return this.#publicKey;
  }

  /** @inheritdoc */
  async createRegistrationResponse(
    accountId: string,
    registrationRequest: string,
    binding: string,
  ): Promise<RegistrationStart> {
    const credentialId = randomBytes(18).toString('base64url');
    let registrationResponse: string;
    try {
      ({ registrationResponse } = opaque.server.createRegistrationResponse({
        serverSetup: this.#serverSetup,
        userIdentifier: credentialId,
        registrationRequest,
      }));
    } catch {
      throw new BadRequestError('registrationRequest is not a valid OPAQUE message');
    }
    const header = encodeHeader(this.#now() + this.#ticketTtlMs, binding);
    const body = gcmSeal(this.#ticketKey, aad(LABEL_TICKET, accountId, header), utf8(credentialId));
    return {
      registrationResponse,
      registrationTicket: Buffer.concat([header, body]).toString('base64url'),
    };
  }

  /** @inheritdoc */
  async finishRegistration(
    accountId: string,
    registrationTicket: string,
    registrationRecord: string,
    binding: string,
  ): Promise<RegistrationFinish> {
    const plain = this.#openTimed(
      this.#ticketKey,
      LABEL_TICKET,
      accountId,
      registrationTicket,
      binding,
      'registration ticket',
    );
    const credentialId = plain.toString('utf8');
    const record: RecordPlain = { credentialId, registrationRecord };
    const sealedRecord = await this.sealRecord(accountId, utf8(JSON.stringify(record)));
    return { credentialId, sealedRecord };
  }

  /** @inheritdoc */
  async sealRecord(accountId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    const header = Buffer.of(SEAL_VERSION);
    return new Uint8Array(
      Buffer.concat([
        header,
        gcmSeal(this.#recordKey, aad(LABEL_RECORD, accountId, header), plaintext),
      ]),
    );
  }

  /** @inheritdoc */
  async openRecord(accountId: string, sealed: Uint8Array): Promise<Uint8Array> {
    const b = Buffer.from(sealed);
    const header = b.subarray(0, 1);
    const plain =
      b.length > 0 && b[0] === SEAL_VERSION
        ? gcmOpen(this.#recordKey, aad(LABEL_RECORD, accountId, header), b.subarray(1))
        : undefined;
    if (!plain) throw new CorruptBackupError('sealed vault record failed authentication');
    return new Uint8Array(plain);
  }

  /** @inheritdoc */
  async startLogin(
    accountId: string,
    sealedRecord: Uint8Array,
    startLoginRequest: string,
    binding: string,
  ): Promise<LoginStart> {
    const rec = this.#parseRecord(await this.openRecord(accountId, sealedRecord));
    let r: { serverLoginState: string; loginResponse: string };
    try {
      r = opaque.server.startLogin({
        serverSetup: this.#serverSetup,
        userIdentifier: rec.credentialId,
        registrationRecord: rec.registrationRecord,
        startLoginRequest,
      });
    } catch {
      throw new BadRequestError('startLoginRequest is not a valid OPAQUE KE1');
    }
    const header = encodeHeader(this.#now() + this.#loginTtlMs, binding);
    const body = gcmSeal(
      this.#loginKey,
      aad(LABEL_LOGIN, accountId, header),
      utf8(r.serverLoginState),
    );
    return {
      loginResponse: r.loginResponse,
      sealedLoginState: Buffer.concat([header, body]).toString('base64url'),
    };
  }

  /** @inheritdoc */
  async finishLogin(
    accountId: string,
    sealedLoginState: string,
    finishLoginRequest: string,
    binding: string,
  ): Promise<{ readonly sessionKey: Uint8Array }> {
    const state = this.#openTimed(
      this.#loginKey,
      LABEL_LOGIN,
      accountId,
      sealedLoginState,
      binding,
      'login state',
    );
    let sessionKey: string;
    try {
      ({ sessionKey } = opaque.server.finishLogin({
        serverLoginState: state.toString('utf8'),
        finishLoginRequest,
      }));
    } catch {
      throw new ForbiddenError('login finish did not authenticate');
    }
    return { sessionKey: new Uint8Array(Buffer.from(sessionKey, 'base64url')) };
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    this.#recordKey.fill(0);
    this.#ticketKey.fill(0);
    this.#loginKey.fill(0);
  }

  #parseRecord(plain: Uint8Array): RecordPlain {
    try {
      const v = JSON.parse(Buffer.from(plain).toString('utf8')) as RecordPlain;
      if (typeof v.credentialId === 'string' && typeof v.registrationRecord === 'string') return v;
    } catch {
      // fall through: authenticated but unparsable means a bug or a key reuse; fail closed
    }
    throw new CorruptBackupError('sealed vault record has an unknown layout');
  }

  #openTimed(
    key: Buffer,
    label: string,
    accountId: string,
    sealedB64: string,
    binding: string,
    what: string,
  ): Buffer {
    const sealed = Buffer.from(sealedB64, 'base64url');
    const parsed = decodeHeader(sealed);
    const plain = parsed
      ? gcmOpen(key, aad(label, accountId, parsed.header), parsed.rest)
      : undefined;
    if (!parsed || !plain) throw new BadRequestError(`${what} is not valid for this account`);
    // Checked after authentication, so a forged expiry or binding is "invalid", not "expired".
    if (this.#now() > parsed.expiresAt) {
      throw new BadRequestError(`${what} expired; start again`);
    }
    if (parsed.binding !== binding) {
      throw new ConflictError(`${what} was already used or superseded; start again`);
    }
    return plain;
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
