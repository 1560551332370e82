import { z } from 'zod';
import { listAudit } from '../../../domain/audit/commands.js';
import { eligiblePrincipals } from '../../../domain/directory/eligible.js';
import { listAllRooms } from '../../../domain/rooms/list-all.js';
import { boolString, idString, intString, nameString } from '../../schemas.js';
import { defineRoute, type AnyRoute } from '../../registry.js';

// Administrator queries that have no user-facing twin: the full room list (Get-CsPersistentChatRoom)
// and eligible principals (Get-CsPersistentChatEligiblePrincipal). The admin CLI uses them.

const roomListQuery = z.object({
  name: nameString.optional().describe('Exact room name (case-insensitive).'),
  filter: z.string().max(256).optional().describe('Substring of the name.'),
  includeDescription: boolString.optional().describe('Let `filter` match the description too.'),
  category: nameString.optional().describe('Category id or name.'),
  disabled: boolString.optional(),
  privacy: z.enum(['open', 'closed', 'secret']).optional(),
  type: z.enum(['normal', 'auditorium']).optional(),
  addin: z.string().min(1).max(50).optional().describe('Add-in name.'),
  member: nameString.optional().describe('Rooms listing this user or group as a member.'),
  manager: nameString.optional().describe('Rooms listing this user or group as a manager.'),
  limit: intString(10_000, 1).optional(),
});

const eligibleQuery = z.object({
  category: nameString.optional().describe('Category id or name.'),
  room: idString.optional().describe('Room id.'),
  presenters: boolString.optional().describe('Users who may present in the (auditorium) room.'),
  filter: z
    .string()
    .max(256)
    .optional()
    .describe('Substring of login or display name; `*` wildcards.'),
  limit: intString(10_000, 1).optional(),
});

/** Epoch milliseconds in a query string become numbers; dates stay strings for the domain. */
const auditDate = z
  .string()
  .min(1)
  .max(40)
  .transform((v) => (/^\d{1,16}$/.test(v) ? Number(v) : v));

const auditQuery = z.object({
  actor: nameString.optional().describe('Login of the administrator.'),
  action: z
    .string()
    .max(64)
    .optional()
    .describe('Action name (`user.set`), or a prefix ending in `*` (`user.*`).'),
  result: z.enum(['pending', 'ok', 'error']).optional(),
  since: auditDate.optional().describe('From this time: epoch ms, ISO date or date-time.'),
  until: auditDate
    .optional()
    .describe('Up to this time; an ISO date means the end of that day (UTC).'),
  before: idString.optional().describe('Entries older than this id: the `next` of a page.'),
  limit: intString(1000, 1).optional().describe('Entries per page, 1–1000 (default 100).'),
});

export const adminRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET',
    url: '/api/v1/admin/audit',
    summary:
      'The admin audit trail: every admin call, who, when, parameters, result (administrators)',
    description:
      'Newest first. Parameters are as received with passwords, tokens and secrets replaced by `[redacted]`. `result` is `pending` for a call that never finished (the server stopped during it).',
    tags: ['admin'],
    auth: 'admin',
    query: auditQuery,
    response: { status: 200, description: '`{ entries, next }`; pass `next` as `before`.' },
    handler: ({ domain, actor, query }) => listAudit(domain, actor, query),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/admin/rooms',
    summary: 'Every room, disabled ones included, with filters (administrators)',
    tags: ['rooms'],
    auth: 'admin',
    query: roomListQuery,
    response: { status: 200, description: 'Rooms, by name.' },
    handler: ({ domain, actor, query }) => listAllRooms(domain, actor, query),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/principals/eligible',
    summary: 'Users eligible for a role in a category or room, groups expanded (administrators)',
    tags: ['principals'],
    auth: 'admin',
    query: eligibleQuery,
    response: { status: 200, description: '`{ scope, users, more }`.' },
    handler: ({ domain, actor, query }) => eligiblePrincipals(domain, actor, query),
  }),
];
