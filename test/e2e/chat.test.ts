// The WebSocket protocol end to end against one real server process: live chat, reconnect
// with backfill, batch join, history, search, roster and its participant-update limit,
// removal, rate limiting and bad frames. The server's store is SQLite unless PERCH_TEST_DIALECT
// says postgres (chat-postgres.test.ts runs this whole suite again on PostgreSQL).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup, serverDialect, startServer, type TestServer } from '../harness/server.js';
import { connect, type Frame, type WsClient } from '../harness/ws-client.js';
import {
  adminHttp,
  ask,
  askFails,
  assertNothingMore,
  buildCategory,
  buildRoom,
  buildUsers,
  Http,
  isMessageIn,
  type MessageFrame,
  nextMessages,
  openClient,
  postMany,
  range,
  signIn,
  type TestUser,
} from './helpers.js';

const maxFrameBytes = 16_384;
const logins = ['alice', 'bob', 'carol', 'dave'] as const;

describe(`WebSocket protocol (${serverDialect()} store)`, () => {
  let server: TestServer;
  let admin: Http;
  let users: Record<(typeof logins)[number], TestUser>;
  const clients: WsClient[] = [];
  let roomCount = 0;

  /** An authenticated connection closed after the suite. */
  async function client(user: TestUser): Promise<WsClient> {
    const c = await openClient(server, user.token);
    clients.push(c);
    return c;
  }

  /** A fresh room in the category (open unless said otherwise). */
  function room(input: Record<string, unknown> = {}) {
    return buildRoom(admin, {
      name: `room-${++roomCount}`,
      category: 'General',
      privacy: 'open',
      ...input,
    });
  }

  before(async () => {
    server = await startServer({ env: { PERCH_MAX_FRAME_BYTES: String(maxFrameBytes) } });
    admin = await adminHttp(server);
    users = await buildUsers(server, admin, logins);
    await buildCategory(admin, { name: 'General', allowed: [...logins], creators: ['alice'] });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.terminate()));
    if (server) await cleanup(server);
  });

  test("the poster gets its post's reply before its own message event, and every member the event", async () => {
    const r = await room();
    const [a, b] = [await client(users.alice), await client(users.bob)];
    await ask(a, { type: 'join', roomId: r.id });
    await ask(b, { type: 'join', roomId: r.id });
    const arrivals: string[] = [];
    a.socket.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString()) as Frame;
      arrivals.push(f.type === 'reply' ? `reply ${String(f.id)}` : String(f.type));
    });
    for (const i of range(1, 3)) {
      const ack = await a.request({ id: `p${i}`, type: 'post', roomId: r.id, text: `own ${i}` });
      assert.equal(ack.type, 'reply');
      const [echo] = await nextMessages(a, r.id, 1);
      assert.equal(echo!.message.seq, (ack.data as { seq: number }).seq);
    }
    assert.deepEqual(arrivals, [
      'reply p1',
      'message',
      'reply p2',
      'message',
      'reply p3',
      'message',
    ]);
    assert.deepEqual(
      (await nextMessages(b, r.id, 3)).map((m) => m.message.text),
      ['own 1', 'own 2', 'own 3'],
    );
  });

  test('two users chat live: both receive every post in sequence order, acked after commit', async () => {
    const r = await room();
    const [a, b] = [await client(users.alice), await client(users.bob)];
    await ask(a, { type: 'join', roomId: r.id });
    await ask(b, { type: 'join', roomId: r.id });
    // Pipelined posts: acks come back in order with increasing sequence numbers.
    const acks = await Promise.all(
      range(1, 5).map((i) =>
        ask<{ seq: number }>(i % 2 ? a : b, { type: 'post', roomId: r.id, text: `hi ${i}` }),
      ),
    );
    const seqs = acks.map((x) => x.seq).sort((x, y) => x - y);
    assert.deepEqual(seqs, range(1, 5));
    for (const c of [a, b]) {
      const got = await nextMessages(c, r.id, 5);
      assert.deepEqual(
        got.map((m) => m.message.seq),
        range(1, 5),
      );
      await assertNothingMore(c, isMessageIn(r.id));
    }
    // Concurrent posters (committed in shared batches) still reach everyone in sequence order.
    const burst = await postMany(users.carol.http, r.id, 48);
    for (const c of [a, b]) {
      const got = await nextMessages(c, r.id, 48);
      assert.deepEqual(
        got.map((m) => m.message.seq),
        burst,
      );
    }
    // Acknowledged means committed: a brand-new connection reads it in history.
    const ack = await ask<{ seq: number; id: number }>(a, {
      type: 'post',
      roomId: r.id,
      text: 'after ack',
    });
    const c = await client(users.carol);
    const page = await ask<{ messages: { seq: number; text: string }[] }>(c, {
      type: 'history',
      roomId: r.id,
    });
    assert.deepEqual(page.messages.at(-1), {
      ...page.messages.at(-1),
      seq: ack.seq,
      text: 'after ack',
    });
  });

  test('the Lync-style sign-in sequence: server_info, associations, follows, bjoin since, invitations', async () => {
    await buildCategory(admin, {
      name: 'Invites',
      allowed: ['alice', 'bob'],
      creators: ['bob'],
      invitations: true,
    });
    const a = await client(users.alice);
    // Bob creates a room over the protocol with alice as a member: she is invited live.
    const b = await client(users.bob);
    const { room: r } = await ask<{ room: { id: number; my: { manager: boolean } } }>(b, {
      type: 'room_create',
      name: 'invited-room',
      category: 'Invites',
      privacy: 'closed',
      members: ['alice', 'bob'],
    });
    assert.equal(r.my.manager, true);
    const live = await a.nextEvent((f) => f.type === 'invitation');
    assert.deepEqual((live.invitation as { room: unknown }).room, {
      id: r.id,
      name: 'invited-room',
      description: '',
    });
    await ask(b, { type: 'post', roomId: r.id, text: 'welcome' });
    await ask(a, { type: 'follow', roomId: r.id });
    await ask(b, { type: 'post', roomId: r.id, text: 'unread one' });

    const info = await ask<{ protocol: number; limits: Record<string, number> }>(a, {
      type: 'server_info',
    });
    assert.equal(info.protocol, 1);
    assert.equal(info.limits.maxFrameBytes, maxFrameBytes);
    const assoc = await ask<{ member: { id: number }[]; manager: { id: number }[] }>(a, {
      type: 'associations',
    });
    assert.ok(assoc.member.some((x) => x.id === r.id));
    assert.ok(!assoc.manager.some((x) => x.id === r.id));
    const { follows } = await ask<{
      follows: { roomId: number; unread: number; lastSeq: number }[];
    }>(a, { type: 'follows' });
    assert.deepEqual(
      follows.map((f) => [f.roomId, f.unread, f.lastSeq]),
      [[r.id, 1, 2]],
    );
    const joined = await ask<{ results: { messages: { text: string }[] }[] }>(a, {
      type: 'bjoin',
      rooms: follows.map((f) => ({ roomId: f.roomId, since: f.lastSeq - f.unread })),
    });
    assert.deepEqual(
      joined.results[0]!.messages.map((m) => m.text),
      ['unread one'],
    );
    await ask(a, { type: 'mark_read', roomId: r.id, seq: 2 });
    const after = await ask<{ follows: { unread: number }[] }>(a, { type: 'follows' });
    assert.equal(after.follows[0]!.unread, 0);
    const { invitations } = await ask<{ invitations: { id: number; roomId: number }[] }>(a, {
      type: 'invitations',
    });
    assert.deepEqual(
      invitations.map((i) => i.roomId),
      [r.id],
    );
    assert.deepEqual(await ask(a, { type: 'invitations_seen', ids: [invitations[0]!.id] }), {
      updated: 1,
    });
    assert.deepEqual(await ask(a, { type: 'invitations' }), { invitations: [] });
    assert.deepEqual(await ask(a, { type: 'unfollow', roomId: r.id }), {
      roomId: r.id,
      following: false,
    });
  });

  test('a repeated clientId returns the first post instead of a second one', async () => {
    const r = await room();
    const a = await client(users.alice);
    const first = await ask<{ seq: number; duplicate: boolean }>(a, {
      type: 'post',
      roomId: r.id,
      text: 'once',
      clientId: 'c-1',
    });
    const again = await ask<{ seq: number; duplicate: boolean }>(a, {
      type: 'post',
      roomId: r.id,
      text: 'once',
      clientId: 'c-1',
    });
    assert.equal(first.duplicate, false);
    assert.deepEqual(again, { ...first, duplicate: true });
    const page = await ask<{ lastSeq: number; messages: unknown[] }>(a, {
      type: 'history',
      roomId: r.id,
    });
    assert.equal(page.messages.length, 1);
  });

  test('reconnect with bjoin since: exactly the missed messages, then live ones', async () => {
    const r = await room();
    const b = await client(users.bob);
    await postMany(users.bob.http, r.id, 3);
    let a = await client(users.alice);
    const joined = await ask<{ messages: { seq: number }[] }>(a, { type: 'join', roomId: r.id });
    const lastSeen = joined.messages.at(-1)!.seq;
    await a.terminate();
    for (const i of range(1, 7)) await ask(b, { type: 'post', roomId: r.id, text: `missed ${i}` });
    a = await client(users.alice);
    const back = await ask<{
      results: { ok: boolean; messages: { seq: number }[]; more: boolean }[];
    }>(a, {
      type: 'bjoin',
      rooms: [{ roomId: r.id, since: lastSeen }],
    });
    assert.deepEqual(
      back.results[0]!.messages.map((m) => m.seq),
      range(lastSeen + 1, lastSeen + 7),
    );
    assert.equal(back.results[0]!.more, false);
    await ask(b, { type: 'post', roomId: r.id, text: 'live 1' });
    await ask(b, { type: 'post', roomId: r.id, text: 'live 2' });
    const live = await nextMessages(a, r.id, 2);
    assert.deepEqual(
      live.map((m) => [m.message.seq, m.message.text, m.backfill]),
      [
        [lastSeen + 8, 'live 1', undefined],
        [lastSeen + 9, 'live 2', undefined],
      ],
    );
    await assertNothingMore(a, isMessageIn(r.id));
  });

  test('a backlog over 500 is streamed with backfill: true, then live, with no gap or duplicate', async () => {
    const r = await room();
    const b = await client(users.bob);
    const missed = await postMany(users.bob.http, r.id, 520);
    const lastSeq = Math.max(...missed);
    const a = await client(users.alice);
    const pending = a.request({ type: 'bjoin', rooms: [{ roomId: r.id, since: 0 }] });
    // Live posts racing the backfill must come after it, each exactly once.
    const liveAcks = Promise.all(
      range(1, 3).map((i) => ask(b, { type: 'post', roomId: r.id, text: `live ${i}` })),
    );
    const reply = await pending;
    const result = (reply.data as { results: { messages: { seq: number }[]; more: boolean }[] })
      .results[0]!;
    assert.equal(result.messages.length, 500);
    assert.equal(result.more, true);
    await liveAcks;
    const rest = await nextMessages(a, r.id, lastSeq + 3 - 500);
    const seqs = [...result.messages.map((m) => m.seq), ...rest.map((m) => m.message.seq)];
    assert.deepEqual(seqs, range(1, lastSeq + 3));
    // Everything up to the backlog's end is marked as backfill; live messages are not.
    assert.ok(rest.filter((m) => m.message.seq <= lastSeq).every((m) => m.backfill === true));
    assert.ok(rest.some((m) => m.backfill === true));
    await assertNothingMore(a, isMessageIn(r.id));
  });

  test('bjoin answers per room; a secret room answers exactly like one that does not exist', async () => {
    const open = await room();
    const closed = await room({ privacy: 'closed', members: ['bob'] });
    const secret = await room({ privacy: 'secret', members: ['bob'] });
    const a = await client(users.alice);
    const { results } = await ask<{ results: Record<string, unknown>[] }>(a, {
      type: 'bjoin',
      rooms: [
        { roomId: open.id },
        { roomId: closed.id },
        { roomId: secret.id },
        { roomId: 999_999 },
      ],
    });
    const outcome = results.map((x) => [
      x.roomId,
      x.ok,
      (x.error as { code?: string } | undefined)?.code,
    ]);
    assert.deepEqual(outcome, [
      [open.id, true, undefined],
      [closed.id, false, 'forbidden'],
      [secret.id, false, 'room_not_found'],
      [999_999, false, 'room_not_found'],
    ]);
    assert.deepEqual(results[2]!.error, results[3]!.error);
    const single = await askFails(a, { type: 'join', roomId: secret.id }, 'room_not_found');
    const none = await askFails(a, { type: 'join', roomId: 999_999 }, 'room_not_found');
    assert.deepEqual({ ...single, id: 0 }, { ...none, id: 0 });
    await askFails(a, { type: 'room_get', roomId: secret.id }, 'room_not_found');
  });

  test('history pages backwards with before and forwards with after', async () => {
    const r = await room();
    await postMany(users.bob.http, r.id, 25);
    const a = await client(users.alice);
    type Page = { messages: { seq: number }[]; more: boolean; lastSeq: number };
    const page = async (q: Record<string, unknown>) => {
      const p = await ask<Page>(a, { type: 'history', roomId: r.id, ...q });
      return [p.messages.map((m) => m.seq), p.more, p.lastSeq];
    };
    assert.deepEqual(await page({ limit: 10 }), [range(16, 25), true, 25]);
    assert.deepEqual(await page({ before: 16, limit: 10 }), [range(6, 15), true, 25]);
    assert.deepEqual(await page({ before: 6, limit: 10 }), [range(1, 5), false, 25]);
    assert.deepEqual(await page({ after: 20, limit: 3 }), [range(21, 23), true, 25]);
    assert.deepEqual(await page({ after: 22, before: 25 }), [range(23, 24), false, 25]);
    assert.deepEqual(await page({ after: 25 }), [[], false, 25]);
    assert.deepEqual(await page({}), [range(1, 25), false, 25]);
  });

  test('search finds words in readable rooms only', async () => {
    const open = await room();
    const closed = await room({ privacy: 'closed', members: ['bob'] });
    const b = await client(users.bob);
    await ask(b, { type: 'post', roomId: open.id, text: 'the zebracorn is open' });
    await ask(b, { type: 'post', roomId: closed.id, text: 'the zebracorn is closed' });
    const a = await client(users.alice);
    type Found = { messages: { text: string }[]; count: number; exceededLimit: boolean };
    const forAlice = await ask<Found>(a, { type: 'search', query: 'zebracorn' });
    assert.deepEqual(
      forAlice.messages.map((m) => m.text),
      ['the zebracorn is open'],
    );
    assert.equal(forAlice.count, 1);
    const forBob = await ask<Found>(b, { type: 'search', query: 'zebracorn' });
    assert.equal(forBob.count, 2);
    const phrase = await ask<Found>(b, { type: 'search', query: '"zebracorn is closed"' });
    assert.deepEqual(
      phrase.messages.map((m) => m.text),
      ['the zebracorn is closed'],
    );
    await askFails(a, { type: 'search', query: 'zebracorn', rooms: [closed.id] }, 'room_not_found');
    await askFails(a, { type: 'search' }, 'invalid_request');
  });

  test('roster join/part events stop above the participant-update limit and resume below 80 %', async () => {
    await admin.ok('PATCH', '/api/v1/settings', { participantUpdateLimit: 3 });
    try {
      const r = await room();
      const isRoster = (f: Frame) => f.type === 'roster' && f.roomId === r.id;
      const conns: Partial<Record<(typeof logins)[number], WsClient>> = {};
      const join = async (login: (typeof logins)[number]) => {
        const c = (conns[login] = await client(users[login]));
        return (await ask<{ roster: Record<string, unknown> }>(c, { type: 'join', roomId: r.id }))
          .roster;
      };
      const names = (list: unknown) => (list as { name: string }[]).map((u) => u.name).sort();
      const first = await join('alice');
      assert.deepEqual([first.count, first.suppressed, names(first.users)], [1, false, ['alice']]);
      await join('bob');
      const bobJoined = await conns.alice!.nextEvent(isRoster);
      assert.deepEqual(
        [bobJoined.event, (bobJoined.user as { name: string }).name, bobJoined.count],
        ['join', 'bob', 2],
      );
      const carol = await join('carol');
      assert.deepEqual([carol.count, names(carol.users)], [3, ['alice', 'bob', 'carol']]);
      assert.equal((await conns.alice!.nextEvent(isRoster)).event, 'join');
      assert.equal((await conns.bob!.nextEvent(isRoster)).event, 'join');
      // The fourth user goes over the limit: no user list for the joiner, one notice for the others.
      const dave = await join('dave');
      assert.deepEqual(dave, { count: 4, suppressed: true });
      for (const login of ['alice', 'bob', 'carol'] as const) {
        const e = await conns[login]!.nextEvent(isRoster);
        assert.deepEqual([e.event, e.count, e.users], ['suppressed', 4, undefined]);
      }
      // 3 is not below 80 % of 3: still suppressed, so no part event.
      await ask(conns.dave!, { type: 'part', roomId: r.id });
      await assertNothingMore(conns.alice!, isRoster);
      // 2 is: updates resume with the whole list.
      await conns.carol!.close();
      for (const login of ['alice', 'bob'] as const) {
        const e = await conns[login]!.nextEvent(isRoster);
        assert.deepEqual([e.event, e.count, names(e.users)], ['sync', 2, ['alice', 'bob']]);
      }
      await ask(conns.bob!, { type: 'part', roomId: r.id });
      const parted = await conns.alice!.nextEvent(isRoster);
      assert.deepEqual(
        [parted.event, (parted.user as { name: string }).name, parted.count],
        ['part', 'bob', 1],
      );
      await assertNothingMore(conns.alice!, isRoster);
    } finally {
      await admin.ok('PATCH', '/api/v1/settings', { participantUpdateLimit: 75 });
    }
  });

  test('a member removed from a closed room, or a disabled room, gets removed and no more messages', async () => {
    const r = await room({ privacy: 'closed', members: ['alice', 'bob', 'carol'] });
    const [a, b, c] = [
      await client(users.alice),
      await client(users.bob),
      await client(users.carol),
    ];
    for (const x of [a, b, c]) await ask(x, { type: 'join', roomId: r.id });
    await admin.ok('PATCH', `/api/v1/rooms/${r.id}`, { members: { remove: ['bob'] } });
    const removed = await b.nextEvent((f) => f.type === 'removed');
    assert.deepEqual(removed, { type: 'removed', roomId: r.id, reason: 'access_revoked' });
    await ask(a, { type: 'post', roomId: r.id, text: 'not for bob' });
    await nextMessages(c, r.id, 1);
    await assertNothingMore(b, isMessageIn(r.id));
    await askFails(b, { type: 'history', roomId: r.id }, 'forbidden');

    await admin.ok('PATCH', `/api/v1/rooms/${r.id}`, { disabled: true });
    for (const x of [a, c]) {
      assert.deepEqual(await x.nextEvent((f) => f.type === 'removed'), {
        type: 'removed',
        roomId: r.id,
        reason: 'room_disabled',
      });
    }
    await askFails(a, { type: 'post', roomId: r.id, text: 'too late' }, 'room_not_found');
    await assertNothingMore(c, isMessageIn(r.id));
    await ask(a, { type: 'ping' });
  });

  test('administrator changes reach joined clients: message_changed, room_changed, room_cleared', async () => {
    const r = await room();
    const a = await client(users.alice);
    await ask(a, { type: 'join', roomId: r.id });
    const { seq } = await ask<{ seq: number }>(a, {
      type: 'post',
      roomId: r.id,
      text: 'regrettable',
    });
    await nextMessages(a, r.id, 1);
    await admin.ok('POST', '/api/v1/messages/remove', { room: r.id, seq });
    const changed = await a.nextEvent((f) => f.type === 'message_changed');
    const m = changed.message as { seq: number; state: string; text: string };
    assert.deepEqual([changed.roomId, m.seq, m.state, m.text], [r.id, seq, 'removed', '']);
    await admin.ok('PATCH', `/api/v1/rooms/${r.id}`, { description: 'renovated' });
    assert.deepEqual(await a.nextEvent((f) => f.type === 'room_changed'), {
      type: 'room_changed',
      roomId: r.id,
    });
    await admin.ok('POST', `/api/v1/rooms/${r.id}/clear`, { upTo: '2999-12-31' });
    const cleared = await a.nextEvent((f) => f.type === 'room_cleared');
    assert.equal(cleared.roomId, r.id);
    const page = await ask<{ messages: unknown[] }>(a, { type: 'history', roomId: r.id });
    assert.deepEqual(page.messages, []);
  });

  test("signing out over HTTP ends that session's connections with 4004", async () => {
    const token = await signIn(server, 'dave', 'password-dave');
    const doomed = await openClient(server, token);
    clients.push(doomed);
    const other = await client(users.dave);
    await new Http(server.url, token).ok('DELETE', '/api/v1/sessions/current');
    const error = await doomed.nextEvent((f) => f.type === 'error');
    assert.deepEqual([error.id, error.code], [null, 'unauthenticated']);
    assert.deepEqual(await doomed.closed, { code: 4004, reason: 'signed_out' });
    await ask(other, { type: 'ping' });
  });

  test("switching chat off by policy closes the user's connections with 4003", async () => {
    const d = await client(users.dave);
    await admin.ok('PUT', '/api/v1/policies/chat-off', { enabled: false });
    await admin.ok('PUT', '/api/v1/principals/dave/policy', { policy: 'chat-off' });
    try {
      const error = await d.nextEvent((f) => f.type === 'error');
      assert.deepEqual([error.id, error.code], [null, 'chat_disabled']);
      assert.deepEqual(await d.closed, { code: 4003, reason: 'chat_disabled' });
      const again = await connect(server.wsUrl);
      clients.push(again);
      const auth = await ask<{ chatEnabled: boolean }>(again, {
        type: 'auth',
        token: users.dave.token,
      });
      assert.equal(auth.chatEnabled, false);
      await askFails(again, { type: 'room_search' }, 'chat_disabled');
    } finally {
      await admin.ok('PUT', '/api/v1/principals/dave/policy', { policy: null });
    }
  });

  test('a burst of posts is rate limited and the connection keeps working', async () => {
    const r = await room();
    const a = await client(users.alice);
    const answers = await Promise.all(
      range(1, 45).map((i) => a.request({ type: 'post', roomId: r.id, text: `burst ${i}` })),
    );
    const acked = answers.filter((x) => x.type === 'reply');
    const limited = answers.filter((x) => x.type === 'error');
    assert.ok(limited.length > 0, 'some posts are refused');
    assert.ok(limited.every((x) => x.code === 'rate_limited'));
    await ask(a, { type: 'ping' });
    const page = await ask<{ lastSeq: number }>(a, { type: 'history', roomId: r.id, limit: 1 });
    assert.equal(page.lastSeq, acked.length, 'refused posts were not written');
  });

  describe('bad frames', () => {
    let r: Awaited<ReturnType<typeof room>>;
    let a: WsClient;
    before(async () => {
      r = await room();
      a = await client(users.alice);
      await ask(a, { type: 'post', roomId: r.id, text: 'only message' });
    });

    // Each frame gets its error (echoing the id when one could be read) and the connection stays open.
    const table: {
      name: string;
      frame: () => string | Buffer | Record<string, unknown>;
      code: string;
      id?: unknown;
    }[] = [
      {
        name: 'malformed JSON',
        frame: () => '{"type": "ping", ',
        code: 'malformed_frame',
        id: null,
      },
      {
        name: 'binary frame',
        frame: () => Buffer.from('{"type":"ping","id":1}'),
        code: 'malformed_frame',
        id: null,
      },
      { name: 'JSON array', frame: () => '[1, 2]', code: 'malformed_frame', id: null },
      { name: 'JSON string', frame: () => '"ping"', code: 'malformed_frame', id: null },
      { name: 'JSON null', frame: () => 'null', code: 'malformed_frame', id: null },
      {
        name: 'unknown type',
        frame: () => ({ type: 'teleport', id: 't1' }),
        code: 'unknown_frame_type',
        id: 't1',
      },
      {
        name: 'type naming an Object.prototype member',
        frame: () => ({ type: 'constructor', id: 'proto' }),
        code: 'unknown_frame_type',
        id: 'proto',
      },
      { name: 'no type', frame: () => ({ id: 't2' }), code: 'unknown_frame_type', id: 't2' },
      { name: 'missing id', frame: () => ({ type: 'ping' }), code: 'invalid_request', id: null },
      {
        name: 'id of the wrong type',
        frame: () => ({ type: 'ping', id: { x: 1 } }),
        code: 'invalid_request',
        id: null,
      },
      {
        name: 'roomId as a string',
        frame: () => ({ type: 'history', id: 3, roomId: String(r.id) }),
        code: 'invalid_request',
        id: 3,
      },
      {
        name: 'text as a number',
        frame: () => ({ type: 'post', id: 4, roomId: r.id, text: 42 }),
        code: 'invalid_request',
        id: 4,
      },
      {
        name: 'unknown extra field',
        frame: () => ({ type: 'ping', id: 5, extra: true }),
        code: 'invalid_request',
        id: 5,
      },
      {
        name: 'frame over PERCH_MAX_FRAME_BYTES',
        frame: () => ({ type: 'post', id: 6, roomId: r.id, text: 'x'.repeat(maxFrameBytes) }),
        code: 'frame_too_large',
        id: null,
      },
      {
        name: 'text over maxMessageChars',
        frame: () => ({ type: 'post', id: 7, roomId: r.id, text: 'y'.repeat(8_001) }),
        code: 'message_too_large',
        id: 7,
      },
      {
        name: 'empty text',
        frame: () => ({ type: 'post', id: 8, roomId: r.id, text: '' }),
        code: 'invalid_request',
        id: 8,
      },
      {
        name: 'clientId with spaces',
        frame: () => ({ type: 'post', id: 9, roomId: r.id, text: 'x', clientId: 'a b' }),
        code: 'invalid_request',
        id: 9,
      },
      {
        name: 'history after beyond the last seq',
        frame: () => ({ type: 'history', id: 10, roomId: r.id, after: 99 }),
        code: 'invalid_cursor',
        id: 10,
      },
      {
        name: 'history after not below before',
        frame: () => ({ type: 'history', id: 11, roomId: r.id, after: 1, before: 1 }),
        code: 'invalid_cursor',
        id: 11,
      },
      {
        name: 'history before 0',
        frame: () => ({ type: 'history', id: 12, roomId: r.id, before: 0 }),
        code: 'invalid_request',
        id: 12,
      },
      {
        name: 'join since beyond the last seq',
        frame: () => ({ type: 'join', id: 13, roomId: r.id, since: 99 }),
        code: 'invalid_cursor',
        id: 13,
      },
      {
        name: 'bjoin repeating a room',
        frame: () => ({ type: 'bjoin', id: 14, rooms: [{ roomId: r.id }, { roomId: r.id }] }),
        code: 'invalid_request',
        id: 14,
      },
      {
        name: 'negative roomId',
        frame: () => ({ type: 'room_get', id: 15, roomId: -1 }),
        code: 'invalid_request',
        id: 15,
      },
      {
        name: 'room name with a control character',
        frame: () => ({ type: 'room_create', id: 16, name: 'bell\u0007room', category: 'General' }),
        code: 'invalid_request',
        id: 16,
      },
      {
        name: 'second auth',
        frame: () => ({ type: 'auth', id: 17, token: users.alice.token }),
        code: 'already_authenticated',
        id: 17,
      },
    ];

    for (const row of table) {
      test(`${row.name} → ${row.code}`, async () => {
        const frame = row.frame();
        a.socket.send(
          typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame),
        );
        const error = await a.nextEvent((f) => f.type === 'error');
        assert.deepEqual([error.code, error.id], [row.code, row.id], JSON.stringify(error));
        assert.equal(typeof error.message, 'string');
        await ask(a, { type: 'ping' });
      });
    }

    test('frames before auth answer unauthenticated; ping works; a bad token is refused', async () => {
      const anon = await connect(server.wsUrl);
      clients.push(anon);
      await askFails(anon, { type: 'history', roomId: r.id }, 'unauthenticated');
      await askFails(anon, { type: 'post', roomId: r.id, text: 'sneaky' }, 'unauthenticated');
      const pong = await ask<{ pong: boolean; serverTime: number }>(anon, { type: 'ping' });
      assert.equal(pong.pong, true);
      await askFails(anon, { type: 'auth', token: 'not-a-token' }, 'unauthenticated');
      await ask(anon, { type: 'auth', token: users.bob.token });
      await ask(anon, { type: 'history', roomId: r.id });
    });

    test('a frame far over the limit closes the connection with 1009', async () => {
      const big = await openClient(server, users.alice.token);
      clients.push(big);
      big.send({ type: 'post', id: 1, roomId: r.id, text: 'z'.repeat(maxFrameBytes * 5) });
      assert.equal((await big.closed).code, 1009);
    });

    test('after all that the server serves and the store holds only the valid post', async () => {
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      const fresh = await client(users.bob);
      const page = await ask<{ messages: MessageFrame['message'][]; lastSeq: number }>(fresh, {
        type: 'history',
        roomId: r.id,
      });
      assert.deepEqual(
        page.messages.map((m) => m.text),
        ['only message'],
      );
      assert.equal(page.lastSeq, 1);
    });
  });
});
