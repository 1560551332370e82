import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { z } from 'zod';
import type { PoolLink } from '../../../cluster/pool-link.js';
import { poolNameSchema } from '../../../domain/pools/commands.js';
import { PoolNotFoundError, ValidationError } from '../../../errors.js';
import { errorBody, toHttpError } from '../../errors.js';
import { Answer, defineRoute, type AnyRoute, type HttpMethod } from '../../registry.js';

const remoteParams = z.object({
  pool: poolNameSchema,
  '*': z.string().max(2048).describe('The API path in that pool, after /api/v1/.'),
});

const allPoolsParams = z.object({
  '*': z.string().max(2048).describe('The API path to ask every pool, after /api/v1/.'),
});

const allPoolsView = z.object({
  pools: z.array(
    z.object({
      pool: z.string(),
      status: z.number().describe('What that pool answered: 200, or an error status.'),
      body: z.unknown().describe("That pool's answer, as its own /api/v1 route gives it."),
    }),
  ),
});

/**
 * The part of a request URL after its first `skip` path segments, query kept, as the client sent
 * it (still percent-encoded); refuses paths that climb out of /api/v1 or loop back into the link.
 */
function restOf(url: string, skip: number): string {
  const rest = url
    .split('/')
    .slice(skip + 1)
    .join('/');
  const pathPart = rest.split('?')[0]!;
  if (pathPart.split('/').some((seg) => seg === '..' || seg === '.' || /%2e/i.test(seg))) {
    throw new ValidationError('the forwarded path may not contain . or .. segments');
  }
  if (/^(remote|all-pools|sessions)(\/|$)/.test(pathPart)) {
    throw new ValidationError(`/api/v1/${pathPart} cannot be asked of another pool`);
  }
  return rest;
}

/**
 * Several pools (docs/operations/pools.md): `/api/v1/remote/{pool}/...` forwards a signed-in
 * user's call to a front end of another pool, which runs it as that user of its own directory;
 * `GET /api/v1/all-pools/...` asks every pool of the topology the same question (room directory,
 * message search, followed rooms) and returns each pool's answer. On a server that is not a front
 * end of a pool they answer `pool_not_found`.
 */
export function poolLinkRoutes(link?: PoolLink): AnyRoute[] {
  const methods: HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
  const remote = methods.map((method) =>
    defineRoute({
      method,
      url: '/api/v1/remote/:pool/*',
      summary: `${method} a room, message or follow API call in another pool, as the signed-in user`,
      description:
        'Forwarded to an active front end of that pool, which checks the call against its own directory and permissions and answers it as its own /api/v1 route does (status and body passed through). JSON bodies only.',
      tags: ['pools'],
      auth: 'user',
      params: remoteParams,
      response: { status: 200, description: "The other pool's answer." },
      handler: async ({ actor, params, request }) => {
        if (!link) throw new PoolNotFoundError();
        const path = restOf(request.url, 4);
        const answer = await link.forward(params.pool, actor.login, {
          method,
          path,
          body: method === 'GET' || method === 'DELETE' ? undefined : request.body,
        });
        return new Answer(answer.status, answer.body);
      },
    }),
  );
  return [
    // A file upload (raw body) into a room of another pool; more specific than `remote/*`.
    defineRoute({
      method: 'POST',
      url: '/api/v1/remote/:pool/rooms/:id/files',
      summary: 'Upload a file into a room of another pool, as the signed-in user',
      description:
        "The raw application/octet-stream body is forwarded with the pool-link assertion over its SHA-256; that pool's own size limit and permissions apply.",
      tags: ['pools', 'files'],
      auth: 'user',
      params: z.object({ pool: poolNameSchema, id: z.string().regex(/^\d{1,15}$/) }),
      bodyType: 'binary',
      response: { status: 201, description: "The other pool's answer." },
      handler: async ({ actor, params, request, rawBody }) => {
        if (!link) throw new PoolNotFoundError();
        const answer = await link.forward(params.pool, actor.login, {
          method: 'POST',
          path: restOf(request.url, 4),
          body: rawBody,
        });
        return new Answer(answer.status, answer.body);
      },
    }),
    // A download link of another pool's file: the token is the credential, as on that pool.
    defineRoute({
      method: 'GET',
      url: '/api/v1/remote/:pool/files/download/:token',
      summary: "Download another pool's file with a link token that pool issued",
      description:
        'For `url` of `GET /api/v1/remote/{pool}/files/{id}/link` (or a relayed `file_link`), prefixed with `/api/v1/remote/{pool}`: fetched from that pool and passed through.',
      tags: ['pools', 'files'],
      auth: 'none',
      params: z.object({ pool: poolNameSchema, token: z.string().min(1).max(512) }),
      response: {
        status: 200,
        description: 'The file, as an attachment.',
        contentType: 'application/octet-stream',
      },
      handler: async ({ params, reply }) => {
        if (!link) throw new PoolNotFoundError();
        const res = await link.download(params.pool, params.token);
        reply.code(res.status);
        for (const h of [
          'content-type',
          'content-length',
          'content-disposition',
          'content-security-policy',
          'cache-control',
        ]) {
          const v = res.headers.get(h);
          if (v !== null) reply.header(h, v);
        }
        return reply.send(
          res.body ? Readable.fromWeb(res.body as unknown as WebReadableStream) : '',
        );
      },
    }),
    ...remote,
    defineRoute({
      method: 'GET',
      url: '/api/v1/all-pools/*',
      summary: 'Ask every pool the same read-only question (room directory, search, follows)',
      description:
        "This front end's own pool answers first, then every other pool of the published topology, each as the signed-in user of its own directory. A pool that cannot be reached is listed with status 502 and error `pool_unreachable`.",
      tags: ['pools'],
      auth: 'user',
      params: allPoolsParams,
      response: { status: 200, description: "Every pool's answer.", schema: allPoolsView },
      handler: async ({ actor, request }) => {
        if (!link) throw new PoolNotFoundError();
        const path = restOf(request.url, 3);
        const own = await request.server.inject({
          method: 'GET',
          url: `/api/v1/${path}`,
          headers: { authorization: request.headers.authorization ?? '' },
        });
        const others = await Promise.all(
          (await link.otherPools()).map(async (pool) => {
            try {
              return { pool, ...(await link.forward(pool, actor.login, { method: 'GET', path })) };
            } catch (err) {
              const e = toHttpError(err);
              return { pool, status: e.status, body: errorBody(e) };
            }
          }),
        );
        return {
          pools: [
            { pool: link.pool, status: own.statusCode, body: parseJson(own.body) },
            ...others,
          ],
        };
      },
    }),
  ];
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}
