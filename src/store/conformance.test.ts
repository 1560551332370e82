/**
 * The store conformance suite: what every Store must do, run against each dialect (SQLite and
 * PostgreSQL; PERCH_TEST_DIALECT picks one). The domain suites run on both too (see
 * conformance-domain.test.ts); this file covers what they cannot see: concurrency, rollback,
 * index consistency and durability across a reopen.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { testDialects } from '../../test/harness/domain.js';
import { testCluster } from '../../test/harness/postgres.js';
import { buildNewMessage, seedRooms } from '../../test/harness/store-factories.js';
import { archiveTables } from './archive.js';
import { migrations } from './migrations/index.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Dialect, Store, StoreOps } from './store.js';

const NOW = 1_700_000_000_000;

/** Where a test store lives, and how to open it again (a reopen is a new store on the same data). */
interface Place {
  open(): Promise<Store>;
  /** A second, migrated-from-nothing store of the same dialect. */
  openEmpty(): Promise<Store>;
  remove(): Promise<void>;
  /** The dialect's own consistency checks of the full-text index; throws when they fail. */
  checkSearchIndex(): Promise<void>;
  /** SQLite: the database file. */
  file?: string;
}

async function place(dialect: Dialect): Promise<Place> {
  if (dialect === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-store-'));
    const file = path.join(dir, 'perch.db');
    return {
      file,
      async open() {
        const store = SqliteStore.open({ file, synchronous: 'normal' });
        await store.migrate();
        return store;
      },
      async openEmpty() {
        return SqliteStore.open({ file: ':memory:' });
      },
      async remove() {
        fs.rmSync(dir, { recursive: true, force: true });
      },
      async checkSearchIndex() {
        const raw = new BetterSqlite3(file);
        try {
          raw.prepare("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')").run();
        } finally {
          raw.close();
        }
      },
    };
  }
  const cluster = await testCluster();
  const db = await cluster.createDatabase({ empty: true });
  const empties: string[] = [];
  return {
    async open() {
      const store = PostgresStore.open({ connectionString: db.url, poolSize: 8 });
      await store.migrate();
      return store;
    },
    async openEmpty() {
      const empty = await cluster.createDatabase({ empty: true });
      empties.push(empty.name);
      return PostgresStore.open({ connectionString: empty.url, poolSize: 1 });
    },
    async remove() {
      for (const name of [db.name, ...empties]) await cluster.dropDatabase(name);
    },
    async checkSearchIndex() {
      // Every stored message has a search vector, and the GIN index answers like a full scan.
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ lexeme: string }>(
          'SELECT DISTINCT unnest(tsvector_to_array(search)) AS lexeme FROM messages',
        );
        for (const { lexeme } of rows) {
          const q = 'SELECT count(*)::int AS c FROM messages WHERE search @@ $1::text::tsquery';
          const literal = `'${lexeme.replace(/'/g, "''")}'`;
          await client.query('SET enable_seqscan = on');
          const scan = await client.query<{ c: number }>(q, [literal]);
          await client.query('SET enable_seqscan = off');
          const indexed = await client.query<{ c: number }>(q, [literal]);
          assert.equal(indexed.rows[0]!.c, scan.rows[0]!.c, `index and scan differ for ${lexeme}`);
        }
      } finally {
        await client.end();
      }
    },
  };
}

/** A user, a category and `rooms` rooms in it; returns their ids. */
function seed(store: StoreOps, rooms = 1) {
  return seedRooms(store, { rooms, now: NOW });
}

/** Ids of stored messages whose text matches a search, through the store's own search. */
async function searchHits(
  store: StoreOps,
  userId: number,
  terms: string[],
  roomIds?: number[],
): Promise<number[]> {
  const result = await store.searchMessages({
    viewer: { userId, principalIds: [userId], isAdmin: false },
    terms,
    roomIds,
    limit: 100,
    offset: 0,
    countLimit: 999,
  });
  return result.messages.map((m) => m.id).sort((a, b) => a - b);
}

