/**
 * Cross-origin access for web apps (`vault serve --cors-origin ORIGIN`, repeatable; none by
 * default): which origins may call the vault from a browser, and the headers that say so.
 *
 * CORS is not an authentication boundary here: every route that reads or changes a record
 * needs the app's bearer token, sent in `Authorization` (never a cookie), so a page on an
 * origin the vault does not list gains nothing it could not do with `curl`. What the list
 * decides is only whether a BROWSER lets a page read the vault's answers (and, for anything
 * but a plain GET, send the request at all: the SDK's requests carry `Authorization` or a
 * JSON body, so the browser asks first with a preflight, and an unlisted origin gets no
 * further). Hence:
 *
 * - exact origins only, never `*` (a wildcard would let any page on the web drive the vault
 *   with a token it obtained, and browsers refuse `*` for credentialed requests anyway) and
 *   never `null` (the origin of every sandboxed frame and `file:` page: allowing it allows
 *   them all);
 * - the allowed origin is echoed (`Access-Control-Allow-Origin: <that origin>`) and every
 *   response carries `Vary: Origin`, so a shared cache never hands one origin's answer to
 *   another;
 * - methods and headers are those of the vault's routes and of the SDK, nothing more; no
 *   `Access-Control-Allow-Credentials` (there are no cookies to send);
 * - preflights are cached by browsers for {@link CORS_MAX_AGE_SECONDS};
 * - an unlisted origin gets no CORS header at all, and its preflight a 403 with the usual
 *   error body (`CORS_ORIGIN_NOT_ALLOWED`). A preflight never reaches the vault's service:
 *   it is answered here, rate-limited per address like every request, and changes nothing.
 */
import type { FastifyInstance } from 'fastify';
import { BackvaultError, UsageError } from 'backvault/errors';
import { KEY_PROOF_HEADER, ROUTES } from 'backvault/wire';

/**
 * How long a browser may reuse a preflight answer (`Access-Control-Max-Age`), in seconds.
 * Long enough that one enable or recovery sends each preflight once; short enough that an
 * origin the operator removes stops being able to SEND requests within 10 minutes (it can
 * never read an answer again at once: actual responses are checked on every request).
 * Chromium caps the value at 7200, Firefox at 86400.
 */
export const CORS_MAX_AGE_SECONDS = 600;

/** The most origins one vault lists (a typo loop in a deployment script is not a policy). */
export const MAX_CORS_ORIGINS = 64;

/** The methods of the vault's routes (`GET`, `POST`), for `Access-Control-Allow-Methods`. */
export const CORS_ALLOWED_METHODS: readonly string[] = [
  ...new Set(Object.values(ROUTES).map((r) => r.method)),
].sort();

/**
 * The request headers the SDK sends that a browser does not allow by itself: the bearer
 * token, the JSON content type and the backup-key proof of `GET /v1/record/events`.
 * (`Accept` is always allowed; login starts carry their request id in the body.)
 */
export const CORS_ALLOWED_HEADERS: readonly string[] = [
  'authorization',
  'content-type',
  KEY_PROOF_HEADER,
];

/**
 * The response headers the SDK reads that a browser hides by default: `Retry-After` of a
 * rate-limited answer (`src/client/vault-client.ts`).
 */
export const CORS_EXPOSED_HEADERS: readonly string[] = ['retry-after'];

/**
 * Checks one `--cors-origin` value: exactly an origin as a browser sends it in `Origin`,
 * `scheme://host[:port]` with http or https, lower case, no default port, no path (not even
 * `/`), query, fragment or user; no `*` anywhere, not `null`.
 * @returns the origin, unchanged.
 * @throws UsageError naming the value and, where one exists, its correct spelling.
 */
