/**
 * Builds the OpenAPI 3.1 document from the wire route table, so the description served at
 * `/v1/openapi.json` can never drift from the schemas the server validates with.
 */
import type { TSchema } from '@sinclair/typebox';
import { ErrorBody, PROTOCOL_VERSION, ROUTES, type RouteSpec } from 'backvault/wire';
import { HTTP_STATUS } from './http-errors.js';

const STATUS_TEXT: Record<number, string> = {
  400: 'Malformed request, or invalid/expired ticket or login state (code BAD_REQUEST)',
  401: 'Missing, forged or expired bearer token (code UNAUTHORIZED)',
  403: 'Key proof mismatch (FORBIDDEN) or login finish did not authenticate (WRONG_PASSWORD, with attemptsLeft)',
  404: 'No record for this account (NOT_FOUND)',
  409: 'Replayed or superseded step, record exists without key proof, request id reused with another KE1 (CONFLICT); snapshot head older than the stored one (ROLLBACK)',
  413: 'Body larger than the limit (BAD_REQUEST)',
  423: 'Record destroyed after too many guesses (LOCKED, permanent)',
  429: 'Rate limited (RATE_LIMITED, with retryAfterSeconds)',
  500: 'Internal error (INTERNAL)',
  503: 'Store could not commit; nothing was answered (UNAVAILABLE)',
};

/** A JSON-serialisable copy of a TypeBox schema (drops TypeBox's symbol keys and $id). */
function plain(schema: TSchema): unknown {
  const copy = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  delete copy.$id;
  return copy;
}

function operation(r: RouteSpec): Record<string, unknown> {
  const responses: Record<string, unknown> = {
    200: { description: 'OK', content: { 'application/json': { schema: plain(r.response) } } },
  };
  for (const s of [...new Set([...r.errors, 400, 413, 429, 500])].sort()) {
    responses[s] = {
      description: STATUS_TEXT[s] ?? 'Error',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } },
    };
  }
  return {
    operationId: r.operationId,
    summary: r.summary,
    ...(r.auth ? { security: [{ bearer: [] }] } : {}),
    ...(r.headers?.length
      ? {
          parameters: r.headers.map((h) => ({
            in: 'header',
            name: h.name,
            required: true,
            description: h.description,
            schema: { type: 'string' },
          })),
        }
      : {}),
    ...(r.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: plain(r.body) } },
          },
        }
      : {}),
    responses,
  };
}

/** The OpenAPI 3.1 document of the vault's HTTP API. */
export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of Object.values(ROUTES) as RouteSpec[]) {
    (paths[r.url] ??= {})[r.method.toLowerCase()] = operation(r);
  }
  paths['/healthz'] = {
    get: { operationId: 'healthz', summary: 'Liveness', responses: { 200: { description: 'OK' } } },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'backvault Backup Key Vault',
      version: String(PROTOCOL_VERSION),
      description:
        'OPAQUE (RFC 9807) password escrow for backup keys. Protocol details and sequencing: src/wire/index.ts. ' +
        `Error codes map to HTTP statuses: ${JSON.stringify(HTTP_STATUS)}.`,
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: { ErrorBody: plain(ErrorBody) },
    },
    paths,
  };
}