for (const dialect of testDialects()) {
  describe(`store conformance (${dialect})`, () => {
    let where: Place;
    let store: Store;
    let ids: Awaited<ReturnType<typeof seed>>;

    before(async () => {
      where = await place(dialect);
      store = await where.open();
      ids = await seed(store, 4);
      await store.setCategoryList(ids.categoryId, 'allowed', [ids.userId]);
    });
    after(async () => {
      await store.close();
      await where.remove();
    });

    test('migrations are recorded and running them again applies nothing', async () => {
      assert.deepEqual(await store.migrate(), []);
      const again = await where.open();
      assert.deepEqual(await again.migrate(), []);
      await again.close();
      const fresh = await where.openEmpty();
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
      assert.deepEqual(await searchHits(store, ids.userId, ['zqdoomed']), []);
      const next = await store.transaction((tx) =>
        tx.appendMessage(buildNewMessage(roomId, ids.userId, 'first')),
      );
      assert.equal(next.seq, 1);
    });

    test('pool event log: concurrent writers get increasing ids without gaps, rollbacks leave none, prune by age', async () => {
      const start = await store.poolEventHead();
      const writes = Array.from({ length: 20 }, (_, i) =>
        store.transaction((tx) =>
          tx.appendPoolEvents(`fe${i % 3}`, [`{"n":${2 * i}}`, `{"n":${2 * i + 1}}`], 1_000 + i),
        ),
      );
      const ids = (await Promise.all(writes)).flat().sort((x, y) => x - y);
      assert.deepEqual(
        ids,
        Array.from({ length: 40 }, (_, i) => start + i + 1),
      );
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.appendPoolEvents('fe0', ['{"doomed":true}'], 2_000);
          throw new Error('abort');
        }),
        /abort/,
      );
      assert.equal(await store.poolEventHead(), start + 40);
      const rows = await store.readPoolEvents(start, 100);
      assert.deepEqual(
        rows.map((r) => r.id),
        ids,
      );
      // Each transaction's two events are adjacent and in the order given.
      for (let i = 0; i < rows.length; i += 2) {
        const [a, b] = [JSON.parse(rows[i]!.payload), JSON.parse(rows[i + 1]!.payload)];
        assert.deepEqual([b.n - a.n, a.n % 2, rows[i]!.origin], [1, 0, rows[i + 1]!.origin]);
      }
      assert.deepEqual(
        (await store.readPoolEvents(start + 38, 100)).map((r) => r.id),
        [start + 39, start + 40],
      );
      // Pruning by age keeps the head: new ids continue after it.
      assert.equal(await store.prunePoolEvents(1_010), 20);
      const kept = await store.readPoolEvents(start, 100);
      assert.deepEqual(
        kept.map((r) => r.id),
        rows.filter((r) => r.createdAt >= 1_010).map((r) => r.id),
      );
      assert.equal(await store.prunePoolEvents(10_000), 20);
      assert.deepEqual(await store.transaction((tx) => tx.appendPoolEvents('fe0', ['{}'], 3)), [
        start + 41,
      ]);
    });

    test('a shared secret: concurrent first callers on separate connections all get one value, kept', async () => {
      // Two store instances stand for two front ends starting together on one database.
      const other = await where.open();
      try {
        const candidates = Array.from({ length: 8 }, (_, i) => Buffer.alloc(32, i + 1));
        const got = await Promise.all(
          candidates.map((c, i) =>
            (i % 2 === 0 ? store : other).ensureSecret('download-links', c, NOW),
          ),
        );
        const first = got[0]!;
        assert.ok(candidates.some((c) => c.equals(first)));
        for (const g of got) assert.deepEqual(g, first);
        // A later start with another candidate (say a leftover secret.key) keeps the stored one.
        assert.deepEqual(
          await other.ensureSecret('download-links', Buffer.alloc(32, 99), NOW),
          first,
        );
        // Another name is another secret.
        const separate = await store.ensureSecret('another', Buffer.alloc(16, 7), NOW);
        assert.deepEqual(separate, Buffer.alloc(16, 7));
      } finally {
        await other.close();
      }
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
        tx.appendMessage(
          buildNewMessage(roomId, ids.userId, 'zqbefore text', { title: 'zqtitle' }),
        ),
      );
      assert.deepEqual(await searchHits(store, ids.userId, ['zqbefore']), [id]);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqtitle']), [id]);
      await store.setMessageState(id!, 'replaced', 'zqafter text', NOW + 1);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqbefore']), []);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqafter']), [id]);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqtitle']), [id]);
      await store.setMessageState(id!, 'removed', 'zqgone', NOW + 2);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqtitle']), [], 'title dropped');
      await where.checkSearchIndex();
      const inRoom = (await store.findMessages({ roomId, limit: 1000 })).length;
      assert.equal(await store.clearRoom(roomId, NOW + 10), inRoom);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqafter']), []);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqgone']), []);
      await where.checkSearchIndex();
    });

    test('full-text search tokenizes text and queries alike on every dialect', async () => {
      const roomId = ids.roomIds[3]!;
      const texts = [
        'Café au lait',
        'mail alice@example.com now',
        'e-mail me',
        "don't stop",
        'snake_case_word',
        'ΚΑΛΗΜΈΡΑ κόσμε',
        'zq1.zq2 and 3.14',
        'İstanbul',
      ];
      const posted: number[] = [];
      for (const body of texts) {
        const m = await store.transaction((tx) =>
          tx.appendMessage(buildNewMessage(roomId, ids.userId, body, { title: 'zqheading' })),
        );
        posted.push(m.id!);
      }
      const hit = (...indexes: number[]) => indexes.map((i) => posted[i]!);
      // What SQLite's FTS5 (unicode61, remove_diacritics 2) finds; PostgreSQL must find the same.
      const cases: [string[], number[]][] = [
        [['cafe'], hit(0)],
        [['CAFÉ'], hit(0)],
        [['au lait'], hit(0)],
        [['lait au'], []],
        [['alice'], hit(1)],
        [['example.com'], hit(1)],
        [['e-mail'], hit(2)],
        [['e mail'], hit(2)],
        [['don'], hit(3)],
        [['case'], hit(4)],
        [['καλημέρα'], hit(5)],
        [['καλημερα'], []],
        [['zq2'], hit(6)],
        [['zq1 zq2'], hit(6)],
        [['14'], hit(6)],
        [['istanbul'], hit(7)],
        [['...'], []],
        [['alice', 'now'], hit(1)],
        [['alice', 'stop'], []],
        // A phrase never runs from the title into the body.
        [['zqheading café'], []],
        [['zqheading', 'café'], hit(0)],
      ];
      for (const [terms, expected] of cases) {
        assert.deepEqual(
          await searchHits(store, ids.userId, terms, [roomId]),
          expected.sort((a, b) => a - b),
          `search ${JSON.stringify(terms)}`,
        );
      }
    });

    test('full-text search within rooms finds those rooms only; a room id is not a word', async () => {
      const [a, b] = [ids.roomIds[0]!, ids.roomIds[2]!];
      const post = async (roomId: number, body: string) =>
        (
          await store.transaction((tx) =>
            tx.appendMessage(buildNewMessage(roomId, ids.userId, body)),
          )
        ).id!;
      const inA = await post(a, `zqwithin first, see room ${b}`);
      const inB = await post(b, 'zqwithin second');
      const inBToo = await post(b, 'zqwithin third zqother');
      assert.deepEqual(await searchHits(store, ids.userId, ['zqwithin'], [a]), [inA]);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqwithin'], [b]), [inB, inBToo]);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqwithin'], [a, b]), [
        inA,
        inB,
        inBToo,
      ]);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqwithin', 'zqother'], [b]), [inBToo]);
      assert.deepEqual(await searchHits(store, ids.userId, ['zqother'], [a]), []);
      // The room's number is found where a text says it, never as the room a message is in.
      assert.deepEqual(await searchHits(store, ids.userId, [String(b)], [a]), [inA]);
      assert.deepEqual(await searchHits(store, ids.userId, [String(b)], [b]), []);
    });

    test('full-text search: rare, common and phrase searches page newest first and count up to the cap', async () => {
      // On PostgreSQL a word search first counts the matches up to the cap and takes the page's
      // ids among them; past the cap it pages newest first instead. Both must give what the
      // newest-first query alone gave: the same rows, in the same order, and the same count.
      const [roomId, otherRoom] = [ids.roomIds[1]!, ids.roomIds[3]!];
      const posted: { id: number; words: string[] }[] = [];
      for (let i = 0; i < 24; i++) {
        const words = ['zqcommon'];
        if (i % 8 === 3) words.push('zqscarce');
        words.push(i % 5 === 0 ? 'zqalpha zqbeta zqgamma' : 'zqgamma zqbeta zqalpha');
        const m = await store.transaction((tx) =>
          tx.appendMessage(buildNewMessage(roomId, ids.userId, words.join(' and '))),
        );
        posted.push({ id: m.id!, words });
      }
      // A removed message is found by nothing, whichever way the search runs.
      const removed = posted.find((p) => p.words.includes('zqscarce'))!;
      await store.setMessageState(removed.id, 'removed', '', NOW + 1);
      const live = posted.filter((p) => p !== removed);
      const newestFirst = (has: (p: { words: string[] }) => boolean) =>
        live
          .filter(has)
          .map((p) => p.id)
          .sort((a, b) => b - a);
      const search = (
        q: { terms?: string[]; phrases?: string[]; roomIds?: number[] },
        page: { limit: number; offset: number; countLimit: number },
      ) =>
        store
          .searchMessages({
            viewer: { userId: ids.userId, principalIds: [ids.userId], isAdmin: false },
            ...q,
            ...page,
          })
          .then((r) => ({
            ids: r.messages.map((m) => m.id),
            count: r.count,
            exceededLimit: r.exceededLimit,
          }));

      const scarce = newestFirst((p) => p.words.includes('zqscarce'));
      assert.equal(scarce.length, 2);
      assert.deepEqual(
        await search({ terms: ['zqscarce'] }, { limit: 4, offset: 0, countLimit: 10 }),
        { ids: scarce, count: 2, exceededLimit: false },
      );
      assert.deepEqual(
        await search({ terms: ['zqscarce'] }, { limit: 4, offset: 1, countLimit: 10 }),
        { ids: scarce.slice(1), count: 2, exceededLimit: false },
      );
      assert.deepEqual(
        await search(
          { terms: ['zqscarce'], roomIds: [otherRoom] },
          { limit: 4, offset: 0, countLimit: 10 },
        ),
        { ids: [], count: 0, exceededLimit: false },
      );

      const phrase = newestFirst((p) => p.words.includes('zqalpha zqbeta zqgamma'));
      assert.equal(phrase.length, 5);
      for (const offset of [0, 4, 8]) {
        assert.deepEqual(
          await search(
            { phrases: ['zqalpha zqbeta zqgamma'] },
            { limit: 4, offset, countLimit: 10 },
          ),
          { ids: phrase.slice(offset, offset + 4), count: 5, exceededLimit: false },
          `phrase, offset ${offset}`,
        );
      }
      // Two words in either order match every message; as a phrase only one order does.
      assert.deepEqual(
        await search({ terms: ['zqgamma', 'zqalpha'] }, { limit: 3, offset: 0, countLimit: 100 }),
        { ids: newestFirst(() => true).slice(0, 3), count: 23, exceededLimit: false },
      );

      const common = newestFirst(() => true);
      assert.equal(common.length, 23);
      // At the cap exactly the count is whole; one match more and it is capped.
      for (const [countLimit, count, exceededLimit] of [
        [100, 23, false],
        [23, 23, false],
        [22, 22, true],
        [10, 10, true],
      ] as const) {
        for (const offset of [0, 4, 20]) {
          assert.deepEqual(
            await search({ terms: ['zqcommon'] }, { limit: 4, offset, countLimit }),
            { ids: common.slice(offset, offset + 4), count, exceededLimit },
            `common word, count limit ${countLimit}, offset ${offset}`,
          );
        }
      }
      assert.deepEqual(
        await search({ terms: ['zqcommon', 'zqscarce'] }, { limit: 4, offset: 0, countLimit: 1 }),
        { ids: scarce, count: 1, exceededLimit: true },
      );
    });

    test('admin audit: start pending, finish, filter by actor, action, result and time, page', async () => {
      const entry = (actorName: string, action: string, at: number) => ({
        actorId: ids.userId,
        actorName,
        action,
        method: 'PATCH',
        path: `/api/v1/x/${at}`,
        params: { body: { name: 'n', nested: [{ k: at }] } },
        createdAt: at,
      });
      const a = await store.startAudit(entry('alice', 'user.set', NOW + 1));
      const b = await store.transaction((tx) => tx.startAudit(entry('Bob', 'user.new', NOW + 2)));
      const c = await store.startAudit(entry('alice', 'room.remove', NOW + 3));
      assert.ok(a < b && b < c, 'ids increase');
      await store.finishAudit(a, 'ok', null, NOW + 10);
      await store.finishAudit(b, 'error', 'admin_required', NOW + 11);

      const all = await store.listAudit({ limit: 10 });
      assert.deepEqual(
        all.map((e) => [e.id, e.result, e.errorCode, e.finishedAt]),
        [
          [c, 'pending', null, null],
          [b, 'error', 'admin_required', NOW + 11],
          [a, 'ok', null, NOW + 10],
        ],
        'newest first; an unfinished call stays pending',
      );
      assert.deepEqual(all[2], {
        id: a,
        ...entry('alice', 'user.set', NOW + 1),
        result: 'ok',
        errorCode: null,
        finishedAt: NOW + 10,
      });
      const ids_ = (es: { id: number }[]) => es.map((e) => e.id);
      assert.deepEqual(ids_(await store.listAudit({ actor: 'ALICE', limit: 10 })), [c, a]);
      assert.deepEqual(ids_(await store.listAudit({ actor: 'bob', limit: 10 })), [b]);
      assert.deepEqual(ids_(await store.listAudit({ action: 'user.*', limit: 10 })), [b, a]);
      assert.deepEqual(ids_(await store.listAudit({ action: 'user.set', limit: 10 })), [a]);
      assert.deepEqual(ids_(await store.listAudit({ action: 'user.', limit: 10 })), []);
      assert.deepEqual(ids_(await store.listAudit({ result: 'error', limit: 10 })), [b]);
      assert.deepEqual(ids_(await store.listAudit({ since: NOW + 2, until: NOW + 2, limit: 10 })), [
        b,
      ]);
      assert.deepEqual(ids_(await store.listAudit({ limit: 2 })), [c, b]);
      assert.deepEqual(ids_(await store.listAudit({ beforeId: b, limit: 2 })), [a]);
      // `_` and `%` in a prefix are literal, not wildcards.
      assert.deepEqual(ids_(await store.listAudit({ action: 'user_*', limit: 10 })), []);
    });

    test('topic feeds: per user, unique names in any case, keywords round-trip, update and delete', async () => {
      const other = await store.createPrincipal(
        { kind: 'user', name: 'feed-other', displayName: 'O' },
        NOW,
      );
      const a = await store.createTopicFeed(
        { userId: ids.userId, name: 'Outages', keywords: ['outage', 'città', 'two words'] },
        NOW,
      );
      const b = await store.transaction((tx) =>
        tx.createTopicFeed({ userId: ids.userId, name: 'Releases', keywords: ['v2'] }, NOW + 1),
      );
      await store.createTopicFeed({ userId: other.id, name: 'outages', keywords: ['x'] }, NOW);
      assert.deepEqual(await store.listTopicFeeds(ids.userId), [
        {
          id: a.id,
          userId: ids.userId,
          name: 'Outages',
          keywords: ['outage', 'città', 'two words'],
          createdAt: NOW,
          updatedAt: NOW,
        },
        { ...b, keywords: ['v2'] },
      ]);
      // The unique key is on the case-folded name, per user.
      await assert.rejects(
        store.createTopicFeed({ userId: ids.userId, name: 'OUTAGES', keywords: ['y'] }, NOW),
      );
      const changed = await store.updateTopicFeed(
        ids.userId,
        a.id,
        { name: 'Incidents', keywords: ['sev1'] },
        NOW + 5,
      );
      assert.deepEqual(changed, {
        ...a,
        name: 'Incidents',
        keywords: ['sev1'],
        updatedAt: NOW + 5,
      });
      // Another user's feed is neither changed nor deleted.
      assert.equal(await store.updateTopicFeed(other.id, a.id, { name: 'x' }, NOW), undefined);
      assert.equal(await store.deleteTopicFeed(other.id, a.id), false);
      assert.equal(await store.deleteTopicFeed(ids.userId, a.id), true);
      assert.equal(await store.deleteTopicFeed(ids.userId, a.id), false);
      assert.deepEqual(
        (await store.listTopicFeeds(ids.userId)).map((f) => f.name),
        ['Releases'],
      );
      assert.deepEqual(
        (await store.listTopicFeeds(other.id)).map((f) => f.name),
        ['outages'],
      );
    });

    test('archive rows: every table copied with its ids into an empty store reads back the same', async () => {
      const copy = await where.openEmpty();
      try {
        await copy.migrate();
        assert.equal(await copy.countArchiveRows(), 0);
        assert.ok((await store.countArchiveRows()) > 0);
        const read = (s: Store, t: (typeof archiveTables)[number]) =>
          t.columns.includes('id')
            ? s.readArchiveRows(t.table, t.columns, { afterId: 0, limit: 100_000 })
            : s.readArchiveRows(t.table, t.columns);
        const sorted = (rows: Record<string, unknown>[]) =>
          rows.map((r) => JSON.stringify(r)).sort();
        await copy.transaction(async (tx) => {
          for (const t of archiveTables) {
            await tx.writeArchiveRows(t.table, t.columns, await read(store, t));
          }
          await tx.resetIdSequences();
        });
        for (const t of archiveTables) {
          assert.deepEqual(sorted(await read(copy, t)), sorted(await read(store, t)), t.table);
        }
        const page = await store.readArchiveRows('messages', ['id', 'seq'], {
          afterId: 0,
          limit: 2,
        });
        assert.equal(page.length, 2);
        const next = await store.readArchiveRows('messages', ['id'], {
          afterId: Number(page[1]!.id),
          limit: 1,
        });
        assert.ok(Number(next[0]!.id) > Number(page[1]!.id), 'pages continue after the last id');
        // The copy searches like the original and carries on numbering after the imported rows.
        assert.deepEqual(
          await searchHits(copy, ids.userId, ['concurrent']),
          await searchHits(store, ids.userId, ['concurrent']),
        );
        const roomId = ids.roomIds[0]!;
        const before = (await store.getRoom(roomId))!.lastSeq;
        const maxId = Math.max(
          ...(
            await read(
              store,
              archiveTables.find((t) => t.table === 'messages')!,
            )
          ).map((r) => Number(r.id)),
        );
        const appended = await copy.transaction((tx) =>
          tx.appendMessage(buildNewMessage(roomId, ids.userId, 'after import')),
        );
        assert.equal(appended.seq, before + 1);
        assert.ok(appended.id! > maxId);
        const user = await copy.createPrincipal(
          { kind: 'user', name: 'zed', displayName: 'Z' },
          NOW,
        );
        assert.ok(user.id > ids.userId);
      } finally {
        await copy.close();
      }
    });

    test('data survives closing and reopening the store', async () => {
      const roomId = ids.roomIds[0]!;
      await store.transaction((tx) =>
        tx.appendMessage(buildNewMessage(roomId, ids.userId, 'zqdurable')),
      );
      const before = await store.getRoom(roomId);
      await store.close();
      store = await where.open();
      assert.deepEqual(await store.getRoom(roomId), before);
      assert.equal((await store.getPrincipalByName('ALICE'))!.id, ids.userId);
      assert.equal((await searchHits(store, ids.userId, ['zqdurable'])).length, 1);
      if (store instanceof SqliteStore) {
        assert.deepEqual(store.integrityCheck(), []);
        assert.equal(fs.statSync(where.file!).mode & 0o777, 0o600, 'owner-only file');
      }
    });
  });
}
