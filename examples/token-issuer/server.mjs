// @ts-check
/**
 * A tiny token endpoint: POST /backvault/token answers `{ token, expiresAt }` for the user
 * of the calling session. Your real auth server adds this one route; the rest is yours.
 *
 *   ISSUER_KEY_FILE=issuer-key.pem ISSUER=https://app.example AUDIENCE=backvault \
 *   DEMO_SESSION=some-long-random-string DEMO_USER=alice node server.mjs
 *
 * The app then hands the SDK a token FUNCTION, so every vault call gets a fresh token:
 *   new VaultClient({ baseUrl, token: async () => (await (await fetch(url, …)).json()).token })
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createTokenIssuer } from './issuer.mjs';

/**
 * REPLACE THIS with your session check (cookie, OAuth access token, …). The demo knows one
 * session, from the environment, so the example runs without a user database.
 * @param {import('node:http').IncomingMessage} req
 * @returns {string | undefined} the logged-in user's id
 */
function demoAuthenticate(req) {
  const session = process.env.DEMO_SESSION;
  if (!session || req.headers.authorization !== `Bearer ${session}`) return undefined;
  return process.env.DEMO_USER;
}

const issuer = await createTokenIssuer({
  privateKeyPem: await readFile(process.env.ISSUER_KEY_FILE ?? 'issuer-key.pem', 'utf8'),
  issuer: process.env.ISSUER ?? 'https://app.example',
  audience: process.env.AUDIENCE ?? 'backvault',
});

const server = createServer((req, res) => {
  const reply = (/** @type {number} */ status, /** @type {object} */ body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/.well-known/jwks.json') return reply(200, issuer.jwks);
  if (req.method !== 'POST' || req.url !== '/backvault/token') return reply(404, {});
  const user = demoAuthenticate(req);
  if (!user) return reply(401, { error: 'log in first' });
  issuer.issue(user).then(
    ({ token, expiresAt }) => reply(200, { token, expiresAt }),
    () => reply(500, { error: 'cannot issue a token' }),
  );
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const addr = /** @type {import('node:net').AddressInfo} */ (server.address());
  console.log(`token server listening on http://127.0.0.1:${addr.port}`);
});
