// @ts-check
/**
 * The token a backvault vault accepts, signed by YOUR app's auth server for a user who is
 * already logged in to your app. The vault never sees your users' app passwords: it trusts
 * this token to say which account (`sub`) a request acts on.
 *
 * What the vault checks (src/vault/auth.ts):
 *   - alg:  EdDSA (Ed25519) or ES256 (P-256). Nothing else: no HS256, no RS256, no `none`.
 *   - iss:  exactly the vault's `--issuer`;  aud: exactly its `--audience`.
 *   - sub:  the account id, 1-128 characters of A-Z a-z 0-9 . _ @ : + = -
 *   - exp:  required; at most `--max-token-lifetime` (default 3600 s) after iat and after
 *           now. iat, if present, not in the future. Clock skew tolerated: 60 s.
 *   - kid:  optional; when both the token and the vault's JWKS entry carry one, they must match.
 * The vault is configured with your PUBLIC key: `vault serve --issuer ISS --audience AUD
 * --jwks jwks.json` (or `--jwt-public-key key.pem`). Rotate by adding the new key to the
 * JWKS file first (the vault re-reads it on change), then signing with it.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK } from 'jose';

/** The vault's default `--max-token-lifetime`. */
export const VAULT_MAX_LIFETIME_SECONDS = 3600;
const ACCOUNT = /^[A-Za-z0-9._@:+=-]{1,128}$/;

/**
 * @param {object} options
 * @param {string} options.privateKeyPem  PKCS#8 PEM of an Ed25519 or P-256 private key.
 * @param {string} options.issuer         The vault's `--issuer` (e.g. your app's URL).
 * @param {string} options.audience       The vault's `--audience` (e.g. `backvault`).
 * @param {number} [options.lifetimeSeconds] Default 300: enough for one enable or restore
 *   (the SDK asks again through a token function when it runs out).
 */
export async function createTokenIssuer({
  privateKeyPem,
  issuer,
  audience,
  lifetimeSeconds = 300,
}) {
  const privateKey = createPrivateKey(privateKeyPem);
  const type = privateKey.asymmetricKeyType;
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  /** @type {'EdDSA' | 'ES256'} */
  let alg;
  if (type === 'ed25519') alg = 'EdDSA';
  else if (type === 'ec' && curve === 'prime256v1') alg = 'ES256';
  else throw new Error(`the vault accepts Ed25519 or P-256 keys, not ${type} ${curve ?? ''}`);
  if (!(lifetimeSeconds > 0 && lifetimeSeconds <= VAULT_MAX_LIFETIME_SECONDS)) {
    throw new Error(
      `lifetimeSeconds must be 1..${VAULT_MAX_LIFETIME_SECONDS} (the vault refuses longer)`,
    );
  }
  const publicJwk = await exportJWK(createPublicKey(privateKey));
  // The key id is the key's RFC 7638 thumbprint: stable, and the same on both sides.
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    alg,
    kid,
    /** The JWKS to give the vault operator (`--jwks FILE`): public keys only. */
    jwks: { keys: [{ ...publicJwk, kid, alg, use: 'sig' }] },
    /**
     * A token for `userId`, who YOUR auth has already authenticated.
     * @param {string} userId
     * @returns {Promise<{ token: string, expiresAt: Date }>}
     */
    async issue(userId) {
      if (!ACCOUNT.test(userId)) throw new Error('user id is not a valid vault account id');
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg, kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(userId)
        .setIssuedAt(now)
        .setExpirationTime(now + lifetimeSeconds)
        .sign(privateKey);
      return { token, expiresAt: new Date((now + lifetimeSeconds) * 1000) };
    },
  };
}
