// Connection and process lifecycle against a real server process: a slow consumer is cut
// off, acknowledged posts survive kill -9, and SIGTERM drains clients with a goodbye.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { cleanup, startServer, type TestServer } from '../harness/server.js';
import type { Frame, WsClient } from '../harness/ws-client.js';
import {
  adminHttp,
  ask,
  buildCategory,
  buildRoom,
  buildUsers,
  type Http,
  type MessageFrame,
  openClient,
  postMany,
  range,
  type TestUser,
} from './helpers.js';

const logins = ['alice', 'bob'] as const;

describe('server lifecycle', () => {
  let server: TestServer;
  let admin: Http;
  let users: Record<(typeof logins)[number], TestUser>;
  const clients: WsClient[] = [];

  async function client(user: TestUser): Promise<WsClient> {
    const c = await openClient(server, user.token);
    clients.push(c);
    return c;
  }

  before(async () => {
    server = await startServer({ env: { PERCH_MAX_BUFFERED_BYTES: String(64 * 1024) } });
    admin = await adminHttp(server);
    users = await buildUsers(server, admin, logins);
    await buildCategory(admin, { name: 'General', allowed: [...logins] });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.terminate()));
    if (server) await cleanup(server);
  });

  test('a client that stops reading is cut off with slow_consumer and close 4008', async () => {
    const r = await buildRoom(admin, { name: 'firehose', category: 'General', privacy: 'open' });
    const [a, b] = [await client(users.alice), await client(users.bob)];
    await ask(a, { type: 'join', roomId: r.id });
    await ask(b, { type: 'join', roomId: r.id });
    (a.socket as unknown as { _socket: Socket })._socket.pause();
    // Post until the server gives up on alice: bob sees her leave the roster.
    const leftRoster = (f: Frame) => f.type === 'roster' && f.event === 'part';
    const big = 'x'.repeat(7_900);
    for (let batch = 0; !b.unconsumed().some(leftRoster); batch++) {
      assert.ok(batch < 200, 'the server never cut the slow consumer off');
      await postMany(users.bob.http, r.id, 20, (i) => `${batch}/${i} ${big}`);
      await ask(b, { type: 'ping' });
    }
    (a.socket as unknown as { _socket: Socket })._socket.resume();
    const error = await a.nextEvent((f) => f.type === 'error');
    assert.deepEqual([error.code, error.id], ['slow_consumer', null]);
    assert.equal((await a.closed).code, 4008);
    // Nothing else suffered: the server answers, bob still posts and receives.
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const ack = await ask<{ seq: number }>(b, { type: 'post', roomId: r.id, text: 'still here' });
    const seen = await b.nextEvent(
      (f) => f.type === 'message' && (f as MessageFrame).message.seq === ack.seq,
    );
    assert.equal((seen as MessageFrame).message.text, 'still here');
  });

  test("the log is checkpointed into the database off the event loop's connection", async () => {
    // In WAL mode only a checkpoint writes perch.db itself. The server's own connection
    // checkpoints only past 10,000 log pages, and the compliance thread (whose chat-store writes
    // go through the server's connection) copies the log every half second: so perch.db
    // changes soon after posts far below that.
    const file = path.join(server.dataDir, 'perch.db');
    const modified = async () => (await stat(file)).mtimeMs;
    const r = await buildRoom(admin, {
      name: 'checkpointed',
      category: 'General',
      privacy: 'open',
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const before = await modified();
    await postMany(users.alice.http, r.id, 50, (i) => `checkpointed ${i}`);
    for (let i = 0; i < 100 && (await modified()) === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.notEqual(await modified(), before, 'perch.db was not written: nothing checkpointed');
  });

  test('every acknowledged post survives kill -9 with its sequence; none is handed out twice', async () => {
    const r = await buildRoom(admin, { name: 'durable', category: 'General', privacy: 'open' });
    const a = await client(users.alice);
    const acked = new Map<string, number>();
    let killed: Promise<void> | undefined;
    // A stream of pipelined posts; the server dies right after the tenth acknowledgement.
    const answers = range(1, 25).map(async (i) => {
      const clientId = `durable-${i}`;
      const answer = await a
        .request({ type: 'post', roomId: r.id, text: `post ${i}`, clientId })
        .catch(() => undefined);
      if (answer?.type !== 'reply') return;
      acked.set(clientId, (answer.data as { seq: number }).seq);
      if (acked.size === 10) killed = server.kill9();
    });
    await Promise.all(answers);
    assert.ok(killed, 'the server was killed');
    await killed;
    await server.restart();

    const b = await client(users.bob);
    const page = await ask<{ messages: MessageFrame['message'][]; lastSeq: number }>(b, {
      type: 'history',
      roomId: r.id,
      limit: 500,
    });
    const bySeq = new Map(page.messages.map((m) => [m.seq, m]));
    assert.equal(bySeq.size, page.messages.length, 'no sequence number appears twice');
    for (const [clientId, seq] of acked) {
      assert.equal(
        bySeq.get(seq)?.clientId,
        clientId,
        `acked ${clientId} is stored with seq ${seq}`,
      );
    }
    // Retrying every post with its clientId: acked ones are duplicates with the same seq; the rest
    // get new sequence numbers above everything handed out before the crash.
    const before = Math.max(page.lastSeq, ...acked.values());
    const a2 = await client(users.alice);
    for (const i of range(1, 25)) {
      const clientId = `durable-${i}`;
      const retry = await ask<{ seq: number; duplicate: boolean }>(a2, {
        type: 'post',
        roomId: r.id,
        text: `post ${i}`,
        clientId,
      });
      if (acked.has(clientId))
        assert.deepEqual([retry.seq, retry.duplicate], [acked.get(clientId), true]);
      else if (!retry.duplicate) assert.ok(retry.seq > before, `new seq ${retry.seq} > ${before}`);
    }
    const fresh = await ask<{ seq: number }>(a2, {
      type: 'post',
      roomId: r.id,
      text: 'after the crash',
    });
    assert.ok(fresh.seq > before);
  });

  test('SIGTERM: a connected client gets bye and close 1001, the process exits 0, the PART is recorded', async () => {
    const { id: roomId } = await buildRoom(admin, {
      name: 'drain-room',
      category: 'General',
      members: [...logins],
    });
    const a = await client(users.alice);
    await ask(a, { type: 'join', roomId });
    const exit = server.stop('SIGTERM');
    const bye = await a.nextEvent((f) => f.type === 'bye');
    assert.equal(bye.code, 'shutting_down');
    assert.equal((await a.closed).code, 1001);
    assert.equal(await exit, 0);
    // The leaving client's PART reached the chat store before it was closed: it is either still
    // in the outbox or already moved by the compliance worker thread, exactly once overall.
    const count = (file: string, table: string): number => {
      const db = new Database(path.join(server.dataDir, file), { readonly: true });
      try {
        const row = db
          .prepare(`SELECT count(*) AS n FROM ${table} WHERE kind = 'PART' AND room_id = ?`)
          .get(roomId) as { n: number };
        return row.n;
      } finally {
        db.close();
      }
    };
    assert.equal(
      count('perch.db', 'activity_outbox') + count('compliance.db', 'compliance_records'),
      1,
    );
  });
});
