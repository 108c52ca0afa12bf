/**
 * Account binding: the account a request acts on is the verified `sub` of a bearer JWT
 * issued by the app's own auth (EdDSA or ES256), never a field the client chooses.
 * The dev issuer signs tokens itself and exists only for the embedded demo on loopback.
 */
import { readFile } from 'node:fs/promises';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import {
  SignJWT,
  createLocalJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JSONWebKeySet,
} from 'jose';
import { UnauthorizedError, UsageError } from '../errors.js';
import { ACCOUNT_PATTERN } from '../wire/index.js';

const ALGORITHMS = ['EdDSA', 'ES256'];
const ACCOUNT_RE = new RegExp(ACCOUNT_PATTERN);
/** Issuer and audience of dev tokens. */
export const DEV_ISSUER = 'backvault-dev-insecure';
/** Audience of dev tokens. */
export const DEV_AUDIENCE = 'backvault-vault';

/** Verifies bearer tokens and names the account. */
export interface Authenticator {
  /**
   * Returns the account (`sub`) of a valid token.
   * @throws UnauthorizedError if the token is missing, forged, expired or not for us.
   */
  verify(token: string | undefined): Promise<string>;
  /** Only on the dev issuer: mints a token for `account`. */
  issueDevToken?(account: string): Promise<{ token: string; expiresAt: string }>;
}

/** Configuration of the JWT authenticator. */
export interface JwtAuthConfig {
  readonly issuer: string;
  readonly audience: string;
  /** A JWKS file (`{ "keys": [...] }`) with the issuer's public keys. */
  readonly jwksFile?: string;
  /** PEM (SPKI) public key files, tried in turn. */
  readonly publicKeyFiles?: readonly string[];
}

function subjectOf(payload: JWTPayload): string {
  const sub = payload.sub;
  if (typeof sub !== 'string' || !ACCOUNT_RE.test(sub)) {
    throw new UnauthorizedError('token subject is not a valid account id');
  }
  return sub;
}

function unauthorized(e: unknown): UnauthorizedError {
  if (e instanceof UnauthorizedError) return e;
  if (e instanceof joseErrors.JWTExpired) return new UnauthorizedError('token expired');
  return new UnauthorizedError('token is not valid for this vault');
}

/**
 * Builds the production authenticator from a JWKS file or PEM public keys.
 * @throws UsageError if no key source is given or a key cannot be read.
 */
export async function createJwtAuthenticator(cfg: JwtAuthConfig): Promise<Authenticator> {
  const options = { issuer: cfg.issuer, audience: cfg.audience, algorithms: ALGORITHMS };
  if (cfg.jwksFile) {
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(await readFile(cfg.jwksFile, 'utf8')) as JSONWebKeySet;
    } catch (e) {
      throw new UsageError(`cannot read JWKS file ${cfg.jwksFile}: ${(e as Error).message}`);
    }
    const keySet = createLocalJWKSet(jwks);
    return {
      async verify(token) {
        if (!token) throw new UnauthorizedError();
        try {
          return subjectOf((await jwtVerify(token, keySet, options)).payload);
        } catch (e) {
          throw unauthorized(e);
        }
      },
    };
  }
  const files = cfg.publicKeyFiles ?? [];
  if (files.length === 0)
    throw new UsageError('JWT auth needs --jwks FILE or --jwt-public-key FILE');
  const keys: KeyObject[] = [];
  for (const f of files) {
    try {
      keys.push(createPublicKey(await readFile(f, 'utf8')));
    } catch (e) {
      throw new UsageError(`cannot read JWT public key ${f}: ${(e as Error).message}`);
    }
  }
  return {
    async verify(token) {
      if (!token) throw new UnauthorizedError();
      let last: unknown;
      for (const k of keys) {
        try {
          return subjectOf((await jwtVerify(token, k, options)).payload);
        } catch (e) {
          last = e;
        }
      }
      throw unauthorized(last);
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
  const options = { issuer: DEV_ISSUER, audience: DEV_AUDIENCE, algorithms: ['EdDSA'] };
  return {
    async verify(token) {
      if (!token) throw new UnauthorizedError();
      try {
        return subjectOf((await jwtVerify(token, publicKey, options)).payload);
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
  return {
    ...inner,
    async verify(token) {
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

/** Extracts the token from an `Authorization: Bearer …` header value. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header.trim());
  return m?.[1];
}
