/**
 * The PKCS#11 HSM: {@link OpaqueCore} with sealing done inside a PKCS#11 token (tested on
 * SoftHSM2 2.6.1; meant for Thales Luna, Entrust nShield, YubiHSM 2, AWS CloudHSM).
 *
 * What stays inside the token (never in this process, not even at start):
 * - the three sealing keys `<prefix>-record-key`, `<prefix>-ticket-key`,
 *   `<prefix>-login-key`: AES-256 secret keys with CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE
 *   true and CKA_EXTRACTABLE, CKA_WRAP, CKA_UNWRAP false. On a standalone node they are
 *   generated in the token (CKM_AES_KEY_GEN, {@link initializePkcs11Token}); on a fleet
 *   node they are unwrapped into the token from a ceremony bundle (`ceremony.ts`), because
 *   every node must hold the same keys — see the trade-off written there;
 * - the wrap key `<prefix>-wrap-key` (AES-256, same attributes), generated in the token,
 *   which protects the OPAQUE server setup at rest;
 * - every AES-256-GCM operation with those keys: sealing and opening vault records,
 *   registration tickets and login states (CKM_AES_GCM, 96-bit nonce, 128-bit tag, the
 *   account id and expiry/binding header as AAD; layout in `opaque-core.ts`);
 * - the ceremony transport private key `<prefix>-transport-key` (RSA-3072, unwrap only).
 *
 * What does NOT stay inside the token:
 * - the OPAQUE server setup (OPRF seed and the server's long-term AKE private key). It is
 *   stored in the token only encrypted under the wrap key (a CKO_DATA object
 *   `<prefix>-server-setup`, CKA_PRIVATE: `0x01 ‖ nonce ‖ ciphertext ‖ tag`, AAD
 *   `backvault/pkcs11/server-setup/v1`), decrypted by the token at start, and then held in
 *   this process's memory for the life of the process, because PKCS#11 cannot evaluate an
 *   OPRF or run the OPAQUE 3DH key exchange over ristretto255 (SoftHSM2 has neither X25519
 *   derivation nor raw point multiplication). Whoever can read this process's memory can
 *   take it, and with it run offline guesses against stolen OPAQUE records without the
 *   attempt limit. A real HSM with custom firmware (nShield CodeSafe, Luna FM) could keep
 *   it inside; this implementation does not claim to.
 * - the attempt counter: it is kept and checked by the vault process in its store before
 *   `startLogin` is called (`Hsm.startLogin` contract), not by the token. The token does
 *   seal the records, so a stolen database alone is useless, but a compromised vault
 *   process can skip the counter, and while it holds the logged-in session it can ask the
 *   token to open any record (it cannot copy the sealing keys out, so that power ends with
 *   the compromise; the server setup it may have copied does not).
 * - plaintexts and nonces: opened records, tickets and login states (OPAQUE server login
 *   state, session keys) are in process memory while in use; nonces come from
 *   node:crypto's CSPRNG, not C_GenerateRandom (random 96-bit nonces: keep under 2^32
 *   seals per key, far above any vault's volume).
 * - the user PIN: read from the options or `BACKVAULT_PKCS11_PIN`, kept in memory for the
 *   log-in, never logged and never in an error message.
 *
 * Concurrency: pkcs11js calls are synchronous, so one logged-in session serves every call
 * and an Init/Encrypt pair can never interleave with another. Measured on SoftHSM2 2.6.1
 * (2-core Debian 12 VM shared with other jobs, load ~8, 2026-11-24; `test/hsm/pkcs11.test.ts`
 * prints it): 25–31k seals/s and 30–36k opens/s of 256-byte records on one core; server
 * `startLogin` (open record + OPAQUE + seal state) 0.9–1.4 ms. A network HSM with
 * millisecond calls would want a session pool and the `*Async` calls; that is not done.
 */
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import * as opaque from '@serenity-kit/opaque';
import { CorruptBackupError, UnavailableError, UsageError } from 'backvault/errors';
import {
  NONCE_BYTES,
  OpaqueCore,
  TAG_BYTES,
  type OpaqueCoreOptions,
  type SealPurpose,
  type Sealer,
} from './opaque-core.js';

type Handle = Buffer;
type Template = { type: number; value?: number | boolean | string | Buffer }[];

