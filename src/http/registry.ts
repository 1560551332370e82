import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { AdminRequiredError, PoolLinkRefusedError, UnauthenticatedError } from '../errors.js';
import { audited } from '../domain/audit/commands.js';
import { authenticate } from '../domain/directory/commands.js';
import { authenticatePoolAssertion, bodyDigest, isPoolAssertion } from '../domain/pools/link.js';
import type { Domain } from '../domain/types.js';
import { parseInput } from '../domain/validation.js';
import { UnsupportedMediaTypeError } from './errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * Who may call a route: anybody, any signed-in user, or a chat administrator. The domain command
 * still authorizes on its own; this level is checked first so that a caller learns early, and it
 * is what /openapi.json advertises.
 */
export type AuthLevel = 'none' | 'user' | 'admin';

export type SignedInActor = Awaited<ReturnType<typeof authenticate>>;

/** What a handler receives: parsed inputs, the caller, and the raw request for the rare need. */
export interface RouteCall<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** The raw body of a `bodyType: 'binary'` route. */
  rawBody: Buffer;
  /** The signed-in caller; reading it on an `auth: 'none'` route throws `unauthenticated`. */
  actor: SignedInActor;
  /** The caller's bearer token (empty on `auth: 'none'` routes). */
  token: string;
  domain: Domain;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** A response with a status other than the route's declared one (e.g. 200 on a replay). */
export class Answer {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

/**
 * One HTTP route, declared once: the registry registers it with fastify and describes it in
 * /openapi.json from the same declaration.
 */
export interface RouteSpec<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
> {
  method: HttpMethod;
  /** Fastify path syntax (`/api/v1/rooms/:id`). */
  url: string;
  summary: string;
  description?: string;
  tags: string[];
  auth: AuthLevel;
  /**
   * The stable action name (`user.set`, `room.remove`) of a call that changes administration:
   * every such call, ok or refused, is written to the admin audit trail by the registry.
   */
  audit?: string;
  params?: P;
  query?: Q;
  body?: B;
  /** `json` (default) or `binary`: a raw `application/octet-stream` body handed over as a Buffer. */
  bodyType?: 'json' | 'binary';
  response: {
    status: number;
    description: string;
    /** Defaults to application/json; `null` for 204. */
    contentType?: string | null;
    schema?: z.ZodType;
  };
  /** Returns the body to send with `response.status`, an Answer, or the reply once it has sent. */
  handler(call: RouteCall<z.output<P>, z.output<Q>, z.output<B>>): Promise<unknown>;
}

export type AnyRoute = RouteSpec<z.ZodType, z.ZodType, z.ZodType>;

/** Declares a route; exists so that TypeScript infers the handler's input types from the schemas. */
export function defineRoute<
  P extends z.ZodType = z.ZodUndefined,
  Q extends z.ZodType = z.ZodUndefined,
  B extends z.ZodType = z.ZodUndefined,
>(spec: RouteSpec<P, Q, B>): AnyRoute {
  return spec as unknown as AnyRoute;
}

const bearer = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)[ ]*$/i;

/** Extracts the token of an `Authorization: Bearer <token>` header; cookies are never read. */
export function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (header === undefined) throw new UnauthenticatedError();
  const m = bearer.exec(header);
  if (!m) throw new UnauthenticatedError('expected an Authorization: Bearer <token> header');
  return m[1]!;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The registry entry a fastify route was built from. */
    perchRoute?: AnyRoute;
  }
}

/**
 * Registers routes with fastify. Each request goes: authenticate (bearer token, in onRequest,
 * before any body is read) → check the route's auth level → parse params, query and body with the
 * edge schemas → handler, which calls the domain command (that authorizes) → present.
 * Authentication comes before validation so that an anonymous caller learns that it must sign
 * in, not how its body is wrong, and costs the server no body parsing.
 */
