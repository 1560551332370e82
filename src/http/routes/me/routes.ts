import { z } from 'zod';
import {
  followRoom,
  listFollows,
  listInvitations,
  markInvitationsSeen,
  markRead,
  unfollowRoom,
} from '../../../domain/me/commands.js';
import {
  createTopicFeed,
  deleteTopicFeed,
  feedPatchSchema,
  FeedLimits,
  listTopicFeeds,
  newFeedSchema,
  updateTopicFeed,
} from '../../../domain/me/feeds.js';
import { defineRoute, type AnyRoute } from '../../registry.js';
import { boolString, idParams, idString, intString } from '../../schemas.js';

const roomParams = z.object({ roomId: idString });

export const meRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET',
    url: '/api/v1/me/follows',
    summary: 'Followed rooms with unread and mention counts',
    tags: ['me'],
    auth: 'user',
    response: {
      status: 200,
      description: '`[{ roomId, name, lastReadSeq, lastSeq, unread, mentions }]`.',
    },
    handler: ({ domain, actor }) => listFollows(domain, actor),
  }),
  defineRoute({
    method: 'PUT',
    url: '/api/v1/me/follows/:roomId',
    summary: 'Follow a room; unread counting starts at its current sequence',
    tags: ['me'],
    auth: 'user',
    params: roomParams,
    response: { status: 204, description: 'Following.', contentType: null },
    handler: async ({ domain, actor, params }) => {
      await followRoom(domain, actor, params.roomId);
    },
  }),
  defineRoute({
    method: 'DELETE',
    url: '/api/v1/me/follows/:roomId',
    summary: 'Stop following a room',
    tags: ['me'],
    auth: 'user',
    params: roomParams,
    response: { status: 204, description: 'Not following.', contentType: null },
    handler: async ({ domain, actor, params }) => {
      await unfollowRoom(domain, actor, params.roomId);
    },
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/me/read',
    summary: 'Mark a room read up to a sequence number',
    tags: ['me'],
    auth: 'user',
    body: z.object({ roomId: z.number().int().positive(), seq: z.number().int().min(0) }).strict(),
    response: { status: 204, description: 'Recorded.', contentType: null },
    handler: async ({ domain, actor, body }) => {
      await markRead(domain, actor, body);
    },
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/me/invitations',
    summary: 'Room invitations: unseen ones, or with `all=true` every kept one',
    tags: ['me'],
    auth: 'user',
    query: z.object({ all: boolString.optional(), limit: intString(500, 1).optional() }),
    response: { status: 200, description: 'Invitations with their rooms.' },
    handler: ({ domain, actor, query }) => listInvitations(domain, actor, query),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/me/invitations/seen',
    summary: 'Mark invitations seen',
    tags: ['me'],
    auth: 'user',
    body: z.object({ ids: z.array(z.number().int().positive()).min(1).max(1000) }).strict(),
    response: { status: 200, description: '`{ updated }`.' },
    handler: ({ domain, actor, body }) => markInvitationsSeen(domain, actor, body),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/me/feeds',
    summary: 'Your topic feeds: keyword filters across the rooms you follow',
    tags: ['me'],
    auth: 'user',
    response: { status: 200, description: '`[{ id, name, keywords, createdAt, updatedAt }]`.' },
    handler: ({ domain, actor }) => listTopicFeeds(domain, actor),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/me/feeds',
    summary: 'Add a topic feed',
    description: `At most ${FeedLimits.feedsPerUser} feeds per user (\`too_many_feeds\`, 409), names unique per user in any case (\`feed_name_taken\`, 409), 1–${FeedLimits.keywordsPerFeed} keywords of at most ${FeedLimits.keywordChars} characters.`,
    tags: ['me'],
    auth: 'user',
    body: newFeedSchema,
    response: { status: 201, description: 'The feed.' },
    handler: ({ domain, actor, body }) => createTopicFeed(domain, actor, body),
  }),
  defineRoute({
    method: 'PATCH',
    url: '/api/v1/me/feeds/:id',
    summary: 'Rename a topic feed or replace its keywords',
    tags: ['me'],
    auth: 'user',
    params: idParams,
    body: feedPatchSchema,
    response: { status: 200, description: 'The feed after the change.' },
    handler: ({ domain, actor, params, body }) => updateTopicFeed(domain, actor, params.id, body),
  }),
  defineRoute({
    method: 'DELETE',
    url: '/api/v1/me/feeds/:id',
    summary: 'Delete a topic feed',
    tags: ['me'],
    auth: 'user',
    params: idParams,
    response: { status: 204, description: 'Deleted.', contentType: null },
    handler: async ({ domain, actor, params }) => {
      await deleteTopicFeed(domain, actor, params.id);
    },
  }),
];
