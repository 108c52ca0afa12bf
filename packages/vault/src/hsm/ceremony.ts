/**
 * The key ceremony of a vault fleet: every node's HSM must hold the same fleet keys (the
 * OPAQUE server setup, whose public key clients pin, and the record-sealing key), so any
 * node serves any account and can finish what another began.
 *
 * Flow (`backvault vault transport-key | keygen | export | import`):
 * 1. Each new node creates a transport key pair in its own HSM and hands out the public
 *    half ({@link createPkcs11TransportKey}: RSA-3072 generated inside the token, private
 *    half non-extractable and unwrap-only; {@link createSoftwareTransportKey}: RSA-3072 in
 *    a 0600 PEM file for a software-HSM node).
 * 2. On one (ideally air-gapped) machine, {@link generateFleetKeys} makes the fleet keys
 *    and {@link exportFleetKeysFor} encrypts them for each transport public key.
 * 3. Each node imports its bundle ({@link importFleetKeys}), checking it against the
 *    pinned fleet public key. A PKCS#11 node unwraps the sealing keys straight into its
 *    token as non-extractable keys (they never appear in that node's process memory).
 *
 * Design trade-off, stated plainly: the fleet keys are generated in software, in the
 * memory of the keygen process, not inside a token. Two reasons: (a) a mixed fleet (PKCS#11
 * and software HSMs) needs the raw key in the software nodes anyway, and the software HSM
 * derives its purpose keys with HKDF, which SoftHSM2 2.6.1 cannot do inside the token;
 * (b) "generate in token A, wrap to token B" needs CKA_TRUSTED transport keys set by the
 * security officer of A, which is vendor-specific ceremony beyond PKCS#11's portable part.
 * So the fleet secret exists outside every HSM during keygen, and afterwards only where
 * the operator keeps it: bundles (encrypted for one HSM each) and, if asked for, a
 * fleet master key file (the software HSM key file format) for exporting to nodes added
 * later. Keep that file offline, or omit it and re-key the fleet to add a node. A single
 * node with no fleet uses `initializePkcs11Token` instead, whose keys are born in the token.
 *
 * Bundle (JSON, not secret but authenticated):
 * `{ format: "backvault-fleet-bundle", version: 1, fleetPublicKey, transportKeyId, target:
 * "pkcs11"|"software", oaepHash, wrapped: { bundle, record?, ticket?, login? }, sealed }`.
 * `wrapped.*` are RSA-OAEP encryptions of 32-byte AES keys under the transport key:
 * `bundle` is a one-time key; `record`/`ticket`/`login` (PKCS#11 targets only) are the
 * HKDF-derived purpose keys of `opaque-core.ts`. `sealed` is AES-256-GCM under the bundle key
 * (`nonce ‖ ciphertext ‖ tag`) of `{"serverSetup", "sealingKey"? (software targets),
 * "kcv"? (PKCS#11: per purpose key, nonce ‖ tag of GCM over nothing)}` with every other
 * field as associated data, so no wrapped key can be swapped. Anyone holding a transport
 * public key can make a self-consistent bundle for another fleet: the importer therefore
 * requires the pinned fleet public key.
 */
