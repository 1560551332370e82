import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  activityRows,
  buildRoom,
  buildWorld,
  expectCode,
  lastActivityId,
  useFakeClock,
  withDomain,
} from '../../test/harness/domain-factories.js';
import { buildDomain, testDialects, type TestDomain } from '../../test/harness/domain.js';
import { buildNewMessage } from '../../test/harness/store-factories.js';
import type { PerchError } from '../errors.js';
import type { StoreOps } from '../store/store.js';
import { followRoom, listFollows, markRead } from './me/commands.js';
import {
  clearRoom,
  joinRooms,
  partRoom,
  postMessage,
  removeMessages,
  roomHistory,
  searchMessages,
  SEARCH_LIMIT,
} from './messages/commands.js';
import type { Actor } from './types.js';

/** alice (creator), bob and carol in `General`; a closed room `Lobby` with alice and bob. */
async function lobby(t: TestDomain, category: { history?: boolean } = {}) {
  const { users } = await buildWorld(t, ['alice', 'bob', 'carol'], category);
  const room = await buildRoom(t, {
    name: 'Lobby',
    category: 'General',
    members: ['alice', 'bob'],
  });
  return { ...users, room: room.id };
}

async function postAll(t: TestDomain, actor: Actor, roomId: number, texts: string[]) {
  for (const text of texts) await postMessage(t.d, actor, roomId, { text });
}

const texts = (page: { messages: { text: string }[] }) => page.messages.map((m) => m.text);
const seqs = (page: { messages: { seq: number }[] }) => page.messages.map((m) => m.seq);