/** Environment variable: path of the PKCS#11 module (shared library). */
export const PKCS11_MODULE_ENV = 'BACKVAULT_PKCS11_MODULE';
/** Environment variable: label of the token to use. */
export const PKCS11_TOKEN_ENV = 'BACKVAULT_PKCS11_TOKEN';
/** Environment variable: the token's user PIN. */
export const PKCS11_PIN_ENV = 'BACKVAULT_PKCS11_PIN';
/** Default object label prefix. */
export const DEFAULT_LABEL_PREFIX = 'backvault';

const SETUP_AAD = Buffer.from('backvault/pkcs11/server-setup/v1', 'utf8');
const SETUP_VERSION = 1;

/** Where the token is and how to log in. Every field falls back to its environment variable. */
export interface Pkcs11TokenOptions {
  /** PKCS#11 module path (default `BACKVAULT_PKCS11_MODULE`). Loading it runs its code. */
  readonly module?: string;
  /** Token label (default `BACKVAULT_PKCS11_TOKEN`). */
  readonly tokenLabel?: string;
  /** User PIN (default `BACKVAULT_PKCS11_PIN`). Never logged. */
  readonly pin?: string;
  /** Prefix of the object labels (default `backvault`), so one token can hold several vaults. */
  readonly labelPrefix?: string;
}

/** Options of {@link openPkcs11Hsm}. */
export interface Pkcs11HsmOptions extends Pkcs11TokenOptions, OpaqueCoreOptions {
  /**
   * The fleet's pinned OPAQUE server public key. When given, opening fails unless the
   * token holds exactly that fleet's keys (catches a node installed with the wrong bundle).
   */
  readonly expectedServerPublicKey?: string;
}

/** The labels of the objects a vault keeps in its token. */
export function objectLabels(prefix = DEFAULT_LABEL_PREFIX): {
  readonly keys: Readonly<Record<SealPurpose, string>>;
  readonly wrapKey: string;
  readonly serverSetup: string;
  readonly transportKey: string;
} {
  return {
    keys: {
      record: `${prefix}-record-key`,
      ticket: `${prefix}-ticket-key`,
      login: `${prefix}-login-key`,
    },
    wrapKey: `${prefix}-wrap-key`,
    serverSetup: `${prefix}-server-setup`,
    transportKey: `${prefix}-transport-key`,
  };
}

// --- Module lifetime: C_Initialize once per process and library, C_Finalize with the last user.

interface LoadedModule {
  readonly lib: pkcs11js.PKCS11;
  users: number;
  readonly ownsInit: boolean;
}
const modules = new Map<string, LoadedModule>();

function ckrName(e: unknown): string {
  const m = e instanceof Error ? /CKR_[A-Z0-9_]+/.exec(e.message) : null;
  return m ? m[0] : 'unknown PKCS#11 failure';
}