import {
  constants as cryptoConstants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pkcs11js from 'pkcs11js';
import * as opaque from '@serenity-kit/opaque';
import { CorruptBackupError, UnavailableError, UsageError } from 'backvault/errors';
import { writePrivateFile } from 'backvault/node';
import {
  decodeSoftwareHsmKeys,
  encodeSoftwareHsmKeys,
  generateSoftwareHsmKeys,
  type SoftwareHsmKeys,
} from './software-hsm.js';
import { derivePurposeKeys, NONCE_BYTES, TAG_BYTES, type SealPurpose } from './opaque-core.js';
import {
  TokenSession,
  hasVaultKeys,
  installVaultKeys,
  type Pkcs11TokenOptions,
} from './pkcs11-hsm.js';

const TRANSPORT_FORMAT = 'backvault-transport-key';
const BUNDLE_FORMAT = 'backvault-fleet-bundle';
const BUNDLE_AAD_LABEL = 'backvault/fleet-bundle/v1';
const KCV_AAD = Buffer.from('backvault/fleet-bundle/kcv/v1', 'utf8');
const MIN_RSA_BITS = 3072;
const PURPOSES: readonly SealPurpose[] = ['record', 'ticket', 'login'];

/** The fleet keys: the software HSM key material (`software-hsm.ts`). Handle as a secret. */
export type FleetKeys = SoftwareHsmKeys;

/** Which HSM a transport key (and so a bundle) is for. */
export type TransportKind = 'pkcs11' | 'software';

/** The public half of a node's transport key, handed to the ceremony. Not secret. */
export interface TransportPublicKey {
  readonly kind: TransportKind;
  /**
   * RSA-OAEP hash. `sha1` for PKCS#11 targets (SoftHSM2 2.6.1 supports no other; OAEP's
   * security does not rest on SHA-1 collisions), `sha256` for software targets.
   */
  readonly oaepHash: 'sha1' | 'sha256';
  /** RSA public key, DER SubjectPublicKeyInfo, base64url. */
  readonly spki: string;
  /** base64url SHA-256 of the DER SPKI: names the key in bundles. */
  readonly keyId: string;
  /** A human name (node or token), informative only. */
  readonly name: string;
}

/** Creates fresh fleet keys (a new fleet identity: every record of an old one is lost). */
export async function generateFleetKeys(): Promise<FleetKeys> {
  return generateSoftwareHsmKeys();
}

/** The OPAQUE server public key of fleet keys: the value clients pin. */
export async function fleetPublicKey(keys: FleetKeys): Promise<string> {
  await opaque.ready;
  return opaque.server.getPublicKey(keys.serverSetup);
}

function keyIdOf(spkiDer: Buffer): string {
  return createHash('sha256').update(spkiDer).digest('base64url');
}

function describePublicKey(key: KeyObject, kind: TransportKind, name: string): TransportPublicKey {
  const der = key.export({ type: 'spki', format: 'der' });
  return {
    kind,
    oaepHash: kind === 'pkcs11' ? 'sha1' : 'sha256',
    spki: der.toString('base64url'),
    keyId: keyIdOf(der),
    name,
  };
}

/** Serialises a transport public key (the file a node hands to the ceremony). */
export function encodeTransportPublicKey(t: TransportPublicKey): string {
  return `${JSON.stringify({ format: TRANSPORT_FORMAT, version: 1, ...t }, null, 2)}\n`;
}

/**
 * Parses and checks a transport public key file.
 * @throws UsageError if it is malformed, not RSA ≥ 3072 bits, or its keyId does not match.
 */
export function decodeTransportPublicKey(text: string): TransportPublicKey {
  const bad = (why: string) =>
    new UsageError(
      `transport public key is invalid: ${why}`,
      'Create it with `backvault vault transport-key`.',
    );
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw bad('not JSON');
  }
  if (typeof o !== 'object' || o === null || o.format !== TRANSPORT_FORMAT || o.version !== 1) {
    throw bad('wrong format');
  }
  const { kind, oaepHash, spki, keyId, name } = o;
  if (
    (kind !== 'pkcs11' && kind !== 'software') ||
    (oaepHash !== 'sha1' && oaepHash !== 'sha256') ||
    typeof spki !== 'string' ||
    typeof keyId !== 'string' ||
    typeof name !== 'string'
  ) {
    throw bad('missing fields');
  }
  const der = Buffer.from(spki, 'base64url');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    throw bad('not a public key');
  }
  if (
    key.asymmetricKeyType !== 'rsa' ||
    (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS
  ) {
    throw bad(`not an RSA key of at least ${MIN_RSA_BITS} bits`);
  }
  if (keyIdOf(der) !== keyId) throw bad('keyId does not match the key');
  return { kind, oaepHash, spki, keyId, name };
}

/** The transport public key of a token's transport key pair, if it has one. */
function tokenTransportKey(t: TokenSession): { priv: Buffer; pub: TransportPublicKey } | undefined {
  const label = t.labels.transportKey;
  const priv = t.findOne(label, pkcs11js.CKO_PRIVATE_KEY);
  const pubH = t.findOne(label, pkcs11js.CKO_PUBLIC_KEY);
  if (!priv || !pubH) return undefined;
  const [n, e] = t.getAttributes(pubH, [pkcs11js.CKA_MODULUS, pkcs11js.CKA_PUBLIC_EXPONENT]);
  if (!n || !e) return undefined;
  return { priv, pub: rsaFromParts(n, e, t.tokenLabel) };
}

