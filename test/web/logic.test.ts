// Unit tests of the web client's pure state rules (web/src/logic.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  backoffMs,
  containsKeyword,
  countMessage,
  feedQueries,
  gaps,
  joinRequests,
  linkify,
  matchesFeed,
  mentions,
  mergeMatches,
  mergeMessages,
  takeToken,
  unread,
  type FeedRule,
} from '../../web/src/logic.js';
import type { MessageView } from '../../web/src/types.js';

function msg(seq: number, over: Partial<MessageView> = {}): MessageView {
  return {
    id: seq,
    roomId: 1,
    seq,
    author: { id: 2, name: 'bob', displayName: 'Bob' },
    ts: 1_700_000_000_000 + seq,
    text: `message ${seq}`,
    title: null,
    alert: false,
    file: null,
    clientId: null,
    state: 'normal',
    ...over,
  };
}

const seqs = (ms: MessageView[]) => ms.map((m) => m.seq);

describe('mergeMessages', () => {
  test('appends live messages in order', () => {
    assert.deepEqual(seqs(mergeMessages([msg(1), msg(2)], [msg(3), msg(4)])), [1, 2, 3, 4]);
  });

  test('prepends an older page and drops overlap, keeping one copy per sequence', () => {
    const merged = mergeMessages([msg(5), msg(6), msg(7)], [msg(3), msg(4), msg(5)]);
    assert.deepEqual(seqs(merged), [3, 4, 5, 6, 7]);
    assert.deepEqual(gaps(merged), []);
  });

  test('a backfill that repeats live messages creates no duplicates', () => {
    const live = mergeMessages([msg(1)], [msg(4)]);
    const merged = mergeMessages(live, [msg(2), msg(3), msg(4)]);
    assert.deepEqual(seqs(merged), [1, 2, 3, 4]);
  });

  test('a changed message replaces the old copy', () => {
    const merged = mergeMessages(
      [msg(1), msg(2)],
      [msg(2, { text: 'replaced', state: 'replaced' as MessageView['state'] })],
    );
    assert.equal(merged[1]!.text, 'replaced');
    assert.equal(merged.length, 2);
  });

  test('nothing new returns the same array', () => {
    const a = [msg(1)];
    assert.equal(mergeMessages(a, []), a);
  });

  test('gaps lists missing sequences', () => {
    assert.deepEqual(gaps([msg(1), msg(4), msg(5)]), [2, 3]);
  });
});

describe('joinRequests (reconnect catch-up)', () => {
  test('a room with a buffer continues after the last sequence received', () => {
    assert.deepEqual(joinRequests([{ roomId: 1, lastSeen: 42, loaded: true }]), [
      { roomId: 1, since: 42 },
    ]);
  });

  test('a loaded room with no messages yet asks from 0', () => {
    assert.deepEqual(joinRequests([{ roomId: 1, lastSeen: 0, loaded: true }]), [
      { roomId: 1, since: 0 },
    ]);
  });

  test('a followed room never opened starts at its followed position', () => {
    assert.deepEqual(
      joinRequests([{ roomId: 2, lastSeen: 0, loaded: false, followedLastSeq: 17 }]),
      [{ roomId: 2, since: 17 }],
    );
  });

  test('a room opened but never loaded gets its latest page', () => {
    assert.deepEqual(joinRequests([{ roomId: 3, lastSeen: 0, loaded: false }]), [{ roomId: 3 }]);
  });

  test('messages received for a followed room win over the stale followed position', () => {
    assert.deepEqual(
      joinRequests([{ roomId: 2, lastSeen: 20, loaded: false, followedLastSeq: 17 }]),
      [{ roomId: 2, since: 20 }],
    );
  });
});

describe('unread and mention counting', () => {
  const f = { roomId: 1, name: 'Lobby', lastReadSeq: 3, lastSeq: 5, mentions: 0 };

  test('a new message counts as unread, a mention of me as a mention', () => {
    const next = countMessage(f, msg(6, { text: 'hi @alice' }), 'alice');
    assert.equal(unread(next), 3);
    assert.equal(next.mentions, 1);
  });

  test('a message already counted (backfill after a refresh) counts nothing', () => {
    assert.equal(countMessage(f, msg(5), 'alice'), f);
  });

  test('my own message marks the room read', () => {
    const next = countMessage(
      f,
      msg(6, { author: { id: 1, name: 'Alice', displayName: 'A' } }),
      'alice',
    );
    assert.equal(unread(next), 0);
  });

  test('mentions follow the server rule', () => {
    assert.equal(mentions('@alice hello', 'alice'), true);
    assert.equal(mentions('hey @ALICE, hi', 'alice'), true);
    assert.equal(mentions('mail alice@example.com', 'alice'), false);
    assert.equal(mentions('@alicea', 'alice'), false);
  });
});

