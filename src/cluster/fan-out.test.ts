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
import { updateRoom } from '../domain/rooms/commands.js';
import type { MessageView } from '../domain/messages/present.js';
import type { Actor, Domain } from '../domain/types.js';
import { DiskFileStore } from '../files/disk-file-store.js';
import { createLogger } from '../logger.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import { FanOut, poolEventLog } from './fan-out.js';

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
    const f = new FanOut({
      d: here,
      out: { publish: (e) => out.push(e) },
      hasSubscribers: joined,
      origin: 'here',
      log: createLogger('silent'),
    });
    const seqs = (roomId: number) =>
      out.flatMap((e) => (e.type === 'message' && e.roomId === roomId ? [e.message.seq] : []));
    return { f, out, seqs };
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

  /** Logs events as front end `origin` would, outside any change; returns the last id. */
  async function logged(origin: string, ...payloads: (object | string)[]): Promise<number> {
    const ids = await store.appendPoolEvents(
      origin,
      payloads.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))),
      Date.now(),
    );
    return ids.at(-1)!;
  }

  test('other events: local ones go straight to the hub; logged ones are applied in log order, once, own ones and junk skipped', async () => {
    const roomId = await room();
    const { f, out } = fanOut();
    f.startEvents(await store.poolEventHead());
    f.local({ type: 'room.changed', roomId });
    assert.deepEqual(out, [{ type: 'room.changed', roomId }]);
    out.length = 0;

    const [m] = await post(roomId, 1);
    await logged('here', { type: 'room.changed', roomId });
    await logged('there', '{not json', { type: 'room.exploded', roomId });
    await logged('there', { type: 'user.signed_out', userId: alice.userId, all: true });
    const middle = await logged('there', { type: 'message.changed', roomId, messageId: m!.id });
    const last = await logged('there', { type: 'room.cleared', roomId, upTo: 5 });
    // Heard out of order and twice; the one in the middle never.
    f.event(String(last));
    f.event(String(last));
    f.event(String(middle - 1));
    f.event('junk');
    await waitFor('three remote events', () => out.length === 3);
    await f.catchUpEvents(last);
    assert.equal(f.eventPosition, last);
    assert.deepEqual(
      out.map((e) => e.type),
      ['user.signed_out', 'message.changed', 'room.cleared'],
    );
    assert.deepEqual(out[0], { type: 'user.signed_out', userId: alice.userId, all: true });
    // A changed message crosses by id and is read back from the store.
    const changed = out[1] as { type: string; message: MessageView };
    assert.equal(changed.message.seq, m!.seq);
    assert.deepEqual(out[2], { type: 'room.cleared', roomId, upTo: 5 });

    // Never announced at all: the heartbeat's catch-up to the log's end finds it.
    out.length = 0;
    const silent = await logged('there', { type: 'settings.changed' });
    await f.catchUpEvents(await store.poolEventHead());
    assert.deepEqual(out, [{ type: 'settings.changed' }]);
    await f.catchUpEvents(silent);
    f.event(String(silent));
    await f.catchUpEvents(silent);
    assert.equal(out.length, 1);
    f.close();
  });

  test('events pruned before this front end read them: every cache is dropped instead', async () => {
    const { f, out } = fanOut();
    f.startEvents(await store.poolEventHead());
    const id = await logged('there', { type: 'settings.changed' });
    await store.prunePoolEvents(Date.now() + 1);
    await f.catchUpEvents(id);
    // resetCaches: connections are re-checked as after a directory change.
    assert.deepEqual(out, [{ type: 'directory.changed' }]);
    assert.equal(f.eventPosition, id);
    f.close();
  });

  test('a command logs its events in its own transaction: none when it fails', async () => {
    const notifying = PostgresStore.open({
      connectionString: t.storeUrl,
      poolSize: 2,
      notifySequences: true,
    });
    try {
      const there = createDomain({
        store: notifying,
        events: { publish: () => {} },
        eventLog: poolEventLog('there'),
        hasher: new Argon2Hasher({ memoryCost: 1024, timeCost: 1 }),
        files: new DiskFileStore(path.join(t.dir, 'files-there')),
        secret: crypto.randomBytes(32),
        log: createLogger('silent'),
      });
      const roomId = await room();
      const taken = await room();
      const before = await store.poolEventHead();
      await updateRoom(there, t.admin, roomId, { description: 'logged' });
      const rows = await store.readPoolEvents(before, 10);
      assert.deepEqual(
        rows.map((r) => [r.origin, JSON.parse(r.payload)]),
        [
          ['there', { type: 'room.changed', roomId }],
          ['there', { type: 'room.access_changed', roomId }],
        ],
      );
      // A rename onto a taken name fails: neither the change nor its events are kept.
      const head = await store.poolEventHead();
      const takenName = (await store.getRoom(taken))!.name;
      await assert.rejects(updateRoom(there, t.admin, roomId, { name: takenName }));
      assert.equal(await store.poolEventHead(), head);
      assert.deepEqual(await store.readPoolEvents(head, 10), []);
    } finally {
      await notifying.close();
    }
  });
});