/** Makes every outbox write inside a transaction fail until the returned function is called. */
function breakOutbox(t: TestDomain): () => void {
  const original = t.store.transaction.bind(t.store);
  t.store.transaction = <T>(fn: (tx: StoreOps) => Promise<T>) =>
    original((tx) =>
      fn(
        new Proxy(tx, {
          get(target, prop, receiver) {
            if (prop === 'recordActivity') return () => Promise.reject(new Error('outbox down'));
            const value: unknown = Reflect.get(target, prop, receiver);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }),
      ),
    );
  return () => {
    t.store.transaction = original;
  };
}

describe('posting', () => {
  test('assigns consecutive sequence numbers and publishes each post after commit', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t);
      const a = await postMessage(t.d, alice, room, { text: 'one', title: 'Story', alert: true });
      const b = await postMessage(t.d, bob, room, { text: 'two' });
      assert.deepEqual([a.message.seq, b.message.seq], [1, 2]);
      assert.equal(a.message.title, 'Story');
      assert.equal(a.message.alert, true);
      assert.equal(a.message.author.name, 'alice');
      const published = t.events.filter((e) => e.type === 'message');
      assert.deepEqual(
        published.map((e) => e.type === 'message' && e.message.seq),
        [1, 2],
      );
    }));

  for (const dialect of testDialects()) {
    test(`publishes a room's posts in sequence order when their commits end out of order (${dialect})`, async () => {
      const t = await buildDomain({ dialect });
      try {
        const { alice, bob, room } = await lobby(t);
        // The first post's transaction ends only after the second's has: as when the answer
        // to its COMMIT is read late on a busy machine.
        const original = t.store.transaction.bind(t.store);
        let secondEnded!: () => void;
        const second = new Promise<void>((resolve) => (secondEnded = resolve));
        t.store.transaction = async <T>(fn: (tx: StoreOps) => Promise<T>) => {
          const value = await original(fn);
          const seq = (value as { seq?: unknown } | undefined)?.seq;
          if (seq === 1) await second;
          if (seq === 2) secondEnded();
          return value;
        };
        const posts = await Promise.all([
          postMessage(t.d, alice, room, { text: 'one' }),
          postMessage(t.d, bob, room, { text: 'two' }),
        ]);
        // Either may take the first number.
        assert.deepEqual(posts.map((p) => p.message.seq).sort(), [1, 2]);
        assert.deepEqual(
          t.events.flatMap((e) => (e.type === 'message' ? [e.message.seq] : [])),
          [1, 2],
        );
        assert.equal(t.d.postOrder.pending(), 0);
        // A post whose transaction fails ends its turn: the next one is not held back.
        t.store.transaction = original;
        const restore = breakOutbox(t);
        await assert.rejects(postMessage(t.d, bob, room, { text: 'lost' }), /outbox down/);
        restore();
        assert.equal(t.d.postOrder.pending(), 0);
        assert.equal((await postMessage(t.d, bob, room, { text: 'three' })).message.seq, 3);
      } finally {
        await t.close();
      }
    });
  }

  test('is idempotent per author and clientId', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t);
      const other = await buildRoom(t, { name: 'Other', category: 'General', privacy: 'open' });
      const first = await postMessage(t.d, bob, room, { text: 'hello', clientId: 'c-1' });
      const again = await postMessage(t.d, bob, room, { text: 'hello', clientId: 'c-1' });
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.equal(again.message.seq, first.message.seq);
      assert.equal(again.message.id, first.message.id);
      assert.deepEqual(texts(await roomHistory(t.d, alice, room, {})), ['hello']);
      assert.equal((await activityRows(t)).filter((r) => r.kind === 'CHAT').length, 1);
      await expectCode(
        postMessage(t.d, bob, other.id, { text: 'hello', clientId: 'c-1' }),
        'client_id_reused',
      );
      // Another author may use the same clientId.
      const alices = await postMessage(t.d, alice, room, { text: 'hi', clientId: 'c-1' });
      assert.equal(alices.duplicate, false);
      await expectCode(
        postMessage(t.d, bob, room, { text: 'x', clientId: 'has space' }),
        'invalid_request',
      );
    }));

  test('refuses empty, oversized and malformed messages', () =>
    withDomain(async (t) => {
      const { bob, room } = await lobby(t);
      await t.d.settings.set({ maxMessageChars: 16 });
      await postMessage(t.d, bob, room, { text: 'x'.repeat(16) });
      const err = await expectCode(
        postMessage(t.d, bob, room, { text: 'x'.repeat(17) }),
        'message_too_large',
      );
      assert.deepEqual(err.details, { limit: 16 });
      await expectCode(postMessage(t.d, bob, room, { text: '' }), 'invalid_request');
      await expectCode(
        postMessage(t.d, bob, room, { text: 'x', title: 't'.repeat(257) }),
        'invalid_request',
      );
      assert.equal((await roomHistory(t.d, bob, room, {})).messages.length, 1);
    }));

  test('in a category without history: sequence numbers, no stored messages, empty history', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t, { history: false });
      const a = await postMessage(t.d, bob, room, { text: 'ephemeral zqgone' });
      const b = await postMessage(t.d, bob, room, { text: 'again', clientId: 'k' });
      assert.deepEqual([a.message.seq, b.message.seq], [1, 2]);
      assert.equal(a.message.id, null);
      const page = await roomHistory(t.d, alice, room, {});
      assert.deepEqual(page.messages, []);
      assert.equal(page.lastSeq, 2);
      const joined = (await joinRooms(t.d, alice, [{ roomId: room }]))[0]!;
      assert.ok(joined.ok && joined.result.messages.length === 0);
      assert.equal((await searchMessages(t.d, alice, { query: 'zqgone' })).count, 0);
      const replay = await postMessage(t.d, bob, room, { text: 'again', clientId: 'k' });
      assert.deepEqual([replay.duplicate, replay.message.seq, replay.message.id], [true, 2, null]);
      // Compliance still captures the text.
      const chats = (await activityRows(t)).filter((r) => r.kind === 'CHAT');
      assert.deepEqual(
        chats.map((r) => [r.payload.text, r.payload.stored]),
        [
          ['ephemeral zqgone', false],
          ['again', false],
        ],
      );
    }));
});