function rsaFromParts(n: Buffer, e: Buffer, name: string): TransportPublicKey {
  const key = createPublicKey({
    key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') },
    format: 'jwk',
  });
  return describePublicKey(key, 'pkcs11', name);
}

/**
 * Creates the transport key pair inside a PKCS#11 token (RSA-3072, private half sensitive,
 * non-extractable, unwrap-only), or returns the existing one unless `replace` is set.
 * @returns the public half to hand to the ceremony.
 * @throws UsageError if the token is unreachable or the PIN is wrong.
 */
export async function createPkcs11TransportKey(
  options: Pkcs11TokenOptions & { readonly replace?: boolean },
): Promise<TransportPublicKey> {
  const t = TokenSession.open(options);
  try {
    const existing = tokenTransportKey(t);
    // Idempotent: re-running hands out the same public key, so bundles already made stay valid.
    if (existing && !options.replace) return existing.pub;
    t.destroyAll(t.labels.transportKey);
    const { modulus, exponent } = t.generateTransportKeyPair(t.labels.transportKey, MIN_RSA_BITS);
    return rsaFromParts(modulus, exponent, t.tokenLabel);
  } finally {
    t.close();
  }
}

/**
 * A file system error of the ceremony as a clear error: `USAGE` for what the operator
 * fixes (a missing folder, a permission, a folder where a file was expected), `UNAVAILABLE`
 * for the storage itself (disk full, read-only, I/O error). Names the path and what to do;
 * never file contents.
 */
export function ceremonyFileError(
  e: unknown,
  action: 'read' | 'write',
  what: string,
  path: string,
): UsageError | UnavailableError {
  const code = (e as NodeJS.ErrnoException).code;
  const folder = dirname(path);
  switch (code) {
    case 'ENOENT':
      return action === 'write'
        ? new UsageError(
            `cannot write ${what} ${path}: the folder ${folder} does not exist`,
            `Create it first (mkdir -p ${folder}) or choose another path.`,
          )
        : new UsageError(`cannot read ${what} ${path}: no such file`, 'Check the path.');
    case 'ENOTDIR':
      return new UsageError(
        `cannot ${action} ${what} ${path}: a part of the path is not a folder`,
        'Check the path.',
      );
    case 'EISDIR':
      return new UsageError(
        `cannot ${action} ${what} ${path}: it is a folder`,
        'Give a file path, not a folder.',
      );
    case 'EACCES':
    case 'EPERM':
      return new UsageError(
        `cannot ${action} ${what} ${path}: permission denied`,
        action === 'write'
          ? `Run as a user who may write to ${folder}, or choose another path.`
          : `Run as a user who may read ${path}.`,
      );
    case 'EROFS':
      return new UsageError(
        `cannot write ${what} ${path}: the file system is read-only`,
        'Choose a path on a writable file system.',
      );
    default:
      return new UnavailableError(
        `cannot ${action} ${what} ${path}: ${code ?? 'I/O error'}`,
        e instanceof Error ? { cause: e } : undefined,
      );
  }
}

/**
 * Writes `content` to `path` atomically with mode 0600, refusing an existing file unless
 * `replace`.
 * @throws UsageError when `path` exists and `replace` is false, or the folder is missing or
 *   not writable; UnavailableError when the storage fails.
 */
async function writePrivateFileOnce(
  path: string,
  content: string,
  replace: boolean,
  what = 'file',
): Promise<void> {
  let written: boolean;
  try {
    written = await writePrivateFile(path, content, { exclusive: !replace });
  } catch (e) {
    throw ceremonyFileError(e, 'write', what, path);
  }
  if (!written) {
    throw new UsageError(`${path} already exists`, 'Choose another path or pass --replace.');
  }
}

/**
 * Checks, before any key is generated, that `folder` exists and is a folder we may write
 * to, so a ceremony never stops halfway with some bundles written and others not.
 * @throws UsageError saying what is wrong and what to do.
 */
