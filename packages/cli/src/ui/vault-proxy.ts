/**
 * `/vault/v1/*` → the device's vault, `/v1/*`: the page's OPAQUE client talks to the vault
 * through its own origin, so the page needs no CORS at the vault and sends nothing to any
 * other origin. What crosses is what OPAQUE is designed to send over an untrusted channel
 * (the password never does), plus the key proofs the SDK derives from the backup key.
 *
 * The proxy forwards only `/v1/*`, only a few headers (never the UI's cookie), and adds the
 * vault's bearer token itself: the app's token (`--token`/`BACKVAULT_TOKEN`) or, from a
 * `--dev-auth` vault, a dev token — resolved by the CLI's own `tokenSource`. The page never
 * sees a token and cannot choose the account.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TokenSource } from 'backvault/client';
import { loadDevice, deviceExists } from '../device/profile.js';
import { tokenSource } from '../cli/vault-access.js';
import { UiCommandContext, uiIo } from './cli-bridge.js';
import type { ApiContext } from './api.js';
import { readBody } from './server.js';

/** The vault this device uses: its profile's (password mode), else the `ui` flags. */
export async function vaultTarget(
  api: ApiContext,
): Promise<{ vaultUrl: string; account: string; pinned?: string } | undefined> {
  const { config } = api;
  if (await deviceExists(config.deviceDir)) {
    const p = (await loadDevice(config.deviceDir)).profile;
    if (p.mode === 'password' && p.vaultUrl && p.account) {
      return {
        vaultUrl: p.vaultUrl,
        account: p.account,
        ...(p.serverPublicKey ? { pinned: p.serverPublicKey } : {}),
      };
    }
  }
  if (config.vaultUrl && config.account) {
    return { vaultUrl: config.vaultUrl, account: config.account };
  }
  return undefined;
}

const tokens = new Map<string, TokenSource>();

/** The CLI's token source for `account` at `vaultUrl`, one per pair (dev tokens are cached). */
export function vaultToken(api: ApiContext, vaultUrl: string, account: string): TokenSource {
  const k = `${vaultUrl}\n${account}`;
  let t = tokens.get(k);
  if (!t) {
    const ctx = new UiCommandContext(uiIo(api.config.env, api.config.cwd));
    const values = api.config.vaultToken ? { token: api.config.vaultToken } : {};
    t = tokenSource(ctx, values, vaultUrl, account);
    tokens.set(k, t);
  }
  return t;
}

/** Request headers passed on to the vault (everything else, cookies included, is dropped). */
const FORWARDED_REQUEST = ['content-type', 'accept', 'content-length'] as const;
/** Response headers passed back to the page. */
const FORWARDED_RESPONSE = ['content-type', 'retry-after', 'content-length'] as const;

/** Forwards one `/vault/…` request (path given without the `/vault` prefix). */
export async function proxyVault(
  api: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const fail = (status: number, code: string, message: string): void => {
    res.writeHead(status, { ...api.headers, 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code, message } }));
  };
  if (!path.startsWith('/v1/')) return fail(404, 'NOT_FOUND', 'only /vault/v1/* is forwarded');
  const target = await vaultTarget(api);
  if (!target) {
    return fail(
      409,
      'USAGE',
      'no vault configured: start `backvault ui` with --vault URL and --account ID',
    );
  }
  const body = await readBody(req);
  if (body === undefined) return fail(413, 'BAD_REQUEST', 'request too large');
  const base = new URL(target.vaultUrl);
  const headers: Record<string, string> = {};
  for (const h of FORWARDED_REQUEST) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  let bearer: string;
  try {
    const t = vaultToken(api, target.vaultUrl, target.account);
    bearer = typeof t === 'string' ? t : await t();
  } catch (e) {
    return fail(502, 'UNAVAILABLE', `could not get a token for the vault: ${(e as Error).message}`);
  }
  headers.authorization = `Bearer ${bearer}`;
  const basePath = base.pathname.replace(/\/+$/, '');
  const url = new URL(req.url ?? '', 'http://x');
  const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
  const up = send(
    {
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port,
      method: req.method,
      path: `${basePath}${path}${url.search}`,
      headers,
    },
    (answer) => {
      const out: Record<string, string> = { ...api.headers };
      for (const h of FORWARDED_RESPONSE) {
        const v = answer.headers[h];
        if (typeof v === 'string') out[h] = v;
      }
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    },
  );
  up.on('error', () => {
    if (!res.headersSent) fail(502, 'UNAVAILABLE', 'the vault could not be reached');
    else res.end();
  });
  up.end(body);
}
