import { z } from 'zod';
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

export const adminRoutes: AnyRoute[] = [
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
