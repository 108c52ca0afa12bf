/**
 * Account binding: the account a request acts on is the verified `sub` of a bearer JWT
 * issued by the app's own auth (EdDSA or ES256), never a field the client chooses.
 * The dev issuer signs tokens itself and exists only for the embedded demo on loopback.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import {
  SignJWT,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  errors as joseErrors,
  exportJWK,
  jwtVerify,
  type JWK,
  type JWTPayload,
} from 'jose';
import { UnauthorizedError, UsageError } from 'backvault/errors';
import { ACCOUNT_PATTERN } from 'backvault/wire';

const ALGORITHMS = ['EdDSA', 'ES256'];
const ACCOUNT_RE = new RegExp(ACCOUNT_PATTERN);
/** Issuer and audience of dev tokens. */
export const DEV_ISSUER = 'backvault-dev-insecure';
/** Audience of dev tokens. */
export const DEV_AUDIENCE = 'backvault-vault';
/** Clock skew tolerated between the issuer and the vault for `exp`, `nbf` and `iat`. */
export const CLOCK_SKEW_SECONDS = 60;
/** Default of `--max-token-lifetime`: a token may live at most this long. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 3600;

/** Where the authenticator reports key loads and reload failures. */
export type AuthLog = (level: 'info' | 'error', msg: string, fields: object) => void;

/** Verifies bearer tokens and names the account. */
export interface Authenticator {
  /**
   * Returns the account (`sub`) of a valid token.
   * @throws UnauthorizedError if the token is missing, forged, expired or not for us.
   */
  verify(token: string | undefined): Promise<string>;
  /** Only on the dev issuer: mints a token for `account`. */
  issueDevToken?(account: string): Promise<{ token: string; expiresAt: string }>;
  /** RFC 7638 thumbprints of the issuer keys in force (never the keys themselves). */
  keyThumbprints?(): readonly string[];
  /** JWKS entries left aside (not Ed25519/P-256 signing keys), by file#index and type. */
  skippedKeys?(): readonly string[];
  /** Changes whenever the key set changes (so caches of verified tokens start over). */
  generation?(): number;
  /** Re-reads the key files; on failure keeps the keys in force and logs why. */
  reload?(): Promise<void>;
  /** Where key loads and reload failures are reported (default: nowhere). */
  setLogger?(log: AuthLog): void;
  /** Stops watching key files. */
  close?(): void;
}

/** Configuration of the JWT authenticator. */
export interface JwtAuthConfig {
  readonly issuer: string;
  readonly audience: string;
  /** A JWKS file (`{ "keys": [...] }`) with the issuer's public keys. */
  readonly jwksFile?: string;
  /** PEM (SPKI) public key files. Every key of both sources is accepted. */
  readonly publicKeyFiles?: readonly string[];
  /** Longest accepted token lifetime (`exp - iat`, and `exp - now`). Default 3600. */
  readonly maxTokenLifetimeSeconds?: number;
  /** Watch the key files and reload on change. Default true. */
  readonly watch?: boolean;
}

function subjectOf(payload: JWTPayload): string {
  const sub = payload.sub;
  if (typeof sub !== 'string' || !ACCOUNT_RE.test(sub)) {
    throw new UnauthorizedError('token subject is not a valid account id');
  }
  return sub;
}

/**
 * The vault's own rules on top of the signature: an expiry is required, the lifetime is
 * bounded, and a token cannot claim to be issued in the future (beyond the skew).
 * `nbf` in the future is refused by jose with the same skew.
 */
function checkLifetime(payload: JWTPayload, maxLifetime: number): void {
  const now = Math.floor(Date.now() / 1000);
  const { exp, iat } = payload;
  if (typeof exp !== 'number') throw new UnauthorizedError('token has no expiry (exp)');
  if (exp - now > maxLifetime + CLOCK_SKEW_SECONDS)
    throw new UnauthorizedError('token lifetime exceeds the maximum this vault accepts');
  if (iat !== undefined) {
    if (typeof iat !== 'number') throw new UnauthorizedError('token iat is not a number');
    if (iat > now + CLOCK_SKEW_SECONDS)
      throw new UnauthorizedError('token is issued in the future (iat)');
    if (exp - iat > maxLifetime)
      throw new UnauthorizedError('token lifetime exceeds the maximum this vault accepts');
  }
}