describe('linkify', () => {
  test('only http(s) URLs become links; trailing punctuation stays text', () => {
    assert.deepEqual(linkify('see https://example.com/a?b=1. ok', 'http://chat'), [
      { kind: 'text', text: 'see ' },
      { kind: 'link', text: 'https://example.com/a?b=1', href: 'https://example.com/a?b=1' },
      { kind: 'text', text: '. ok' },
    ]);
    assert.deepEqual(linkify('javascript:alert(1) <b>x</b>', 'http://chat'), [
      { kind: 'text', text: 'javascript:alert(1) <b>x</b>' },
    ]);
  });

  test('a room URL on this server becomes a room link', () => {
    assert.deepEqual(linkify('go to http://chat:8080/rooms/12', 'http://chat:8080'), [
      { kind: 'text', text: 'go to ' },
      { kind: 'room', text: 'http://chat:8080/rooms/12', roomId: 12 },
    ]);
  });
});

test('backoff grows, is capped and jittered', () => {
  assert.equal(backoffMs(0, 0.5), 500);
  assert.equal(backoffMs(1, 0.5), 1000);
  assert.equal(backoffMs(20, 0.5), 10_000);
  assert.equal(backoffMs(20, 0), 8_000);
  assert.equal(backoffMs(20, 1), 12_000);
});

describe('topic feeds', () => {
  test('a keyword matches whole words and phrases in any case, not inside other words', () => {
    assert.equal(containsKeyword('Deploy done', 'deploy'), true);
    assert.equal(containsKeyword('ready to deploy!', 'DEPLOY'), true);
    assert.equal(containsKeyword('redeploy later', 'deploy'), false);
    assert.equal(containsKeyword('the deployment', 'deploy'), false);
    assert.equal(containsKeyword('a deployment, then deploy', 'deploy'), true);
    assert.equal(containsKeyword('new Incident Report filed', 'incident report'), true);
    assert.equal(containsKeyword('incident reports', 'incident report'), false);
    assert.equal(containsKeyword('città chiusa', 'CITTÀ'), true);
    assert.equal(containsKeyword('anything', '  '), false);
    // A keyword edge that is not a letter or digit needs no word boundary.
    assert.equal(containsKeyword('see #ops-42', '#ops'), true);
  });

  test('a message matches a feed by text or story title; never your own or a removed one', () => {
    const rule: FeedRule = { kind: 'keywords', keywords: ['outage', 'sev1'] };
    assert.equal(matchesFeed(rule, msg(1, { text: 'an OUTAGE in eu-west' }), 'alice'), true);
    assert.equal(
      matchesFeed(rule, msg(2, { title: 'SEV1 declared', text: 'details' }), 'alice'),
      true,
    );
    assert.equal(matchesFeed(rule, msg(3, { text: 'all quiet' }), 'alice'), false);
    const mine = msg(4, { text: 'outage', author: { id: 1, name: 'Alice', displayName: 'A' } });
    assert.equal(matchesFeed(rule, mine, 'alice'), false);
    assert.equal(matchesFeed(rule, msg(5, { text: 'outage', state: 'removed' }), 'alice'), false);
    const me = { kind: 'mentions' } as const;
    assert.equal(matchesFeed(me, msg(6, { text: 'ping @Alice' }), 'alice'), true);
    assert.equal(matchesFeed(me, msg(7, { text: 'alice without the at' }), 'alice'), false);
  });

  test('past matches are searched per keyword as phrases; matches merge newest first, once', () => {
    assert.deepEqual(feedQueries({ kind: 'keywords', keywords: ['a "b"', 'c d'] }, 'x'), [
      '"a  b"',
      '"c d"',
    ]);
    assert.deepEqual(feedQueries({ kind: 'mentions' }, 'alice'), ['alice']);
    const merged = mergeMatches(
      [msg(1), msg(3)],
      [msg(3, { text: 'again' }), msg(2), msg(1, { roomId: 2 })],
    );
    assert.deepEqual(
      merged.map((m) => [m.roomId, m.seq]),
      [
        [1, 3],
        [1, 2],
        [2, 1],
        [1, 1],
      ],
    );
  });
});

test('a token bucket allows a burst, then its rate', () => {
  const rate = { perSecond: 0.5, burst: 3 };
  let bucket = { tokens: 3, at: 0 };
  const results: boolean[] = [];
  for (const now of [0, 0, 0, 0, 1000, 2000, 2000, 8000, 8000, 8000, 8000]) {
    const r = takeToken(bucket, now, rate);
    bucket = r.bucket;
    results.push(r.ok);
  }
  // Three at once, none at 0 or 1 s, one at 2 s, then three again (capped at the burst).
  assert.deepEqual(results, [true, true, true, false, false, true, false, true, true, true, false]);
});
