import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { postMessage } from '../domain/messages/commands.js';
import { updateRoom } from '../domain/rooms/commands.js';
import type { DomainEvent } from '../domain/events.js';
import { createLogger } from '../logger.js';
import { buildDomain, type TestDomain } from '../../test/harness/domain.js';
import { buildCategory, buildRoom, buildUsers } from '../../test/harness/domain-factories.js';
import { Connection } from './connection.js';
import { Hub } from './hub.js';

// The hub on a real domain and store, with connections over real loopback WebSockets. Events
// are handed over the way a pool's catch-up hands them: several in one turn of the event loop.

let t: TestDomain;
let wss: WebSocketServer;
let url: string;

before(async () => {
  t = await buildDomain();
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
});

after(async () => {
  for (const ws of wss.clients) ws.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  await t.close();
});

/** A connection of `actor` on the server side, and the frames its client receives, in order. */
async function connection(actor: Connection['actor']) {
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(url);
  const received: Record<string, unknown>[] = [];
  client.on('message', (data: Buffer) => received.push(JSON.parse(data.toString())));
  await new Promise((resolve) => client.once('open', resolve));
  const conn = new Connection(await accepted, '127.0.0.1', {
    maxBufferedBytes: 1 << 20,
    maxPending: 1000,
  });
  conn.actor = actor;
  return { conn, client, received };
}

/** Joins the connection to the room as the server's join does, with nothing to backfill. */
function join(hub: Hub, conn: Connection, roomId: number): void {
  hub.addConnection(conn);
  hub.subscribe(conn, roomId);
  hub.enterRoster(conn, roomId, 100);
  hub.goLive(conn, roomId);
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), `timed out waiting for ${what}`);
}

test('a message after an access change never reaches a connection that lost the room', async () => {
  const users = await buildUsers(t, ['alice', 'bob']);
  await buildCategory(t, { name: 'General', allowed: ['alice', 'bob'] });
  const room = await buildRoom(t, {
    name: 'Lobby',
    category: 'General',
    privacy: 'open',
    managers: ['alice'],
  });
  const hub = new Hub(t.d, createLogger('silent'));
  const bob = await connection(users.bob);
  const alice = await connection(users.alice);
  join(hub, bob.conn, room.id);
  join(hub, alice.conn, room.id);
  // The room's access info is cached, as it is on a busy front end.
  await t.d.access.room(room.id);

  const from = t.events.length;
  await updateRoom(t.d, users.alice, room.id, { privacy: 'closed', members: { add: ['alice'] } });
  await postMessage(t.d, users.alice, room.id, { text: 'members only from now on' });
  const events = t.events.slice(from);
  assert.deepEqual(
    events.map((e: DomainEvent) => e.type),
    ['room.changed', 'room.access_changed', 'message'],
  );
  for (const event of events) hub.handle(event, 100);

  await waitFor('alice to get the message', () => alice.received.some((f) => f.type === 'message'));
  await waitFor('bob to be removed', () => bob.received.some((f) => f.type === 'removed'));
  await hub.settled();
  const types = (frames: Record<string, unknown>[]) =>
    frames.map((f) => f.type).filter((type) => type !== 'roster');
  assert.deepEqual(
    types(bob.received),
    ['room_changed', 'removed'],
    'bob is removed before the message, and never sees it',
  );
  assert.deepEqual(types(alice.received), ['room_changed', 'message']);
  bob.client.close();
  alice.client.close();
});

test('events after an asynchronous re-check keep their order on every connection', async () => {
  const users = await buildUsers(t, ['carol', 'dan']);
  await buildCategory(t, { name: 'Ordered', allowed: ['carol', 'dan'] });
  const rooms = [];
  for (const name of ['One', 'Two'])
    rooms.push(
      await buildRoom(t, { name, category: 'Ordered', privacy: 'open', managers: ['carol'] }),
    );
  const hub = new Hub(t.d, createLogger('silent'));
  const dan = await connection(users.dan);
  for (const r of rooms) join(hub, dan.conn, r.id);

  const from = t.events.length;
  await updateRoom(t.d, users.carol, rooms[0]!.id, { privacy: 'closed' });
  await updateRoom(t.d, users.carol, rooms[1]!.id, { description: 'still open' });
  for (const event of t.events.slice(from)) hub.handle(event, 100);
  await waitFor('both changes', () => dan.received.length >= 3);
  await hub.settled();
  assert.deepEqual(
    dan.received.map((f) => `${String(f.type)} ${String(f.roomId)}`),
    [`room_changed ${rooms[0]!.id}`, `removed ${rooms[0]!.id}`, `room_changed ${rooms[1]!.id}`],
  );
  dan.client.close();
});
