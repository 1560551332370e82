import { z } from 'zod';
import type { DomainEvent } from '../domain/events.js';
import { presentMessages } from '../domain/messages/commands.js';
import type { MessageView } from '../domain/messages/present.js';
import type { Domain, EventSink } from '../domain/types.js';
import type { Logger } from '../logger.js';
import type { UnstoredPost } from '../store/postgres/postgres-store.js';
import type { Message } from '../store/store.js';

/** The LISTEN/NOTIFY channel carrying every event other than posts, as JSON (see relayedSchema). */
export const EVENT_CHANNEL = 'perch_events';

/** How many messages one catch-up read takes from the store. */
const READ_BATCH = 500;

const id = z.number().int().positive();

/**
 * Events as they cross front ends: what a front end needs to act as if the event were its own.
 * Messages never travel here (the store announces them by sequence); a changed message travels
 * by id and is read back from the store.
 */
const relayedSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message.changed'), roomId: id, messageId: id }),
  z.object({ type: z.literal('room.changed'), roomId: id }),
  z.object({ type: z.literal('room.access_changed'), roomId: id }),
  z.object({ type: z.literal('room.deleted'), roomId: id }),
  z.object({ type: z.literal('room.cleared'), roomId: id, upTo: z.number() }),
  z.object({
    type: z.literal('invitation'),
    userId: id,
    invitation: z.object({
      id,
      userId: id,
      roomId: id,
      invitedBy: id.nullable(),
      createdAt: z.number(),
      seenAt: z.number().nullable(),
    }),
  }),
  z.object({ type: z.literal('directory.changed') }),
  z.object({
    type: z.literal('user.signed_out'),
    userId: id,
    all: z.boolean(),
    tokenHash: z.string().max(200).optional(),
  }),
  z.object({ type: z.literal('settings.changed') }),
]);

type Relayed = z.infer<typeof relayedSchema>;

const envelopeSchema = z.object({ o: z.string().min(1).max(64), e: relayedSchema });

const unstoredSchema = z.object({
  r: id,
  s: id,
  m: z.object({
    authorId: id,
    createdAt: z.number(),
    body: z.string(),
    title: z.string().nullable(),
    alert: z.boolean(),
    fileId: id.nullable(),
    clientId: z.string().nullable(),
  }),
}) satisfies z.ZodType<UnstoredPost>;

interface RoomCursor {
  /** Every message up to here was handed to the hub, or needs no delivery here. */
  last: number;
  /** The highest sequence known to be committed. */
  target: number;
  /** Messages in hand (local posts, unstored posts) that need no store read. */
  views: Map<number, MessageView | Message>;
  pumping: boolean;
  retry: NodeJS.Timeout | undefined;
}

export interface FanOutOptions {
  d: Domain;
  /** Where events go once ordered: the bus the realtime hub listens to. */
  out: EventSink;
  /** Whether any local connection has joined the room (no store reads for rooms nobody here reads). */
  hasSubscribers(roomId: number): boolean;
  /** This process's id in the pool: notifications it sent itself are not applied twice. */
  origin: string;
  /** Sends a notification on EVENT_CHANNEL (after the event's commit). */
  notify(payload: string): Promise<void>;
  log: Logger;
  retryMs?: number;
}

/**
 * Pool fan-out: sits between the domain's event bus and the hub's. Every room's messages reach
 * the hub exactly in sequence order with no gap, whichever front end posted them: a local post
 * goes straight through when it is the next in its room; otherwise (another front end posted
 * the ones before it, or a notification was missed) the missing range is read from the store by
 * sequence first. The store announces every committed post by (room, sequence), so a late or
 * lost notification only delays a message. Other events are applied locally and relayed as JSON.
 */