async function assertWritableFolder(folder: string, flag: string): Promise<void> {
  let st;
  try {
    st = await fsp.stat(folder);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UsageError(
        `${flag} ${folder} does not exist`,
        `Create it first (mkdir -p ${folder}) or choose another folder.`,
      );
    throw ceremonyFileError(e, 'read', 'folder', folder);
  }
  if (!st.isDirectory()) throw new UsageError(`${flag} ${folder} is not a folder`);
  try {
    await fsp.access(folder, fsConstants.W_OK);
  } catch (e) {
    throw ceremonyFileError(e, 'write', 'into folder', folder);
  }
}

async function readPrivateFile(path: string, what: string): Promise<string> {
  let st;
  try {
    st = await fsp.stat(path);
  } catch (e) {
    throw ceremonyFileError(e, 'read', what, path);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new UsageError(
      `${what} ${path} is readable by group or others`,
      `Run: chmod 600 ${path}`,
    );
  }
  try {
    return await fsp.readFile(path, 'utf8');
  } catch (e) {
    throw ceremonyFileError(e, 'read', what, path);
  }
}

/**
 * Creates a software transport key pair for a software-HSM node: RSA-3072, the private key
 * written (PKCS#8 PEM, 0600, never overwritten) to `privateKeyFile`.
 * @throws UsageError if `privateKeyFile` exists.
 */
export async function createSoftwareTransportKey(
  privateKeyFile: string,
  name = 'software',
): Promise<TransportPublicKey> {
  const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: MIN_RSA_BITS,
  });
  await writePrivateFileOnce(
    privateKeyFile,
    privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    false,
  );
  return describePublicKey(publicKey, 'software', name);
}

interface Bundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly version: 1;
  readonly fleetPublicKey: string;
  readonly transportKeyId: string;
  readonly target: TransportKind;
  readonly oaepHash: 'sha1' | 'sha256';
  readonly wrapped: {
    readonly bundle: string;
    readonly record?: string;
    readonly ticket?: string;
    readonly login?: string;
  };
  readonly sealed: string;
}

interface BundlePlain {
  readonly serverSetup: string;
  readonly sealingKey?: string;
  readonly kcv?: Partial<Record<SealPurpose, string>>;
}

function bundleAad(b: Omit<Bundle, 'sealed'>): Buffer {
  const w = b.wrapped;
  return Buffer.concat([
    Buffer.from(BUNDLE_AAD_LABEL, 'utf8'),
    Buffer.of(0),
    Buffer.from(
      JSON.stringify([
        b.format,
        b.version,
        b.fleetPublicKey,
        b.transportKeyId,
        b.target,
        b.oaepHash,
        w.bundle,
        w.record ?? '',
        w.ticket ?? '',
        w.login ?? '',
      ]),
      'utf8',
    ),
  ]);
}

function gcmEncrypt(key: Buffer, aad: Buffer, plain: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

function gcmDecrypt(key: Buffer, aad: Buffer, sealed: Buffer): Buffer | undefined {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES));
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([
      d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
      d.final(),
    ]);
  } catch {
    return undefined;
  }
}

/**
 * Encrypts the fleet keys for one node's transport public key (see the module comment for
 * the bundle layout). The result is safe to carry over an untrusted channel: only that
 * node's HSM can open it, and importers check it against the pinned fleet public key.
 * @throws UsageError if `transport` is not a valid transport key.
 */
