/**
 * Passkey protection in the browser (WebAuthn PRF): a passkey slot (SPEC.md §18) wraps the
 * backup key under a key-encryption key derived from the passkey's PRF output on a random
 * 32-byte salt. The PRF output is a 256-bit secret computed by the authenticator; it never
 * leaves this device and is never stored, so the slot is safe in an untrusted store.
 *
 *   passkeySupport()     what this browser offers (WebAuthn, PRF) before asking anything
 *   createPasskeySlot()  register a passkey with PRF and seal a slot for the backup key
 *   openPasskeySlot()    one `navigator.credentials.get` over every passkey slot, unwrap
 *
 * The caller stores the slot (e.g. `addKeySlot` of src/backup/repository/key-slots.ts on the device,
 * which lists it in the sealed manifest) and, after opening, checks the unwrapped key
 * against the repository's `config` and manifest (`verify` option, or
 * `verifyKeySlotUnlock` of src/format).
 *
 * Errors: PRF_UNSUPPORTED (no WebAuthn, or an authenticator without PRF: the message names
 * the other choices), PASSKEY_CANCELLED (the user dismissed the prompt, or it timed out),
 * NO_KEY_SLOT (no slot for this site or for the passkey used), KEY_SLOT_CORRUPT /
 * KEY_SLOT_MISMATCH (from the format's checks).
 *
 * Browser-safe: WebCrypto and WebAuthn only, no `node:` imports.
 */
import {
  BackvaultError,
  NoKeySlotError,
  PasskeyCancelledError,
  PrfUnsupportedError,
  UsageError,
} from '../errors.js';
import {
  KEY_SLOT_ID_BYTES,
  PRF_SALT_BYTES,
  SLOT_SECRET_BYTES,
  bytesEqual,
  decodeKeySlot,
  deriveKeySlotKek,
  openKeySlot,
  sealKeySlot,
  toHex,
  verifyKeySlotUnlock,
  type KeySlotInfo,
} from '../format/index.js';
import { fromBase64url, toBase64url } from './encoding.js';

/** What {@link passkeySupport} reports. */
export interface PasskeySupport {
  /** WebAuthn is available (a secure context with `PublicKeyCredential` and credentials). */
  readonly webauthn: boolean;
  /**
   * Whether the browser says it supports the PRF extension (`getClientCapabilities`):
   * `unknown` when it does not say — the authenticator decides at creation anyway.
   */
  readonly prf: 'yes' | 'no' | 'unknown';
}

/** What {@link createPasskeySlot} returns. */
export interface CreatedPasskeySlot {
  /** 32 hex digits. */
  readonly slotId: string;
  /** The credential's raw id, base64url. */
  readonly credentialId: string;
  /** The encoded, sealed slot object to store as `keys/<slotId>`. */
  readonly slot: Uint8Array;
}

/** What {@link openPasskeySlot} returns. */
export interface OpenedPasskeySlot {
  /** The unwrapped backup key (checked against config and manifest when `verify` was given). */
  readonly backupKey: Uint8Array;
  readonly slotId: string;
  /** base64url. */
  readonly credentialId: string;
  /** The slot object that opened (for `verifyKeySlotUnlock` if the caller checks later). */
  readonly slot: Uint8Array;
  /** With `verify`: the manifest's seq, for the caller to remember (replay detection). */
  readonly manifestSeq?: number;
}

type CredentialsLike = Pick<CredentialsContainer, 'create' | 'get'>;

