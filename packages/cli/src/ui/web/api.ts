/**
 * The page's side of the local API (`/api/*`, same origin, session cookie sent by the
 * browser) and of the vault (`/vault/*`, through the same server). Nothing is stored in
 * localStorage or sessionStorage: what the page knows lives in memory until it is closed.
 */
import { VaultClient } from 'backvault/client';
import { h } from './dom.js';

/** An error as the API returns it: the CLI's code, sentence, hint and exit code. */
export interface ApiErrorBody {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
  readonly exitCode?: number;
}

/** A failed API call. */
export class ApiError extends Error {
  readonly body: ApiErrorBody;
  constructor(body: ApiErrorBody) {
    super(`${body.code}: ${body.message}`);
    this.name = 'ApiError';
    this.body = body;
  }
}

/** Progress of a job (see src/ui/jobs.ts). */
export interface JobProgress {
  readonly phase: string;
  readonly bytesDone: number;
  readonly bytesTotal?: number;
  readonly filesDone: number;
  readonly filesTotal?: number;
  readonly rate?: number;
  readonly etaSeconds?: number;
}

/** The running or last job. */
export interface Job {
  readonly id: string;
  readonly kind: 'backup' | 'restore';
  readonly state: 'running' | 'done' | 'failed';
  readonly startedAt: string;
  readonly finishedAt?: string;
  readonly progress?: JobProgress;
  readonly result?: Record<string, unknown>;
  readonly error?: ApiErrorBody;
}

/** The device as the page sees it (no key). */
export interface DeviceView {
  readonly dir: string;
  readonly mode: 'password' | 'recovery-key';
  readonly repo: string;
  readonly vault: string | null;
  readonly account: string | null;
  readonly serverPublicKey: string | null;
  readonly lastBackup: { snapshotId: string; seq: number; time: string } | null;
  readonly lastVerified: { snapshotId: string; seq: number; time: string; ok: boolean } | null;
}

/** `GET /api/state` */
export interface UiState {
  readonly device: DeviceView | null;
  readonly deviceDir: string;
  readonly vault: { url: string; account: string } | null;
  readonly defaults: { repo: string | null; folder: string | null };
  readonly job: Job | null;
}

/**
 * Calls the local API.
 * @throws ApiError with the server's error body.
 */
export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: method === 'POST' ? { 'content-type': 'application/json' } : {},
    ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}),
    credentials: 'same-origin',
  });
  let parsed: unknown;
  try {
    parsed = await res.json();
  } catch {
    throw new ApiError({ code: 'INTERNAL', message: `the local server answered ${res.status}` });
  }
  const err = (parsed as { error?: ApiErrorBody }).error;
  if (!res.ok || err) {
    throw new ApiError(
      err ?? { code: 'INTERNAL', message: `the local server answered ${res.status}` },
    );
  }
  return parsed as T;
}

/**
 * The SDK's vault client, reaching the vault through this origin. The token is added by the
 * local server (the page never holds one), hence the placeholder.
 */
export function vaultClient(pinnedServerPublicKey?: string): VaultClient {
  return new VaultClient({
    baseUrl: `${location.origin}/vault`,
    fetch: (input, init) => window.fetch(input, init),
    token: 'added-by-the-local-server',
    ...(pinnedServerPublicKey ? { pinnedServerPublicKey } : {}),
  });
}

/** Any thrown value as `{code, message, hint}` (SDK errors carry a code too). */
export function errorBody(e: unknown): ApiErrorBody {
  if (e instanceof ApiError) return e.body;
  // An error the page words itself: `{ code, message, hint }`.
  if (typeof e === 'object' && e !== null && !(e instanceof Error)) {
    const o = e as Partial<ApiErrorBody>;
    if (typeof o.code === 'string' && typeof o.message === 'string') return o as ApiErrorBody;
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const hint = (e as { hint?: unknown }).hint;
    return {
      code: typeof code === 'string' ? code : 'INTERNAL',
      message: e.message,
      ...(typeof hint === 'string' && hint !== '' ? { hint } : {}),
    };
  }
  return { code: 'INTERNAL', message: String(e) };
}

/** An error as a sentence, with the CLI's code (and exit code when the CLI would exit). */
export function errorView(e: unknown): HTMLElement {
  const b = errorBody(e);
  const msg = b.message.charAt(0).toUpperCase() + b.message.slice(1);
  return h(
    'div',
    { class: 'alert error', role: 'alert' },
    h('p', {}, h('code', {}, b.code), ` — ${msg.endsWith('.') ? msg : `${msg}.`}`),
    b.hint ? h('p', {}, b.hint) : null,
    b.exitCode !== undefined
      ? h('p', { class: 'hint' }, `The command line reports this as exit code ${b.exitCode}.`)
      : null,
  );
}
