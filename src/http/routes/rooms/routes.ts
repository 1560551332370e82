import { z } from 'zod';
import { PerchError } from '../../../errors.js';
import { uploadFile } from '../../../domain/files/commands.js';
import {
  clearRoom,
  joinRooms,
  postSchema,
  postMessage,
  roomHistory,
} from '../../../domain/messages/commands.js';
import {
  associations,
  createRoom,
  deleteRoom,
  getRoom,
  searchRooms,
  updateRoom,
} from '../../../domain/rooms/commands.js';
import { Answer, defineRoute, type AnyRoute } from '../../registry.js';
import {
  boolString,
  dateValue,
  idParams,
  intString,
  nameString,
  principalNames,
} from '../../schemas.js';

const privacy = z
  .enum(['open', 'closed', 'secret'])
  .describe(
    'open: anyone in scope reads and posts; closed: only members; secret: only members know it exists.',
  );
const roomType = z
  .enum(['normal', 'auditorium'])
  .describe('In an auditorium only presenters post.');
const categoryRef = z.union([nameString, z.number().int().positive()]).describe('Id or name.');
const listChange = z.union([
  principalNames,
  z.object({ add: principalNames.optional(), remove: principalNames.optional() }).strict(),
]);

const newRoom = z
  .object({
    name: z.string().min(1).max(256),
    category: categoryRef,
    description: z.string().max(256).optional(),
    privacy: privacy.optional(),
    type: roomType.optional(),
    invitations: z.enum(['inherit', 'off']).optional(),
    addin: z.string().max(50).nullable().optional(),
    members: principalNames.optional(),
    managers: principalNames.optional(),
    presenters: principalNames.optional(),
  })
  .strict();

const roomPatch = z
  .object({
    name: z.string().min(1).max(256),
    category: categoryRef,
    description: z.string().max(256),
    privacy,
    type: roomType,
    disabled: z.boolean(),
    invitations: z.enum(['inherit', 'off']),
    addin: z.string().max(50).nullable(),
    members: listChange.describe('A full list, or `{ add, remove }`.'),
    managers: listChange,
    presenters: listChange,
  })
  .partial()
  .strict();

const searchQuery = z.object({
  text: z.string().max(256).optional().describe('Words in the name (and description).'),
  category: nameString.optional().describe('Category id or name.'),
  includeDescription: boolString.optional(),
  limit: intString(500, 1).optional(),
  offset: intString(1_000_000).optional(),
});