function unauthorized(e: unknown): UnauthorizedError {
  if (e instanceof UnauthorizedError) return e;
  if (e instanceof joseErrors.JWTExpired) return new UnauthorizedError('token expired');
  if (e instanceof joseErrors.JWTClaimValidationFailed && e.claim === 'exp')
    return new UnauthorizedError('token has no expiry (exp)');
  if (e instanceof joseErrors.JWTClaimValidationFailed && e.claim === 'nbf')
    return new UnauthorizedError('token is not valid yet (nbf)');
  return new UnauthorizedError('token is not valid for this vault');
}

/** One issuer key in force. */
interface IssuerKey {
  readonly key: KeyObject;
  readonly kid: string | undefined;
  readonly thumbprint: string;
  readonly source: string;
}

async function issuerKey(key: KeyObject, kid: string | undefined, source: string) {
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (type !== 'ed25519' && !(type === 'ec' && curve === 'prime256v1')) {
    throw new UsageError(
      `${source}: unsupported key type (${type ?? 'unknown'}${curve ? ` ${curve}` : ''})`,
      'Issuer keys must be Ed25519 (EdDSA) or P-256 (ES256) public keys.',
    );
  }
  const thumbprint = await calculateJwkThumbprint((await exportJWK(key)) as JWK);
  return { key, kid, thumbprint, source } satisfies IssuerKey;
}

/**
 * Reads every key of the JWKS file and the PEM files.
 * @throws UsageError naming the file that cannot be read or holds an unusable key.
 */
