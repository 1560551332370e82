/**
 * Group commit on PostgreSQL (PostgresStore.transaction): transactions begun together share one
 * PostgreSQL transaction and COMMIT, each in its own savepoint; nobody is answered before the
 * COMMIT; per-room order, clientId exactly-once and the pool's announcements hold.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { testCluster, type PostgresCluster } from '../../../test/harness/postgres.js';
import { buildNewMessage } from '../../../test/harness/store-factories.js';
import type { StoreOps } from '../store.js';
import { SEQUENCE_CHANNEL, type UnstoredPost } from './pg-tx-ops.js';
import { PostgresStore } from './postgres-store.js';

const NOW = 1_700_000_000_000;

let cluster: PostgresCluster;
const databases: string[] = [];

before(async () => {
  cluster = await testCluster();
});

after(async () => {
  for (const name of databases) await cluster.dropDatabase(name);
});

/** A migrated store on a database of its own, with a user and `rooms` rooms (history kept or not). */
async function openStore(opts: { rooms?: number; history?: boolean; notify?: boolean } = {}) {
  const db = await cluster.createDatabase();
  databases.push(db.name);
  const store = PostgresStore.open({
    connectionString: db.url,
    poolSize: 4,
    notifySequences: opts.notify ?? false,
  });
  await store.migrate();
  const user = await store.createPrincipal({ kind: 'user', name: 'alice', displayName: 'A' }, NOW);
  const category = await store.createCategory(
    {
      name: 'General',
      description: '',
      fileUpload: false,
      invitations: false,
      history: opts.history ?? true,
    },
    NOW,
  );
  const roomIds: number[] = [];
  for (let i = 0; i < (opts.rooms ?? 1); i++) {
    const room = await store.createRoom(
      {
        categoryId: category.id,
        name: `room ${i}`,
        description: '',
        privacy: 'open',
        type: 'normal',
        invitations: 'inherit',
        addinId: null,
        createdBy: user.id,
      },
      NOW,
    );
    roomIds.push(room.id);
  }
  return { store, url: db.url, userId: user.id, roomIds };
}

/** The id of the PostgreSQL transaction `tx` runs in (the top-level one, savepoints aside). */
async function transactionId(tx: StoreOps): Promise<string> {
  const db = (tx as unknown as { db: Kysely<unknown> }).db;
  const r = await sql<{ xid: string }>`SELECT pg_current_xact_id()::text AS xid`.execute(db);
  return r.rows[0]!.xid;
}

/** Runs `fn(i)` for i < n, each from its own callback of one event-loop turn (as frames are). */
function fromCallbacksOfOneTurn<T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<T>((resolve, reject) => {
          setImmediate(() => void fn(i).then(resolve, reject));
        }),
    ),
  );
}

test('posts begun by separate callbacks of one event-loop turn share one transaction', async () => {
  const { store, userId, roomIds } = await openStore({ rooms: 4 });
  try {
    const done = await fromCallbacksOfOneTurn(20, (i) =>
      store.transaction(async (tx) => {
        const a = await tx.appendMessage(buildNewMessage(roomIds[i % 4]!, userId, `post ${i}`));
        await tx.recordActivity({
          kind: 'CHAT',
          actorId: userId,
          roomId: roomIds[i % 4]!,
          createdAt: NOW,
          payload: { seq: a.seq },
        });
        return { seq: a.seq, xid: await transactionId(tx) };
      }),
    );
    assert.equal(new Set(done.map((d) => d.xid)).size, 1, 'one PostgreSQL transaction');
    // Each room's posts got 1..5 in the order they were begun.
    for (let r = 0; r < 4; r++) {
      assert.deepEqual(
        done.filter((_, i) => i % 4 === r).map((d) => d.seq),
        [1, 2, 3, 4, 5],
      );
    }
    assert.equal(await store.countActivity(), 20);
  } finally {
    await store.close();
  }
});

test('a failing transaction rolls back alone: its post, sequence number and record are not kept', async () => {
  const { store, userId, roomIds } = await openStore();
  const room = roomIds[0]!;
  try {
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        store.transaction(async (tx) => {
          const a = await tx.appendMessage(buildNewMessage(room, userId, `post ${i}`));
          await tx.recordActivity({
            kind: 'CHAT',
            actorId: userId,
            roomId: room,
            createdAt: NOW,
            payload: { i },
          });
          if (i === 4) throw new Error('refused after writing');
          return a.seq;
        }),
      ),
    );
    assert.equal(results[4]!.status, 'rejected');
    assert.match(String((results[4] as PromiseRejectedResult).reason), /refused after writing/);
    const seqs = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9], 'the failed one took no sequence number');
    const history = await store.history({ roomId: room, limit: 50 });
    assert.deepEqual(
      history.map((m) => m.body).sort(),
      [0, 1, 2, 3, 5, 6, 7, 8, 9].map((i) => `post ${i}`).sort(),
    );
    assert.equal(await store.countActivity(), 9);
  } finally {
    await store.close();
  }
});

