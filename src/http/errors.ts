import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { InternalError, PerchError, ValidationError } from '../errors.js';

// HTTP-only failures. They live here rather than in src/errors.ts because no other transport can
// produce them; their codes are stable and documented in /openapi.json like the others.

/** The request body is not valid JSON (or is empty while claiming to be JSON). */
export class MalformedJsonError extends PerchError {
  constructor() {
    super('malformed_json', 400, 'request body is not valid JSON');
  }
}

export class BodyTooLargeError extends PerchError {
  constructor(limit?: number) {
    super(
      'body_too_large',
      413,
      limit === undefined ? 'request body is too large' : `request body exceeds ${limit} bytes`,
      limit === undefined ? undefined : { limit },
    );
  }
}

export class UnsupportedMediaTypeError extends PerchError {
  constructor(expected: string) {
    super('unsupported_media_type', 415, `request body must be ${expected}`, { expected });
  }
}

export class RouteNotFoundError extends PerchError {
  constructor() {
    super('not_found', 404, 'no such route');
  }
}

/** The JSON body of every error response. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.string().describe('Stable machine-readable code, e.g. `room_not_found`.'),
    message: z.string().describe('Human-readable explanation; may change between versions.'),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

export type ErrorBody = z.infer<typeof errorBodySchema>;

/** Fastify's own failures, by code, mapped onto the catalogue. */
function fromFastify(err: FastifyError): PerchError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new MalformedJsonError();
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BodyTooLargeError();
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError('application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ValidationError('request body size does not match Content-Length');
    case 'FST_ERR_BAD_URL':
      return new ValidationError('request URL is not valid');
    case 'FST_ERR_NOT_FOUND':
      return new RouteNotFoundError();
    default:
      // Any other client error fastify raises (bad headers, ...) is a malformed request; its
      // message is fastify's own and safe to show. Server-side ones fall through to 500.
      if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
        return new PerchError('invalid_request', err.statusCode, err.message);
      }
      return undefined;
  }
}

/** Turns anything thrown while serving a request into a catalogued error. */
export function toHttpError(err: unknown): PerchError {
  if (err instanceof PerchError) return err;
  if (err instanceof z.ZodError) {
    return new ValidationError('invalid request', {
      issues: err.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    });
  }
  if (err instanceof Error && typeof (err as FastifyError).code === 'string') {
    const mapped = fromFastify(err as FastifyError);
    if (mapped) return mapped;
  }
  return new InternalError();
}

export function errorBody(e: PerchError): ErrorBody {
  return {
    error: {
      code: e.code,
      message: e.message,
      ...(e.details === undefined ? {} : { details: e.details }),
    },
  };
}

/**
 * The one error mapper of the HTTP transport: catalogued errors answer with their status and
 * code; anything else is logged with its stack and answers a bare `internal_error`.
 */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const e = toHttpError(err);
  if (e.status >= 500) {
    request.log.error({ err }, 'request failed');
  } else {
    request.log.debug({ code: e.code }, 'request refused');
  }
  if (e.status === 401) void reply.header('www-authenticate', 'Bearer');
  const retry = e.details?.['retryAfterSeconds'];
  if (typeof retry === 'number') void reply.header('retry-after', String(retry));
  // A body we refused unread is still on the socket; closing is cheaper than draining it.
  const hasBody =
    Number(request.headers['content-length'] ?? 0) > 0 ||
    request.headers['transfer-encoding'] !== undefined;
  if (e.status === 413 || (hasBody && request.body === undefined)) {
    void reply.header('connection', 'close');
  }
  void reply.code(e.status).type('application/json; charset=utf-8').send(errorBody(e));
}
