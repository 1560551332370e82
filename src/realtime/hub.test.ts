import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket, type WebSocketServer } from 'ws';
import { postMessage } from '../domain/messages/commands.js';
import { updateRoom } from '../domain/rooms/commands.js';
import type { DomainEvent } from '../domain/events.js';
import { createLogger } from '../logger.js';
import { buildDomain, type TestDomain } from '../../test/harness/domain.js';
import { buildCategory, buildRoom, buildUsers } from '../../test/harness/domain-factories.js';
import { Connection } from './connection.js';
import { Hub } from './hub.js';
import { loopbackWss, waitFor } from '../../test/harness/loopback-wss.js';

// The hub on a real domain and store, with connections over real loopback WebSockets. Events
// are handed over the way a pool's catch-up hands them: several in one turn of the event loop.

let t: TestDomain;
let wss: WebSocketServer;
let url: string;
let closeWss: () => Promise<void>;

before(async () => {
  t = await buildDomain();
  ({ wss, url, close: closeWss } = await loopbackWss());
});

after(async () => {
  await closeWss();
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

test('a large room is sent in slices across turns, in order, while other rooms interleave', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `big${i}`);
  const users = await buildUsers(t, [...names, 'solo']);
  await buildCategory(t, { name: 'Sliced', allowed: [...names, 'solo'] });
  const big = await buildRoom(t, {
    name: 'Hall',
    category: 'Sliced',
    privacy: 'open',
    managers: ['big0'],
  });
  const small = await buildRoom(t, { name: 'Corner', category: 'Sliced', privacy: 'open' });
  // Slices of 4: connections 0-3 in the first turn, 4-7 in the second, 8-9 in the third.
  const hub = new Hub(t.d, createLogger('silent'), { fanOutSlice: 4 });
  const conns: Awaited<ReturnType<typeof connection>>[] = [];
  for (const name of names) {
    const c = await connection(users[name]!);
    join(hub, c.conn, big.id);
    conns.push(c);
  }
  const solo = await connection(users.solo!);
  join(hub, solo.conn, small.id);
  join(hub, conns[9]!.conn, small.id);
  await t.d.access.room(big.id);

  const from = t.events.length;
  const poster = users.big0!;
  await postMessage(t.d, poster, big.id, { text: 'one' });
  await postMessage(t.d, poster, big.id, { text: 'two' });
  await postMessage(t.d, poster, big.id, { text: 'three' });
  await postMessage(t.d, users.solo!, small.id, { text: 'meanwhile' });
  // Connections 6-9 lose the room; the message after that must never reach them.
  await updateRoom(t.d, poster, big.id, {
    privacy: 'closed',
    members: { add: names.slice(0, 6) },
  });
  await postMessage(t.d, poster, big.id, { text: 'members only' });
  const events = t.events.slice(from);
  assert.deepEqual(
    events.map((e: DomainEvent) => e.type),
    ['message', 'message', 'message', 'message', 'room.changed', 'room.access_changed', 'message'],
  );
  for (const event of events) hub.handle(event, 100);
  // Runs right after the hub's first turn (its first slice): connection 5, in the second slice,
  // leaves the room before its slice is sent and must get nothing of it.
  setImmediate(() => hub.leave(conns[5]!.conn, big.id, 100));

  await waitFor('the removals', () =>
    conns.slice(6).every((c) => c.received.some((f) => f.type === 'removed')),
  );
  await hub.settled();
  // A last frame on every socket: once it is read, everything written before it has been too.
  for (const c of [...conns, solo]) c.conn.send({ type: 'end' });
  await waitFor('every socket read to its end', () =>
    [...conns, solo].every((c) => c.received.some((f) => f.type === 'end')),
  );

  const bigSeqs = (frames: Record<string, unknown>[]) =>
    frames.filter((f) => f.type === 'message' && f.roomId === big.id).map(seqOf);
  for (const i of [0, 1, 2, 3, 4])
    assert.deepEqual(bigSeqs(conns[i]!.received), [1, 2, 3, 4], `connection ${i}`);
  assert.deepEqual(bigSeqs(conns[5]!.received), [], 'left before its slice');
  for (const i of [6, 7, 8, 9]) {
    const kinds = conns[i]!.received.filter(
      (f) => (f.roomId === big.id && f.type !== 'roster') || f.type === 'end',
    ).map((f) => (f.type === 'message' ? `message ${seqOf(f)}` : String(f.type)));
    assert.deepEqual(
      kinds,
      ['message 1', 'message 2', 'message 3', 'room_changed', 'removed', 'end'],
      `connection ${i}: every earlier message, in order, then removed, and nothing after`,
    );
  }
  // The small room's message did not wait for the large room's fan-out: connection 9 (in the
  // last slice) got it before the large room's first message.
  const nine = conns[9]!.received.filter((f) => f.type === 'message');
  assert.equal(nine[0]!.roomId, small.id, 'the small room interleaves with the large fan-out');
  assert.equal(solo.received.filter((f) => f.type === 'message').length, 1);
  for (const c of [...conns, solo]) c.client.close();
});

function seqOf(frame: Record<string, unknown>): number {
  return (frame.message as { seq: number }).seq;
}
