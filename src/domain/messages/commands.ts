import { z } from 'zod';
import {
  ConflictError,
  InvalidCursorError,
  MessageNotFoundError,
  MessageTooLargeError,
  PostNotAllowedError,
  RoomNotFoundError,
  ValidationError,
} from '../../errors.js';
import type { FileRecord, Message, StoreOps } from '../../store/store.js';
import { roomRights } from '../access.js';
import { requireAdmin, requireChat, resolvePrincipals } from '../directory/commands.js';
import { loadReadableRoom, loadRoom, presentRoom, type RoomView } from '../rooms/commands.js';
import { logForPool } from '../events.js';
import type { Actor, Domain } from '../types.js';
import { parseInput } from '../validation.js';
import { fileView, presentMessage, type MessageView } from './present.js';
import type { PostTurn } from './post-order.js';

const clientIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[\w.:-]+$/, 'may contain letters, digits and . _ : - only');

export const postSchema = z
  .object({
    text: z.string().min(1, 'must not be empty'),
    title: z.string().trim().min(1).max(256).optional(),
    alert: z.boolean().default(false),
    clientId: clientIdSchema.optional(),
  })
  .strict();

export interface PostInput {
  text: string;
  title?: string;
  alert?: boolean;
  clientId?: string;
  fileId?: number;
}

export interface PostResult {
  message: MessageView;
  /** True when `clientId` matched an earlier post: nothing new was written. */
  duplicate: boolean;
}

const mentionPattern = /(?:^|[^\p{L}\p{N}._@-])@([\p{L}\p{N}._-]{1,64})/gu;

/** Logins mentioned as `@login` in a text (at most 50). */
export function mentionedNames(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(mentionPattern)) {
    names.add(m[1]!.replace(/[._-]+$/, ''));
    if (names.size >= 50) break;
  }
  return [...names];
}

/** Authors of a batch of messages, looked up once. */
export async function presentMessages(d: Domain, messages: Message[]): Promise<MessageView[]> {
  const authors = await d.store.getPrincipals([...new Set(messages.map((m) => m.authorId))]);
  const byId = new Map(authors.map((a) => [a.id, a]));
  const files = new Map<number, FileRecord>();
  for (const m of messages) {
    if (m.fileId !== null && !files.has(m.fileId)) {
      const f = await d.store.getFile(m.fileId);
      if (f) files.set(f.id, f);
    }
  }
  return messages.map((m) =>
    presentMessage(m, byId.get(m.authorId), m.fileId === null ? undefined : files.get(m.fileId)),
  );
}

/** A message by the actor, built from what the command knows without reading it back. */
function actorMessage(
  actor: Actor,
  m: Omit<MessageView, 'author' | 'file'> & { file?: FileRecord },
): MessageView {
  const { file, ...rest } = m;
  return {
    ...rest,
    author: { id: actor.userId, name: actor.login, displayName: actor.displayName },
    file: fileView(file),
  };
}

/**
 * Posts a message. It is acknowledged (this promise resolves) only after the transaction that
 * assigned its sequence number has committed; the live event is published after that commit.
 * A repeated `clientId` from the same author returns the first post instead of a new one.
 */