export function registerRoutes(
  app: FastifyInstance,
  domain: Domain,
  routes: AnyRoute[],
  opts: {
    /**
     * This front end's pool: calls forwarded by another pool's front end (`Authorization:
     * PerchPool ...`) are then taken on user-level routes, as the user they assert.
     */
    pool?: string;
  } = {},
): void {
  const callers = new WeakMap<
    FastifyRequest,
    { token: string; actor: SignedInActor; forwardedBody?: string }
  >();
  for (const spec of routes) {
    app.route({
      method: spec.method,
      url: spec.url,
      config: { perchRoute: spec },
      // Authenticated before the body is read, so that an anonymous upload is refused unread.
      onRequest:
        spec.auth === 'none'
          ? undefined
          : async (request) => {
              if (opts.pool !== undefined && isPoolAssertion(request.headers.authorization)) {
                // Administration and sessions stay with each pool's own sign-in.
                if (
                  spec.auth !== 'user' ||
                  /^\/api\/v1\/(sessions|remote|all-pools)(\/|$)/.test(spec.url)
                ) {
                  throw new PoolLinkRefusedError(
                    `${spec.method} ${spec.url} cannot be called through the pool link`,
                  );
                }
                const { actor, claims } = await authenticatePoolAssertion(
                  domain,
                  opts.pool,
                  request.headers.authorization,
                  { method: request.method, url: request.url },
                );
                callers.set(request, { token: '', actor, forwardedBody: claims.body });
                return;
              }
              const token = bearerToken(request);
              const actor = await authenticate(domain, token);
              if (spec.auth === 'admin' && !actor.isAdmin) {
                const refused = new AdminRequiredError();
                // A refused attempt is audited too: who tried to administer is worth knowing.
                if (spec.audit) {
                  await audited(domain, actor, auditCall(spec, request), () =>
                    Promise.reject(refused),
                  );
                }
                throw refused;
              }
              callers.set(request, { token, actor });
            },
      handler: async (request, reply) => {
        const caller = callers.get(request);
        const token = caller?.token ?? '';
        const actor = caller?.actor;
        const params = spec.params ? parseInput(spec.params, request.params, 'path') : undefined;
        const query = spec.query ? parseInput(spec.query, request.query ?? {}, 'query') : undefined;
        const raw = request.body;
        // A forwarded call's body is the one its assertion was signed for, or nothing runs.
        if (caller?.forwardedBody !== undefined && bodyDigest(raw) !== caller.forwardedBody) {
          throw new PoolLinkRefusedError('the body is not the one the pool assertion was made for');
        }
        if (spec.bodyType === 'binary') {
          if (!Buffer.isBuffer(raw))
            throw new UnsupportedMediaTypeError('application/octet-stream');
        } else if (Buffer.isBuffer(raw)) {
          throw new UnsupportedMediaTypeError('application/json');
        }
        const body = spec.body ? parseInput(spec.body, raw, 'body') : undefined;
        const call: RouteCall<unknown, unknown, unknown> = {
          params,
          query,
          body,
          rawBody: Buffer.isBuffer(raw) ? raw : Buffer.alloc(0),
          token,
          domain,
          request,
          reply,
          get actor(): SignedInActor {
            if (!actor) throw new UnauthenticatedError();
            return actor;
          },
        };
        const result =
          spec.audit && actor
            ? await audited(domain, actor, auditCall(spec, request), () => spec.handler(call))
            : await spec.handler(call);
        if (result === reply) return reply;
        if (result instanceof Answer) return reply.code(result.status).send(result.body);
        if (result === undefined) return reply.code(204).send();
        return reply.code(spec.response.status).send(result);
      },
    });
  }
}

/** The audit view of a request: inputs as received (before parsing), so refusals show them too. */
function auditCall(spec: AnyRoute, request: FastifyRequest) {
  const body = Buffer.isBuffer(request.body) ? { bytes: request.body.length } : request.body;
  return {
    action: spec.audit!,
    method: spec.method,
    path: request.url.split('?')[0]!,
    params: {
      path: request.params as Record<string, unknown> | undefined,
      query: request.query as Record<string, unknown> | undefined,
      body: body ?? undefined,
    },
  };
}
