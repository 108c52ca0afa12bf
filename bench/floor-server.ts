/**
 * The floor of a vault login on this machine, for `bench/vault-login.ts`: node:http, JSON
 * in and out, and the OPAQUE server operations — no framework, no store, no token check,
 * no sealing, no counter, no rate limit, no metrics. It serves the vault's routes with the
 * vault's bodies, so the same load generator drives it.
 *
 * NOT a vault (it would hand out unlimited guesses): it exists to measure, in the same run
 * as the vault, how much CPU per login any HTTP server doing OPAQUE spends here.
 * Prints `{"listening": URL, "serverPublicKey": KEY}` when ready, like `vault serve`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';

await opaque.ready;
const serverSetup = opaque.server.createSetup();
const records = new Map<string, string>();
const states = new Map<string, string>();

type Body = Record<string, string>;
const routes: Record<string, (account: string, body: Body) => unknown> = {
  '/v1/dev/token': (_a, b) => ({ token: b.account, expiresAt: '' }),
  '/v1/registration/start': (account, b) => ({
    registrationResponse: opaque.server.createRegistrationResponse({
      serverSetup,
      userIdentifier: account,
      registrationRequest: b.registrationRequest!,
    }).registrationResponse,
    registrationTicket: account,
  }),
  '/v1/registration/finish': (account, b) => {
    records.set(account, b.registrationRecord!);
    return {};
  },
  '/v1/login/start': (account, b) => {
    const r = opaque.server.startLogin({
      serverSetup,
      userIdentifier: account,
      registrationRecord: records.get(account)!,
      startLoginRequest: b.startLoginRequest!,
    });
    const id = randomBytes(12).toString('base64url');
    states.set(id, r.serverLoginState);
    return { loginResponse: r.loginResponse, loginState: id, attemptsLeft: 10 };
  },
  '/v1/login/finish': (_a, b) => {
    const state = states.get(b.loginState!)!;
    states.delete(b.loginState!);
    opaque.server.finishLogin({
      serverLoginState: state,
      finishLoginRequest: b.finishLoginRequest!,
    });
    return { releasedEnvelope: '', attemptsLeft: 10 };
  },
};

function handle(req: IncomingMessage, res: ServerResponse): void {
  const parts: Buffer[] = [];
  req.on('data', (d: Buffer) => parts.push(d));
  req.on('end', () => {
    let status = 200;
    let out: unknown;
    try {
      const route = routes[req.url ?? ''];
      if (!route) throw new Error('no such route');
      const account = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      out = route(account, JSON.parse(Buffer.concat(parts).toString('utf8')) as Body);
    } catch (e) {
      status = 400;
      out = { error: { code: 'BAD_REQUEST', message: (e as Error).message } };
    }
    const text = JSON.stringify(out);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  });
}

const server = createServer(handle);
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  process.stdout.write(
    `${JSON.stringify({ listening: `http://127.0.0.1:${port}`, serverPublicKey: opaque.server.getPublicKey(serverSetup) })}\n`,
  );
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