export async function postMessage(
  d: Domain,
  actor: Actor,
  roomId: number,
  input: PostInput,
  file?: FileRecord,
): Promise<PostResult> {
  const v = parseInput(
    postSchema,
    { text: input.text, title: input.title, alert: input.alert, clientId: input.clientId },
    'post',
  );
  const { info, rights } = await loadReadableRoom(d, actor, roomId);
  if (!rights.canPost) throw new PostNotAllowedError();
  const settings = await d.settings.get();
  if (v.text.length > settings.maxMessageChars)
    throw new MessageTooLargeError(settings.maxMessageChars);
  if (v.clientId !== undefined) {
    const earlier = await replay(d, actor, roomId, v.clientId);
    if (earlier) return earlier;
  }
  const mentioned = mentionedNames(v.text);
  const mentionUserIds =
    mentioned.length === 0
      ? []
      : (await d.store.getPrincipalsByNames(mentioned))
          .filter((p) => p.kind === 'user' && p.id !== actor.userId)
          .map((p) => p.id);
  const now = d.clock();
  const store = info.category.history;
  // The post's turn in the room's publication order, taken once its number is known.
  const order: { turn?: PostTurn } = {};
  let appended;
  try {
    appended = await d.store.transaction(async (tx) => {
      const a = await tx.appendMessage({
        roomId,
        authorId: actor.userId,
        body: v.text,
        title: v.title ?? null,
        alert: v.alert,
        fileId: file?.id ?? null,
        clientId: v.clientId ?? null,
        store,
        mentionUserIds,
        createdAt: now,
      });
      order.turn?.end();
      order.turn = d.postOrder.take(roomId, a.seq);
      await tx.recordActivity({
        kind: 'CHAT',
        actorId: actor.userId,
        roomId,
        createdAt: now,
        payload: {
          seq: a.seq,
          messageId: a.id,
          text: v.text,
          title: v.title ?? null,
          alert: v.alert,
          fileId: file?.id ?? null,
          stored: store,
        },
      });
      return a;
    });
  } catch (err) {
    order.turn?.end();
    // Two concurrent retries of one post: the second hits the unique key; answer as a replay.
    if (v.clientId !== undefined) {
      const earlier = await replay(d, actor, roomId, v.clientId);
      if (earlier) return earlier;
    }
    throw err;
  }
  const message = actorMessage(actor, {
    id: appended.id,
    roomId,
    seq: appended.seq,
    ts: appended.createdAt,
    text: v.text,
    title: v.title ?? null,
    alert: v.alert,
    clientId: v.clientId ?? null,
    state: 'normal',
    file,
  });
  const turn = order.turn!;
  try {
    // Committed; published only after the room's earlier posts (see PostOrder).
    const earlier = d.postOrder.earlier(roomId, turn);
    if (earlier) await earlier;
    d.access.noteSeq(roomId, appended.seq);
    d.events.publish({ type: 'message', roomId, message });
  } finally {
    turn.end();
  }
  return { message, duplicate: false };
}

export async function replay(
  d: Domain,
  actor: Actor,
  roomId: number,
  clientId: string,
): Promise<PostResult | undefined> {
  const key = await d.store.getPostKey(actor.userId, clientId);
  if (!key) return undefined;
  if (key.roomId !== roomId) {
    throw new ConflictError(
      'client_id_reused',
      'this clientId was already used for a post in another room',
    );
  }
  const stored = key.messageId === null ? undefined : await d.store.getMessage(key.messageId);
  const message = stored
    ? (await presentMessages(d, [stored]))[0]!
    : actorMessage(actor, {
        id: null,
        roomId,
        seq: key.seq,
        ts: key.createdAt,
        text: '',
        title: null,
        alert: false,
        clientId,
        // Stored messages missing now were cleared by an administrator.
        state: key.messageId === null ? 'normal' : 'removed',
      });
  return { message, duplicate: true };
}

const historySchema = z
  .object({
    before: z.number().int().min(1).optional(),
    after: z.number().int().min(0).optional(),
    limit: z.number().int().min(1).max(500).optional(),
  })
  .strict();

export interface HistoryPage {
  messages: MessageView[];
  /** True when older (for `before`/latest) or newer (for `after`) messages remain. */
  more: boolean;
  lastSeq: number;
}

async function readHistory(
  d: Domain,
  tx: StoreOps,
  actor: Actor,
  roomId: number,
  lastSeq: number,
  q: z.infer<typeof historySchema>,
  defaultLimit: number,
): Promise<{ page: Message[]; more: boolean }> {
  if (q.after !== undefined && q.after > lastSeq) {
    throw new InvalidCursorError(
      `after (${q.after}) is beyond the room's last sequence (${lastSeq})`,
    );
  }
  if (q.before !== undefined && q.after !== undefined && q.after >= q.before) {
    throw new InvalidCursorError('after must be lower than before');
  }
  const limit = q.limit ?? defaultLimit;
  const rows = await tx.history({ roomId, before: q.before, after: q.after, limit: limit + 1 });
  const more = rows.length > limit;
  const page = more ? (q.after !== undefined ? rows.slice(0, limit) : rows.slice(1)) : rows;
  await tx.recordActivity({
    kind: 'BACKCHAT',
    actorId: actor.userId,
    roomId,
    createdAt: d.clock(),
    payload: {
      before: q.before ?? null,
      after: q.after ?? null,
      limit,
      returned: page.map((m) => m.seq),
    },
  });
  return { page, more };
}

