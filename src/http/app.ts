import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import type { PoolLink } from '../cluster/pool-link.js';
import type { Config } from '../config/config.js';
import type { PoolRegistry } from '../domain/pools/commands.js';
import { addinOrigins } from '../domain/addins/commands.js';
import type { Domain } from '../domain/types.js';
import { FileTooLargeError, type PerchError } from '../errors.js';
import type { Logger } from '../logger.js';
import { version } from '../version.js';
import {
  BodyTooLargeError,
  RouteNotFoundError,
  UnsupportedMediaTypeError,
  sendError,
} from './errors.js';
import { buildOpenApi } from './openapi.js';
import { defineRoute, registerRoutes, type AnyRoute } from './registry.js';
import { addinRoutes } from './routes/addins/routes.js';
import { adminRoutes } from './routes/admin/routes.js';
import { categoryRoutes } from './routes/categories/routes.js';
import { complianceRoutes, type ComplianceControl } from './routes/compliance/routes.js';
import { directoryRoutes } from './routes/directory/routes.js';
import { fileRoutes } from './routes/files/routes.js';
import { meRoutes } from './routes/me/routes.js';
import { messageRoutes } from './routes/messages/routes.js';
import { poolLinkRoutes } from './routes/pools/link-routes.js';
import { poolRoutes } from './routes/pools/routes.js';
import { roomRoutes } from './routes/rooms/routes.js';
import { sessionRoutes } from './routes/sessions/routes.js';
import { settingsRoutes } from './routes/settings/routes.js';
import { systemRoutes, type HealthReport } from './routes/system/routes.js';
import { notBuiltPage, staticSite, type StaticSite } from './static.js';

export type { HealthReport };

/** The API's policy: JSON only, nothing to load, never framed. */
const apiCsp = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** No upload is buffered beyond this, whatever the `maxFileSizeKb` setting says. */
export const DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024;

export interface HttpAppOptions {
  domain: Domain;
  config: Pick<Config, 'maxFrameBytes'>;
  log: Logger;
  /** Folder of the built web client, served at `/` when it exists. */
  webRoot?: string;
  /** Extra readiness checks behind GET /healthz (store reachable, ...). */
  health?: () => Promise<HealthReport>;
  edition?: 'standard' | 'enterprise';
  /** Hard cap on an upload body in bytes (default 256 MiB). */
  maxUploadBytes?: number;
  /** The compliance worker behind /api/v1/compliance/status and /run. */
  compliance?: ComplianceControl;
  /** Certificate and key (PEM): the server speaks HTTPS (and WSS) only. */
  tls?: { cert: Buffer; key: Buffer };
  /** Set on a front end of an Enterprise Edition pool: /api/v1/pools and idle refusal. */
  pool?: {
    /** This front end's pool: calls forwarded by other pools' front ends are taken. */
    name: string;
    registry: PoolRegistry;
    /** Forwards users' calls to the other pools of the topology (several pools). */
    link: PoolLink;
    /** The error refusing client requests (this front end is idle), or undefined. */
    admission(): PerchError | undefined;
    /**
     * Origins of the pool's front ends: a web client loaded from one calls the API of another
     * when its own is idle (CORS here, connect-src in its page's policy).
     */
    origins(): string[];
  };
}

/** What an idle front end still answers: sign-in and sign-out, and pool administration. */
const idleExempt = /^\/api\/v1\/(sessions|pools)(\/|\?|$)/;

/** Every route of the HTTP API except the web client's files, in registration order. */
export function apiRoutes(
  opts: { compliance?: ComplianceControl; pools?: PoolRegistry; link?: PoolLink } = {},
): AnyRoute[] {
  return [
    ...sessionRoutes,
    ...directoryRoutes,
    ...settingsRoutes,
    ...categoryRoutes,
    ...roomRoutes,
    ...messageRoutes,
    ...meRoutes,
    ...fileRoutes,
    ...addinRoutes,
    ...adminRoutes,
    ...complianceRoutes(opts.compliance),
    ...poolRoutes(opts.pools),
    ...poolLinkRoutes(opts.link),
  ];
}

/**
 * Builds the HTTP transport: the JSON API under /api/v1, /healthz, /openapi.json and the web
 * client. It does not listen; the caller does (and attaches the WebSocket server to it).
 */