test('a transaction that swallows a failed statement fails alone; the others commit', async () => {
  const { store, userId, roomIds } = await openStore();
  const room = roomIds[0]!;
  try {
    const results = await Promise.allSettled([
      store.transaction((tx) => tx.appendMessage(buildNewMessage(room, userId, 'before'))),
      store.transaction(async (tx) => {
        await tx.appendMessage(buildNewMessage(room, userId, 'swallowed'));
        // A second principal named alice: refused, and PostgreSQL's transaction is now aborted.
        await tx
          .createPrincipal({ kind: 'user', name: 'alice', displayName: 'again' }, NOW)
          .catch(() => undefined);
        return 'returned anyway';
      }),
      store.transaction((tx) => tx.appendMessage(buildNewMessage(room, userId, 'after'))),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    const history = await store.history({ roomId: room, limit: 10 });
    assert.deepEqual(history.map((m) => [m.seq, m.body]).sort(), [
      [1, 'before'],
      [2, 'after'],
    ]);
  } finally {
    await store.close();
  }
});

test('a clientId posts once: the same key twice in one batch keeps the first', async () => {
  const { store, userId, roomIds } = await openStore();
  const room = roomIds[0]!;
  try {
    const results = await Promise.allSettled(
      ['first', 'second'].map((body) =>
        store.transaction((tx) =>
          tx.appendMessage(buildNewMessage(room, userId, body, { clientId: 'c-1' })),
        ),
      ),
    );
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[1]!.status, 'rejected');
    const key = await store.getPostKey(userId, 'c-1');
    const first = (results[0] as PromiseFulfilledResult<{ id: number | null; seq: number }>).value;
    assert.deepEqual(
      key && { seq: key.seq, messageId: key.messageId },
      first && {
        seq: first.seq,
        messageId: first.id,
      },
    );
    assert.equal((await store.getMessage(first.id!))?.body, 'first');
    assert.equal((await store.history({ roomId: room, limit: 10 })).length, 1);
  } finally {
    await store.close();
  }
});

test('a transaction is answered only once its commit is visible to another connection', async () => {
  const { store, url, userId, roomIds } = await openStore({ rooms: 2 });
  const reader = new pg.Client({ connectionString: url });
  await reader.connect();
  try {
    const count = async () =>
      Number((await reader.query('SELECT count(*) AS n FROM messages')).rows[0].n);
    const seen = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store
          .transaction((tx) => tx.appendMessage(buildNewMessage(roomIds[i % 2]!, userId, `${i}`)))
          .then(count),
      ),
    );
    for (const n of seen) assert.equal(n, 8, 'every post of the batch is committed when answered');
  } finally {
    await reader.end();
    await store.close();
  }
});

test('a pool front end announces committed posts in sequence order, and never a rolled-back one', async () => {
  const stored = await openStore({ notify: true });
  const unstored = await openStore({ notify: true, history: false });
  const listeners: pg.Client[] = [];
  try {
    const heard = async (url: string) => {
      const client = new pg.Client({ connectionString: url });
      listeners.push(client);
      await client.connect();
      const payloads: string[] = [];
      client.on('notification', (n) => {
        if (n.channel === SEQUENCE_CHANNEL) payloads.push(n.payload ?? '');
      });
      await client.query(`LISTEN ${SEQUENCE_CHANNEL}`);
      return payloads;
    };
    const storedHeard = await heard(stored.url);
    const unstoredHeard = await heard(unstored.url);
    const post = (s: typeof stored, i: number) =>
      s.store.transaction(async (tx) => {
        const a = await tx.appendMessage(
          buildNewMessage(s.roomIds[0]!, s.userId, `post ${i}`, { store: s === stored }),
        );
        if (i === 2) throw new Error('rolled back');
        return a.seq;
      });
    await Promise.allSettled(Array.from({ length: 6 }, (_, i) => post(stored, i)));
    await Promise.allSettled(Array.from({ length: 3 }, (_, i) => post(unstored, i)));
    // A notification of a committed transaction reaches listeners after the COMMIT returns;
    // a last one on each channel marks the end.
    await stored.store.transaction((tx) =>
      tx.appendMessage(buildNewMessage(stored.roomIds[0]!, stored.userId, 'last')),
    );
    await unstored.store.transaction((tx) =>
      tx.appendMessage(
        buildNewMessage(unstored.roomIds[0]!, unstored.userId, 'last', { store: false }),
      ),
    );
    const deadline = Date.now() + 10_000;
    while ((storedHeard.length < 6 || unstoredHeard.length < 3) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const room = stored.roomIds[0]!;
    assert.deepEqual(
      storedHeard,
      [1, 2, 3, 4, 5, 6].map((seq) => `${room}:${seq}`),
    );
    const posts = unstoredHeard.map((p) => JSON.parse(p) as UnstoredPost);
    assert.deepEqual(
      posts.map((p) => [p.s, p.m.body]),
      [
        [1, 'post 0'],
        [2, 'post 1'],
        [3, 'last'],
      ],
    );
  } finally {
    for (const client of listeners) await client.end();
    await stored.store.close();
    await unstored.store.close();
  }
});
