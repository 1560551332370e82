import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expectCode, withDomain } from '../../test/harness/domain-factories.js';
import {
  createTopicFeed,
  deleteTopicFeed,
  FeedLimits,
  listTopicFeeds,
  updateTopicFeed,
} from './me/feeds.js';

describe('topic feeds', () => {
  test('are kept per user: create, list, rename, replace keywords, delete', () =>
    withDomain(async (t) => {
      const { actor: alice } = await t.buildUser('alice');
      const { actor: bob } = await t.buildUser('bob');
      const outage = await createTopicFeed(t.d, alice, {
        name: ' Outages ',
        keywords: ['outage', 'Down', 'down', 'incident report'],
      });
      assert.equal(outage.name, 'Outages');
      // The same keyword in another case is one keyword; the first spelling is kept.
      assert.deepEqual(outage.keywords, ['outage', 'Down', 'incident report']);
      await createTopicFeed(t.d, alice, { name: 'Releases', keywords: ['release'] });
      assert.deepEqual(
        (await listTopicFeeds(t.d, alice)).map((f) => f.name),
        ['Outages', 'Releases'],
      );
      assert.deepEqual(await listTopicFeeds(t.d, bob), []);

      const renamed = await updateTopicFeed(t.d, alice, outage.id, {
        name: 'Incidents',
        keywords: ['sev1'],
      });
      assert.equal(renamed.name, 'Incidents');
      assert.deepEqual(renamed.keywords, ['sev1']);
      assert.deepEqual((await listTopicFeeds(t.d, alice))[0]?.keywords, ['sev1']);

      // Another user's feed does not exist for bob.
      await expectCode(updateTopicFeed(t.d, bob, outage.id, { name: 'Mine' }), 'feed_not_found');
      await expectCode(deleteTopicFeed(t.d, bob, outage.id), 'feed_not_found');

      await deleteTopicFeed(t.d, alice, outage.id);
      assert.deepEqual(
        (await listTopicFeeds(t.d, alice)).map((f) => f.name),
        ['Releases'],
      );
      await expectCode(deleteTopicFeed(t.d, alice, outage.id), 'feed_not_found');
    }));

  test('names are unique per user in any case; other users may reuse them', () =>
    withDomain(async (t) => {
      const { actor: alice } = await t.buildUser('alice');
      const { actor: bob } = await t.buildUser('bob');
      const first = await createTopicFeed(t.d, alice, { name: 'Ops', keywords: ['ops'] });
      const other = await createTopicFeed(t.d, alice, { name: 'Dev', keywords: ['dev'] });
      await expectCode(
        createTopicFeed(t.d, alice, { name: 'OPS', keywords: ['x'] }),
        'feed_name_taken',
      );
      await expectCode(updateTopicFeed(t.d, alice, other.id, { name: 'ops' }), 'feed_name_taken');
      // Renaming a feed to its own name in another case is fine.
      assert.equal((await updateTopicFeed(t.d, alice, first.id, { name: 'OPS' })).name, 'OPS');
      await createTopicFeed(t.d, bob, { name: 'Ops', keywords: ['ops'] });
    }));

  test('limits: feeds per user, keywords per feed, keyword and name length, bad input', () =>
    withDomain(async (t) => {
      const { actor: alice } = await t.buildUser('alice');
      for (let i = 0; i < FeedLimits.feedsPerUser; i++)
        await createTopicFeed(t.d, alice, { name: `feed ${i}`, keywords: [`word${i}`] });
      const err = await expectCode(
        createTopicFeed(t.d, alice, { name: 'one more', keywords: ['x'] }),
        'too_many_feeds',
      );
      assert.deepEqual(err.details, { limit: FeedLimits.feedsPerUser });
      assert.equal((await listTopicFeeds(t.d, alice)).length, FeedLimits.feedsPerUser);

      const { actor: bob } = await t.buildUser('bob');
      const bad: unknown[] = [
        { name: '', keywords: ['x'] },
        { name: 'x'.repeat(FeedLimits.nameChars + 1), keywords: ['x'] },
        { name: 'a\u0007b', keywords: ['x'] },
        { name: 'empty', keywords: [] },
        { name: 'blank', keywords: ['  '] },
        { name: 'punctuation', keywords: ['!!!'] },
        { name: 'long', keywords: ['k'.repeat(FeedLimits.keywordChars + 1)] },
        {
          name: 'many',
          keywords: Array.from({ length: FeedLimits.keywordsPerFeed + 1 }, (_, i) => `k${i}`),
        },
        { name: 'extra', keywords: ['x'], surprise: true },
        { name: 'not a list', keywords: 'x' },
      ];
      for (const input of bad)
        await expectCode(createTopicFeed(t.d, bob, input), 'invalid_request');
      assert.deepEqual(await listTopicFeeds(t.d, bob), []);
    }));
});
