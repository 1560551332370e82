import { z } from 'zod';
import { effectivePolicy, signIn, signOut } from '../../../domain/directory/commands.js';
import { boolString } from '../../schemas.js';
import { defineRoute, type AnyRoute } from '../../registry.js';

const signInBody = z
  .object({
    login: z.string().min(1).max(256),
    password: z.string().min(1).max(1024),
  })
  .strict();

const signInResponse = z.object({
  token: z.string().describe('Bearer token for the Authorization header and the WebSocket.'),
  expiresAt: z.number().int().describe('Milliseconds since the epoch.'),
  user: z.object({
    id: z.number().int(),
    kind: z.literal('user'),
    name: z.string(),
    displayName: z.string(),
    isAdmin: z.boolean(),
  }),
});

export const sessionRoutes: AnyRoute[] = [
  defineRoute({
    method: 'POST',
    url: '/api/v1/sessions',
    summary: 'Sign in with login and password; returns a bearer token',
    description:
      'Failed attempts are throttled per login and per client address (`too_many_attempts`, 429, with Retry-After).',
    tags: ['sessions'],
    auth: 'none',
    body: signInBody,
    response: { status: 201, description: 'The new session.', schema: signInResponse },
    handler: ({ domain, body, request }) => signIn(domain, body, request.ip),
  }),
  defineRoute({
    method: 'DELETE',
    url: '/api/v1/sessions/current',
    summary: 'Sign out: revoke this token, or with `all=true` every session of the user',
    tags: ['sessions'],
    auth: 'user',
    query: z.object({ all: boolString.optional() }),
    response: { status: 204, description: 'Signed out.', contentType: null },
    handler: async ({ domain, token, query }) => {
      await signOut(domain, token, query.all ?? false);
    },
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/me',
    summary: 'The signed-in user, the chat policy that applies to it, and the chat settings',
    tags: ['sessions'],
    auth: 'user',
    response: { status: 200, description: '`{ user, policy, settings }`.' },
    handler: async ({ domain, actor }) => ({
      user: {
        id: actor.userId,
        name: actor.login,
        displayName: actor.displayName,
        isAdmin: actor.isAdmin,
        chatEnabled: actor.chatEnabled,
      },
      policy: await effectivePolicy(domain, actor.userId, actor.principalIds),
      settings: await domain.settings.get(),
    }),
  }),
];