function acquireModule(path: string): pkcs11js.PKCS11 {
  const have = modules.get(path);
  if (have) {
    have.users += 1;
    return have.lib;
  }
  const lib = new pkcs11js.PKCS11();
  try {
    lib.load(path);
  } catch (e) {
    throw new UsageError(
      `cannot load PKCS#11 module ${path}: ${e instanceof Error ? e.message : String(e)}`,
      `Check --pkcs11-module / ${PKCS11_MODULE_ENV} (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so).`,
    );
  }
  let ownsInit = true;
  try {
    lib.C_Initialize();
  } catch (e) {
    // Another library in this process initialised it: use it, never finalise it.
    if (ckrName(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      lib.close();
      throw new UnavailableError(`PKCS#11 module failed to initialise (${ckrName(e)})`);
    }
    ownsInit = false;
  }
  modules.set(path, { lib, users: 1, ownsInit });
  return lib;
}

function releaseModule(path: string): void {
  const m = modules.get(path);
  if (!m) return;
  m.users -= 1;
  if (m.users > 0) return;
  modules.delete(path);
  try {
    if (m.ownsInit) m.lib.C_Finalize();
  } finally {
    m.lib.close();
  }
}

function resolve(o: Pkcs11TokenOptions): {
  module: string;
  tokenLabel: string;
  pin: string;
  prefix: string;
} {
  const module = o.module ?? process.env[PKCS11_MODULE_ENV];
  const tokenLabel = o.tokenLabel ?? process.env[PKCS11_TOKEN_ENV];
  const pin = o.pin ?? process.env[PKCS11_PIN_ENV];
  if (!module) throw new UsageError(`PKCS#11 HSM needs a module path (${PKCS11_MODULE_ENV})`);
  if (!tokenLabel) throw new UsageError(`PKCS#11 HSM needs a token label (${PKCS11_TOKEN_ENV})`);
  if (!pin) throw new UsageError(`PKCS#11 HSM needs the user PIN (${PKCS11_PIN_ENV})`);
  return { module, tokenLabel, pin, prefix: o.labelPrefix ?? DEFAULT_LABEL_PREFIX };
}

/** Attributes of a vault AES key: usable for GCM inside the token, never readable. */
function aesKeyTemplate(label: string, onToken: boolean): Template {
  const p = pkcs11js;
  return [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
    { type: p.CKA_LABEL, value: label },
    { type: p.CKA_TOKEN, value: onToken },
    { type: p.CKA_PRIVATE, value: true },
    { type: p.CKA_SENSITIVE, value: true },
    { type: p.CKA_EXTRACTABLE, value: false },
    { type: p.CKA_ENCRYPT, value: true },
    { type: p.CKA_DECRYPT, value: true },
    { type: p.CKA_WRAP, value: false },
    { type: p.CKA_UNWRAP, value: false },
    { type: p.CKA_SIGN, value: false },
    { type: p.CKA_VERIFY, value: false },
    { type: p.CKA_DERIVE, value: false },
  ];
}

function gcm(iv: Buffer, aad: Uint8Array): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: {
      type: pkcs11js.CK_PARAMS_AES_GCM,
      iv,
      ivBits: NONCE_BYTES * 8,
      tagBits: TAG_BYTES * 8,
      aad: Buffer.from(aad),
    } as pkcs11js.IParams,
  };
}

/** PKCS#11 return values a failed GCM tag check produces (SoftHSM2 says GENERAL_ERROR). */
const INTEGRITY_CKRS = new Set([
  'CKR_GENERAL_ERROR',
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
]);

/**
 * What C_UnwrapKey returns for wrapped bytes or OAEP parameters it will not take. The
 * parameters come from the (untrusted) bundle, so a bad one is a refused bundle too.
 */
const UNWRAP_REFUSED_CKRS = new Set([
  'CKR_WRAPPED_KEY_INVALID',
  'CKR_WRAPPED_KEY_LEN_RANGE',
  'CKR_GENERAL_ERROR',
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ARGUMENTS_BAD',
  'CKR_MECHANISM_PARAM_INVALID',
]);

/**
 * One logged-in read/write session on a token: the low-level operations the PKCS#11 HSM
 * and the key ceremony need. Every call is synchronous inside (pkcs11js), so calls never
 * interleave. Not for general use: prefer {@link openPkcs11Hsm}.
 */
export class TokenSession {
  readonly #lib: pkcs11js.PKCS11;
  readonly #module: string;
  #session: Handle | undefined;
  /** The token label this session is logged in to. */
  readonly tokenLabel: string;
  /** Labels of the vault's objects in this token. */
  readonly labels: ReturnType<typeof objectLabels>;

  private constructor(
    lib: pkcs11js.PKCS11,
    module: string,
    session: Handle,
    label: string,
    prefix: string,
  ) {
    this.#lib = lib;
    this.#module = module;
    this.#session = session;
    this.tokenLabel = label;
    this.labels = objectLabels(prefix);
  }

