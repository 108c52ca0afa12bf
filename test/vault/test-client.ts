/**
 * A minimal vault client for tests, speaking the wire protocol of src/wire/index.ts with
 * the real OPAQUE client. Not the SDK: its envelope format is a test-only choice.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import { ENVELOPE_RELEASE_INFO, KEY_PROOF_INFO } from '#sdk/wire/index.js';

/** Minimal Argon2 so tests and the bench measure the vault, not client stretching. */
export const FAST_STRETCHING = {
  'argon2id-custom': { iterations: 1, memory: 8, parallelism: 1 },
} as const;

const ENVELOPE_INFO = 'backvault/test-client/envelope/v1';

function hkdf(ikm: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, new Uint8Array(0), info, 32));
}

function seal(key: Uint8Array, plain: Uint8Array, aad: string): Buffer {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(Buffer.from(aad));
  return Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
}

function open(key: Uint8Array, sealed: Uint8Array, aad: string): Buffer {
  const b = Buffer.from(sealed);
  const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(b.subarray(b.length - 16));
  return Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]);
}

/** The key proof of a backup key (base64url), as the wire protocol defines it. */
export function keyProofOf(backupKey: Uint8Array): string {
  return hkdf(backupKey, KEY_PROOF_INFO).toString('base64url');
}

/** An HTTP answer: status and parsed JSON body. */
export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown> & {
    error?: { code: string; message: string; attemptsLeft?: number };
  };
}

/** Raw JSON call. */
export async function call(
  url: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  token?: string,
  rawBody?: string,
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined || rawBody !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, {
    method,
    headers,
    ...(rawBody !== undefined
      ? { body: rawBody }
      : body !== undefined
        ? { body: JSON.stringify(body) }
        : {}),
  });
  const text = await res.text();
  let parsed: Answer['body'];
  try {
    parsed = JSON.parse(text) as Answer['body'];
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}

/** Gets a dev token from a `--dev-auth` vault. */
export async function devToken(url: string, account: string): Promise<string> {
  const a = await call(url, 'POST', '/v1/dev/token', { account });
  if (a.status !== 200) throw new Error(`dev token: ${a.status}`);
  return a.body.token as string;
}

/** What a registration sent, for replay tests. */
export interface RegistrationTrace {
  readonly finishBody: Record<string, unknown>;
  readonly status: Answer;
}

/** Registers (or replaces, with `currentBackupKey`) a password protecting `backupKey`. */
export async function register(
  url: string,
  token: string,
  password: string,
  backupKey: Uint8Array,
  opts: { currentBackupKey?: Uint8Array; maxAttempts?: number; beforeFinish?: () => void } = {},
): Promise<RegistrationTrace> {
  await opaque.ready;
  const c = opaque.client.startRegistration({ password });
  const s = await call(
    url,
    'POST',
    '/v1/registration/start',
    { registrationRequest: c.registrationRequest },
    token,
  );
  if (s.status !== 200) return { finishBody: {}, status: s };
  const f = opaque.client.finishRegistration({
    password,
    clientRegistrationState: c.clientRegistrationState,
    registrationResponse: s.body.registrationResponse as string,
    keyStretching: FAST_STRETCHING,
  });
  const envKey = hkdf(Buffer.from(f.exportKey, 'base64url'), ENVELOPE_INFO);
  const finishBody: Record<string, unknown> = {
    registrationTicket: s.body.registrationTicket,
    registrationRecord: f.registrationRecord,
    keyEnvelope: seal(envKey, backupKey, ENVELOPE_INFO).toString('base64url'),
    keyProof: keyProofOf(backupKey),
    ...(opts.currentBackupKey ? { currentKeyProof: keyProofOf(opts.currentBackupKey) } : {}),
    ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}),
  };
  opts.beforeFinish?.();
  const status = await call(url, 'POST', '/v1/registration/finish', finishBody, token);
  return { finishBody, status };
}

/** Result of a login. */
export type LoginResult =
  | {
      readonly ok: true;
      readonly backupKey: Buffer;
      readonly startBody: unknown;
      readonly finishBody: Record<string, unknown>;
    }
  | {
      readonly ok: false;
      readonly code: string;
      readonly attemptsLeft?: number;
      readonly status: number;
    };

/** Full login: start, client finish, server finish, envelope opening. */
export async function login(url: string, token: string, password: string): Promise<LoginResult> {
  await opaque.ready;
  const c = opaque.client.startLogin({ password });
  const startBody = { startLoginRequest: c.startLoginRequest };
  const s = await call(url, 'POST', '/v1/login/start', startBody, token);
  if (s.status !== 200) {
    return {
      ok: false,
      code: s.body.error?.code ?? 'HTTP',
      status: s.status,
      ...(s.body.error?.attemptsLeft !== undefined
        ? { attemptsLeft: s.body.error.attemptsLeft }
        : {}),
    };
  }
  const f = opaque.client.finishLogin({
    password,
    clientLoginState: c.clientLoginState,
    loginResponse: s.body.loginResponse as string,
    keyStretching: FAST_STRETCHING,
  });
  if (!f)
    return {
      ok: false,
      code: 'WRONG_PASSWORD',
      attemptsLeft: s.body.attemptsLeft as number,
      status: 200,
    };
  const finishBody = { loginState: s.body.loginState, finishLoginRequest: f.finishLoginRequest };
  const r = await call(url, 'POST', '/v1/login/finish', finishBody, token);
  if (r.status !== 200) return { ok: false, code: r.body.error?.code ?? 'HTTP', status: r.status };
  const rel = hkdf(Buffer.from(f.sessionKey, 'base64url'), ENVELOPE_RELEASE_INFO);
  const envelope = open(
    rel,
    Buffer.from(r.body.releasedEnvelope as string, 'base64url'),
    ENVELOPE_RELEASE_INFO,
  );
  const envKey = hkdf(Buffer.from(f.exportKey, 'base64url'), ENVELOPE_INFO);
  return { ok: true, backupKey: open(envKey, envelope, ENVELOPE_INFO), startBody, finishBody };
}