export function parseCorsOrigin(text: string): string {
  const shown = JSON.stringify(text);
  const form = 'an origin is scheme://host[:port] with http or https, e.g. https://app.example';
  if (text === '*' || text.includes('*')) {
    throw new UsageError(
      `--cors-origin ${shown}: wildcards are not allowed; list each web app origin`,
      `Name every origin exactly (${form}); repeat --cors-origin for several.`,
    );
  }
  if (text.toLowerCase() === 'null') {
    throw new UsageError(
      `--cors-origin ${shown}: the opaque origin null (sandboxed frames, file: pages) is never allowed`,
      'Serve the web app from an http or https origin and list that one.',
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--cors-origin ${shown} is not an origin`, `${form}.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--cors-origin ${shown} must use http or https`, `${form}.`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError(`--cors-origin ${shown} must not contain a user or password`, `${form}.`);
  }
  if (url.origin !== text) {
    const onlyForm = url.pathname === '/' && url.search === '' && url.hash === '';
    throw new UsageError(
      `--cors-origin ${shown} is not written as a browser sends it`,
      onlyForm
        ? `Write it as ${url.origin} (no trailing slash, lower case, no default port).`
        : `${form}: no path, query or fragment (${url.origin}?).`,
    );
  }
  return text;
}

/**
 * Validates and de-duplicates a list of origins.
 * @throws UsageError on a bad origin or more than {@link MAX_CORS_ORIGINS}.
 */
export function parseCorsOrigins(list: readonly string[]): readonly string[] {
  const out = [...new Set(list.map(parseCorsOrigin))];
  if (out.length > MAX_CORS_ORIGINS) {
    throw new UsageError(`--cors-origin is given more than ${MAX_CORS_ORIGINS} origins`);
  }
  return out;
}

/** A refused preflight; `http-errors.ts` makes it a 403 in the usual error shape. */
function refused(anyAllowed: boolean): BackvaultError {
  return new BackvaultError(
    'CORS_ORIGIN_NOT_ALLOWED',
    anyAllowed
      ? 'this origin is not in the vault’s --cors-origin list'
      : 'this vault allows no cross-origin requests (no --cors-origin)',
  );
}

/**
 * Adds CORS to the server: the `Vary`/`Access-Control-Allow-Origin`/`-Expose-Headers`
 * headers on every response (an `onSend` hook, so error, 404 and 429 answers carry them too
 * and a page can read `Retry-After`), and an `OPTIONS *` route answering preflights. Call it
 * AFTER the per-address rate limiter is registered: the route then counts against it like
 * any other request.
 */
export function installCors(app: FastifyInstance, origins: readonly string[]): void {
  const allowed = new Set(origins);
  const isAllowed = (o: unknown): o is string => typeof o === 'string' && allowed.has(o);
  const methods = CORS_ALLOWED_METHODS.join(', ');
  const headers = CORS_ALLOWED_HEADERS.join(', ');
  const exposed = CORS_EXPOSED_HEADERS.join(', ');

  if (allowed.size > 0) {
    app.addHook('onSend', (req, reply, payload, done) => {
      // Every answer depends on Origin once a list exists (headers present or not).
      const vary = reply.getHeader('vary');
      const has =
        typeof vary === 'string' &&
        vary.split(',').some((v) => v.trim().toLowerCase() === 'origin');
      if (!has)
        void reply.header('vary', typeof vary === 'string' && vary ? `${vary}, Origin` : 'Origin');
      const origin = req.headers.origin;
      if (isAllowed(origin)) {
        void reply.header('access-control-allow-origin', origin);
        if (req.method !== 'OPTIONS') void reply.header('access-control-expose-headers', exposed);
      }
      done(null, payload);
    });
  }

  app.route({
    method: 'OPTIONS',
    url: '*',
    handler: (req, reply) => {
      if (req.headers['access-control-request-method'] === undefined) {
        // Not a preflight: as before CORS existed, no such route.
        return reply.callNotFound();
      }
      if (!isAllowed(req.headers.origin)) throw refused(allowed.size > 0);
      return reply
        .code(204)
        .header('access-control-allow-methods', methods)
        .header('access-control-allow-headers', headers)
        .header('access-control-max-age', String(CORS_MAX_AGE_SECONDS))
        .send();
    },
  });
}