describe('history', () => {
  test('pages backwards and forwards with a correct `more` flag', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t);
      await postAll(
        t,
        bob,
        room,
        Array.from({ length: 10 }, (_, i) => `m${i + 1}`),
      );
      await t.d.settings.set({ defaultHistory: 3 });
      const latest = await roomHistory(t.d, alice, room, {});
      assert.deepEqual([seqs(latest), latest.more, latest.lastSeq], [[8, 9, 10], true, 10]);
      const cases: [Record<string, number>, number[], boolean][] = [
        [{ before: 4, limit: 2 }, [2, 3], true],
        [{ before: 3, limit: 2 }, [1, 2], false],
        [{ after: 7, limit: 2 }, [8, 9], true],
        [{ after: 8, limit: 5 }, [9, 10], false],
        [{ after: 10 }, [], false],
        [{ after: 2, before: 6 }, [3, 4, 5], false],
        [{ after: 0, limit: 500 }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], false],
      ];
      for (const [q, expected, more] of cases) {
        const page = await roomHistory(t.d, alice, room, q);
        assert.deepEqual([seqs(page), page.more], [expected, more], JSON.stringify(q));
      }
      const joined = (await joinRooms(t.d, alice, [{ roomId: room, since: 6, limit: 3 }]))[0]!;
      assert.ok(joined.ok);
      assert.deepEqual([seqs(joined.result), joined.result.more], [[7, 8, 9], true]);
    }));

  test('refuses invalid cursors', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t);
      await postAll(t, bob, room, ['a', 'b', 'c']);
      for (const q of [{ after: 4 }, { after: 2, before: 2 }, { after: 3, before: 1 }]) {
        await expectCode(roomHistory(t.d, alice, room, q), 'invalid_cursor');
      }
      for (const q of [{ before: 0 }, { after: -1 }, { limit: 0 }, { limit: 501 }, { x: 1 }]) {
        await expectCode(roomHistory(t.d, alice, room, q), 'invalid_request');
      }
      // In a batch join, a bad cursor fails its own room only.
      const other = await buildRoom(t, { name: 'Other', category: 'General', members: ['alice'] });
      const [bad, good] = await joinRooms(t.d, alice, [
        { roomId: room, since: 9 },
        { roomId: other.id },
      ]);
      assert.ok(bad && !bad.ok);
      assert.equal((bad.error as PerchError).code, 'invalid_cursor');
      assert.equal(good!.ok, true);
    }));
});

describe('follows', () => {
  test('count unread messages and @mentions, and reset on markRead', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t);
      await postMessage(t.d, bob, room, { text: 'before following @alice' });
      await followRoom(t.d, alice, room);
      await postAll(t, bob, room, [
        'hi @alice',
        'plain',
        '@alice: and @Alice again',
        'mail a@alice',
      ]);
      await postMessage(t.d, alice, room, { text: 'talking to myself @alice' });
      const [f] = await listFollows(t.d, alice);
      assert.deepEqual(
        { unread: f!.unread, mentions: f!.mentions, lastSeq: f!.lastSeq, lastRead: f!.lastReadSeq },
        { unread: 5, mentions: 2, lastSeq: 6, lastRead: 1 },
      );
      await markRead(t.d, alice, { roomId: room, seq: 3 });
      const [g] = await listFollows(t.d, alice);
      assert.deepEqual([g!.unread, g!.mentions], [3, 1]);
      // Marking beyond the end stops at the last sequence, and never moves backwards.
      await markRead(t.d, alice, { roomId: room, seq: 99 });
      await markRead(t.d, alice, { roomId: room, seq: 2 });
      const [h] = await listFollows(t.d, alice);
      assert.deepEqual([h!.unread, h!.mentions, h!.lastReadSeq], [0, 0, 6]);
    }));

  test('of a room the user cannot read count nothing', () =>
    withDomain(async (t) => {
      const { bob, carol, room } = await lobby(t);
      await followRoom(t.d, carol, room);
      await postAll(t, bob, room, ['@carol look', 'secret stuff']);
      const [f] = await listFollows(t.d, carol);
      assert.deepEqual([f!.unread, f!.mentions], [0, 0]);
    }));
});

