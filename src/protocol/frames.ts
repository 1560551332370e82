/**
 * The WebSocket protocol: a zod schema for every frame a client may send. docs/protocol.md
 * documents each with examples; the web client imports these schemas too.
 */
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

const requestId = z.union([
  z.string().min(1).max(64),
  z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
]);
const roomId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const principalNames = z.array(z.string().min(1).max(256)).max(1000);
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

function frame<T extends string, S extends z.ZodRawShape>(type: T, shape: S) {
  return z.object({ type: z.literal(type), id: requestId, ...shape }).strict();
}

const joinRequest = z
  .object({ roomId, since: seq.optional(), limit: z.number().int().min(1).max(500).optional() })
  .strict();

export const clientFrameSchemas = {
  auth: frame('auth', { token: z.string().min(1).max(200) }),
  ping: frame('ping', {}),
  server_info: frame('server_info', {}),
  associations: frame('associations', {}),
  room_search: frame('room_search', {
    text: z.string().max(256).optional(),
    category: z.union([z.string().min(1).max(256), z.number().int().positive()]).optional(),
    includeDescription: z.boolean().optional(),
    limit: z.number().int().min(1).max(500).optional(),
    offset: z.number().int().min(0).max(1_000_000).optional(),
  }),
  room_create: frame('room_create', {
    name: z.string().max(256),
    category: z.union([z.string().min(1).max(256), z.number().int().positive()]),
    description: z.string().max(256).optional(),
    privacy: z.enum(['open', 'closed', 'secret']).optional(),
    /** The room's type (`type` is the frame's own). */
    roomType: z.enum(['normal', 'auditorium']).optional(),
    invitations: z.enum(['inherit', 'off']).optional(),
    members: principalNames.optional(),
    managers: principalNames.optional(),
    presenters: principalNames.optional(),
  }),
  room_get: frame('room_get', { roomId }),
  join: frame('join', {
    roomId,
    since: seq.optional(),
    limit: z.number().int().min(1).max(500).optional(),
  }),
  bjoin: frame('bjoin', {
    rooms: z
      .array(joinRequest)
      .min(1)
      .max(500)
      .refine(
        (rs) => new Set(rs.map((r) => r.roomId)).size === rs.length,
        'rooms must not repeat a roomId',
      ),
  }),
  part: frame('part', { roomId }),
  history: frame('history', {
    roomId,
    before: z.number().int().min(1).optional(),
    after: seq.optional(),
    limit: z.number().int().min(1).max(500).optional(),
  }),
  post: frame('post', {
    roomId,
    text: z.string().min(1),
    title: z.string().min(1).max(256).optional(),
    alert: z.boolean().optional(),
    clientId: z.string().min(1).max(64).optional(),
  }),
  search: frame('search', {
    query: z.string().max(1024).optional(),
    authors: z.array(z.string().min(1).max(256)).max(50).optional(),
    rooms: z.array(roomId).max(200).optional(),
    from: z.union([z.number().int().min(0), z.string().max(40)]).optional(),
    to: z.union([z.number().int().min(0), z.string().max(40)]).optional(),
    limit: z.number().int().min(1).max(200).optional(),
    offset: z.number().int().min(0).max(10_000).optional(),
  }),
  invitations: frame('invitations', { all: z.boolean().optional() }),
  invitations_seen: frame('invitations_seen', {
    ids: z.array(z.number().int().positive()).min(1).max(1000),
  }),
  follows: frame('follows', {}),
  follow: frame('follow', { roomId }),
  unfollow: frame('unfollow', { roomId }),
  mark_read: frame('mark_read', { roomId, seq }),
  file_link: frame('file_link', { fileId: z.number().int().positive() }),
} as const;

export type ClientFrameType = keyof typeof clientFrameSchemas;
export type ClientFrame = {
  [K in ClientFrameType]: z.infer<(typeof clientFrameSchemas)[K]>;
}[ClientFrameType];
export type FrameOf<K extends ClientFrameType> = z.infer<(typeof clientFrameSchemas)[K]>;

/** WebSocket close codes the server uses (4000–4999 are application codes). */
export const CloseCodes = {
  normal: 1000,
  goingAway: 1001,
  tooBig: 1009,
  unauthenticated: 4001,
  authTimeout: 4002,
  chatDisabled: 4003,
  signedOut: 4004,
  slowConsumer: 4008,
  frontEndIdle: 4009,
  rateLimited: 4029,
  protocolError: 4400,
  /** `/ws/pool/{name}`: that pool is not in the topology or none of its front ends answered. */
  poolUnavailable: 4502,
} as const;
