/**
 * The vault's HTTP server (Fastify): routes from the wire route table, validated with the
 * same TypeBox schemas, body size limits, per-IP and per-account rate limits, bearer-token
 * account binding, `/healthz`, `/v1/openapi.json` (metrics have their own listener, see
 * `metrics.ts`), CORS for the `--cors-origin` list (`cors.ts`), HTTP timeouts against slow
 * clients, and one JSON log line per
 * request holding only route, method, status, duration and error code — never a body,
 * header, token, key, envelope or OPAQUE message.
 */
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { ForbiddenError, RateLimitedError } from 'backvault/errors';
import {
  KEY_PROOF_HEADER,
  MAX_BODY_BYTES,
  PROTOCOL_VERSION,
  ROUTES,
  type DevTokenRequest,
  type LoginFinishRequest,
  type LoginStartRequest,
  type RecordDeleteRequest,
  type RecordHeadRequest,
  type RegistrationFinishRequest,
  type RegistrationStartRequest,
  type RouteSpec,
} from 'backvault/wire';
import { bearerToken, type Authenticator } from './auth.js';
import type { VaultConfig } from './config.js';
import { CONNECTIONS_CHECK_INTERVAL_MS } from './connections.js';
import { installCors } from './cors.js';
import { toHttpError } from './http-errors.js';
import type { VaultMetrics } from './metrics.js';
import { buildOpenApiDocument } from './openapi.js';
import type { VaultService } from './vault-service.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Verified account (token `sub`); set by the auth pre-handler. */
    account?: string;
    /** Stable error code of the response, for the access log. */
    errorCode?: string;
  }
}

/** What the server needs; built by `context.ts`. */
export interface ServerDeps {
  readonly config: VaultConfig;
  readonly service: VaultService;
  readonly auth: Authenticator;
  readonly metrics: VaultMetrics;
  readonly serverPublicKey: string;
  /** Where JSON logs go. Default: stderr (stdout is kept for the ready line). */
  readonly logStream?: NodeJS.WritableStream;
}

type Handler = (req: FastifyRequest) => Promise<unknown>;

function rateLimited(_req: FastifyRequest, ctx: { ttl: number }): Error {
  return Object.assign(new RateLimitedError(Math.max(1, Math.ceil(ctx.ttl / 1000))), {
    statusCode: 429,
  });
}

