import { z } from 'zod';
import { removeMessages, searchMessages } from '../../../domain/messages/commands.js';
import { defineRoute, type AnyRoute } from '../../registry.js';
import { csvString, dateValue, idString, intString } from '../../schemas.js';

const searchBody = z
  .object({
    query: z.string().max(1024).optional().describe('Words and "quoted phrases".'),
    authors: z.array(z.string().min(1).max(256)).max(50).optional(),
    rooms: z.array(z.number().int().positive()).max(200).optional(),
    from: dateValue.optional(),
    to: dateValue.optional().describe('Inclusive; a date means the end of that day (UTC).'),
    limit: z.number().int().min(1).max(200).optional(),
    offset: z.number().int().min(0).max(10_000).optional(),
  })
  .strict();

const dateString = z
  .string()
  .max(64)
  .transform((v) => (/^[0-9]{1,16}$/.test(v) ? Number(v) : v));

const searchQuery = z.object({
  query: z.string().max(1024).optional().describe('Words and "quoted phrases".'),
  authors: csvString(z.string().max(256), 50).optional().describe('Comma-separated logins.'),
  rooms: csvString(idString, 200).optional().describe('Comma-separated room ids.'),
  from: dateString.optional().describe('Epoch milliseconds, ISO date-time or ISO date.'),
  to: dateString.optional().describe('Inclusive; a date means the end of that day (UTC).'),
  limit: intString(200, 1).optional(),
  offset: intString(10_000).optional(),
});

const removeBody = z
  .object({
    room: z.number().int().positive(),
    seq: z.number().int().positive().optional().describe('One message by sequence number.'),
    author: z.string().min(1).max(256).optional(),
    from: dateValue.optional(),
    to: dateValue.optional(),
    replacement: z
      .string()
      .min(1)
      .max(8000)
      .optional()
      .describe('Replace the text instead of removing the message.'),
    limit: z.number().int().min(1).max(100_000).optional(),
  })
  .strict();

const searchDescription =
  'Searches rooms the caller may read. Needs words, authors or rooms. `count` stops at 999 (`exceededLimit`).';

export const messageRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET',
    url: '/api/v1/search/messages',
    summary: 'Full-text message search (query string form)',
    description: searchDescription,
    tags: ['messages'],
    auth: 'user',
    query: searchQuery,
    response: { status: 200, description: '`{ messages, count, exceededLimit }`.' },
    handler: ({ domain, actor, query }) => searchMessages(domain, actor, query),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/search/messages',
    summary: 'Full-text message search (JSON body form)',
    description: searchDescription,
    tags: ['messages'],
    auth: 'user',
    body: searchBody,
    response: { status: 200, description: '`{ messages, count, exceededLimit }`.' },
    handler: ({ domain, actor, body }) => searchMessages(domain, actor, body),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/messages/remove',
    summary: 'Remove or replace messages by room and sequence, author or dates (administrators)',
    description: 'Compliance keeps the original text.',
    tags: ['messages'],
    auth: 'admin',
    audit: 'message.remove',
    body: removeBody,
    response: { status: 200, description: '`{ changed }`.' },
    handler: ({ domain, actor, body }) => removeMessages(domain, actor, body),
  }),
];