export class FanOut {
  private readonly rooms = new Map<number, RoomCursor>();
  private readonly d: Domain;
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly opts: FanOutOptions) {
    this.d = opts.d;
    this.log = opts.log;
  }

  /** An event published by this front end's domain (after its commit). */
  local(event: DomainEvent): void {
    if (event.type === 'message') {
      this.advance(event.roomId, event.message.seq, event.message);
      return;
    }
    this.opts.out.publish(event);
    const relayed = toRelayed(event);
    if (!relayed) return;
    this.opts
      .notify(JSON.stringify({ o: this.opts.origin, e: relayed }))
      .catch((err: unknown) =>
        this.log.error({ err, event: event.type }, 'event not relayed to the pool'),
      );
  }

  /** A SEQUENCE_CHANNEL notification: `<roomId>:<seq>`, or an unstored post as JSON. */
  sequence(payload: string): void {
    if (payload.startsWith('{')) {
      const parsed = unstoredSchema.safeParse(safeJson(payload));
      if (!parsed.success) return this.log.warn({ payload }, 'unreadable post notification');
      const { r, s, m } = parsed.data;
      const message: Message = {
        ...m,
        // Not stored: no id, as the posting front end presents it.
        id: null as unknown as number,
        roomId: r,
        seq: s,
        state: 'normal',
        editedAt: null,
      };
      this.advance(r, s, message);
      return;
    }
    const match = /^(\d{1,15}):(\d{1,15})$/.exec(payload);
    if (!match) return this.log.warn({ payload }, 'unreadable post notification');
    this.advance(Number(match[1]), Number(match[2]));
  }

  /** An EVENT_CHANNEL notification from any front end of the pool (this one's are skipped). */
  event(payload: string): void {
    const parsed = envelopeSchema.safeParse(safeJson(payload));
    if (!parsed.success) return this.log.warn({ payload }, 'unreadable pool event');
    if (parsed.data.o === this.opts.origin) return;
    this.applyRemote(parsed.data.e).catch((err: unknown) =>
      this.log.error({ err, event: parsed.data.e.type }, 'pool event not applied'),
    );
  }

  /**
   * Sets where each room stands. At start-up (nobody connected yet) this is the baseline: every
   * later post is announced. After a lost LISTEN connection, it catches up: rooms with local
   * subscribers get what they missed read from the store, others just move on.
   */
  sync(rooms: { id: number; lastSeq: number }[]): void {
    for (const r of rooms) {
      if (!this.rooms.has(r.id) && !this.opts.hasSubscribers(r.id)) {
        this.rooms.set(r.id, cursor(r.lastSeq));
      } else {
        this.advance(r.id, r.lastSeq);
      }
    }
  }

  /** Rooms that local connections have joined (the periodic catch-up checks only these). */
  watchedRooms(): number[] {
    return [...this.rooms.keys()].filter((r) => this.opts.hasSubscribers(r));
  }

  /**
   * After notifications may have been lost, other events may have been too: drop every cache
   * and re-check every connection's access, as a directory change would.
   */
  resetCaches(): void {
    this.d.access.invalidateAll();
    this.d.settings.invalidate();
    this.opts.out.publish({ type: 'directory.changed' });
  }

  close(): void {
    this.closed = true;
    for (const c of this.rooms.values()) clearTimeout(c.retry);
  }

  /** Learns that `seq` is committed in the room (with its message when in hand). */
  private advance(roomId: number, seq: number, message?: MessageView | Message): void {
    let c = this.rooms.get(roomId);
    // A room first heard of after start-up was created after it: it starts at zero.
    if (!c) this.rooms.set(roomId, (c = cursor(0)));
    if (seq <= c.last) return;
    // Joins read their backfill up to the cached last sequence: keep it current before delivery.
    this.d.access.noteSeq(roomId, seq);
    if (message) c.views.set(seq, message);
    if (seq > c.target) c.target = seq;
    if (!c.pumping) void this.pump(roomId, c);
  }

  /** Hands the room's messages after `last` up to `target` to the hub, in order, one pump a room. */
  private async pump(roomId: number, c: RoomCursor): Promise<void> {
    c.pumping = true;
    try {
      while (c.last < c.target && !this.closed) {
        const next = c.last + 1;
        const held = c.views.get(next);
        if (held) {
          const view = 'author' in held ? held : (await presentMessages(this.d, [held]))[0]!;
          c.views.delete(next);
          c.last = next;
          this.deliver(roomId, view);
          continue;
        }
        if (!this.opts.hasSubscribers(roomId)) {
          // Nobody here reads the room: a later join reads the store itself.
          c.last = c.target;
          c.views.clear();
          break;
        }
        const end = Math.min(c.target, c.last + READ_BATCH);
        const rows = await this.d.store.history({ roomId, after: c.last, limit: READ_BATCH });
        const stored = new Map(
          (
            await presentMessages(
              this.d,
              rows.filter((m) => m.seq <= end),
            )
          ).map((v) => [v.seq, v]),
        );
        for (let seq = c.last + 1; seq <= end; seq++) {
          const inHand = c.views.get(seq);
          const view =
            stored.get(seq) ??
            (inHand === undefined
              ? undefined
              : 'author' in inHand
                ? inHand
                : (await presentMessages(this.d, [inHand]))[0]);
          c.views.delete(seq);
          c.last = seq;
          // A sequence with no message was not stored (history off) or is gone (cleared).
          if (view) this.deliver(roomId, view);
        }
      }
    } catch (err) {
      // The store is unreachable: the messages stay owed and are read again shortly.
      this.log.warn({ err, roomId }, 'pool catch-up read failed; retrying');
      clearTimeout(c.retry);
      c.retry = setTimeout(() => {
        c.retry = undefined;
        if (!c.pumping) void this.pump(roomId, c);
      }, this.opts.retryMs ?? 500);
      c.retry.unref();
    } finally {
      c.pumping = false;
    }
  }

  private deliver(roomId: number, message: MessageView): void {
    this.opts.out.publish({ type: 'message', roomId, message });
  }

  private async applyRemote(e: Relayed): Promise<void> {
    switch (e.type) {
      case 'message.changed': {
        const m = await this.d.store.getMessage(e.messageId);
        if (!m) return;
        const [message] = await presentMessages(this.d, [m]);
        this.opts.out.publish({ type: 'message.changed', roomId: e.roomId, message: message! });
        return;
      }
      case 'room.changed':
      case 'room.access_changed':
      case 'room.deleted':
        // Roles, privacy, category scope: cheaper to reload than to know which cache holds it.
        this.d.access.invalidateAll();
        if (e.type === 'room.deleted') this.forget(e.roomId);
        this.opts.out.publish(e);
        return;
      case 'directory.changed':
        this.d.access.invalidateAll();
        this.opts.out.publish(e);
        return;
      case 'settings.changed':
        this.d.settings.invalidate();
        this.opts.out.publish(e);
        return;
      case 'room.cleared':
      case 'user.signed_out':
        this.opts.out.publish(e);
        return;
      case 'invitation':
        this.opts.out.publish(e);
        return;
    }
  }

  private forget(roomId: number): void {
    const c = this.rooms.get(roomId);
    if (c) clearTimeout(c.retry);
    this.rooms.delete(roomId);
  }
}

function cursor(last: number): RoomCursor {
  return { last, target: last, views: new Map(), pumping: false, retry: undefined };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The form an event crosses front ends in; undefined for events that stay local. */
function toRelayed(event: Exclude<DomainEvent, { type: 'message' }>): Relayed | undefined {
  switch (event.type) {
    case 'message.changed':
      // History-off messages cannot change (only stored ones have an id).
      return event.message.id === null
        ? undefined
        : { type: event.type, roomId: event.roomId, messageId: event.message.id };
    case 'invitation':
      return { type: event.type, userId: event.userId, invitation: event.invitation };
    default:
      return event;
  }
}