describe('search', () => {
  test('matches words, exact phrases, authors, rooms and date ranges', () =>
    withDomain(async (t) => {
      const clock = useFakeClock(t, Date.UTC(2024, 0, 10, 9));
      const { alice, bob, room } = await lobby(t);
      const other = (await buildRoom(t, { name: 'Other', category: 'General', privacy: 'open' }))
        .id;
      await postMessage(t.d, alice, room, { text: 'the quick brown fox' });
      clock.now = Date.UTC(2024, 0, 12, 9);
      await postMessage(t.d, bob, room, { text: 'brown QUICK fox' });
      clock.now = Date.UTC(2024, 0, 14, 9);
      await postMessage(t.d, bob, other, { text: 'a quick reply', title: 'Fox story' });
      const find = async (q: Record<string, unknown>) =>
        (await searchMessages(t.d, alice, q)).messages.map((m) => m.text).sort();
      assert.deepEqual(await find({ query: 'quick brown' }), [
        'brown QUICK fox',
        'the quick brown fox',
      ]);
      assert.deepEqual(await find({ query: '"quick brown"' }), ['the quick brown fox']);
      assert.deepEqual(await find({ query: '"quick brown" zqnothing' }), []);
      assert.deepEqual(await find({ query: 'fox', authors: ['bob'] }), [
        'a quick reply',
        'brown QUICK fox',
      ]);
      assert.deepEqual(await find({ query: 'quick', rooms: [other] }), ['a quick reply']);
      assert.deepEqual(await find({ authors: ['alice'] }), ['the quick brown fox']);
      assert.deepEqual(await find({ query: 'quick', from: '2024-01-11', to: '2024-01-12' }), [
        'brown QUICK fox',
      ]);
      assert.deepEqual(
        await find({ query: 'quick', from: Date.UTC(2024, 0, 13), to: '2024-01-14T23:00:00Z' }),
        ['a quick reply'],
      );
      const result = await searchMessages(t.d, alice, { query: 'quick' });
      assert.deepEqual([result.count, result.exceededLimit], [3, false]);
      // Newest first.
      assert.deepEqual(
        result.messages.map((m) => m.seq),
        [1, 2, 1],
      );
      await expectCode(searchMessages(t.d, alice, { query: '  ' }), 'invalid_request');
      await expectCode(searchMessages(t.d, alice, { authors: ['ghost'] }), 'principal_not_found');
      const searches = (await activityRows(t)).filter((r) => r.kind === 'SEARCH');
      assert.equal(searches.length, 9, 'refused searches are not recorded');
      assert.equal(searches.at(-1)!.payload.count, 3);
    }));

  test('never returns messages from rooms the searcher cannot read', () =>
    withDomain(async (t) => {
      const { alice, bob, carol, room } = await lobby(t);
      await postMessage(t.d, bob, room, { text: 'zqsecret plans' });
      assert.equal((await searchMessages(t.d, alice, { query: 'zqsecret' })).count, 1);
      for (const actor of [carol, t.admin]) {
        const found = await searchMessages(t.d, actor, { query: 'zqsecret' });
        assert.deepEqual([found.count, found.messages], [0, []]);
        await expectCode(searchMessages(t.d, actor, { rooms: [room] }), 'room_not_found');
      }
    }));

  test('counts up to the server limit and says when it was exceeded', () =>
    withDomain(async (t) => {
      const { alice, room } = await lobby(t);
      await t.store.transaction(async (tx) => {
        for (let i = 0; i < SEARCH_LIMIT + 1; i += 1) {
          await tx.appendMessage(
            buildNewMessage(room, alice.userId, `bulk zqmany ${i}`, {
              createdAt: 1_700_000_000_000 + i,
            }),
          );
        }
      });
      const over = await searchMessages(t.d, alice, { query: 'zqmany', limit: 10 });
      assert.deepEqual([over.count, over.exceededLimit, over.messages.length], [999, true, 10]);
      assert.equal(over.messages[0]!.text, `bulk zqmany ${SEARCH_LIMIT}`);
      const exact = await searchMessages(t.d, alice, { query: 'zqmany', to: 1_700_000_000_998 });
      assert.deepEqual([exact.count, exact.exceededLimit], [999, false]);
      const page = await searchMessages(t.d, alice, { query: 'zqmany', limit: 5, offset: 995 });
      assert.equal(page.messages.length, 5);
    }));
});

