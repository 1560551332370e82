/**
 * The pool fan-out against a real PostgreSQL store: posts are made by one domain (another front
 * end) and the fan-out under test, with a domain of its own on the same database, hears of them
 * only through the notification payloads it is given, in any order, repeated or with gaps.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildRoom, buildWorld } from '../../test/harness/domain-factories.js';
import { buildDomain, type TestDomain } from '../../test/harness/domain.js';
import { Argon2Hasher } from '../auth/argon2-hasher.js';
import type { DomainEvent } from '../domain/events.js';
import { createDomain } from '../domain/index.js';
import { postMessage } from '../domain/messages/commands.js';
import type { MessageView } from '../domain/messages/present.js';
import type { Actor, Domain } from '../domain/types.js';
import { DiskFileStore } from '../files/disk-file-store.js';
import { createLogger } from '../logger.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import { FanOut } from './fan-out.js';

/** Polls until `check` holds; fails with `what` after the deadline. */
async function waitFor(what: string, check: () => boolean, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('pool fan-out (PostgreSQL)', () => {
  let t: TestDomain;
  let here: Domain;
  let store: PostgresStore;
  let alice: Actor;
  let roomCount = 0;

  before(async () => {
    t = await buildDomain({ dialect: 'postgres' });
    ({
      users: { alice },
    } = await buildWorld(t, ['alice']));
    store = PostgresStore.open({ connectionString: t.storeUrl, poolSize: 2 });
    const log = createLogger('silent');
    here = createDomain({
      store,
      events: { publish: () => {} },
      hasher: new Argon2Hasher({ memoryCost: 1024, timeCost: 1 }),
      files: new DiskFileStore(path.join(t.dir, 'files-here')),
      secret: crypto.randomBytes(32),
      log,
    });
  });

  after(async () => {
    await store?.close();
    await t?.close();
  });

  /** A fan-out whose hub is an array; `joined` says which rooms have local subscribers. */
  function fanOut(joined: (roomId: number) => boolean = () => true) {
    const out: DomainEvent[] = [];
    const sent: string[] = [];
    const f = new FanOut({
      d: here,
      out: { publish: (e) => out.push(e) },
      hasSubscribers: joined,
      origin: 'here',
      notify: async (payload) => {
        sent.push(payload);
      },
      log: createLogger('silent'),
    });
    const seqs = (roomId: number) =>
      out.flatMap((e) => (e.type === 'message' && e.roomId === roomId ? [e.message.seq] : []));
    return { f, out, sent, seqs };
  }

  async function room(history = true): Promise<number> {
    if (!history) {
      await buildWorld(t, [`nohist${roomCount}`], {
        name: `NoHistory${roomCount}`,
        history: false,
      });
    }
    const r = await buildRoom(t, {
      name: `fan-${++roomCount}`,
      category: history ? 'General' : `NoHistory${roomCount - 1}`,
      privacy: 'open',
    });
    return r.id;
  }

  async function post(roomId: number, n: number, actor = alice): Promise<MessageView[]> {
    const out: MessageView[] = [];
    for (let i = 0; i < n; i++)
      out.push((await postMessage(t.d, actor, roomId, { text: `m${i}` })).message);
    return out;
  }

  test('late, repeated and missing notifications: every message once, in sequence order', async () => {
    const roomId = await room();
    const { f, seqs } = fanOut();
    f.sync([{ id: roomId, lastSeq: 0 }]);
    await post(roomId, 6);
    // Only 3 is heard of: 1 and 2 are read from the store first.
    f.sequence(`${roomId}:3`);
    await waitFor('1..3', () => seqs(roomId).length === 3);
    f.sequence(`${roomId}:2`);
    f.sequence(`${roomId}:3`);
    // 4 and 5 were never announced; 6 was, twice.
    f.sequence(`${roomId}:6`);
    f.sequence(`${roomId}:6`);
    await waitFor('1..6', () => seqs(roomId).length >= 6);
    assert.deepEqual(seqs(roomId), [1, 2, 3, 4, 5, 6]);
    // A catch-up from the rooms table (after a lost LISTEN connection) finds nothing more.
    f.sync([{ id: roomId, lastSeq: 6 }]);
    await post(roomId, 1);
    f.sync([{ id: roomId, lastSeq: 7 }]);
    await waitFor('7', () => seqs(roomId).length === 7);
    assert.deepEqual(seqs(roomId), [1, 2, 3, 4, 5, 6, 7]);
    f.close();
  });

  test('a local post goes straight through when it is next; after a gap it waits for the store read', async () => {
    const roomId = await room();
    const { f, seqs, out } = fanOut();
    f.sync([{ id: roomId, lastSeq: 0 }]);
    const [first] = await post(roomId, 1);
    f.local({ type: 'message', roomId, message: first! });
    // Synchronously: no store read for the next message in line.
    assert.deepEqual(seqs(roomId), [1]);
    // Another front end posts 2 and 3 (not heard of yet); this one posts 4.
    await post(roomId, 2);
    const [fourth] = await post(roomId, 1);
    f.local({ type: 'message', roomId, message: fourth! });
    await waitFor('1..4', () => seqs(roomId).length === 4);
    assert.deepEqual(seqs(roomId), [1, 2, 3, 4]);
    const views = out.flatMap((e) => (e.type === 'message' ? [e.message] : []));
    assert.deepEqual(
      views.map((m) => [m.seq, m.author.name, m.text]),
      [
        [1, 'alice', 'm0'],
        [2, 'alice', 'm0'],
        [3, 'alice', 'm1'],
        [4, 'alice', 'm0'],
      ],
    );
    f.close();
  });

  test('a room nobody here has joined is not read; once joined, it continues from there', async () => {
    const roomId = await room();
    let joined = false;
    const { f, seqs } = fanOut(() => joined);
    f.sync([{ id: roomId, lastSeq: 0 }]);
    await post(roomId, 3);
    f.sequence(`${roomId}:3`);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seqs(roomId), []);
    joined = true;
    await post(roomId, 1);
    f.sequence(`${roomId}:4`);
    await waitFor('4', () => seqs(roomId).length === 1);
    assert.deepEqual(seqs(roomId), [4]);
    f.close();
  });

  test('a post of a history-off category arrives with its notification', async () => {
    const roomId = await room(false);
    const { f, out } = fanOut();
    f.sync([{ id: roomId, lastSeq: 0 }]);
    const payload = JSON.stringify({
      r: roomId,
      s: 1,
      m: {
        authorId: alice.userId,
        createdAt: 1_700_000_000_000,
        body: 'not kept',
        title: null,
        alert: false,
        fileId: null,
        clientId: 'c-1',
      },
    });
    f.sequence(payload);
    await waitFor('the unstored post', () => out.length === 1);
    const e = out[0]!;
    assert.equal(e.type, 'message');
    const m = (e as { message: MessageView }).message;
    assert.deepEqual(
      [m.id, m.seq, m.text, m.author.name, m.clientId],
      [null, 1, 'not kept', 'alice', 'c-1'],
    );
    f.close();
  });

  test('other events: local ones go to the hub and the pool, remote ones to the hub, own echoes and junk nowhere', async () => {
    const roomId = await room();
    const { f, out, sent } = fanOut();
    f.local({ type: 'room.changed', roomId });
    assert.deepEqual(out, [{ type: 'room.changed', roomId }]);
    await waitFor('the relay', () => sent.length === 1);
    assert.deepEqual(JSON.parse(sent[0]!), { o: 'here', e: { type: 'room.changed', roomId } });

    out.length = 0;
    f.event(JSON.stringify({ o: 'here', e: { type: 'room.changed', roomId } }));
    f.event('{not json');
    f.event(JSON.stringify({ o: 'there', e: { type: 'room.exploded', roomId } }));
    f.event(
      JSON.stringify({
        o: 'there',
        e: { type: 'user.signed_out', userId: alice.userId, all: true },
      }),
    );
    f.event(JSON.stringify({ o: 'there', e: { type: 'room.cleared', roomId, upTo: 5 } }));
    await waitFor('two remote events', () => out.length === 2);
    assert.deepEqual(out, [
      { type: 'user.signed_out', userId: alice.userId, all: true },
      { type: 'room.cleared', roomId, upTo: 5 },
    ]);

    // A changed message crosses by id and is read back from the store.
    const [m] = await post(roomId, 1);
    out.length = 0;
    f.event(
      JSON.stringify({ o: 'there', e: { type: 'message.changed', roomId, messageId: m!.id } }),
    );
    await waitFor('message.changed', () => out.length === 1);
    const changed = out[0] as { type: string; message: MessageView };
    assert.deepEqual([changed.type, changed.message.seq], ['message.changed', m!.seq]);
    f.close();
  });
});
