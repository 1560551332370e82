import { z } from 'zod';
import {
  TooManyTopicFeedsError,
  TopicFeedNameTakenError,
  TopicFeedNotFoundError,
} from '../../errors.js';
import type { TopicFeed } from '../../store/store.js';
import { requireChat } from '../directory/commands.js';
import type { Actor, Domain } from '../types.js';
import { hasControlChars, parseInput } from '../validation.js';

/** Limits of topic feeds: per user, per feed and per keyword. */
export const FeedLimits = {
  feedsPerUser: 20,
  nameChars: 64,
  keywordsPerFeed: 10,
  keywordChars: 64,
} as const;

const nameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(FeedLimits.nameChars, `must be at most ${FeedLimits.nameChars} characters`)
  .refine((v) => !hasControlChars(v) && !/[\t\n\r]/.test(v), 'must not contain control characters');

const keywordSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(FeedLimits.keywordChars, `must be at most ${FeedLimits.keywordChars} characters`)
  .refine((v) => !hasControlChars(v) && !/[\t\n\r]/.test(v), 'must not contain control characters')
  .refine((v) => /[\p{L}\p{N}]/u.test(v), 'must contain a letter or a digit');

function sameKeyword(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

const keywordsSchema = z
  .array(keywordSchema)
  .min(1, 'give at least one keyword')
  .max(FeedLimits.keywordsPerFeed, `at most ${FeedLimits.keywordsPerFeed} keywords`)
  // The same keyword twice (in any case) is one keyword.
  .transform((list) => list.filter((k, i) => list.findIndex((o) => sameKeyword(o, k)) === i));

export const newFeedSchema = z.object({ name: nameSchema, keywords: keywordsSchema }).strict();

export const feedPatchSchema = z
  .object({ name: nameSchema.optional(), keywords: keywordsSchema.optional() })
  .strict();

export interface TopicFeedView {
  id: number;
  name: string;
  keywords: string[];
  createdAt: number;
  updatedAt: number;
}

function present(f: TopicFeed): TopicFeedView {
  return {
    id: f.id,
    name: f.name,
    keywords: f.keywords,
    createdAt: f.createdAt,
    updatedAt: f.updatedAt,
  };
}

function sameName(a: string, b: string): boolean {
  return a.normalize('NFKC').toLowerCase() === b.normalize('NFKC').toLowerCase();
}

/** The actor's topic feeds (keyword filters across followed rooms), oldest first. */
export async function listTopicFeeds(d: Domain, actor: Actor): Promise<TopicFeedView[]> {
  requireChat(actor);
  return (await d.store.listTopicFeeds(actor.userId)).map(present);
}

/**
 * Adds a topic feed for the actor. Names are unique per user (any case); a user keeps at most
 * `FeedLimits.feedsPerUser` feeds. The count and name are checked in the same transaction as the
 * insert, so two concurrent requests cannot pass the limit together on a serialising store; the
 * table's unique key backs the name check on any store.
 */
export async function createTopicFeed(
  d: Domain,
  actor: Actor,
  input: unknown,
): Promise<TopicFeedView> {
  requireChat(actor);
  const v = parseInput(newFeedSchema, input, 'topic feed');
  const feed = await d.store.transaction(async (tx) => {
    const existing = await tx.listTopicFeeds(actor.userId);
    if (existing.some((f) => sameName(f.name, v.name))) throw new TopicFeedNameTakenError(v.name);
    if (existing.length >= FeedLimits.feedsPerUser)
      throw new TooManyTopicFeedsError(FeedLimits.feedsPerUser);
    return tx.createTopicFeed(
      { userId: actor.userId, name: v.name, keywords: v.keywords },
      d.clock(),
    );
  });
  return present(feed);
}

/** Renames a feed or replaces its keywords; only the actor's own feeds are found. */
export async function updateTopicFeed(
  d: Domain,
  actor: Actor,
  id: number,
  input: unknown,
): Promise<TopicFeedView> {
  requireChat(actor);
  const v = parseInput(feedPatchSchema, input, 'topic feed');
  const feed = await d.store.transaction(async (tx) => {
    const existing = await tx.listTopicFeeds(actor.userId);
    if (!existing.some((f) => f.id === id)) throw new TopicFeedNotFoundError();
    const name = v.name;
    if (name !== undefined && existing.some((f) => f.id !== id && sameName(f.name, name)))
      throw new TopicFeedNameTakenError(name);
    return tx.updateTopicFeed(actor.userId, id, v, d.clock());
  });
  if (!feed) throw new TopicFeedNotFoundError();
  return present(feed);
}

export async function deleteTopicFeed(d: Domain, actor: Actor, id: number): Promise<void> {
  requireChat(actor);
  if (!(await d.store.deleteTopicFeed(actor.userId, id))) throw new TopicFeedNotFoundError();
}
