import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { OutgoingFrame, canWriteFramed, sendFrame } from './frame.js';

/** A ws server on loopback and one client connected to it; `received` collects text frames. */
async function pair(perMessageDeflate: boolean) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const { port } = wss.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate });
  const received: { text: string; binary: boolean }[] = [];
  client.on('message', (data: Buffer, binary) => received.push({ text: data.toString(), binary }));
  await new Promise<void>((resolve) => client.once('open', () => resolve()));
  const server = await accepted;
  const until = async (count: number) => {
    const deadline = Date.now() + 5_000;
    while (received.length < count) {
      assert.ok(Date.now() < deadline, `only ${received.length} of ${count} frames arrived`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const close = async () => {
    client.terminate();
    await new Promise((r) => wss.close(r));
  };
  return { server, received, until, close };
}

// Payload lengths at each header size boundary (7-bit, 16-bit, 64-bit lengths) and multi-byte UTF-8.
const payloads = [
  '',
  'x',
  'a'.repeat(125),
  'b'.repeat(126),
  'é'.repeat(100),
  'c'.repeat(65_535),
  'd'.repeat(65_536),
  `{"text":"${'ü€😀'.repeat(30_000)}"}`,
];

test('pre-framed messages go straight to the socket with the pinned ws and arrive intact, in order with ws.send', async () => {
  const p = await pair(false);
  try {
    assert.ok(
      canWriteFramed(p.server as unknown as Parameters<typeof canWriteFramed>[0]),
      'the direct path is taken with the ws version in package.json; if this fails after a ws upgrade, check its Sender internals',
    );
    for (const text of payloads) {
      sendFrame(p.server, new OutgoingFrame(text));
      p.server.send(`plain ${text.length}`);
    }
    await p.until(payloads.length * 2);
    assert.deepEqual(
      p.received.map((r) => r.text),
      payloads.flatMap((t) => [t, `plain ${t.length}`]),
    );
    assert.ok(
      p.received.every((r) => !r.binary),
      'all text frames',
    );
  } finally {
    await p.close();
  }
});

test('with permessage-deflate the frame falls back to ws.send and still arrives as text', async () => {
  const p = await pair(true);
  try {
    assert.equal(
      canWriteFramed(p.server as unknown as Parameters<typeof canWriteFramed>[0]),
      false,
    );
    for (const text of payloads) sendFrame(p.server, new OutgoingFrame(text));
    await p.until(payloads.length);
    assert.deepEqual(
      p.received.map((r) => r.text),
      payloads,
    );
    assert.ok(p.received.every((r) => !r.binary));
  } finally {
    await p.close();
  }
});

test('a socket whose ws internals differ is sent the payload through ws.send', () => {
  const sent: { data: unknown; binary: unknown }[] = [];
  const fake = {
    readyState: 1,
    _socket: {
      write() {
        throw new Error('must not write directly');
      },
    },
    // A ws whose Sender no longer has these fields.
    _sender: {},
    _extensions: {},
    send(data: unknown, opts: { binary?: boolean }) {
      sent.push({ data, binary: opts.binary });
    },
  };
  const frame = new OutgoingFrame('{"type":"message"}');
  sendFrame(fake as unknown as WebSocket, frame);
  assert.equal(sent.length, 1);
  assert.equal(String(sent[0]!.data), '{"type":"message"}');
  assert.equal(sent[0]!.binary, false);
});