export async function buildHttpApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const { domain, log } = opts;
  const maxUpload = opts.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  // With a certificate the one listener is an https.Server; the WebSocket server attaches to its
  // upgrade event exactly as to an http.Server's. The instance type is the http one: nothing here
  // depends on which.
  const app = Fastify({
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    loggerInstance: log.child({ subsystem: 'http' }) as FastifyBaseLogger,
    bodyLimit: opts.config.maxFrameBytes,
    // Ids are in the path; a trailing slash is the same resource.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
    // No automatic HEAD twins: a HEAD on the download route would count as a file download.
    exposeHeadRoutes: false,
    // One line per request at info level costs more than a chat request itself; see onResponse.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // Bad URLs and the like are caught by the router before any hook: map them the same way.
    frameworkErrors: (err, request, reply) => sendError(err, request, reply),
  });

  // JSON and raw uploads only: drop fastify's text/plain parser so such bodies get a 415.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(
    'application/octet-stream',
    async (request: FastifyRequest, payload: IncomingMessage) => {
      if (request.routeOptions.config.perchRoute?.bodyType !== 'binary') {
        throw new UnsupportedMediaTypeError('application/json');
      }
      const { maxFileSizeKb } = await domain.settings.get();
      const limit = Math.min(maxFileSizeKb * 1024, maxUpload);
      const tooLarge = () =>
        limit < maxFileSizeKb * 1024
          ? new BodyTooLargeError(limit)
          : new FileTooLargeError(maxFileSizeKb);
      const declared = Number(request.headers['content-length']);
      if (Number.isFinite(declared) && declared > limit) throw tooLarge();
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of payload) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > limit) throw tooLarge();
        chunks.push(buf);
      }
      return Buffer.concat(chunks, size);
    },
  );

  app.addHook('onResponse', async (request, reply) => {
    request.log.debug(
      { method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime },
      'request',
    );
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cross-origin-resource-policy', 'same-origin');
    if (!reply.hasHeader('content-security-policy'))
      reply.header('content-security-policy', apiCsp);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));

  const pool = opts.pool;
  if (pool) {
    // Cross-origin API calls from the pool's other front ends' pages. The session token travels
    // in the Authorization header (never a cookie), so no credentials mode is needed.
    app.addHook('onRequest', async (request, reply) => {
      const origin = request.headers.origin;
      if (!origin || !request.url.startsWith('/api/') || !pool.origins().includes(origin)) return;
      reply.header('access-control-allow-origin', origin);
      reply.header('vary', 'origin');
      if (request.method !== 'OPTIONS') return;
      await reply
        .code(204)
        .header('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE')
        .header('access-control-allow-headers', 'authorization, content-type, accept')
        .header('access-control-max-age', '600')
        .send();
    });
    // An idle front end of a pool serves no chat: clients get front_end_idle naming active ones.
    app.addHook('onRequest', async (request) => {
      if (!request.url.startsWith('/api/') || idleExempt.test(request.url)) return;
      const refused = pool.admission();
      if (refused) throw refused;
    });
  }

  const site: StaticSite | undefined =
    opts.webRoot !== undefined && fs.existsSync(opts.webRoot)
      ? staticSite(opts.webRoot, {
          frameSources: () => addinOrigins(domain),
          connectSources: () => pool?.origins() ?? [],
        })
      : undefined;

  app.setNotFoundHandler(async (request, reply) => {
    if (site && (await site.serve(request, reply))) return reply;
    throw new RouteNotFoundError();
  });

  const routes: AnyRoute[] = [];
  let openapi: Record<string, unknown> | undefined;
  routes.push(
    ...systemRoutes({
      version,
      edition: opts.edition ?? 'standard',
      health: opts.health,
      openapi: () =>
        (openapi ??= buildOpenApi(routes, {
          title: 'Perch HTTP API',
          version,
          description:
            'Persistent group chat. Authenticate with `Authorization: Bearer <token>` from POST /api/v1/sessions. Errors are `{ error: { code, message, details? } }`.',
        })),
    }),
    defineRoute({
      method: 'GET',
      url: '/',
      summary: 'The web client (or a note that it is not built)',
      tags: ['system'],
      auth: 'none',
      response: { status: 200, description: 'An HTML page.', contentType: 'text/html' },
      handler: async ({ request, reply }) => {
        if (site && (await site.serve(request, reply))) return reply;
        return reply
          .code(200)
          .type('text/html; charset=utf-8')
          .header('content-security-policy', "default-src 'none'")
          .send(notBuiltPage);
      },
    }),
    ...apiRoutes({
      compliance: opts.compliance,
      pools: opts.pool?.registry,
      link: opts.pool?.link,
    }),
  );
  registerRoutes(app, domain, routes, { pool: opts.pool?.name });
  await app.ready();
  return app;
}