export async function exportFleetKeysFor(
  keys: FleetKeys,
  transport: TransportPublicKey,
): Promise<string> {
  // Re-validate: the object may not come from decodeTransportPublicKey.
  const t = decodeTransportPublicKey(encodeTransportPublicKey(transport));
  const pub = createPublicKey({
    key: Buffer.from(t.spki, 'base64url'),
    format: 'der',
    type: 'spki',
  });
  const wrap = (k: Buffer) =>
    publicEncrypt(
      { key: pub, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: t.oaepHash },
      k,
    ).toString('base64url');
  const bundleKey = randomBytes(32);
  const plain: { serverSetup: string; sealingKey?: string; kcv?: Record<SealPurpose, string> } = {
    serverSetup: keys.serverSetup,
  };
  let wrapped: Bundle['wrapped'];
  if (t.kind === 'pkcs11') {
    const purpose = derivePurposeKeys(keys.sealingKey);
    const kcv = {} as Record<SealPurpose, string>;
    for (const p of PURPOSES) {
      // GCM over nothing: nonce ‖ tag, which the token re-checks after unwrapping.
      kcv[p] = gcmEncrypt(purpose[p], KCV_AAD, Buffer.alloc(0)).toString('base64url');
    }
    plain.kcv = kcv;
    wrapped = {
      bundle: wrap(bundleKey),
      record: wrap(purpose.record),
      ticket: wrap(purpose.ticket),
      login: wrap(purpose.login),
    };
    for (const k of Object.values(purpose)) k.fill(0);
  } else {
    plain.sealingKey = Buffer.from(keys.sealingKey).toString('base64url');
    wrapped = { bundle: wrap(bundleKey) };
  }
  const head: Omit<Bundle, 'sealed'> = {
    format: BUNDLE_FORMAT,
    version: 1,
    fleetPublicKey: await fleetPublicKey(keys),
    transportKeyId: t.keyId,
    target: t.kind,
    oaepHash: t.oaepHash,
    wrapped,
  };
  const plainBytes = Buffer.from(JSON.stringify(plain), 'utf8');
  const sealed = gcmEncrypt(bundleKey, bundleAad(head), plainBytes);
  plainBytes.fill(0);
  bundleKey.fill(0);
  return `${JSON.stringify({ ...head, sealed: sealed.toString('base64url') }, null, 2)}\n`;
}

const corrupt = (why: string) => new CorruptBackupError(`fleet key bundle refused: ${why}`);

function parseBundle(text: string): Bundle {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw corrupt('not JSON');
  }
  const s = (v: unknown) => typeof v === 'string';
  const w = (o?.wrapped ?? {}) as Record<string, unknown>;
  if (
    typeof o !== 'object' ||
    o === null ||
    o.format !== BUNDLE_FORMAT ||
    o.version !== 1 ||
    !s(o.fleetPublicKey) ||
    !s(o.transportKeyId) ||
    (o.target !== 'pkcs11' && o.target !== 'software') ||
    (o.oaepHash !== 'sha1' && o.oaepHash !== 'sha256') ||
    !s(o.sealed) ||
    !s(w.bundle) ||
    (o.target === 'pkcs11' && !(s(w.record) && s(w.ticket) && s(w.login)))
  ) {
    throw corrupt('malformed');
  }
  return o as unknown as Bundle;
}

function checkFleet(setup: string, b: Bundle, expected: string): void {
  let pub: string;
  try {
    pub = opaque.server.getPublicKey(setup);
  } catch {
    throw corrupt('server setup is malformed');
  }
  if (pub !== b.fleetPublicKey) throw corrupt('server setup does not match its public key');
  const a = Buffer.from(pub);
  const e = Buffer.from(expected);
  if (a.length !== e.length || !timingSafeEqual(a, e)) {
    throw new UsageError(
      `fleet key bundle is for fleet ${pub}, not the pinned ${expected}`,
      'Someone made this bundle for another fleet; get the bundle from your own key ceremony.',
    );
  }
}

function parsePlain(bytes: Buffer): BundlePlain {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as BundlePlain;
    if (typeof v.serverSetup === 'string') return v;
  } catch {
    // authenticated but unparsable: fail closed below
  }
  throw corrupt('unknown content');
}

/** Where {@link importFleetKeys} installs the keys. */
export type FleetImportTarget =
  | {
      readonly kind: 'pkcs11';
      /** The token holding the transport private key the bundle was made for. */
      readonly token: Pkcs11TokenOptions;
      /** Replace keys the token already holds (makes their records unreadable). */
      readonly replace?: boolean;
    }
  | {
      readonly kind: 'software';
      /** The transport private key file from {@link createSoftwareTransportKey}. */
      readonly transportPrivateKeyFile: string;
      /** The software HSM key file to write (0600). */
      readonly keyFile: string;
      /** Overwrite an existing key file. */
      readonly replace?: boolean;
    };

/**
 * Opens a software-target bundle with the transport private key, in memory.
 * @throws CorruptBackupError if the bundle is malformed or fails authentication.
 * @throws UsageError if it was made for another transport key or another fleet.
 */