  /**
   * Loads the module, finds the token by label and logs in as user.
   * @throws UsageError if options are missing, the module does not load, no token has that
   *   label, or the PIN is wrong or locked (the message never contains the PIN).
   * @throws UnavailableError if the token fails otherwise.
   */
  static open(options: Pkcs11TokenOptions): TokenSession {
    const o = resolve(options);
    const lib = acquireModule(o.module);
    let session: Handle | undefined;
    try {
      const slot = lib
        .C_GetSlotList(true)
        .find((s) => lib.C_GetTokenInfo(s).label.trimEnd() === o.tokenLabel);
      if (!slot) {
        throw new UsageError(
          `no PKCS#11 token labelled "${o.tokenLabel}" in ${o.module}`,
          `Check ${PKCS11_TOKEN_ENV}; list tokens with \`pkcs11-tool --module ${o.module} -L\`.`,
        );
      }
      session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        lib.C_Login(session, pkcs11js.CKU_USER, o.pin);
      } catch (e) {
        const ckr = ckrName(e);
        // Login state is per process and token: another session of ours already did it.
        if (ckr !== 'CKR_USER_ALREADY_LOGGED_IN') {
          if (
            ckr === 'CKR_PIN_INCORRECT' ||
            ckr === 'CKR_PIN_LOCKED' ||
            ckr === 'CKR_PIN_EXPIRED'
          ) {
            throw new UsageError(
              `PKCS#11 login to token "${o.tokenLabel}" failed (${ckr})`,
              `Check the user PIN in ${PKCS11_PIN_ENV}; repeated wrong PINs lock the token.`,
            );
          }
          throw new UnavailableError(`PKCS#11 login to token "${o.tokenLabel}" failed (${ckr})`);
        }
      }
      return new TokenSession(lib, o.module, session, o.tokenLabel, o.prefix);
    } catch (e) {
      if (session) {
        try {
          lib.C_CloseSession(session);
        } catch {
          // already failing; the original error matters
        }
      }
      releaseModule(o.module);
      if (e instanceof UsageError || e instanceof UnavailableError) throw e;
      throw new UnavailableError(`PKCS#11 token "${o.tokenLabel}" failed (${ckrName(e)})`);
    }
  }

  get #s(): Handle {
    if (!this.#session) throw new UnavailableError('PKCS#11 session is closed');
    return this.#session;
  }

  /** Runs a token call, turning PKCS#11 failures into {@link UnavailableError}. */
  #call<T>(what: string, f: (lib: pkcs11js.PKCS11, s: Handle) => T): T {
    const s = this.#s;
    try {
      return f(this.#lib, s);
    } catch (e) {
      if (e instanceof UsageError || e instanceof UnavailableError) throw e;
      throw new UnavailableError(`PKCS#11 ${what} failed (${ckrName(e)})`);
    }
  }

  /** All objects of `cls` with this label (usually zero or one). */
  find(label: string, cls: number): Handle[] {
    return this.#call('find', (lib, s) => {
      lib.C_FindObjectsInit(s, [
        { type: pkcs11js.CKA_CLASS, value: cls },
        { type: pkcs11js.CKA_LABEL, value: label },
      ]);
      try {
        return lib.C_FindObjects(s, 16);
      } finally {
        lib.C_FindObjectsFinal(s);
      }
    });
  }

  /** The single object of `cls` with this label, or undefined. @throws CorruptBackupError if several. */
  findOne(label: string, cls: number): Handle | undefined {
    const all = this.find(label, cls);
    if (all.length > 1) {
      throw new CorruptBackupError(`PKCS#11 token holds ${all.length} objects labelled ${label}`);
    }
    return all[0];
  }

  /** Destroys every object (of any class) with this label. */
  destroyAll(label: string): void {
    for (const cls of [
      pkcs11js.CKO_SECRET_KEY,
      pkcs11js.CKO_PRIVATE_KEY,
      pkcs11js.CKO_PUBLIC_KEY,
      pkcs11js.CKO_DATA,
    ]) {
      for (const h of this.find(label, cls)) {
        this.#call('destroy', (lib, s) => lib.C_DestroyObject(s, h));
      }
    }
  }

  /** Generates a non-extractable AES-256 key inside the token (CKM_AES_KEY_GEN). */
  generateAesKey(label: string, onToken = true): Handle {
    return this.#call('key generation', (lib, s) =>
      lib.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        ...aesKeyTemplate(label, onToken),
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      ]),
    );
  }

  /** AES-256-GCM encryption inside the token: returns `nonce ‖ ciphertext ‖ tag`. */
  gcmSeal(key: Handle, aad: Uint8Array, plaintext: Uint8Array): Buffer {
    const iv = randomBytes(NONCE_BYTES);
    const out = this.#call('encrypt', (lib, s) => {
      lib.C_EncryptInit(s, gcm(iv, aad), key);
      // SoftHSM2 refuses C_Encrypt of zero bytes (CKR_ARGUMENTS_BAD); Final alone gives the tag.
      if (plaintext.length === 0) return lib.C_EncryptFinal(s, Buffer.alloc(TAG_BYTES));
      return lib.C_Encrypt(s, Buffer.from(plaintext), Buffer.alloc(plaintext.length + TAG_BYTES));
    });
    return Buffer.concat([iv, out]);
  }

  /** AES-256-GCM decryption inside the token; `undefined` when authentication fails. */
  gcmOpen(key: Handle, aad: Uint8Array, sealed: Uint8Array): Buffer | undefined {
    if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
    const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const s = this.#s;
    this.#call('decrypt', (lib) => lib.C_DecryptInit(s, gcm(b.subarray(0, NONCE_BYTES), aad), key));
    try {
      const body = b.subarray(NONCE_BYTES);
      return Buffer.from(this.#lib.C_Decrypt(s, body, Buffer.alloc(body.length)));
    } catch (e) {
      if (INTEGRITY_CKRS.has(ckrName(e))) return undefined;
      throw new UnavailableError(`PKCS#11 decrypt failed (${ckrName(e)})`);
    }
  }

  /** Creates a private token data object holding `value`. */
  createData(label: string, value: Buffer): Handle {
    return this.#call('create object', (lib, s) =>
      lib.C_CreateObject(s, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_APPLICATION, value: 'backvault' },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_MODIFIABLE, value: false },
        { type: pkcs11js.CKA_VALUE, value },
      ]),
    );
  }

  /** Reads attributes of an object. @throws UnavailableError when the token refuses (e.g. CKR_ATTRIBUTE_SENSITIVE). */
  getAttributes(h: Handle, types: readonly number[]): Buffer[] {
    return this.#call('read attribute', (lib, s) =>
      lib
        .C_GetAttributeValue(
          s,
          h,
          types.map((type) => ({ type })),
        )
        .map((a) => a.value),
    );
  }

  /**
   * Generates an RSA key pair inside the token for receiving ceremony bundles: the private
   * key can only unwrap (not decrypt, not sign) and never leaves. Returns the public
   * modulus and exponent.
   */
  generateTransportKeyPair(label: string, bits = 3072): { modulus: Buffer; exponent: Buffer } {
    const p = pkcs11js;
    const kp = this.#call('RSA key generation', (lib, s) =>
      lib.C_GenerateKeyPair(
        s,
        { mechanism: p.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          { type: p.CKA_LABEL, value: label },
          { type: p.CKA_TOKEN, value: true },
          { type: p.CKA_MODULUS_BITS, value: bits },
          { type: p.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: p.CKA_WRAP, value: true },
          { type: p.CKA_ENCRYPT, value: false },
          { type: p.CKA_VERIFY, value: false },
        ],
        [
          { type: p.CKA_LABEL, value: label },
          { type: p.CKA_TOKEN, value: true },
          { type: p.CKA_PRIVATE, value: true },
          { type: p.CKA_SENSITIVE, value: true },
          { type: p.CKA_EXTRACTABLE, value: false },
          { type: p.CKA_UNWRAP, value: true },
          { type: p.CKA_DECRYPT, value: false },
          { type: p.CKA_SIGN, value: false },
        ],
      ),
    );
    const [modulus, exponent] = this.getAttributes(kp.publicKey, [
      p.CKA_MODULUS,
      p.CKA_PUBLIC_EXPONENT,
    ]);
    if (!modulus || !exponent)
      throw new UnavailableError('PKCS#11 token returned no RSA public key');
    return { modulus, exponent };
  }

  /**
   * Unwraps an RSA-OAEP-wrapped AES-256 key into the token as a non-extractable key.
   * SoftHSM2 2.6.1 accepts OAEP only with SHA-1/MGF1-SHA-1 (SHA-256 gives
   * CKR_ARGUMENTS_BAD); OAEP's security does not rest on SHA-1's collision resistance.
   * @returns undefined when the token rejects the wrapped bytes (tampered, other key) or
   *   the OAEP parameters.
   */
  unwrapAesKey(
    unwrappingKey: Handle,
    wrapped: Buffer,
    oaepHash: 'sha1' | 'sha256',
    label: string,
    onToken: boolean,
  ): Handle | undefined {
    const p = pkcs11js;
    const mech: pkcs11js.Mechanism = {
      mechanism: p.CKM_RSA_PKCS_OAEP,
      parameter: {
        type: p.CK_PARAMS_RSA_OAEP,
        hashAlg: oaepHash === 'sha1' ? p.CKM_SHA_1 : p.CKM_SHA256,
        mgf: oaepHash === 'sha1' ? p.CKG_MGF1_SHA1 : p.CKG_MGF1_SHA256,
        source: 1, // CKZ_DATA_SPECIFIED, empty label
      } as pkcs11js.IParams,
    };
    try {
      return this.#lib.C_UnwrapKey(
        this.#s,
        mech,
        unwrappingKey,
        wrapped,
        aesKeyTemplate(label, onToken),
      );
    } catch (e) {
      const ckr = ckrName(e);
      if (UNWRAP_REFUSED_CKRS.has(ckr)) return undefined;
      throw new UnavailableError(`PKCS#11 unwrap failed (${ckr})`);
    }
  }

  /** Destroys one object. */
  destroy(h: Handle): void {
    this.#call('destroy', (lib, s) => lib.C_DestroyObject(s, h));
  }

  /** Closes the session (the token logs us out with our last session). Idempotent. */
  close(): void {
    const s = this.#session;
    if (!s) return;
    this.#session = undefined;
    try {
      this.#lib.C_CloseSession(s);
    } catch {
      // the token may already be gone; nothing left to release on our side
    } finally {
      releaseModule(this.#module);
    }
  }
}

