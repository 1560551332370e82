import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { migrations } from '../migrations/index.js';
import { buildNewMessage } from '../../../test/harness/store-factories.js';
import type { StoreOps } from '../store.js';
import { SqliteStore } from './sqlite-store.js';

const NOW = 1_700_000_000_000;

function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-store-'));
  return path.join(dir, 'perch.db');
}

async function openStore(file: string): Promise<SqliteStore> {
  const store = SqliteStore.open({ file, synchronous: 'normal' });
  await store.migrate();
  return store;
}

/** A user, a category and `rooms` rooms in it; returns their ids. */
async function seed(store: StoreOps, rooms = 1) {
  const user = await store.createPrincipal({ kind: 'user', name: 'alice', displayName: 'A' }, NOW);
  const category = await store.createCategory(
    { name: 'General', description: '', fileUpload: false, invitations: false, history: true },
    NOW,
  );
  const roomIds: number[] = [];
  for (let i = 0; i < rooms; i += 1) {
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
  return { userId: user.id, categoryId: category.id, roomIds };
}

/** Ids of stored messages whose text matches an FTS query, through the store's own search. */
async function ftsHits(store: SqliteStore, userId: number, term: string): Promise<number[]> {
  const result = await store.searchMessages({
    viewer: { userId, principalIds: [userId], isAdmin: false },
    terms: [term],
    limit: 100,
    offset: 0,
    countLimit: 999,
  });
  return result.messages.map((m) => m.id).sort((a, b) => a - b);
}

describe('SqliteStore', () => {
  let file: string;
  let store: SqliteStore;
  let ids: Awaited<ReturnType<typeof seed>>;

  before(async () => {
    file = tempFile();
    store = await openStore(file);
    ids = await seed(store, 3);
    await store.setCategoryList(ids.categoryId, 'allowed', [ids.userId]);
  });
  after(async () => {
    await store.close();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  test('migrations are recorded and running them again applies nothing', async () => {
    assert.deepEqual(await store.migrate(), []);
    const again = await openStore(file);
    assert.deepEqual(await again.migrate(), []);
    await again.close();
    const fresh = SqliteStore.open({ file: ':memory:' });
    assert.deepEqual(await fresh.migrate(), Object.keys(migrations).sort());
    assert.deepEqual(await fresh.migrate(), []);
    await fresh.close();
  });

  test('concurrent appends get strictly increasing per-room sequences without gaps', async () => {
    const [a, b] = ids.roomIds as [number, number];
    const appends = Array.from({ length: 60 }, (_, i) =>
      store.transaction((tx) =>
        tx.appendMessage(buildNewMessage(i % 2 === 0 ? a : b, ids.userId, `concurrent ${i}`)),
      ),
    );
    const results = await Promise.all(appends);
    for (const roomId of [a, b]) {
      const seqs = results
        .filter((_, i) => (i % 2 === 0 ? a : b) === roomId)
        .map((r) => r.seq)
        .sort((x, y) => x - y);
      assert.deepEqual(
        seqs,
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      const stored = await store.history({ roomId, after: 0, limit: 100 });
      assert.deepEqual(
        stored.map((m) => m.seq),
        seqs,
      );
      assert.equal((await store.getRoom(roomId))!.lastSeq, 30);
    }
  });

  test('a rolled-back append leaves neither message nor sequence behind', async () => {
    const roomId = ids.roomIds[2]!;
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.appendMessage(buildNewMessage(roomId, ids.userId, 'doomed zqdoomed'));
        throw new Error('abort');
      }),
      /abort/,
    );
    assert.equal((await store.getRoom(roomId))!.lastSeq, 0);
    assert.deepEqual(await ftsHits(store, ids.userId, 'zqdoomed'), []);
    const next = await store.transaction((tx) =>
      tx.appendMessage(buildNewMessage(roomId, ids.userId, 'first')),
    );
    assert.equal(next.seq, 1);
  });

  test('a post key is unique per author and clientId', async () => {
    const roomId = ids.roomIds[2]!;
    const m = buildNewMessage(roomId, ids.userId, 'keyed', { clientId: 'k1' });
    const first = await store.transaction((tx) => tx.appendMessage(m));
    await assert.rejects(store.transaction((tx) => tx.appendMessage(m)));
    const key = await store.getPostKey(ids.userId, 'k1');
    assert.deepEqual(key, { roomId, seq: first.seq, messageId: first.id, createdAt: NOW });
  });

  test('full-text search follows updates and deletes', async () => {
    const roomId = ids.roomIds[1]!;
    const { id } = await store.transaction((tx) =>
      tx.appendMessage(buildNewMessage(roomId, ids.userId, 'zqbefore text', { title: 'zqtitle' })),
    );
    assert.deepEqual(await ftsHits(store, ids.userId, 'zqbefore'), [id]);
    assert.deepEqual(await ftsHits(store, ids.userId, 'zqtitle'), [id]);
    await store.setMessageState(id!, 'replaced', 'zqafter text', NOW + 1);
    assert.deepEqual(await ftsHits(store, ids.userId, 'zqbefore'), []);
    assert.deepEqual(await ftsHits(store, ids.userId, 'zqafter'), [id]);
    assert.deepEqual(await ftsHits(store, ids.userId, 'zqtitle'), [id]);
    const inRoom = (await store.findMessages({ roomId, limit: 1000 })).length;
    assert.equal(await store.clearRoom(roomId, NOW + 10), inRoom);
    assert.deepEqual(await ftsHits(store, ids.userId, 'zqafter'), []);
    assert.deepEqual(await ftsHits(store, ids.userId, 'zqtitle'), []);
    // The FTS index agrees with its content table.
    const raw = new BetterSqlite3(file);
    try {
      raw.prepare("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')").run();
    } finally {
      raw.close();
    }
  });

  test('data survives closing and reopening the file, and the file is consistent', async () => {
    const roomId = ids.roomIds[0]!;
    await store.transaction((tx) =>
      tx.appendMessage(buildNewMessage(roomId, ids.userId, 'zqdurable')),
    );
    const before = await store.getRoom(roomId);
    await store.close();
    store = await openStore(file);
    assert.deepEqual(await store.getRoom(roomId), before);
    assert.equal((await store.getPrincipalByName('ALICE'))!.id, ids.userId);
    assert.equal((await ftsHits(store, ids.userId, 'zqdurable')).length, 1);
    assert.deepEqual(store.integrityCheck(), []);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });
});