function random(n: number): Uint8Array<ArrayBuffer> {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

function ab(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? (b as Uint8Array<ArrayBuffer>) : new Uint8Array(b);
}

function credentialsOf(given: CredentialsLike | undefined): CredentialsLike {
  const c = given ?? globalThis.navigator?.credentials;
  if (!c || typeof globalThis.PublicKeyCredential === 'undefined') {
    throw new PrfUnsupportedError(
      'this browser has no WebAuthn (passkeys), or the page is not a secure context',
    );
  }
  return c;
}

/**
 * WebAuthn's DOMExceptions as our errors. NotAllowedError covers both a dismissed prompt and
 * a timeout (browsers do not tell them apart, on purpose).
 */
function mapWebAuthnError(e: unknown): unknown {
  if (e instanceof BackvaultError) return e;
  const name = (e as { name?: unknown } | null)?.name;
  if (name === 'NotAllowedError' || name === 'AbortError') return new PasskeyCancelledError();
  if (name === 'NotSupportedError') {
    return new PrfUnsupportedError(
      'this authenticator does not support the passkey options backvault needs',
    );
  }
  if (name === 'SecurityError') {
    return new UsageError(
      'the relying-party id does not match this page’s origin',
      'Use the site’s own domain (or a registrable suffix of it) as rpId.',
    );
  }
  return e;
}

function prfFirst(cred: PublicKeyCredential): Uint8Array | undefined {
  const first = cred.getClientExtensionResults().prf?.results?.first;
  if (first === undefined) return undefined;
  const out =
    first instanceof ArrayBuffer
      ? new Uint8Array(first)
      : new Uint8Array(first.buffer, first.byteOffset, first.byteLength);
  return out.slice();
}

const NO_PRF =
  'this passkey’s authenticator cannot derive a key (no WebAuthn PRF extension): it cannot protect the backup';

/**
 * What this browser offers, without asking the user anything.
 * @param credentials - defaults to `navigator.credentials`.
 */
export async function passkeySupport(credentials?: CredentialsContainer): Promise<PasskeySupport> {
  const PKC = globalThis.PublicKeyCredential as
    | (typeof PublicKeyCredential & {
        getClientCapabilities?: () => Promise<Record<string, boolean | undefined>>;
      })
    | undefined;
  const webauthn =
    PKC !== undefined &&
    (credentials ?? globalThis.navigator?.credentials) !== undefined &&
    (globalThis.isSecureContext ?? true);
  if (!webauthn) return { webauthn: false, prf: 'no' };
  if (typeof PKC.getClientCapabilities !== 'function') return { webauthn, prf: 'unknown' };
  try {
    const caps = await PKC.getClientCapabilities();
    const prf = caps['extension:prf'];
    return { webauthn, prf: prf === true ? 'yes' : prf === false ? 'no' : 'unknown' };
  } catch {
    return { webauthn, prf: 'unknown' };
  }
}

/**
 * Register a passkey with the PRF extension and seal a passkey slot for `backupKey`.
 *
 * Asks the authenticator to evaluate PRF on a fresh random 32-byte salt at creation; when it
 * enables PRF but returns no output then (many do), one `get()` with the salt follows (the
 * user confirms twice). With `credentialId`, no new passkey is made: the existing one is
 * asked for its PRF output (reusing a passkey).
 * @throws PrfUnsupportedError when WebAuthn or PRF is missing (a passkey may have been made
 *   on the authenticator; it protects nothing and can be deleted there).
 * @throws PasskeyCancelledError when the user dismissed the prompt or it timed out.
 * @throws UsageError when `rpId` does not fit the page's origin, or on bad arguments.
 */
export async function createPasskeySlot(o: {
  backupKey: Uint8Array;
  repoId: Uint8Array;
  rpId: string;
  rpName: string;
  userName: string;
  userId?: Uint8Array;
  /** Reuse this passkey (base64url raw id) instead of registering a new one. */
  credentialId?: string;
  credentials?: CredentialsContainer;
  signal?: AbortSignal;
  /** Milliseconds the browser waits for the user (default: the browser's). */
  timeout?: number;
}): Promise<CreatedPasskeySlot> {
  if (o.backupKey.length !== 32) throw new UsageError('a backup key is 32 bytes');
  if (o.repoId.length !== 16) throw new UsageError('a repo id is 16 bytes');
  const credentials = credentialsOf(o.credentials);
  const salt = random(PRF_SALT_BYTES);
  let rawId: Uint8Array;
  let prf: Uint8Array | undefined;
  if (o.credentialId !== undefined) {
    rawId = fromBase64url(o.credentialId, 'credential id');
  } else {
    let cred: PublicKeyCredential | null;
    try {
      cred = (await credentials.create({
        publicKey: {
          rp: { id: o.rpId, name: o.rpName },
          user: {
            id: ab(o.userId ?? random(16)),
            name: o.userName,
            displayName: o.userName,
          },
          challenge: random(32),
          // ES256 and RS256: what every authenticator offers.
          pubKeyCredParams: [
            { type: 'public-key', alg: -7 },
            { type: 'public-key', alg: -257 },
          ],
          authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
          extensions: { prf: { eval: { first: salt } } },
          ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
        },
        ...(o.signal ? { signal: o.signal } : {}),
      })) as PublicKeyCredential | null;
    } catch (e) {
      throw mapWebAuthnError(e);
    }
    if (!cred) throw new PasskeyCancelledError();
    if (cred.getClientExtensionResults().prf?.enabled !== true) {
      throw new PrfUnsupportedError(NO_PRF);
    }
    rawId = new Uint8Array(cred.rawId);
    prf = prfFirst(cred);
  }
  // PRF enabled but not evaluated at creation (or a reused passkey): ask for it once.
  prf ??= await evaluate(credentials, o.rpId, rawId, salt, o.signal, o.timeout);
  if (prf === undefined || prf.length !== SLOT_SECRET_BYTES) {
    throw new PrfUnsupportedError(NO_PRF);
  }
  const slotId = random(KEY_SLOT_ID_BYTES);
  const repoId = o.repoId;
  const slot = await sealKeySlot({
    info: {
      kind: 'passkey',
      slotId,
      created: Date.now(),
      rpId: o.rpId,
      credentialId: rawId,
      prfSalt: salt,
    },
    backupKey: o.backupKey,
    kek: await deriveKeySlotKek('passkey', prf, repoId),
    repoId,
  });
  prf.fill(0);
  return { slotId: toHex(slotId), credentialId: toBase64url(rawId), slot };
}

async function evaluate(
  credentials: CredentialsLike,
  rpId: string,
  rawId: Uint8Array,
  salt: Uint8Array,
  signal: AbortSignal | undefined,
  timeout: number | undefined,
): Promise<Uint8Array | undefined> {
  let got: PublicKeyCredential | null;
  try {
    got = (await credentials.get({
      publicKey: {
        challenge: random(32),
        rpId,
        allowCredentials: [{ type: 'public-key', id: ab(rawId) }],
        userVerification: 'required',
        extensions: { prf: { eval: { first: ab(salt) } } },
        ...(timeout !== undefined ? { timeout } : {}),
      },
      ...(signal ? { signal } : {}),
    })) as PublicKeyCredential | null;
  } catch (e) {
    throw mapWebAuthnError(e);
  }
  if (!got) throw new PasskeyCancelledError();
  return prfFirst(got);
}

/**
 * Open the passkey slot of whichever of the user's passkeys answers: one
 * `navigator.credentials.get` listing every passkey slot of `rpId` in `allowCredentials`,
 * with `prf.evalByCredential` mapping each credential id to its slot's salt; then the KEK
 * from the PRF output unwraps the backup key.
 * @param o - `slots`: the slot objects of the repository (non-passkey and foreign-site slots are
 *   skipped; see `readPasskeySlots` in src/backup/repository/key-slots.ts).
 *   `verify`: the repository's `config` and `keys/manifest` (undefined when absent),
 *   and the highest manifest seq this device saw, if it keeps one: when given, the key is
 *   checked against them before it is returned.
 * @throws NoKeySlotError when no passkey slot is for this site, or the passkey used has none.
 * @throws PasskeyCancelledError when the user dismissed the prompt or it timed out — also
 *   when this device holds none of the listed passkeys: browsers do not tell a page that,
 *   on purpose, so the message should offer the other protections.
 * @throws PrfUnsupportedError when the passkey returned no PRF output.
 * @throws KeySlotCorruptError when the slot does not open with this passkey (damaged,
 *   swapped, or another authenticator under the same credential id) or its key fails the
 *   key check; KeySlotMismatchError when the manifest does not list it.
 */
export async function openPasskeySlot(o: {
  slots: Uint8Array[];
  repoId: Uint8Array;
  rpId: string;
  credentials?: CredentialsContainer;
  signal?: AbortSignal;
  timeout?: number;
  verify?: { config: Uint8Array; manifest: Uint8Array | undefined; seenManifestSeq?: number };
}): Promise<OpenedPasskeySlot> {
  const candidates: { bytes: Uint8Array; info: Extract<KeySlotInfo, { kind: 'passkey' }> }[] = [];
  for (const bytes of o.slots) {
    let info: KeySlotInfo;
    try {
      info = decodeKeySlot(bytes).info;
    } catch {
      continue; // a damaged slot is reported by `key list`; others may still open
    }
    if (info.kind === 'passkey' && info.rpId === o.rpId) candidates.push({ bytes, info });
  }
  if (candidates.length === 0) {
    throw new NoKeySlotError(`this backup has no passkey slot for ${o.rpId}`);
  }
  const credentials = credentialsOf(o.credentials);
  const evalByCredential: Record<string, AuthenticationExtensionsPRFValues> = {};
  for (const c of candidates) {
    evalByCredential[toBase64url(c.info.credentialId)] = { first: ab(c.info.prfSalt) };
  }
  let got: PublicKeyCredential | null;
  try {
    got = (await credentials.get({
      publicKey: {
        challenge: random(32),
        rpId: o.rpId,
        allowCredentials: candidates.map((c) => ({
          type: 'public-key' as const,
          id: ab(c.info.credentialId),
        })),
        userVerification: 'required',
        extensions: { prf: { evalByCredential } },
        ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
      },
      ...(o.signal ? { signal: o.signal } : {}),
    })) as PublicKeyCredential | null;
  } catch (e) {
    throw mapWebAuthnError(e);
  }
  if (!got) throw new PasskeyCancelledError();
  const rawId = new Uint8Array(got.rawId);
  const chosen = candidates.find((c) => bytesEqual(c.info.credentialId, rawId));
  if (!chosen) {
    throw new NoKeySlotError('this backup has no slot for the passkey that was used');
  }
  const prf = prfFirst(got);
  if (prf === undefined || prf.length !== SLOT_SECRET_BYTES) {
    throw new PrfUnsupportedError(NO_PRF);
  }
  const kek = await deriveKeySlotKek('passkey', prf, o.repoId);
  prf.fill(0);
  const { backupKey, info } = await openKeySlot(chosen.bytes, kek, o.repoId);
  let manifestSeq: number | undefined;
  if (o.verify) {
    ({ manifestSeq } = await verifyKeySlotUnlock({
      config: o.verify.config,
      manifest: o.verify.manifest,
      slot: chosen.bytes,
      info,
      backupKey,
      ...(o.verify.seenManifestSeq !== undefined
        ? { seenManifestSeq: o.verify.seenManifestSeq }
        : {}),
    }));
  }
  return {
    backupKey,
    slotId: toHex(info.slotId),
    credentialId: toBase64url(rawId),
    slot: chosen.bytes,
    ...(manifestSeq !== undefined ? { manifestSeq } : {}),
  };
}
