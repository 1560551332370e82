/**
 * Transactions on PostgreSQL (PostgresStore.transaction, PgTxOps' one-statement post): concurrent
 * posts get gap-free per-room sequence numbers, a failing one rolls back alone, nobody is answered
 * before the COMMIT, clientId posts once, and the pool's announcements follow commit order.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { testCluster, type PostgresCluster } from '../../../test/harness/postgres.js';
import { buildNewMessage, seedRooms } from '../../../test/harness/store-factories.js';
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
  const { userId, roomIds } = await seedRooms(store, {
    rooms: opts.rooms,
    history: opts.history,
    now: NOW,
  });
  return { store, url: db.url, userId, roomIds };
}

test('concurrent posts to several rooms get each room gap-free sequence numbers, with their records', async () => {
  const { store, userId, roomIds } = await openStore({ rooms: 4 });
  try {
    const done = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        store.transaction(async (tx) => {
          const room = roomIds[i % 4]!;
          const a = await tx.appendMessage(
            buildNewMessage(room, userId, `post ${i}`, { mentionUserIds: [userId] }),
          );
          await tx.recordActivity({
            kind: 'CHAT',
            actorId: userId,
            roomId: room,
            createdAt: NOW,
            payload: { seq: a.seq },
          });
          return { room, seq: a.seq };
        }),
      ),
    );
    for (const room of roomIds) {
      const seqs = done.filter((d) => d.room === room).map((d) => d.seq);
      assert.deepEqual(
        seqs.sort((x, y) => x - y),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      const history = await store.history({ roomId: room, limit: 50 });
      assert.equal(history.length, 10);
    }
    assert.equal(await store.countActivity(), 40);
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
    assert.deepEqual(
      seqs.sort((x, y) => x - y),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
      'the failed one took no sequence number',
    );
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

test('a transaction that swallows a failed statement fails; the others commit', async () => {
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
    assert.deepEqual(history.map((m) => m.body).sort(), ['after', 'before']);
    assert.deepEqual(history.map((m) => m.seq).sort(), [1, 2], 'the failed one took no number');
  } finally {
    await store.close();
  }
});

test('a clientId posts once: the same key twice at once keeps one post', async () => {
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
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ i, a: r.value }] : []));
    assert.equal(won.length, 1, 'one of the two posts, the other refused');
    const key = await store.getPostKey(userId, 'c-1');
    assert.deepEqual(key && { seq: key.seq, messageId: key.messageId }, {
      seq: won[0]!.a.seq,
      messageId: won[0]!.a.id,
    });
    assert.equal((await store.getMessage(won[0]!.a.id!))?.body, ['first', 'second'][won[0]!.i]);
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
    const visible = async (id: number | null) =>
      (await reader.query('SELECT 1 FROM messages WHERE id = $1', [id])).rowCount;
    const seen = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store
          .transaction((tx) => tx.appendMessage(buildNewMessage(roomIds[i % 2]!, userId, `${i}`)))
          .then((a) => visible(a.id)),
      ),
    );
    assert.deepEqual(
      seen,
      Array.from({ length: 8 }, () => 1),
    );
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
      posts.map((p) => p.s),
      [1, 2, 3],
    );
    assert.deepEqual(posts.map((p) => p.m.body).sort(), ['last', 'post 0', 'post 1']);
  } finally {
    for (const client of listeners) await client.end();
    await stored.store.close();
    await unstored.store.close();
  }
});
