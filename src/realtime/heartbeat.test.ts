import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket, type WebSocketServer } from 'ws';
import { Heartbeat } from './heartbeat.js';
import { loopbackWss, waitFor } from '../../test/harness/loopback-wss.js';

// The heartbeat over real loopback WebSockets: clients that answer pings stay, a client that
// stopped answering is ended, and each tick pings only its slot of the connections.

let wss: WebSocketServer;
let url: string;
let closeWss: () => Promise<void>;

before(async () => {
  ({ wss, url, close: closeWss } = await loopbackWss());
});

after(async () => {
  await closeWss();
});

interface Conn {
  alive: boolean;
  ws: WebSocket;
  pings: number;
  closed: boolean;
}

/** A server-side connection whose client answers pings unless `answers` is false (one at a time). */
async function connect(answers: boolean): Promise<{ conn: Conn; client: WebSocket }> {
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(url, { autoPong: answers });
  await new Promise((resolve) => client.once('open', resolve));
  const ws = await accepted;
  const conn: Conn = { alive: true, ws, pings: 0, closed: false };
  ws.on('pong', () => (conn.alive = true));
  ws.on('close', () => (conn.closed = true));
  const ping = ws.ping.bind(ws);
  ws.ping = (...args: Parameters<WebSocket['ping']>) => {
    conn.pings++;
    ping(...args);
  };
  return { conn, client };
}

test('connections that answer stay; one that stopped answering is ended', async () => {
  const heartbeat = new Heartbeat<Conn>(200);
  try {
    const live = [await connect(true), await connect(true)];
    const silent = await connect(false);
    for (const c of [...live, silent]) heartbeat.add(c.conn);
    await waitFor('the silent client to be ended', () => silent.conn.closed);
    // By then every connection was pinged at least once, and the live ones answered.
    for (const c of live) {
      assert.ok(c.conn.pings >= 1);
      assert.equal(c.conn.closed, false);
    }
    for (const c of live) c.client.close();
  } finally {
    heartbeat.stop();
  }
});

test('each tick pings one slot; every connection is pinged once per period', async () => {
  // A long period: the timer never fires here, the test drives the ticks.
  const heartbeat = new Heartbeat<Conn>(60_000, 4);
  try {
    const conns: { conn: Conn; client: WebSocket }[] = [];
    for (let i = 0; i < 10; i++) conns.push(await connect(true));
    for (const c of conns) heartbeat.add(c.conn);
    heartbeat.delete(conns[9]!.conn);
    const pinged = () => conns.reduce((n, c) => n + c.conn.pings, 0);
    const perTick: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = pinged();
      heartbeat.tick();
      perTick.push(pinged() - before);
    }
    // 9 connections over 4 slots (the tenth left): 3, 2, 2, 2 (round-robin), each pinged once.
    assert.deepEqual(perTick, [3, 2, 2, 2]);
    assert.deepEqual(
      conns.map((c) => c.conn.pings),
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
    );
    for (const c of conns) c.client.close();
  } finally {
    heartbeat.stop();
  }
});
