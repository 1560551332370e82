import { z } from 'zod';
import {
  activeServersSchema,
  getPool,
  poolNameSchema,
  setActiveServers,
  type PoolRegistry,
} from '../../../domain/pools/commands.js';
import { defineRoute, type AnyRoute } from '../../registry.js';

const poolViewSchema = z.object({
  name: z.string(),
  activeSetChosen: z
    .boolean()
    .describe('Whether an administrator chose the active set; if not, the first four registered.'),
  activeServers: z.array(z.string()),
  frontEnds: z.array(
    z.object({
      name: z.string(),
      url: z.string(),
      version: z.string(),
      active: z.boolean(),
      state: z.enum(['active', 'idle', 'stopped', 'unreachable']),
      lastHeartbeat: z.string(),
      startedAt: z.string(),
      connections: z.number(),
      users: z.number().describe('Signed-in users connected to this front end.'),
    }),
  ),
});

const params = z.object({ name: poolNameSchema });

/**
 * /api/v1/pools: an Enterprise Edition pool's front ends and active set (administrators). On a
 * server that is not a front end of a pool they answer `pool_not_found`.
 */
export function poolRoutes(pools?: PoolRegistry): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/api/v1/pools/:name',
      summary: 'A pool: its active set and each front end with state, heartbeat and load',
      tags: ['pools'],
      auth: 'admin',
      params,
      response: { status: 200, description: 'The pool.', schema: poolViewSchema },
      handler: ({ domain, actor, params: p }) => getPool(domain, actor, pools, p.name),
    }),
    defineRoute({
      method: 'PUT',
      url: '/api/v1/pools/:name/active-servers',
      summary: 'Choose the front ends that serve clients (at most four; the others go idle)',
      tags: ['pools'],
      auth: 'admin',
      params,
      body: activeServersSchema,
      response: { status: 200, description: 'The pool after the change.', schema: poolViewSchema },
      handler: ({ domain, actor, params: p, body }) =>
        setActiveServers(domain, actor, pools, p.name, body),
    }),
  ];
}