export async function openFleetBundleInSoftware(
  bundle: string,
  transportPrivateKeyPem: string,
  expectedServerPublicKey: string,
): Promise<FleetKeys> {
  await opaque.ready;
  const b = parseBundle(bundle);
  const priv = createPrivateKey(transportPrivateKeyPem);
  const pub = describePublicKey(createPublicKey(priv), 'software', 'software');
  if (b.target !== 'software' || b.transportKeyId !== pub.keyId) {
    throw new UsageError(
      'fleet key bundle was made for another transport key',
      'Export a bundle for this node.',
    );
  }
  let bundleKey: Buffer;
  try {
    bundleKey = privateDecrypt(
      { key: priv, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: b.oaepHash },
      Buffer.from(b.wrapped.bundle, 'base64url'),
    );
  } catch {
    throw corrupt('wrapped key does not open');
  }
  const plainBytes =
    bundleKey.length === 32
      ? gcmDecrypt(bundleKey, bundleAad(b), Buffer.from(b.sealed, 'base64url'))
      : undefined;
  bundleKey.fill(0);
  if (!plainBytes) throw corrupt('failed authentication');
  const plain = parsePlain(plainBytes);
  plainBytes.fill(0);
  checkFleet(plain.serverSetup, b, expectedServerPublicKey);
  const sealingKey = Buffer.from(plain.sealingKey ?? '', 'base64url');
  if (sealingKey.length !== 32) throw corrupt('sealing key missing');
  return { serverSetup: plain.serverSetup, sealingKey };
}

function importIntoToken(
  b: Bundle,
  token: Pkcs11TokenOptions,
  expected: string,
  replace: boolean,
): void {
  const t = TokenSession.open(token);
  try {
    const tk = tokenTransportKey(t);
    if (!tk || b.target !== 'pkcs11' || tk.pub.keyId !== b.transportKeyId) {
      throw new UsageError(
        `fleet key bundle was not made for the transport key of token "${t.tokenLabel}"`,
        "Export a bundle for this token's transport public key.",
      );
    }
    if (hasVaultKeys(t) && !replace) {
      throw new UsageError(
        `PKCS#11 token "${t.tokenLabel}" already holds backvault keys`,
        'Replacing them makes every stored vault record unreadable; pass --replace only if that is intended.',
      );
    }
    const unwrap = (wrapped: string | undefined, label: string, onToken: boolean) => {
      const h = wrapped
        ? t.unwrapAesKey(tk.priv, Buffer.from(wrapped, 'base64url'), b.oaepHash, label, onToken)
        : undefined;
      if (!h) throw corrupt("wrapped key does not open with this token's transport key");
      return h;
    };
    // The one-time bundle key lives only as a session object, destroyed right after use.
    const bundleKey = unwrap(b.wrapped.bundle, `${t.labels.wrapKey}-import`, false);
    let plainBytes: Buffer | undefined;
    try {
      plainBytes = t.gcmOpen(bundleKey, bundleAad(b), Buffer.from(b.sealed, 'base64url'));
    } finally {
      t.destroy(bundleKey);
    }
    if (!plainBytes) throw corrupt('failed authentication');
    const plain = parsePlain(plainBytes);
    plainBytes.fill(0);
    checkFleet(plain.serverSetup, b, expected);
    installVaultKeys(
      t,
      plain.serverSetup,
      (labels) => {
        const keys = {} as Record<SealPurpose, Buffer>;
        for (const p of PURPOSES) {
          keys[p] = unwrap(b.wrapped[p], labels[p], true);
          const kcv = plain.kcv?.[p];
          // The token proves it holds the exporter's key: GCM over nothing must verify.
          if (!kcv || !t.gcmOpen(keys[p], KCV_AAD, Buffer.from(kcv, 'base64url'))) {
            throw corrupt(`${p} key check failed`);
          }
        }
        return keys;
      },
      true,
    );
  } finally {
    t.close();
  }
}

