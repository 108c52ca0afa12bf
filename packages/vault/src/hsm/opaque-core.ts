/**
 * The OPAQUE steps of the vault HSM, shared by every {@link Hsm} implementation. An
 * implementation differs only in (a) where the OPAQUE server setup comes from and (b) how
 * sealing is done — a {@link Sealer}: AES-256-GCM in process memory (software HSM) or
 * inside a PKCS#11 token.
 *
 * Byte layouts (identical to `software-hsm.ts`, so a mixed fleet interoperates):
 * - sealed record: `0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)`, plaintext the JSON
 *   `{"credentialId","registrationRecord"}` (or any bytes given to `sealRecord`);
 * - ticket / login state (base64url): `header ‖ nonce(12) ‖ ciphertext ‖ tag(16)` with
 *   `header = 0x01 ‖ expiresAt(u64 BE, ms) ‖ len(u16 BE) ‖ binding(UTF-8)`;
 * - associated data: `label ‖ 0x00 ‖ accountId ‖ 0x00 ‖ header`, labels
 *   `backvault/hsm/record/v1`, `backvault/hsm/registration-ticket/v1`,
 *   `backvault/hsm/login-state/v1`;
 * - each purpose has its own key: HKDF-SHA256(fleet sealing key, salt = empty,
 *   info = label, 32 bytes). {@link derivePurposeKeys} computes them.
 */
import {
  createCipheriv,
  createDecipheriv,
  hkdfSync,
  randomBytes,
  randomFillSync,
} from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import {
  BadRequestError,
  ConflictError,
  CorruptBackupError,
  ForbiddenError,
} from 'backvault/errors';
import type { Hsm, LoginStart, RegistrationFinish, RegistrationStart } from './hsm.js';

/** What a sealed blob is for; each purpose has its own key. */
export type SealPurpose = 'record' | 'ticket' | 'login';

/** The HKDF info label (and AAD prefix) of each purpose. Part of the format; never change. */
export const SEAL_LABELS: Readonly<Record<SealPurpose, string>> = {
  record: 'backvault/hsm/record/v1',
  ticket: 'backvault/hsm/registration-ticket/v1',
  login: 'backvault/hsm/login-state/v1',
};

/** GCM nonce length of every sealed blob, bytes. */
export const NONCE_BYTES = 12;
/** GCM tag length of every sealed blob, bytes. */
export const TAG_BYTES = 16;
const SEAL_VERSION = 1;
/** The header of a sealed record: the version byte alone. */
const RECORD_HEADER = Uint8Array.of(SEAL_VERSION);

/**
 * AES-256-GCM under one key per {@link SealPurpose}, the key held wherever the
 * implementation keeps it. Must be safe to call concurrently.
 */