/** The vault's key handles in one token, found by label. */
interface VaultObjects {
  readonly keys: Record<SealPurpose, Handle>;
  readonly wrapKey: Handle;
  readonly serverSetup: Handle;
}

function findVaultObjects(t: TokenSession): VaultObjects | undefined {
  const l = t.labels;
  const serverSetup = t.findOne(l.serverSetup, pkcs11js.CKO_DATA);
  if (!serverSetup) return undefined;
  const wrapKey = t.findOne(l.wrapKey, pkcs11js.CKO_SECRET_KEY);
  const record = t.findOne(l.keys.record, pkcs11js.CKO_SECRET_KEY);
  const ticket = t.findOne(l.keys.ticket, pkcs11js.CKO_SECRET_KEY);
  const login = t.findOne(l.keys.login, pkcs11js.CKO_SECRET_KEY);
  if (!wrapKey || !record || !ticket || !login) {
    throw new CorruptBackupError(
      `PKCS#11 token "${t.tokenLabel}" holds a server setup but not all vault keys`,
    );
  }
  return { keys: { record, ticket, login }, wrapKey, serverSetup };
}

function readServerSetup(t: TokenSession, o: VaultObjects): string {
  const [value] = t.getAttributes(o.serverSetup, [pkcs11js.CKA_VALUE]);
  const plain =
    value && value.length > 1 && value[0] === SETUP_VERSION
      ? t.gcmOpen(o.wrapKey, SETUP_AAD, value.subarray(1))
      : undefined;
  if (!plain) {
    throw new CorruptBackupError(
      `OPAQUE server setup in PKCS#11 token "${t.tokenLabel}" failed authentication`,
    );
  }
  const setup = plain.toString('utf8');
  plain.fill(0);
  try {
    opaque.server.getPublicKey(setup);
  } catch {
    throw new CorruptBackupError(
      `OPAQUE server setup in PKCS#11 token "${t.tokenLabel}" is malformed`,
    );
  }
  return setup;
}