/**
 * Installs the fleet keys from a bundle into this node's HSM, after checking that it was
 * made for this node's transport key, that nothing in it was changed, and that it is the
 * fleet whose public key is pinned.
 * @param expectedServerPublicKey the fleet public key printed by `vault keygen` (pinned).
 * @returns the fleet public key now installed.
 * @throws CorruptBackupError if the bundle is malformed or fails authentication (nothing is installed).
 * @throws UsageError if it was made for another transport key or another fleet, or the
 *   target already holds keys and `replace` is not set.
 */
export async function importFleetKeys(
  bundle: string,
  target: FleetImportTarget,
  expectedServerPublicKey: string,
): Promise<{ readonly serverPublicKey: string }> {
  await opaque.ready;
  if (target.kind === 'pkcs11') {
    importIntoToken(
      parseBundle(bundle),
      target.token,
      expectedServerPublicKey,
      target.replace ?? false,
    );
  } else {
    const pem = await readPrivateFile(target.transportPrivateKeyFile, 'transport private key');
    const keys = await openFleetBundleInSoftware(bundle, pem, expectedServerPublicKey);
    await writePrivateFileOnce(
      target.keyFile,
      encodeSoftwareHsmKeys(keys),
      target.replace ?? false,
    );
  }
  return { serverPublicKey: expectedServerPublicKey };
}

// --- CLI-facing entry points (`backvault vault …`). Each returns what `--json` prints.

/** Options of {@link vaultTransportKey} (`backvault vault transport-key`). */
export type VaultTransportKeyOptions =
  | {
      /** `--hsm pkcs11`: the key pair is generated in this token. */
      readonly hsm: 'pkcs11';
      /** `--pkcs11-module`, `--pkcs11-token`, PIN from `BACKVAULT_PKCS11_PIN`. */
      readonly token: Pkcs11TokenOptions;
      /** `--out`: where the public key file is written (refuses to overwrite). */
      readonly out: string;
      /** `--replace`: make a new key pair even if the token has one. */
      readonly replace?: boolean;
    }
  | {
      /** `--hsm software`: the key pair is generated in software. */
      readonly hsm: 'software';
      /** `--private-key`: the 0600 PEM file to create (never overwritten). */
      readonly privateKeyFile: string;
      /** `--out`: where the public key file is written. */
      readonly out: string;
      /** `--name`: a label for humans. */
      readonly name?: string;
    };

/**
 * `backvault vault transport-key`: step 1 of the ceremony, run on each new node.
 * @throws UsageError for unreachable tokens, existing files, or a wrong PIN.
 */
export async function vaultTransportKey(o: VaultTransportKeyOptions): Promise<{
  readonly transportKeyId: string;
  readonly file: string;
  readonly kind: TransportKind;
}> {
  // Before any key is made: a missing folder must not leave a key without its file.
  await assertWritableFolder(dirname(o.out), '--out folder');
  if (o.hsm === 'software')
    await assertWritableFolder(dirname(o.privateKeyFile), '--private-key folder');
  const pub =
    o.hsm === 'pkcs11'
      ? await createPkcs11TransportKey({ ...o.token, replace: o.replace ?? false })
      : await createSoftwareTransportKey(o.privateKeyFile, o.name);
  await writePrivateFileOnce(o.out, encodeTransportPublicKey(pub), false);
  return { transportKeyId: pub.keyId, file: o.out, kind: pub.kind };
}

/** Options of {@link vaultKeygen} (`backvault vault keygen`). */
export interface VaultKeygenOptions {
  /** `--export-for <file>…`: transport public key files of the fleet's nodes. */
  readonly exportFor?: readonly string[];
  /** `--out-dir`: where bundles are written, as `bundle-<keyId prefix>.json`. Default: cwd. */
  readonly outDir?: string;
  /**
   * `--master-key <file>`: also keep the fleet keys (software HSM key file, 0600) to
   * export for nodes added later. Keep it offline. Omitted: the keys exist only in bundles.
   */
  readonly masterKeyFile?: string;
}

/** One bundle written by {@link vaultKeygen} or {@link vaultExport}. */
export interface BundleWritten {
  readonly transportKeyId: string;
  readonly name: string;
  readonly file: string;
}

async function readTransportKeyFile(path: string): Promise<TransportPublicKey> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    throw ceremonyFileError(e, 'read', 'transport public key', path);
  }
  return decodeTransportPublicKey(text);
}

