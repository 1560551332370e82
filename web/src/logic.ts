// Pure client state rules (no DOM, no I/O), unit-tested in test/web/logic.test.ts.
import type { MessageView } from './types.js';

/**
 * Merges messages into a room's buffer: the result is sorted by sequence with each sequence
 * once; a message that arrives again replaces the older copy (a replaced or removed message).
 * Returns the same array when nothing changed, so callers can skip a re-render.
 */
export function mergeMessages(existing: MessageView[], incoming: MessageView[]): MessageView[] {
  if (incoming.length === 0) return existing;
  const last = existing.at(-1);
  // The common case: live messages in order after the newest one.
  if (!last || incoming.every((m, i) => m.seq > (i === 0 ? last.seq : incoming[i - 1]!.seq))) {
    return existing.concat(incoming);
  }
  const bySeq = new Map<number, MessageView>();
  for (const m of existing) bySeq.set(m.seq, m);
  for (const m of incoming) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** Sequence numbers missing between the oldest and newest message of a buffer. */
export function gaps(messages: MessageView[]): number[] {
  const missing: number[] = [];
  for (let i = 1; i < messages.length; i++) {
    for (let s = messages[i - 1]!.seq + 1; s < messages[i]!.seq; s++) missing.push(s);
  }
  return missing;
}

export interface RoomCursor {
  roomId: number;
  /** Highest sequence this client has received for the room (0: none yet). */
  lastSeen: number;
  /** Whether the latest page of history has been loaded. */
  loaded: boolean;
  /** A followed room's last sequence as the server last reported it. */
  followedLastSeq?: number;
}

export interface JoinRequest {
  roomId: number;
  since?: number;
}

/**
 * What to join after (re)connecting: rooms that have a buffer continue after the last sequence
 * received, so the server sends exactly what was missed; followed rooms that were never opened
 * start at the followed position (only new messages, which count as unread); rooms opened but
 * never loaded get their latest page.
 */
export function joinRequests(cursors: RoomCursor[]): JoinRequest[] {
  return cursors.map((c) => {
    if (c.loaded || c.lastSeen > 0) return { roomId: c.roomId, since: c.lastSeen };
    if (c.followedLastSeq !== undefined) return { roomId: c.roomId, since: c.followedLastSeq };
    return { roomId: c.roomId };
  });
}

// Same rule as the server's mention detection (src/domain/messages/commands.ts).
const mentionPattern = /(?:^|[^\p{L}\p{N}._@-])@([\p{L}\p{N}._-]{1,64})/gu;

/** Whether a text mentions `@login` (case-insensitive, as logins are). */
export function mentions(text: string, login: string): boolean {
  const want = login.toLowerCase();
  for (const m of text.matchAll(mentionPattern)) if (m[1]!.toLowerCase() === want) return true;
  return false;
}

export interface FollowCounts {
  roomId: number;
  name: string;
  lastReadSeq: number;
  lastSeq: number;
  mentions: number;
}

/** Counts a message that arrived for a followed room; returns the updated entry. */
export function countMessage(f: FollowCounts, m: MessageView, me: string): FollowCounts {
  if (m.seq <= f.lastSeq) return f;
  const mine = m.author.name.toLowerCase() === me.toLowerCase();
  return {
    ...f,
    lastSeq: m.seq,
    // Your own message means you have read the room up to it.
    lastReadSeq: mine ? m.seq : f.lastReadSeq,
    mentions: mine ? 0 : f.mentions + (mentions(m.text, me) ? 1 : 0),
  };
}

export function unread(f: FollowCounts): number {
  return Math.max(0, f.lastSeq - f.lastReadSeq);
}

export type TextPart =
  | { kind: 'text'; text: string }
  | { kind: 'link'; text: string; href: string }
  | { kind: 'room'; text: string; roomId: number };

const urlPattern = /\bhttps?:\/\/[^\s<>"']+/gi;

/**
 * Splits message text into plain text and links. Only http(s) URLs become links; a URL of a room
 * on this server (`<origin>/rooms/<id>`) becomes an in-app room link. Trailing punctuation stays
 * text. Rendering is by text nodes only, never markup.
 */
export function linkify(text: string, origin: string): TextPart[] {
  const parts: TextPart[] = [];
  let at = 0;
  for (const m of text.matchAll(urlPattern)) {
    let url = m[0];
    const trail = /[.,;:!?)\]]+$/.exec(url);
    if (trail) url = url.slice(0, -trail[0].length);
    const start = m.index;
    if (start > at) parts.push({ kind: 'text', text: text.slice(at, start) });
    const room = new RegExp(`^${escapeRegExp(origin)}/rooms/(\\d+)/?$`).exec(url);
    if (room) parts.push({ kind: 'room', text: url, roomId: Number(room[1]) });
    else parts.push({ kind: 'link', text: url, href: url });
    at = start + url.length;
  }
  if (at < text.length) parts.push({ kind: 'text', text: text.slice(at) });
  return parts;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Reconnect delay: exponential from 500 ms, capped at 10 s, with ±20 % jitter. */
export function backoffMs(attempt: number, random: number): number {
  const base = Math.min(10_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + 0.4 * random));
}

