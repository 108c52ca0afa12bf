// @ts-check
/**
 * Makes the issuer's key pair, once: `node keygen.mjs [DIR]` writes
 *   DIR/issuer-key.pem  the PRIVATE key (0600): stays on your auth server (or in its secret store)
 *   DIR/jwks.json       the PUBLIC key: give it to the vault (`vault serve --jwks jwks.json`)
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTokenIssuer } from './issuer.mjs';

const dir = process.argv[2] ?? '.';
const { privateKey } = generateKeyPairSync('ed25519');
const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
// issuer/audience do not matter for the JWKS; the server sets the real ones.
const { jwks, kid } = await createTokenIssuer({ privateKeyPem, issuer: '-', audience: '-' });
await writeFile(join(dir, 'issuer-key.pem'), privateKeyPem, { mode: 0o600, flag: 'wx' });
await writeFile(join(dir, 'jwks.json'), `${JSON.stringify(jwks, null, 2)}\n`);
console.log(
  `wrote ${join(dir, 'issuer-key.pem')} (private) and ${join(dir, 'jwks.json')} (kid ${kid})`,
);