async function writeBundle(
  keys: FleetKeys,
  t: TransportPublicKey,
  file: string,
): Promise<BundleWritten> {
  await writePrivateFileOnce(file, await exportFleetKeysFor(keys, t), false, 'bundle');
  return { transportKeyId: t.keyId, name: t.name, file };
}

/**
 * `backvault vault keygen`: creates the fleet keys once and writes one bundle per
 * transport public key (and the master key file if asked). Prints the fleet public key,
 * which operators pin in clients and pass to every import.
 * @throws UsageError if neither `exportFor` nor `masterKeyFile` is given (the keys would
 *   be lost), a transport key is invalid, or an output file exists.
 */
export async function vaultKeygen(o: VaultKeygenOptions): Promise<{
  readonly serverPublicKey: string;
  readonly bundles: readonly BundleWritten[];
  readonly masterKeyFile?: string;
}> {
  const targets = await Promise.all((o.exportFor ?? []).map(readTransportKeyFile));
  if (targets.length === 0 && !o.masterKeyFile) {
    throw new UsageError(
      'keygen needs --export-for or --master-key, or the new keys would be lost',
    );
  }
  if (targets.length > 0) await assertWritableFolder(o.outDir ?? '.', '--out-dir');
  if (o.masterKeyFile) await assertWritableFolder(dirname(o.masterKeyFile), '--master-key folder');
  const keys = await generateFleetKeys();
  try {
    const bundles: BundleWritten[] = [];
    for (const t of targets) {
      bundles.push(
        await writeBundle(keys, t, join(o.outDir ?? '.', `bundle-${t.keyId.slice(0, 12)}.json`)),
      );
    }
    if (o.masterKeyFile)
      await writePrivateFileOnce(o.masterKeyFile, encodeSoftwareHsmKeys(keys), false);
    return {
      serverPublicKey: await fleetPublicKey(keys),
      bundles,
      ...(o.masterKeyFile ? { masterKeyFile: o.masterKeyFile } : {}),
    };
  } finally {
    keys.sealingKey.fill(0);
  }
}

/** Options of {@link vaultExport} (`backvault vault export`). */
export interface VaultExportOptions {
  /** `--master-key`: the fleet master key file (0600) from `keygen --master-key`. */
  readonly masterKeyFile: string;
  /** `--for`: the new node's transport public key file. */
  readonly transportKeyFile: string;
  /** `--out`: the bundle file to write. */
  readonly out: string;
}

/**
 * `backvault vault export`: a bundle for a node added later, from the master key file.
 * @throws UsageError if a file is missing, unsafe (group/other readable) or invalid.
 */
export async function vaultExport(
  o: VaultExportOptions,
): Promise<{ readonly serverPublicKey: string } & BundleWritten> {
  const keys = decodeSoftwareHsmKeys(
    await readPrivateFile(o.masterKeyFile, 'fleet master key file'),
  );
  try {
    const t = await readTransportKeyFile(o.transportKeyFile);
    const w = await writeBundle(keys, t, o.out);
    return { serverPublicKey: await fleetPublicKey(keys), ...w };
  } finally {
    keys.sealingKey.fill(0);
  }
}

/** Options of {@link vaultImport} (`backvault vault import`). */
export interface VaultImportOptions {
  /** `--bundle`: the bundle file made for this node. */
  readonly bundleFile: string;
  /** `--fleet-key`: the pinned fleet public key printed by `keygen`. Required. */
  readonly expectedServerPublicKey: string;
  /** `--hsm pkcs11 …` or `--hsm software --transport-key … --key-file …`, plus `--replace`. */
  readonly target: FleetImportTarget;
}

/**
 * `backvault vault import`: installs this node's bundle into its HSM.
 * @throws CorruptBackupError if the bundle was altered (nothing installed).
 * @throws UsageError for another node's or another fleet's bundle, or existing keys without `replace`.
 */
export async function vaultImport(
  o: VaultImportOptions,
): Promise<{ readonly serverPublicKey: string }> {
  let text: string;
  try {
    text = await fsp.readFile(o.bundleFile, 'utf8');
  } catch (e) {
    throw ceremonyFileError(e, 'read', 'bundle', o.bundleFile);
  }
  return importFleetKeys(text, o.target, o.expectedServerPublicKey);
}