/** A feed as the client matches it: the built-in mentions feed, or keywords from the server. */
export type FeedRule = { kind: 'mentions' } | { kind: 'keywords'; keywords: string[] };

const wordChar = /[\p{L}\p{N}]/u;

/**
 * Whether `text` contains `keyword` as a whole word or phrase, ignoring case: "deploy" matches
 * "Deploy done" and "deploy!" but not "redeploy" or "deployment".
 */
export function containsKeyword(text: string, keyword: string): boolean {
  const hay = text.toLowerCase();
  const needle = keyword.trim().toLowerCase();
  if (!needle) return false;
  const checkStart = wordChar.test(needle[0]!);
  const checkEnd = wordChar.test(needle.at(-1)!);
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) {
    const before = hay[at - 1];
    const after = hay[at + needle.length];
    if (checkStart && before !== undefined && wordChar.test(before)) continue;
    if (checkEnd && after !== undefined && wordChar.test(after)) continue;
    return true;
  }
  return false;
}

/** Whether a message belongs in a feed. Your own messages never do. */
export function matchesFeed(rule: FeedRule, m: MessageView, me: string): boolean {
  if (m.author.name.toLowerCase() === me.toLowerCase() || m.state === 'removed') return false;
  if (rule.kind === 'mentions') return mentions(m.text, me);
  const text = m.title ? `${m.title}\n${m.text}` : m.text;
  return rule.keywords.some((k) => containsKeyword(text, k));
}

/**
 * The search queries that find a feed's past matches: one phrase per keyword (the server's search
 * requires every word of a query, a feed wants any keyword), or your login for mentions. Results
 * are filtered again with `matchesFeed`, so past and live matches follow the same rule.
 */
export function feedQueries(rule: FeedRule, me: string): string[] {
  if (rule.kind === 'mentions') return [me];
  return rule.keywords.map((k) => `"${k.replace(/"/g, ' ').trim()}"`);
}

/** Merges feed matches: newest first, each message (room and sequence) once. */
export function mergeMatches<T extends MessageView>(a: T[], b: T[]): T[] {
  const byKey = new Map<string, T>();
  for (const m of [...a, ...b]) byKey.set(`${m.roomId}:${m.seq}`, m);
  return [...byKey.values()].sort((x, y) => y.ts - x.ts || y.roomId - x.roomId || y.seq - x.seq);
}

/** A token-bucket rate: `burst` at once, refilled at `perSecond`. */
export interface Rate {
  perSecond: number;
  burst: number;
}

export interface Bucket {
  tokens: number;
  /** When `tokens` was last computed (ms). */
  at: number;
}

/** Takes one token from a bucket at time `now`; `ok` is false when none is left. */
export function takeToken(b: Bucket, now: number, rate: Rate): { ok: boolean; bucket: Bucket } {
  const elapsed = Math.max(0, now - b.at) / 1000;
  const tokens = Math.min(rate.burst, b.tokens + elapsed * rate.perSecond);
  if (tokens < 1) return { ok: false, bucket: { tokens, at: now } };
  return { ok: true, bucket: { tokens: tokens - 1, at: now } };
}