async function loadIssuerKeys(
  cfg: JwtAuthConfig,
): Promise<{ keys: IssuerKey[]; skipped: string[] }> {
  const keys: IssuerKey[] = [];
  /** JWKS entries of other types (an issuer's RSA or encryption keys): not ours to use. */
  const skipped: string[] = [];
  if (cfg.jwksFile) {
    let jwks: { keys?: unknown };
    try {
      jwks = JSON.parse(await readFile(cfg.jwksFile, 'utf8')) as { keys?: unknown };
    } catch (e) {
      throw new UsageError(`cannot read JWKS file ${cfg.jwksFile}: ${(e as Error).message}`);
    }
    if (!Array.isArray(jwks.keys) || jwks.keys.length === 0)
      throw new UsageError(`JWKS file ${cfg.jwksFile} has no "keys"`);
    for (const [i, jwk] of (jwks.keys as JWK[]).entries()) {
      const usable =
        (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') || (jwk.kty === 'EC' && jwk.crv === 'P-256');
      if ((jwk.use !== undefined && jwk.use !== 'sig') || !usable) {
        skipped.push(
          `${cfg.jwksFile}#${i} (${String(jwk.kty)} ${String(jwk.crv ?? jwk.use ?? '')})`,
        );
        continue;
      }
      let key: KeyObject;
      try {
        key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
      } catch (e) {
        throw new UsageError(`JWKS file ${cfg.jwksFile} key ${i}: ${(e as Error).message}`);
      }
      keys.push(await issuerKey(key, jwk.kid, `${cfg.jwksFile}#${i}`));
    }
  }
  for (const f of cfg.publicKeyFiles ?? []) {
    let key: KeyObject;
    try {
      key = createPublicKey(await readFile(f, 'utf8'));
    } catch (e) {
      throw new UsageError(`cannot read JWT public key ${f}: ${(e as Error).message}`);
    }
    keys.push(await issuerKey(key, undefined, f));
  }
  if (keys.length === 0)
    throw new UsageError(
      'JWT auth needs --jwks FILE or --jwt-public-key FILE with an Ed25519 or P-256 signing key',
      skipped.length ? `Skipped as unusable: ${skipped.join(', ')}.` : undefined,
    );
  return { keys, skipped };
}

/**
 * Builds the production authenticator from a JWKS file and/or PEM public keys: a token
 * signed by ANY of them is accepted (issuers rotate keys). The files are watched (and
 * re-read on {@link Authenticator.reload}, i.e. SIGHUP); a reload that fails keeps the
 * keys in force.
 * @throws UsageError if no key source is given or a key cannot be read.
 */
export async function createJwtAuthenticator(cfg: JwtAuthConfig): Promise<Authenticator> {
  const options = {
    issuer: cfg.issuer,
    audience: cfg.audience,
    algorithms: ALGORITHMS,
    clockTolerance: CLOCK_SKEW_SECONDS,
    requiredClaims: ['exp'],
  };
  const maxLifetime = cfg.maxTokenLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
  if (!cfg.jwksFile && !cfg.publicKeyFiles?.length)
    throw new UsageError('JWT auth needs --jwks FILE or --jwt-public-key FILE');
  let { keys, skipped } = await loadIssuerKeys(cfg);
  let generation = 0;
  let log: AuthLog = () => undefined;
  const thumbprints = (): string[] => keys.map((k) => k.thumbprint);
  let reloading: Promise<void> | undefined;
  const reload = async (): Promise<void> => {
    try {
      const next = await loadIssuerKeys(cfg);
      const changed = next.keys.map((k) => k.thumbprint).join() !== thumbprints().join();
      keys = next.keys;
      skipped = next.skipped;
      if (changed) generation++;
      log('info', 'jwt issuer keys reloaded', { keys: thumbprints(), skipped, changed });
    } catch (e) {
      log('error', 'jwt issuer keys NOT reloaded; the previous keys stay in force', {
        reason: (e as Error).message,
        keys: thumbprints(),
      });
    }
  };
  // Watch the directories, not the files: tools replace key files by renaming over them.
  const watchers: FSWatcher[] = [];
  if (cfg.watch !== false) {
    const files = [...(cfg.jwksFile ? [cfg.jwksFile] : []), ...(cfg.publicKeyFiles ?? [])];
    const byDir = new Map<string, Set<string>>();
    for (const f of files.map((x) => resolvePath(x))) {
      const names = byDir.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      byDir.set(dirname(f), names);
    }
    let timer: NodeJS.Timeout | undefined;
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name !== null && !names.has(String(name))) return;
          clearTimeout(timer);
          // Let the writer finish (editors write in several steps).
          timer = setTimeout(() => void (reloading = reload()), 200);
          timer.unref();
        });
        w.on('error', () => undefined);
        watchers.push(w);
      } catch {
        // No watching on this file system: SIGHUP still reloads.
      }
    }
  }
  return {
    async verify(token) {
      if (!token) throw new UnauthorizedError();
      let kid: string | undefined;
      try {
        kid = decodeProtectedHeader(token).kid;
      } catch {
        throw new UnauthorizedError('token is not valid for this vault');
      }
      let last: unknown;
      for (const k of keys) {
        if (kid !== undefined && k.kid !== undefined && k.kid !== kid) continue;
        let payload: JWTPayload;
        try {
          payload = (await jwtVerify(token, k.key, options)).payload;
        } catch (e) {
          last = e;
          continue;
        }
        try {
          checkLifetime(payload, maxLifetime);
          return subjectOf(payload);
        } catch (e) {
          throw unauthorized(e);
        }
      }
      throw unauthorized(last);
    },
    keyThumbprints: thumbprints,
    skippedKeys: () => skipped,
    generation: () => generation,
    async reload() {
      await reloading;
      await reload();
    },
    setLogger(l) {
      log = l;
    },
    close() {
      for (const w of watchers) w.close();
    },
  };
}

/**
 * Environment variable through which a cluster primary hands its dev issuer key (PKCS#8
 * PEM, Ed25519) to its workers, so a dev token minted by one worker verifies in all.
 * Internal to `serve`; only ever set for `--dev-auth` vaults, which are loopback-only.
 */
