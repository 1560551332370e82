// Self-test of the WebSocket test client against a throwaway echo server.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { connect } from './ws-client.js';
import type { Frame } from './ws-client.js';

// Echo server: {type:'ping', id} → {type:'reply', id}; {type:'fail', id} → {type:'error', id};
// {type:'emit', events:[...]} → each event sent as a frame, no reply;
// {type:'bye', code, reason} → closes the connection; {type:'garbage'} → a non-JSON frame.
function handle(socket: WebSocket, raw: string): void {
  const frame = JSON.parse(raw) as Frame;
  switch (frame.type) {
    case 'ping':
      socket.send(JSON.stringify({ type: 'reply', id: frame.id, echo: frame.payload ?? null }));
      break;
    case 'fail':
      socket.send(JSON.stringify({ type: 'error', id: frame.id, code: 'bad_request' }));
      break;
    case 'emit':
      for (const event of frame.events as Frame[]) socket.send(JSON.stringify(event));
      break;
    case 'bye':
      socket.close(frame.code as number, frame.reason as string);
      break;
    case 'garbage':
      socket.send('not json {');
      break;
  }
}

describe('ws-client', () => {
  let wss: WebSocketServer;
  let wsUrl: string;

  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws' });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    const { port } = wss.address() as AddressInfo;
    wsUrl = `ws://127.0.0.1:${port}/ws`;
    wss.on('connection', (socket) => {
      socket.on('message', (data) => handle(socket, data.toString()));
    });
  });

  after(async () => {
    for (const socket of wss.clients) socket.terminate();
    await new Promise<void>((resolve, reject) =>
      wss.close((error) => (error ? reject(error) : resolve())),
    );
  });

  test('request assigns distinct ids and matches each reply to its request', async () => {
    const client = await connect(wsUrl);
    const [a, b] = await Promise.all([
      client.request({ type: 'ping', payload: 'a' }),
      client.request({ type: 'ping', payload: 'b' }),
    ]);
    assert.equal(a.type, 'reply');
    assert.equal(a.echo, 'a');
    assert.equal(b.echo, 'b');
    assert.equal(typeof a.id, 'string');
    assert.notEqual(a.id, b.id);
    await client.close();
  });

  test('request keeps a caller-given id and resolves with error frames too', async () => {
    const client = await connect(wsUrl);
    const reply = await client.request({ type: 'fail', id: 'mine-1' });
    assert.deepEqual(reply, { type: 'error', id: 'mine-1', code: 'bad_request' });
    await client.close();
  });

  test('nextEvent finds frames that arrived before it was called, in order, once', async () => {
    const client = await connect(wsUrl);
    client.send({
      type: 'emit',
      events: [
        { type: 'message', seq: 1 },
        { type: 'presence', user: 'u1' },
        { type: 'message', seq: 2 },
      ],
    });
    // The reply is sent after the events, so they have all arrived once it resolves.
    await client.request({ type: 'ping' });
    assert.equal(client.unconsumed().length, 3);

    const first = await client.nextEvent((f) => f.type === 'message');
    const second = await client.nextEvent((f) => f.type === 'message');
    assert.equal(first.seq, 1);
    assert.equal(second.seq, 2);
    assert.deepEqual(client.unconsumed(), [{ type: 'presence', user: 'u1' }]);
    await client.close();
  });

  test('nextEvent waits for a frame that arrives later', async () => {
    const client = await connect(wsUrl);
    const pending = client.nextEvent((f) => f.type === 'later');
    client.send({ type: 'emit', events: [{ type: 'other' }, { type: 'later', n: 7 }] });
    const frame = await pending;
    assert.equal(frame.n, 7);
    assert.deepEqual(client.unconsumed(), [{ type: 'other' }]);
    await client.close();
  });

  test('replies consumed by request are not seen by nextEvent', async () => {
    const client = await connect(wsUrl);
    await client.request({ type: 'ping', id: 'r1' });
    await assert.rejects(
      client.nextEvent((f) => f.id === 'r1', 50),
      /timed out after 50 ms waiting for a frame matching/,
    );
    await client.close();
  });

  test('a wait that passes its deadline rejects and lists unconsumed frames', async () => {
    const client = await connect(wsUrl);
    client.send({ type: 'emit', events: [{ type: 'noise', n: 1 }] });
    await client.nextEvent((f) => f.type === 'noise').then((f) => assert.equal(f.n, 1));
    client.send({ type: 'emit', events: [{ type: 'noise', n: 2 }] });
    await assert.rejects(client.request({ type: 'unknown' }, 100), (error: Error) => {
      assert.match(error.message, /timed out after 100 ms waiting for a reply to request/);
      assert.match(error.message, /"type":"unknown"/);
      assert.match(error.message, /"n":2/);
      return true;
    });
    await client.close();
  });

  test('closed resolves with the code and reason; pending waits reject at once', async () => {
    const client = await connect(wsUrl);
    const waiting = client.nextEvent((f) => f.type === 'never', 60_000);
    client.send({ type: 'bye', code: 4001, reason: 'slow consumer' });
    assert.deepEqual(await client.closed, { code: 4001, reason: 'slow consumer' });
    await assert.rejects(waiting, /connection closed \(code 4001, reason "slow consumer"\)/);
    await assert.rejects(
      client.nextEvent(() => true),
      /connection is closed/,
    );
    assert.throws(() => client.send({ type: 'ping' }), /cannot send, socket is CLOSED/);
  });

  test('a frame that is not JSON fails the waits', async () => {
    const client = await connect(wsUrl);
    const waiting = client.nextEvent((f) => f.type === 'never');
    client.send({ type: 'garbage' });
    await assert.rejects(waiting, /not JSON: not json \{/);
    await client.close();
  });

  test('connect rejects with the reason when the upgrade is refused', async () => {
    const { port } = wss.address() as AddressInfo;
    await assert.rejects(
      connect(`ws://127.0.0.1:${port}/not-ws`),
      /could not connect to ws:\/\/127\.0\.0\.1:\d+\/not-ws: server answered the upgrade with HTTP 400/,
    );
  });
});