describe('administrative removal', () => {
  test('removes and replaces messages, keeping the original in the compliance record', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t);
      await postAll(t, bob, room, ['keep', 'remove zqgone', 'replace zqold']);
      await expectCode(removeMessages(t.d, alice, { room, seq: 2 }), 'admin_required');
      await expectCode(removeMessages(t.d, t.admin, { room, seq: 9 }), 'message_not_found');
      const mark = await lastActivityId(t);
      assert.deepEqual(await removeMessages(t.d, t.admin, { room, seq: 2 }), { changed: 1 });
      assert.deepEqual(
        await removeMessages(t.d, t.admin, { room, seq: 3, replacement: 'zqredacted' }),
        { changed: 1 },
      );
      const page = await roomHistory(t.d, alice, room, {});
      assert.deepEqual(
        page.messages.map((m) => [m.seq, m.state, m.text]),
        [
          [1, 'normal', 'keep'],
          [2, 'removed', ''],
          [3, 'replaced', 'zqredacted'],
        ],
      );
      for (const [word, count] of [
        ['zqgone', 0],
        ['zqold', 0],
        ['zqredacted', 1],
      ] as const) {
        assert.equal((await searchMessages(t.d, alice, { query: word })).count, count, word);
      }
      const records = (await activityRows(t, mark)).filter((r) => r.kind.startsWith('MESSAGE_'));
      assert.deepEqual(
        records.map((r) => [r.kind, r.payload.originalText, r.payload.replacement]),
        [
          ['MESSAGE_REMOVED', 'remove zqgone', null],
          ['MESSAGE_REPLACED', 'replace zqold', 'zqredacted'],
        ],
      );
      assert.equal(t.events.filter((e) => e.type === 'message.changed').length, 2);
      // Removing by author catches the rest; already removed ones are not counted again.
      assert.deepEqual(await removeMessages(t.d, t.admin, { room, author: 'bob' }), {
        changed: 2,
      });
    }));

  test('clearRoom deletes messages up to and including a date', () =>
    withDomain(async (t) => {
      const clock = useFakeClock(t, Date.UTC(2024, 0, 10, 23, 59));
      const { alice, bob, room } = await lobby(t);
      await postMessage(t.d, bob, room, { text: 'old' });
      clock.now = Date.UTC(2024, 0, 11, 0, 1);
      await postMessage(t.d, bob, room, { text: 'new' });
      await expectCode(clearRoom(t.d, alice, room, '2024-01-10'), 'admin_required');
      await expectCode(clearRoom(t.d, t.admin, room, 'yesterday'), 'invalid_request');
      assert.deepEqual(await clearRoom(t.d, t.admin, room, '2024-01-10'), { deleted: 1 });
      assert.deepEqual(texts(await roomHistory(t.d, alice, room, {})), ['new']);
      assert.equal((await searchMessages(t.d, alice, { query: 'old' })).count, 0);
      assert.ok(t.events.some((e) => e.type === 'room.cleared' && e.roomId === room));
      const [cleared] = (await activityRows(t)).filter((r) => r.kind === 'ROOM_CLEARED');
      assert.equal(cleared!.payload.deleted, 1);
    }));

  test('clearRoom drops the mentions of cleared messages, and a retry of one answers removed', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t);
      await followRoom(t.d, alice, room);
      await postMessage(t.d, bob, room, { text: 'hi @alice', clientId: 'm1' });
      assert.equal((await listFollows(t.d, alice))[0]!.mentions, 1);
      await clearRoom(t.d, t.admin, room, t.d.clock());
      assert.equal((await listFollows(t.d, alice))[0]!.mentions, 0);
      const retry = await postMessage(t.d, bob, room, { text: 'hi @alice', clientId: 'm1' });
      assert.equal(retry.duplicate, true);
      assert.equal(retry.message.state, 'removed');
      assert.equal(retry.message.seq, 1);
    }));
});

describe('compliance outbox', () => {
  test('records every chat action with its actor and room', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t);
      const mark = await lastActivityId(t);
      const posted = await postMessage(t.d, bob, room, { text: 'hello zqaudit' });
      await joinRooms(t.d, alice, [{ roomId: room }]);
      await roomHistory(t.d, alice, room, { before: 2 });
      await searchMessages(t.d, alice, { query: 'zqaudit' });
      await partRoom(t.d, alice, room);
      const rows = await activityRows(t, mark);
      assert.deepEqual(
        rows.map((r) => [r.kind, r.actor_id, r.room_id]),
        [
          ['CHAT', bob.userId, room],
          ['JOIN', alice.userId, room],
          ['BACKCHAT', alice.userId, room],
          ['BACKCHAT', alice.userId, room],
          ['SEARCH', alice.userId, null],
          ['PART', alice.userId, room],
        ],
      );
      assert.deepEqual(
        [rows[0]!.payload.seq, rows[0]!.payload.messageId, rows[0]!.payload.text],
        [1, posted.message.id, 'hello zqaudit'],
      );
      assert.deepEqual(rows[2]!.payload.returned, [1]);
    }));

  test('is written in the same transaction: a failed record undoes the post', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await lobby(t);
      const restore = breakOutbox(t);
      await assert.rejects(postMessage(t.d, bob, room, { text: 'lost' }), /outbox down/);
      await assert.rejects(joinRooms(t.d, alice, [{ roomId: room }]), /outbox down/);
      restore();
      assert.deepEqual((await roomHistory(t.d, alice, room, {})).messages, []);
      const next = await postMessage(t.d, bob, room, { text: 'kept' });
      assert.equal(next.message.seq, 1, 'the failed post consumed no sequence number');
      assert.deepEqual(
        (await activityRows(t))
          .filter((r) => ['CHAT', 'JOIN'].includes(r.kind))
          .map((r) => r.payload.text ?? r.kind),
        ['kept'],
      );
    }));
});
