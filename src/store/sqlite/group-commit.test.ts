import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { KyselyOps } from '../kysely-store.js';
import type { Store } from '../store.js';
import { buildNewMessage, seedRooms } from '../../../test/harness/store-factories.js';
import { SqliteStore, WriteOutsideGroupCommitError, withStatementCache } from './sqlite-store.js';

async function openStore(): Promise<{ store: SqliteStore; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-gc-'));
  const store = SqliteStore.open({ file: path.join(dir, 'perch.db') });
  await store.migrate();
  return { store, dir };
}

test('concurrent transactions commit together, and a failing one rolls back alone', async () => {
  const { store, dir } = await openStore();
  try {
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        store.transaction(async (tx) => {
          await tx.setSetting(`key-${i}`, String(i));
          if (i % 10 === 3) throw new Error(`fail ${i}`);
          return i;
        }),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 5);
    for (const r of failed) assert.match(String((r as PromiseRejectedResult).reason), /fail \d+3?/);
    const settings = await store.getSettings();
    for (let i = 0; i < 50; i++) {
      assert.equal(settings[`key-${i}`], i % 10 === 3 ? undefined : String(i), `key-${i}`);
    }
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('transactions begun by separate callbacks of one event-loop turn share one commit', async () => {
  const { store, dir } = await openStore();
  try {
    // Each WebSocket frame is handled in its own I/O callback; setImmediate callbacks of one
    // turn stand in for them. Batch sizes are read off the store's (private) batch writer.
    const sizes: number[] = [];
    const target = store as unknown as { writeBatch(batch: unknown[]): Promise<void> };
    const writeBatch = target.writeBatch.bind(store);
    target.writeBatch = (batch) => {
      sizes.push(batch.length);
      return writeBatch(batch);
    };
    const done = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          new Promise<number>((resolve, reject) => {
            setImmediate(() => {
              store
                .transaction(async (tx) => {
                  await tx.setSetting(`turn-${i}`, String(i));
                  return i;
                })
                .then(resolve, reject);
            });
          }),
      ),
    );
    assert.deepEqual(
      done,
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.deepEqual(sizes, [20]);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a transaction answers only after its commit is visible to a fresh connection', async () => {
  const { store, dir } = await openStore();
  try {
    await store.transaction((tx) => tx.setSetting('durable', 'yes'));
    const other = SqliteStore.open({ file: path.join(dir, 'perch.db') });
    assert.equal((await other.getSettings()).durable, 'yes');
    await other.close();
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Counts the transactions the store is asked for, its own routing included. */
function countTransactions(store: SqliteStore): { count: number } {
  const counter = { count: 0 };
  const original = store.transaction.bind(store);
  store.transaction = ((fn) => {
    counter.count++;
    return original(fn);
  }) as Store['transaction'];
  return counter;
}

test('every write outside a transaction joins the group commit; reads run directly', async () => {
  const { store, dir } = await openStore();
  try {
    const transactions = countTransactions(store);
    await store.setSetting('a', '1');
    const user = await store.createPrincipal({ kind: 'user', name: 'u', displayName: 'U' }, 1);
    await store.upsertPolicy({ name: 'p', enabled: true, description: null });
    assert.equal(transactions.count, 3);
    assert.equal((await store.getSettings()).a, '1');
    assert.equal((await store.getPrincipal(user.id))?.name, 'u');
    assert.equal((await store.getPolicy('p'))?.enabled, true);
    assert.equal(transactions.count, 3, 'reads do not queue');
    // Many writes at once share commits and all land.
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.setSetting(`k${i}`, `${i}`)));
    assert.equal(
      Object.keys(await store.getSettings()).filter((k) => k.startsWith('k')).length,
      100,
    );
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a read-listed operation that writes is stopped before the write and rerun in the group commit', async () => {
  const { store, dir } = await openStore();
  try {
    await store.setSetting('seen', 'no');
    const direct = (store as unknown as { direct: KyselyOps }).direct;
    // A future read that turns out to write: it must not commit on its own.
    direct.getSettings = async function (this: KyselyOps) {
      await this.setSetting('seen', 'outside');
      return {};
    };
    const transactions = countTransactions(store);
    const settings = await store.getSettings();
    assert.equal(transactions.count, 1, 'rerun as a group-commit transaction');
    assert.equal(settings.seen, 'no', 'the rerun is the real operation; the write never ran');
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the connection refuses a writing statement outside a batch before running it', () => {
  const raw = new BetterSqlite3(':memory:');
  let batch = false;
  const db = withStatementCache(raw, () => batch);
  try {
    batch = true;
    db.prepare('CREATE TABLE t (a INTEGER)').run();
    batch = false;
    assert.throws(() => db.prepare('INSERT INTO t VALUES (1)'), WriteOutsideGroupCommitError);
    assert.deepEqual(db.prepare('SELECT count(*) AS n FROM t').get(), { n: 0 });
    batch = true;
    db.prepare('INSERT INTO t VALUES (1)').run();
    assert.deepEqual(db.prepare('SELECT count(*) AS n FROM t').get(), { n: 1 });
  } finally {
    raw.close();
  }
});

test('the clientId lookup runs directly when the connection is free, and never sees a batch in progress', async () => {
  const { store, dir } = await openStore();
  try {
    const now = 1_700_000_000_000;
    const {
      userId,
      roomIds: [roomId],
    } = await seedRooms(store, { now });
    const post = (clientId: string) =>
      buildNewMessage(roomId!, userId, `post ${clientId}`, { clientId });
    // A lookup begun while a batch holds the connection, after the batch wrote the key: it must
    // not read the uncommitted row (the batch fails and rolls back), whatever path it takes.
    let during: Promise<unknown> | undefined;
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.appendMessage(post('doomed'));
        during = store.getPostKey(userId, 'doomed');
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal(await during, undefined);
    // Outside a batch the lookup answers from the committed rows.
    const kept = await store.transaction((tx) => tx.appendMessage(post('kept')));
    assert.deepEqual(await store.getPostKey(userId, 'kept'), {
      roomId,
      seq: kept.seq,
      messageId: kept.id,
      createdAt: now,
    });
    assert.equal(await store.getPostKey(userId, 'doomed'), undefined);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
