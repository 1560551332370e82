// The permission rules (docs/permissions.md) through the WebSocket protocol: every room kind
// against every kind of user, for finding, reading, posting and searching.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup, startServer, type TestServer } from '../harness/server.js';
import type { WsClient } from '../harness/ws-client.js';
import {
  adminHttp,
  buildCategory,
  buildRoom,
  buildUsers,
  openClient,
  type RoomView,
} from './helpers.js';

const logins = ['nonmember', 'member', 'presenter', 'manager', 'denied'] as const;
type Who = (typeof logins)[number] | 'admin';
type RoomKind = 'open' | 'closed' | 'secret' | 'auditorium';
const ops = ['room_search', 'room_get', 'join', 'history', 'post', 'search'] as const;
type Op = (typeof ops)[number];

const ok = 'ok';
const NF = 'room_not_found';
const FB = 'forbidden';
const NP = 'post_not_allowed';
/** `room_search` answers `listed` or `hidden` (found in the directory or not). */
const IN = 'listed';
const OUT = 'hidden';

// Columns: room_search, room_get, join, history, post, search (messages, restricted to the room).
// The presenter is a member of every room and a presenter of the auditorium; the manager is no
// member; the administrator is in no category scope; `denied` is allowed and denied.
const expected: Record<RoomKind, Record<Who, readonly string[]>> = {
  open: {
    nonmember: [IN, ok, ok, ok, ok, ok],
    member: [IN, ok, ok, ok, ok, ok],
    presenter: [IN, ok, ok, ok, ok, ok],
    manager: [IN, ok, ok, ok, ok, ok],
    admin: [IN, ok, FB, FB, FB, NF],
    denied: [OUT, NF, NF, NF, NF, NF],
  },
  closed: {
    nonmember: [IN, ok, FB, FB, FB, NF],
    member: [IN, ok, ok, ok, ok, ok],
    presenter: [IN, ok, ok, ok, ok, ok],
    manager: [IN, ok, FB, FB, FB, NF],
    admin: [IN, ok, FB, FB, FB, NF],
    denied: [OUT, NF, NF, NF, NF, NF],
  },
  secret: {
    nonmember: [OUT, NF, NF, NF, NF, NF],
    member: [IN, ok, ok, ok, ok, ok],
    presenter: [IN, ok, ok, ok, ok, ok],
    manager: [IN, ok, FB, FB, FB, NF],
    admin: [IN, ok, FB, FB, FB, NF],
    denied: [OUT, NF, NF, NF, NF, NF],
  },
  auditorium: {
    nonmember: [IN, ok, FB, FB, FB, NF],
    member: [IN, ok, ok, ok, NP, ok],
    presenter: [IN, ok, ok, ok, ok, ok],
    manager: [IN, ok, FB, FB, FB, NF],
    admin: [IN, ok, FB, FB, FB, NF],
    denied: [OUT, NF, NF, NF, NF, NF],
  },
};

const roomInputs: Record<RoomKind, Record<string, unknown>> = {
  open: { privacy: 'open' },
  closed: { privacy: 'closed' },
  secret: { privacy: 'secret' },
  auditorium: { privacy: 'closed', type: 'auditorium', presenters: ['presenter'] },
};

describe('permission matrix through the protocol', () => {
  let server: TestServer;
  const conns = {} as Record<Who, WsClient>;
  const rooms = {} as Record<RoomKind, RoomView>;

  before(async () => {
    server = await startServer();
    const admin = await adminHttp(server);
    const users = await buildUsers(server, admin, logins);
    await buildCategory(admin, {
      name: 'Walled',
      allowed: [...logins],
      denied: ['denied'],
    });
    for (const [kind, input] of Object.entries(roomInputs) as [RoomKind, object][]) {
      rooms[kind] = await buildRoom(admin, {
        name: `perm-${kind}`,
        category: 'Walled',
        members: ['member', 'presenter'],
        managers: ['manager'],
        ...input,
      });
    }
    for (const login of logins) conns[login] = await openClient(server, users[login].token);
    conns.admin = await openClient(server, admin.token);
  });

  after(async () => {
    await Promise.all(Object.values(conns).map((c) => c.terminate()));
    if (server) await cleanup(server);
  });

  /** What one user gets for one operation on one room, in the table's terms. */
  async function attempt(who: Who, op: Op, room: RoomView): Promise<string> {
    const frames: Record<Op, Record<string, unknown>> = {
      room_search: { type: 'room_search', text: 'perm-' },
      room_get: { type: 'room_get', roomId: room.id },
      join: { type: 'join', roomId: room.id },
      history: { type: 'history', roomId: room.id },
      post: { type: 'post', roomId: room.id, text: `${who} was here` },
      search: { type: 'search', rooms: [room.id] },
    };
    const answer = await conns[who].request(frames[op]);
    if (answer.type === 'error') return answer.code as string;
    if (op !== 'room_search') return ok;
    const found = (answer.data as { rooms: { id: number }[] }).rooms.some((r) => r.id === room.id);
    return found ? IN : OUT;
  }

  for (const kind of Object.keys(expected) as RoomKind[]) {
    test(`${kind} room`, async () => {
      const actual = {} as Record<Who, string[]>;
      for (const who of Object.keys(expected[kind]) as Who[]) {
        actual[who] = [];
        for (const op of ops) actual[who].push(await attempt(who, op, rooms[kind]));
      }
      assert.deepEqual(actual, expected[kind]);
    });
  }
});