/** True when the token already holds the vault's server setup object. */
export function hasVaultKeys(t: TokenSession): boolean {
  return t.findOne(t.labels.serverSetup, pkcs11js.CKO_DATA) !== undefined;
}

/**
 * Writes a vault key set into the token: the sealing keys come from `makeKeys` (generated
 * or unwrapped into the token by the caller), the wrap key is generated here, and the
 * server setup is stored encrypted under it. The server-setup object is created last, so a
 * crash midway leaves no half key set that opens (the next install clears the leftovers).
 * @throws UsageError if the token already holds a vault key set and `replace` is false.
 */
export function installVaultKeys(
  t: TokenSession,
  serverSetup: string,
  makeKeys: (labels: Readonly<Record<SealPurpose, string>>) => Record<SealPurpose, Handle>,
  replace: boolean,
): void {
  const l = t.labels;
  if (hasVaultKeys(t) && !replace) {
    throw new UsageError(
      `PKCS#11 token "${t.tokenLabel}" already holds backvault keys`,
      'Replacing them makes every stored vault record unreadable; pass --replace only if that is intended.',
    );
  }
  for (const label of [l.serverSetup, l.wrapKey, ...Object.values(l.keys)]) t.destroyAll(label);
  makeKeys(l.keys);
  const wrapKey = t.generateAesKey(l.wrapKey);
  const sealed = t.gcmSeal(wrapKey, SETUP_AAD, Buffer.from(serverSetup, 'utf8'));
  t.createData(l.serverSetup, Buffer.concat([Buffer.of(SETUP_VERSION), sealed]));
}