export const DEV_AUTH_KEY_ENV = 'BACKVAULT_DEV_AUTH_KEY';

/** A fresh Ed25519 dev issuer key as PKCS#8 PEM (the form {@link DEV_AUTH_KEY_ENV} carries). */
export function generateDevAuthKey(): string {
  return generateKeyPairSync('ed25519')
    .privateKey.export({ format: 'pem', type: 'pkcs8' })
    .toString();
}

function devIssuerKey(): KeyObject {
  const pem = process.env[DEV_AUTH_KEY_ENV];
  if (!pem) return generateKeyPairSync('ed25519').privateKey;
  // Read once; later children of this process have no business with it.
  delete process.env[DEV_AUTH_KEY_ENV];
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('not Ed25519');
    return key;
  } catch {
    throw new UsageError(`${DEV_AUTH_KEY_ENV} does not hold an Ed25519 PKCS#8 private key`);
  }
}

/**
 * INSECURE dev issuer: anyone who can reach the vault can get a token for any account.
 * The key pair lives only in memory (a fresh one per start, or the cluster primary's from
 * {@link DEV_AUTH_KEY_ENV}), so tokens die with the vault.
 * @throws UsageError if {@link DEV_AUTH_KEY_ENV} is set but malformed.
 */
export async function createDevAuthenticator(ttlSeconds = 3600): Promise<Authenticator> {
  const privateKey = devIssuerKey();
  const publicKey = createPublicKey(privateKey);
  const options = {
    issuer: DEV_ISSUER,
    audience: DEV_AUDIENCE,
    algorithms: ['EdDSA'],
    clockTolerance: CLOCK_SKEW_SECONDS,
    requiredClaims: ['exp'],
  };
  return {
    async verify(token) {
      if (!token) throw new UnauthorizedError();
      try {
        const { payload } = await jwtVerify(token, publicKey, options);
        checkLifetime(payload, ttlSeconds);
        return subjectOf(payload);
      } catch (e) {
        throw unauthorized(e);
      }
    },
    async issueDevToken(account) {
      const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA' })
        .setSubject(account)
        .setIssuer(DEV_ISSUER)
        .setAudience(DEV_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(privateKey);
      return { token, expiresAt: new Date(exp * 1000).toISOString() };
    },
  };
}

/**
 * Wraps an authenticator with a cache of verified tokens (by exact token string, until
 * the token's own expiry or `maxAgeMs`, whichever is first). A login is two requests with
 * one token; signature verification is a visible share of the vault's CPU per login.
 * Only successes are cached, so a forged token is checked every time.
 */
export function cachingAuthenticator(
  inner: Authenticator,
  maxEntries = 10_000,
  maxAgeMs = 60_000,
): Authenticator {
  const cache = new Map<string, { account: string; until: number }>();
  let generation = inner.generation?.() ?? 0;
  return {
    ...inner,
    async verify(token) {
      const now = inner.generation?.() ?? 0;
      if (now !== generation) {
        // The issuer keys changed: a token verified by a removed key must not live on here.
        cache.clear();
        generation = now;
      }
      if (token) {
        const hit = cache.get(token);
        if (hit && hit.until > Date.now()) return hit.account;
        cache.delete(token);
      }
      const account = await inner.verify(token);
      const exp = expiryOf(token as string);
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
      cache.set(token as string, { account, until: Math.min(exp, Date.now() + maxAgeMs) });
      return account;
    },
  };
}

/** The `exp` of an already verified JWT, in ms (0 if absent, i.e. never cached). */
function expiryOf(token: string): number {
  try {
    const payload = JSON.parse(
      Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'),
    ) as JWTPayload;
    return typeof payload.exp === 'number' ? payload.exp * 1000 : 0;
  } catch {
    return 0;
  }
}

/**
 * Extracts the token from an `Authorization: Bearer …` header value. The scheme is
 * case-insensitive (RFC 9110 §11.1); the token is the RFC 6750 `b64token`.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer +([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
  return m?.[1];
}