export interface Sealer {
  /** Returns `nonce(12) ‖ ciphertext ‖ tag(16)` under a fresh random nonce. */
  seal(purpose: SealPurpose, aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array>;
  /**
   * Returns the plaintext, or `undefined` when authentication fails (any modified byte,
   * other AAD, too short). Throws only for operational failures (device gone, session lost).
   */
  open(purpose: SealPurpose, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array | undefined>;
  /** Releases the keys or handles. */
  close(): Promise<void>;
}

/** The three purpose keys derived from a 32-byte fleet sealing key (see module comment). */
export function derivePurposeKeys(sealingKey: Uint8Array): Record<SealPurpose, Buffer> {
  const derive = (p: SealPurpose) =>
    Buffer.from(hkdfSync('sha256', sealingKey, new Uint8Array(0), SEAL_LABELS[p], 32));
  return { record: derive('record'), ticket: derive('ticket'), login: derive('login') };
}

/**
 * A {@link Sealer} with the keys in process memory (node:crypto). The software HSM's
 * sealing, given here so both HSMs can share {@link OpaqueCore}.
 */
export function createMemorySealer(sealingKey: Uint8Array): Sealer {
  const keys = derivePurposeKeys(sealingKey);
  return {
    async seal(purpose, aad, plaintext) {
      // One allocation for `nonce ‖ ciphertext ‖ tag` (a vault login seals three times).
      const out = Buffer.allocUnsafe(NONCE_BYTES + plaintext.length + TAG_BYTES);
      const nonce = randomFillSync(out, 0, NONCE_BYTES).subarray(0, NONCE_BYTES);
      const c = createCipheriv('aes-256-gcm', keys[purpose], nonce);
      c.setAAD(aad);
      let at = NONCE_BYTES + c.update(plaintext).copy(out, NONCE_BYTES);
      at += c.final().copy(out, at);
      c.getAuthTag().copy(out, at);
      return out;
    },
    async open(purpose, aad, sealed) {
      if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
      const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
      try {
        const d = createDecipheriv('aes-256-gcm', keys[purpose], b.subarray(0, NONCE_BYTES));
        d.setAAD(aad);
        d.setAuthTag(b.subarray(b.length - TAG_BYTES));
        const plain = d.update(b.subarray(NONCE_BYTES, b.length - TAG_BYTES));
        const rest = d.final();
        return rest.length ? Buffer.concat([plain, rest]) : plain;
      } catch {
        return undefined;
      }
    },
    async close() {
      for (const k of Object.values(keys)) k.fill(0);
    },
  };
}

/** Lifetimes and clock of {@link OpaqueCore}. */
export interface OpaqueCoreOptions {
  /** Login state lifetime, ms. Default 60 s. */
  readonly loginStateTtlMs?: number;
  /** Registration ticket lifetime, ms. Default 300 s. */
  readonly registrationTicketTtlMs?: number;
  /** Clock (ms since epoch); injectable for tests. */
  readonly now?: () => number;
}

function utf8(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

/** `label ‖ 0x00` of each purpose, encoded once. */
const AAD_PREFIX: Readonly<Record<SealPurpose, Buffer>> = {
  record: Buffer.from(`${SEAL_LABELS.record}\0`, 'utf8'),
  ticket: Buffer.from(`${SEAL_LABELS.ticket}\0`, 'utf8'),
  login: Buffer.from(`${SEAL_LABELS.login}\0`, 'utf8'),
};

/** The associated data of a sealed blob (see module comment). */
export function sealAad(purpose: SealPurpose, accountId: string, header: Uint8Array): Buffer {
  const prefix = AAD_PREFIX[purpose];
  const accountBytes = Buffer.byteLength(accountId, 'utf8');
  const aad = Buffer.allocUnsafe(prefix.length + accountBytes + 1 + header.length);
  let at = prefix.copy(aad, 0);
  at += aad.write(accountId, at, 'utf8');
  aad[at++] = 0;
  aad.set(header, at);
  return aad;
}

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
 * {@link Hsm} built from an OPAQUE server setup and a {@link Sealer}. `opaque.ready` must
 * have resolved before construction. The server setup lives in a private field (a JS
 * string: it cannot be wiped, see SECURITY.md).
 */
export class OpaqueCore implements Hsm {
  readonly #serverSetup: string;
  readonly #sealer: Sealer;
  readonly #publicKey: string;
  readonly #loginTtlMs: number;
  readonly #ticketTtlMs: number;
  readonly #now: () => number;

  /**
   * @throws Error from OPAQUE if `serverSetup` is malformed; callers load it from an
   *   authenticated store, so that means a bug or a corrupted key store.
   */
  constructor(serverSetup: string, sealer: Sealer, options: OpaqueCoreOptions = {}) {
    this.#serverSetup = serverSetup;
    this.#sealer = sealer;
    this.#publicKey = opaque.server.getPublicKey(serverSetup);
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
    const body = await this.#sealer.seal(
      'ticket',
      sealAad('ticket', accountId, header),
      utf8(credentialId),
    );
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
    const plain = await this.#openTimed(
      'ticket',
      accountId,
      registrationTicket,
      binding,
      'registration ticket',
    );
    const credentialId = Buffer.from(plain).toString('utf8');
    const record: RecordPlain = { credentialId, registrationRecord };
    const sealedRecord = await this.sealRecord(accountId, utf8(JSON.stringify(record)));
    return { credentialId, sealedRecord };
  }

  /** @inheritdoc */
  async sealRecord(accountId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    const body = await this.#sealer.seal(
      'record',
      sealAad('record', accountId, RECORD_HEADER),
      plaintext,
    );
    const out = new Uint8Array(1 + body.length);
    out[0] = SEAL_VERSION;
    out.set(body, 1);
    return out;
  }

  /** @inheritdoc */
  async openRecord(accountId: string, sealed: Uint8Array): Promise<Uint8Array> {
    const plain =
      sealed.length > 0 && sealed[0] === SEAL_VERSION
        ? await this.#sealer.open(
            'record',
            sealAad('record', accountId, RECORD_HEADER),
            sealed.subarray(1),
          )
        : undefined;
    if (!plain) throw new CorruptBackupError('sealed vault record failed authentication');
    return plain;
  }

  /** @inheritdoc */
  async startLogin(
    accountId: string,
    sealedRecord: Uint8Array,
    startLoginRequest: string,
    binding: string,
  ): Promise<LoginStart> {
    const rec = parseRecord(await this.openRecord(accountId, sealedRecord));
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
    const body = await this.#sealer.seal(
      'login',
      sealAad('login', accountId, header),
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
    const state = await this.#openTimed(
      'login',
      accountId,
      sealedLoginState,
      binding,
      'login state',
    );
    let sessionKey: string;
    try {
      ({ sessionKey } = opaque.server.finishLogin({
        serverLoginState: Buffer.from(state).toString('utf8'),
        finishLoginRequest,
      }));
    } catch {
      throw new ForbiddenError('login finish did not authenticate');
    }
    return { sessionKey: new Uint8Array(Buffer.from(sessionKey, 'base64url')) };
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    await this.#sealer.close();
  }

  async #openTimed(
    purpose: SealPurpose,
    accountId: string,
    sealedB64: string,
    binding: string,
    what: string,
  ): Promise<Uint8Array> {
    const sealed = Buffer.from(sealedB64, 'base64url');
    const parsed = decodeHeader(sealed);
    const plain = parsed
      ? await this.#sealer.open(purpose, sealAad(purpose, accountId, parsed.header), parsed.rest)
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

function parseRecord(plain: Uint8Array): RecordPlain {
  try {
    const v = JSON.parse(Buffer.from(plain).toString('utf8')) as RecordPlain;
    if (typeof v.credentialId === 'string' && typeof v.registrationRecord === 'string') return v;
  } catch {
    // authenticated but unparsable means a bug or a key reuse; fail closed
  }
  throw new CorruptBackupError('sealed vault record has an unknown layout');
}