/**
 * A cursor beyond the cached last sequence may be fresh from another front end of a pool (a
 * client that moved over when its front end died): re-read the room's counter before refusing it.
 */
async function refreshLastSeq(
  d: Domain,
  info: { room: { id: number; lastSeq: number } },
  cursor: number | undefined,
): Promise<void> {
  if (cursor === undefined || cursor <= info.room.lastSeq) return;
  const room = await d.store.getRoom(info.room.id);
  if (room && room.lastSeq > info.room.lastSeq) info.room.lastSeq = room.lastSeq;
}

/**
 * Reads a page of a room's history: the latest `limit` messages, those before a sequence
 * (scrolling back), or those after one (catching up). Limit defaults to the configured
 * default history count.
 */
export async function roomHistory(
  d: Domain,
  actor: Actor,
  roomId: number,
  input: unknown,
): Promise<HistoryPage> {
  const q = parseInput(historySchema, input ?? {}, 'history request');
  const { info } = await loadReadableRoom(d, actor, roomId);
  await refreshLastSeq(d, info, q.after);
  const settings = await d.settings.get();
  const { page, more } = await d.store.transaction((tx) =>
    readHistory(d, tx, actor, roomId, info.room.lastSeq, q, settings.defaultHistory),
  );
  return { messages: await presentMessages(d, page), more, lastSeq: info.room.lastSeq };
}

export interface JoinResult {
  room: RoomView;
  messages: MessageView[];
  more: boolean;
}

const joinSchema = z
  .object({
    roomId: z.number().int().positive(),
    since: z.number().int().min(0).optional(),
    limit: z.number().int().min(1).max(500).optional(),
  })
  .strict();

export type JoinRequest = z.infer<typeof joinSchema>;

/**
 * Joins rooms (one, or a batch at sign-in). Each join returns the room and either the latest
 * messages (default history count) or, with `since`, the messages after that sequence, oldest
 * first; `more` says that more remain to be fetched with `history({ after })`. Each join is
 * recorded for compliance. A room the actor may not read fails on its own, not the batch.
 */
export async function joinRooms(
  d: Domain,
  actor: Actor,
  requests: unknown[],
): Promise<({ ok: true; result: JoinResult } | { ok: false; roomId: unknown; error: unknown })[]> {
  requireChat(actor);
  const settings = await d.settings.get();
  const out: ({ ok: true; result: JoinResult } | { ok: false; roomId: unknown; error: unknown })[] =
    [];
  const pages: {
    index: number;
    info: Awaited<ReturnType<typeof loadReadableRoom>>;
    req: JoinRequest;
  }[] = [];
  for (const raw of requests) {
    try {
      const req = parseInput(joinSchema, raw, 'join');
      const loaded = await loadReadableRoom(d, actor, req.roomId);
      // Checked here so that a bad cursor fails its own room, not the whole batch.
      await refreshLastSeq(d, loaded.info, req.since);
      const { lastSeq } = loaded.info.room;
      if (req.since !== undefined && req.since > lastSeq) {
        throw new InvalidCursorError(
          `since (${req.since}) is beyond the room's last sequence (${lastSeq})`,
        );
      }
      pages.push({ index: out.length, info: loaded, req });
      out.push({ ok: false, roomId: req.roomId, error: undefined });
    } catch (error) {
      out.push({ ok: false, roomId: (raw as { roomId?: unknown } | null)?.roomId, error });
    }
  }
  const now = d.clock();
  const read = await d.store.transaction(async (tx) => {
    const results: { page: Message[]; more: boolean }[] = [];
    for (const { info, req } of pages) {
      await tx.recordActivity({
        kind: 'JOIN',
        actorId: actor.userId,
        roomId: req.roomId,
        createdAt: now,
        payload: {},
      });
      const q =
        req.since === undefined
          ? { limit: req.limit }
          : { after: req.since, limit: req.limit ?? 500 };
      results.push(
        await readHistory(
          d,
          tx,
          actor,
          req.roomId,
          info.info.room.lastSeq,
          q,
          settings.defaultHistory,
        ),
      );
    }
    return results;
  });
  for (const [i, { index, info }] of pages.entries()) {
    const { page, more } = read[i]!;
    out[index] = {
      ok: true,
      result: {
        room: await presentRoom(d, info.info, info.rights),
        messages: await presentMessages(d, page),
        more,
      },
    };
  }
  return out;
}