/**
 * Builds (does not start) the Fastify instance.
 * @throws Error from Fastify plugin registration (a bug, not a runtime condition).
 */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config, service, auth, metrics } = deps;
  const app = Fastify({
    logger: {
      level: config.logLevel,
      stream: deps.logStream ?? process.stderr,
      // Belt and braces: we never log requests, but if anything does, these are gone.
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          `req.headers["${KEY_PROOF_HEADER}"]`,
          'req.body',
          'res.body',
          'body',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req: (r: { method?: string; routeOptions?: { url?: string } }) => ({
          method: r.method,
          route: r.routeOptions?.url,
        }),
        res: (r: { statusCode?: number }) => ({ status: r.statusCode }),
      },
    },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    // Slow clients (slowloris, a body byte every few seconds, idle keep-alive) lose their
    // connection; Node checks these every CONNECTIONS_CHECK_INTERVAL_MS.
    http: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
    },
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // Without trusted proxies the client is the TCP peer; X-Forwarded-For is ignored.
    trustProxy: config.trustProxy.length ? [...config.trustProxy] : false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
  });

  const accessLog = config.logLevel === 'info' || config.logLevel === 'debug';
  // Fastify times every request itself (reply.elapsedTime); a callback hook, not an async
  // one, so the hot path allocates no promise for it.
  app.addHook('onResponse', (req, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    const route = req.routeOptions?.url ?? 'unmatched';
    metrics.observeRequest(route, req.method, reply.statusCode, seconds);
    // The access line is built only when it is written (level info or below).
    if (accessLog) {
      req.log.info(
        {
          route,
          method: req.method,
          status: reply.statusCode,
          ms: Math.round(seconds * 1e5) / 100,
          ...(req.errorCode ? { code: req.errorCode } : {}),
        },
        'request',
      );
    }
    done();
  });
  app.setErrorHandler((err, req, reply) => {
    const h = toHttpError(err);
    req.errorCode = h.body.error.code;
    if (h.status >= 500) {
      const e = err as Error & { cause?: unknown };
      req.log.error(
        {
          code: h.body.error.code,
          error: e.name,
          reason: e.message,
          cause: e.cause instanceof Error ? e.cause.message : undefined,
        },
        'request failed',
      );
    }
    void reply.code(h.status).headers(h.headers).send(h.body);
  });
  app.setNotFoundHandler((req, reply) => {
    req.errorCode = 'NOT_FOUND';
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such route' } });
  });

  await app.register(rateLimit, {
    global: true,
    max: config.rateLimitPerIp,
    timeWindow: 60_000,
    errorResponseBuilder: rateLimited,
  });
  // Per account (the token's subject), on every authenticated route. Not `app.rateLimit()`:
  // its handler is skipped on any request the global per-IP limiter already saw (the
  // plugin marks the request), which made `--rate-limit-account` a no-op.
  const perAccountLimit = app.createRateLimit({
    max: config.rateLimitPerAccount,
    timeWindow: 60_000,
    keyGenerator: (req) => `account:${req.account ?? ''}`,
  });
  const perAccount = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const r = await perAccountLimit(req);
    if (r.isAllowed) return;
    void reply.header('x-ratelimit-account-limit', r.max);
    void reply.header('x-ratelimit-account-remaining', r.remaining);
    if (r.isExceeded) throw new RateLimitedError(Math.max(1, r.ttlInSeconds));
  };
  // After the per-address limiter: preflights count like every request (see cors.ts).
  installCors(app, config.corsOrigins);
  const authenticate = async (req: FastifyRequest): Promise<void> => {
    req.account = await auth.verify(bearerToken(req.headers.authorization));
  };
  const keyProofHeader = (req: FastifyRequest): string => {
    const v = req.headers[KEY_PROOF_HEADER];
    if (typeof v !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(v)) {
      throw new ForbiddenError(
        `${KEY_PROOF_HEADER} is missing or malformed`,
        'Reading the event log needs the backup-key proof.',
      );
    }
    return v;
  };

  const account = (req: FastifyRequest): string => req.account as string;
  const handlers: Record<keyof typeof ROUTES, Handler> = {
    info: async () => ({
      protocol: PROTOCOL_VERSION,
      serverPublicKey: deps.serverPublicKey,
      maxAttempts: service.maxAttempts,
      loginStateTtlSeconds: config.loginStateTtlSeconds,
      devAuth: config.auth.kind === 'dev',
    }),
    devToken: async (req) => {
      if (!auth.issueDevToken) throw new Error('unreachable: dev route without dev auth');
      return auth.issueDevToken((req.body as DevTokenRequest).account);
    },
    recordStatus: (req) => service.status(account(req)),
    registrationStart: (req) =>
      service.registrationStart(account(req), req.body as RegistrationStartRequest),
    registrationFinish: (req) =>
      service.registrationFinish(account(req), req.body as RegistrationFinishRequest),
    loginStart: (req) => service.loginStart(account(req), req.body as LoginStartRequest),
    loginFinish: (req) => service.loginFinish(account(req), req.body as LoginFinishRequest),
    recordDelete: async (req) => {
      await service.deleteRecord(account(req), (req.body as RecordDeleteRequest).keyProof);
      return { deleted: true };
    },
    recordEvents: (req) => service.events(account(req), keyProofHeader(req)),
    recordHead: async (req) => {
      const b = req.body as RecordHeadRequest;
      return { head: await service.updateHead(account(req), b.keyProof, b.head) };
    },
  };

  for (const [name, spec] of Object.entries(ROUTES) as [keyof typeof ROUTES, RouteSpec][]) {
    if (name === 'devToken' && !auth.issueDevToken) continue;
    const handler = handlers[name];
    app.route({
      method: spec.method,
      url: spec.url,
      schema: {
        ...(spec.body ? { body: spec.body } : {}),
        response: { 200: spec.response },
      },
      ...(spec.auth ? { preHandler: [authenticate, perAccount] } : {}),
      handler: async (req) => handler(req),
    });
  }

  const openapi = buildOpenApiDocument();
  app.get('/v1/openapi.json', async () => openapi);
  // Cheap on purpose: no store, no HSM, no allocation beyond the constant answer.
  const healthy = JSON.stringify({ status: 'ok' });
  app.get('/healthz', { config: { rateLimit: false } }, (_req, reply) => {
    void reply.header('content-type', 'application/json; charset=utf-8').send(healthy);
  });
  return app;
}