const historyQuery = z.object({
  before: intString(Number.MAX_SAFE_INTEGER, 1)
    .optional()
    .describe('Messages with a sequence number below this (scrolling back).'),
  after: intString(Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('Messages with a sequence number above this (catching up), oldest first.'),
  limit: intString(500, 1).optional().describe('Default: the default history count setting.'),
});

const joinBody = z
  .object({
    since: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Last sequence seen: returns the messages after it instead of the latest.'),
    limit: z.number().int().min(1).max(500).optional(),
  })
  .strict()
  .optional();

const uploadQuery = z.object({
  name: z.string().min(1).max(255).describe('File name shown to readers.'),
  contentType: z
    .string()
    .max(255)
    .optional()
    .describe('MIME type; default application/octet-stream.'),
  text: z.string().max(8000).optional().describe('Message text; default the file name.'),
  clientId: z.string().max(64).optional().describe('Idempotency key of the message.'),
});

export const roomRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET',
    url: '/api/v1/rooms',
    summary: 'Search the room directory: rooms the caller may find, by name or description',
    tags: ['rooms'],
    auth: 'user',
    query: searchQuery,
    response: { status: 200, description: 'Rooms.' },
    handler: ({ domain, actor, query }) => searchRooms(domain, actor, query),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/rooms',
    summary: 'Create a room (category creators and administrators); the creator becomes a manager',
    tags: ['rooms'],
    auth: 'user',
    audit: 'room.new',
    body: newRoom,
    response: { status: 201, description: 'The new room.' },
    handler: ({ domain, actor, body }) => createRoom(domain, actor, body),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/me/rooms',
    summary: 'Rooms the caller is a member or manager of',
    tags: ['rooms'],
    auth: 'user',
    response: { status: 200, description: '`{ member: Room[], manager: Room[] }`.' },
    handler: ({ domain, actor }) => associations(domain, actor),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/rooms/:id',
    summary: 'Get a room, with its roles where the caller may see them',
    tags: ['rooms'],
    auth: 'user',
    params: idParams,
    response: { status: 200, description: 'The room.' },
    handler: ({ domain, actor, params }) => getRoom(domain, actor, params.id),
  }),
  defineRoute({
    method: 'PATCH',
    url: '/api/v1/rooms/:id',
    summary: 'Change a room: settings and roles (managers and administrators)',
    tags: ['rooms'],
    auth: 'user',
    audit: 'room.set',
    params: idParams,
    body: roomPatch,
    response: { status: 200, description: 'The room after the change.' },
    handler: ({ domain, actor, params, body }) => updateRoom(domain, actor, params.id, body),
  }),
  defineRoute({
    method: 'DELETE',
    url: '/api/v1/rooms/:id',
    summary: 'Delete a room with its messages and files (administrators)',
    tags: ['rooms'],
    auth: 'admin',
    audit: 'room.remove',
    params: idParams,
    response: { status: 204, description: 'Deleted.', contentType: null },
    handler: async ({ domain, actor, params }) => {
      await deleteRoom(domain, actor, params.id);
    },
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/rooms/:id/join',
    summary: 'Join a room: records the join and returns the room with its recent history',
    tags: ['rooms'],
    auth: 'user',
    params: idParams,
    body: joinBody,
    response: { status: 200, description: '`{ room, messages, more }`.' },
    handler: async ({ domain, actor, params, body }) => {
      const [outcome] = await joinRooms(domain, actor, [{ roomId: params.id, ...body }]);
      if (outcome?.ok) return outcome.result;
      throw outcome?.error instanceof PerchError ? outcome.error : new Error('join failed');
    },
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/rooms/:id/messages',
    summary: 'Read a page of history: the latest, `before` a sequence, or `after` one',
    tags: ['messages'],
    auth: 'user',
    params: idParams,
    query: historyQuery,
    response: { status: 200, description: '`{ messages, more, lastSeq }`, oldest first.' },
    handler: ({ domain, actor, params, query }) => roomHistory(domain, actor, params.id, query),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/rooms/:id/messages',
    summary: 'Post a message; a repeated `clientId` returns the first post (200, duplicate: true)',
    tags: ['messages'],
    auth: 'user',
    params: idParams,
    body: postSchema,
    response: { status: 201, description: '`{ message, duplicate: false }`.' },
    handler: async ({ domain, actor, params, body }) => {
      const result = await postMessage(domain, actor, params.id, body);
      return result.duplicate ? new Answer(200, result) : result;
    },
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/rooms/:id/files',
    summary: 'Upload a file (raw application/octet-stream body) and post a message linking to it',
    description:
      'The body is the file itself; its size is capped by the `maxFileSizeKb` setting (`file_too_large`, 413).',
    tags: ['files'],
    auth: 'user',
    params: idParams,
    query: uploadQuery,
    bodyType: 'binary',
    response: { status: 201, description: '`{ message, duplicate }` with `message.file` set.' },
    handler: async ({ domain, actor, params, query, rawBody }) => {
      const result = await uploadFile(domain, actor, params.id, query, rawBody);
      return result.duplicate ? new Answer(200, result) : result;
    },
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/rooms/:id/clear',
    summary: "Delete a room's messages up to and including a date (administrators)",
    tags: ['messages'],
    auth: 'admin',
    audit: 'room.clear',
    params: idParams,
    body: z.object({ upTo: dateValue }).strict(),
    response: { status: 200, description: '`{ deleted }`.' },
    handler: ({ domain, actor, params, body }) => clearRoom(domain, actor, params.id, body.upTo),
  }),
];