/** Records that the actor left a room (compliance PART). */
export async function partRoom(d: Domain, actor: Actor, roomId: number): Promise<void> {
  await d.store.recordActivity({
    kind: 'PART',
    actorId: actor.userId,
    roomId,
    createdAt: d.clock(),
    payload: {},
  });
}

const dateSchema = z.union([
  z.number().int().min(0),
  z.iso.datetime({ offset: true }),
  z.iso.date(),
]);
function toMs(v: z.infer<typeof dateSchema> | undefined, endOfDay = false): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v))
    return Date.parse(`${v}T00:00:00Z`) + (endOfDay ? 86_400_000 - 1 : 0);
  return Date.parse(v);
}

const searchSchema = z
  .object({
    query: z.string().max(1024).optional(),
    authors: z.array(z.string().min(1).max(256)).max(50).optional(),
    rooms: z.array(z.number().int().positive()).max(200).optional(),
    from: dateSchema.optional(),
    to: dateSchema.optional(),
    limit: z.number().int().min(1).max(200).default(50),
    offset: z.number().int().min(0).max(10_000).default(0),
  })
  .strict();

export const SEARCH_LIMIT = 999;

/** Splits a search string into quoted phrases and bare terms. */
export function parseSearchQuery(query: string): { terms: string[]; phrases: string[] } {
  const phrases: string[] = [];
  const rest = query.replace(/"([^"]*)"/g, (_, p: string) => {
    if (p.trim()) phrases.push(p.trim());
    return ' ';
  });
  const terms = rest
    .split(/\s+/)
    .map((t) => t.replace(/["]/g, ''))
    .filter((t) => /[\p{L}\p{N}]/u.test(t));
  return { terms, phrases };
}

export interface SearchResult {
  messages: MessageView[];
  count: number;
  exceededLimit: boolean;
}

/**
 * Full-text search over the messages the actor may read: open rooms in scope and rooms where the
 * actor is a member, never disabled rooms. Filters: phrase, authors, rooms, date range.
 */
export async function searchMessages(
  d: Domain,
  actor: Actor,
  input: unknown,
): Promise<SearchResult> {
  requireChat(actor);
  const q = parseInput(searchSchema, input, 'search');
  const { terms, phrases } = parseSearchQuery(q.query ?? '');
  if (terms.length === 0 && phrases.length === 0 && !q.authors?.length && !q.rooms?.length) {
    throw new ValidationError('invalid search: give words to look for, authors or rooms');
  }
  const authorIds = q.authors
    ? (await resolvePrincipals(d, q.authors)).map((p) => p.id)
    : undefined;
  if (q.rooms) {
    // Naming a room the actor cannot read fails like a room that does not exist.
    for (const id of q.rooms) {
      const info = await d.access.room(id);
      if (!info || !roomRights(info, actor).canRead) throw new RoomNotFoundError();
    }
  }
  const from = toMs(q.from);
  const to = toMs(q.to, true);
  const result = await d.store.searchMessages({
    viewer: actor,
    terms,
    phrases,
    roomIds: q.rooms,
    authorIds,
    from,
    to,
    limit: q.limit,
    offset: q.offset,
    countLimit: SEARCH_LIMIT,
  });
  await d.store.recordActivity({
    kind: 'SEARCH',
    actorId: actor.userId,
    roomId: null,
    createdAt: d.clock(),
    payload: {
      query: q.query ?? null,
      authors: q.authors ?? null,
      rooms: q.rooms ?? null,
      from: from ?? null,
      to: to ?? null,
      count: result.count,
    },
  });
  return {
    messages: await presentMessages(d, result.messages),
    count: result.count,
    exceededLimit: result.exceededLimit,
  };
}

const removeSchema = z
  .object({
    room: z.number().int().positive(),
    seq: z.number().int().positive().optional(),
    author: z.string().min(1).max(256).optional(),
    from: dateSchema.optional(),
    to: dateSchema.optional(),
    replacement: z.string().min(1).max(8000).optional(),
    limit: z.number().int().min(1).max(100_000).default(10_000),
  })
  .strict();

/**
 * Removes or replaces messages (administrators only), selected by room and sequence, author and
 * date range. The original text goes to the compliance record; the room shows the message as
 * removed or with the replacement text.
 */
export async function removeMessages(
  d: Domain,
  actor: Actor,
  input: unknown,
): Promise<{ changed: number }> {
  requireAdmin(actor);
  const q = parseInput(removeSchema, input, 'message removal');
  await loadRoom(d, actor, q.room);
  let targets: Message[];
  if (q.seq !== undefined) {
    const m = await d.store.getMessageBySeq(q.room, q.seq);
    if (!m) throw new MessageNotFoundError();
    targets = [m];
  } else {
    const author = q.author ? (await resolvePrincipals(d, [q.author]))[0] : undefined;
    targets = await d.store.findMessages({
      roomId: q.room,
      authorId: author?.id,
      from: toMs(q.from),
      to: toMs(q.to, true),
      limit: q.limit,
    });
  }
  targets = targets.filter((m) => m.state !== 'removed' || q.replacement !== undefined);
  const now = d.clock();
  const state = q.replacement === undefined ? 'removed' : 'replaced';
  await d.store.transaction(async (tx) => {
    for (const m of targets) {
      await tx.setMessageState(m.id, state, q.replacement ?? '', now);
      await tx.recordActivity({
        kind: state === 'removed' ? 'MESSAGE_REMOVED' : 'MESSAGE_REPLACED',
        actorId: actor.userId,
        roomId: m.roomId,
        createdAt: now,
        payload: {
          messageId: m.id,
          seq: m.seq,
          author: m.authorId,
          originalText: m.body,
          originalTitle: m.title,
          replacement: q.replacement ?? null,
        },
      });
    }
    await logForPool(
      d,
      tx,
      targets.map((m) => ({ type: 'message.changed', roomId: m.roomId, messageId: m.id })),
    );
  });
  const changed = await presentMessages(
    d,
    targets.map((m) => ({
      ...m,
      state,
      body: q.replacement ?? '',
      title: state === 'removed' ? null : m.title,
      editedAt: now,
    })),
  );
  for (const message of changed)
    d.events.publish({ type: 'message.changed', roomId: message.roomId, message });
  return { changed: targets.length };
}

/** Deletes a room's messages up to and including a date (administrators only). */
export async function clearRoom(
  d: Domain,
  actor: Actor,
  roomId: number,
  upTo: unknown,
): Promise<{ deleted: number }> {
  requireAdmin(actor);
  const until = toMs(parseInput(dateSchema, upTo, 'end date'), true)!;
  await loadRoom(d, actor, roomId);
  const deleted = await d.store.transaction(async (tx) => {
    const n = await tx.clearRoom(roomId, until);
    await tx.recordActivity({
      kind: 'ROOM_CLEARED',
      actorId: actor.userId,
      roomId,
      createdAt: d.clock(),
      payload: { upTo: until, deleted: n },
    });
    await logForPool(d, tx, [{ type: 'room.cleared', roomId, upTo: until }]);
    return n;
  });
  d.events.publish({ type: 'room.cleared', roomId, upTo: until });
  return { deleted };
}