/** Options of {@link initializePkcs11Token}. */
export interface InitializePkcs11Options extends Pkcs11TokenOptions {
  /** Replace an existing key set (makes every stored record unreadable). Default false. */
  readonly replace?: boolean;
}

/**
 * Standalone node set-up (`backvault vault keygen --hsm pkcs11` without a fleet): generates
 * the sealing keys and the wrap key inside the token and a fresh OPAQUE server setup
 * (in process memory, stored only wrapped). For a fleet use the ceremony (`ceremony.ts`).
 * @returns the new OPAQUE server public key, which clients pin.
 * @throws UsageError if the token is not reachable with these options, or already holds
 *   keys and `replace` is not set.
 */
export async function initializePkcs11Token(
  options: InitializePkcs11Options,
): Promise<{ serverPublicKey: string }> {
  await opaque.ready;
  const t = TokenSession.open(options);
  try {
    const serverSetup = opaque.server.createSetup();
    installVaultKeys(
      t,
      serverSetup,
      (labels) => ({
        record: t.generateAesKey(labels.record),
        ticket: t.generateAesKey(labels.ticket),
        login: t.generateAesKey(labels.login),
      }),
      options.replace ?? false,
    );
    return { serverPublicKey: opaque.server.getPublicKey(serverSetup) };
  } finally {
    t.close();
  }
}

function tokenSealer(t: TokenSession, keys: Record<SealPurpose, Handle>): Sealer {
  return {
    async seal(purpose, aad, plaintext) {
      return t.gcmSeal(keys[purpose], aad, plaintext);
    },
    async open(purpose, aad, sealed) {
      return t.gcmOpen(keys[purpose], aad, sealed);
    },
    async close() {
      t.close();
    },
  };
}

/**
 * {@link Hsm} backed by a PKCS#11 token (see the module comment for what stays inside).
 * Create with {@link openPkcs11Hsm}.
 */
export class Pkcs11Hsm extends OpaqueCore {
  /** The label of the token in use (not secret). */
  readonly tokenLabel: string;

  /** Use {@link openPkcs11Hsm}. */
  constructor(serverSetup: string, sealer: Sealer, tokenLabel: string, options: OpaqueCoreOptions) {
    super(serverSetup, sealer, options);
    this.tokenLabel = tokenLabel;
  }
}

/**
 * Opens the vault's PKCS#11 HSM: logs in to the token, finds the keys by label and
 * decrypts the OPAQUE server setup inside the token into memory.
 * @throws UsageError if options are missing, the module/token/PIN is wrong, the token has
 *   no backvault keys yet, or they are not the expected fleet's.
 * @throws CorruptBackupError if the stored server setup fails authentication.
 * @throws UnavailableError if the token fails.
 */
export async function openPkcs11Hsm(options: Pkcs11HsmOptions = {}): Promise<Pkcs11Hsm> {
  await opaque.ready;
  const t = TokenSession.open(options);
  try {
    const objs = findVaultObjects(t);
    if (!objs) {
      throw new UsageError(
        `PKCS#11 token "${t.tokenLabel}" holds no backvault keys`,
        'Run `backvault vault keygen --hsm pkcs11` (one node) or import a fleet bundle with `backvault vault import`.',
      );
    }
    const setup = readServerSetup(t, objs);
    const hsm = new Pkcs11Hsm(setup, tokenSealer(t, objs.keys), t.tokenLabel, options);
    const pub = await hsm.serverPublicKey();
    if (options.expectedServerPublicKey !== undefined && pub !== options.expectedServerPublicKey) {
      throw new UsageError(
        `PKCS#11 token "${t.tokenLabel}" holds fleet key ${pub}, not the expected ${options.expectedServerPublicKey}`,
        'Import the right fleet bundle into this token.',
      );
    }
    return hsm;
  } catch (e) {
    t.close();
    throw e;
  }
}
