import { z } from 'zod';
import type { DomainEvent, EventLog, PoolEvent } from '../domain/events.js';
import { presentMessages } from '../domain/messages/commands.js';
import type { MessageView } from '../domain/messages/present.js';
import type { Domain, EventSink } from '../domain/types.js';
import type { Logger } from '../logger.js';
import { POOL_EVENT_CHANNEL, type UnstoredPost } from '../store/postgres/pg-tx-ops.js';
import type { Message } from '../store/store.js';

/** The LISTEN/NOTIFY channel announcing every logged event other than posts, by its log id. */
export const EVENT_CHANNEL = POOL_EVENT_CHANNEL;

/**
 * How long the pool's event log keeps an event: a front end whose database connection is down
 * longer than this drops every cache instead of replaying what it missed.
 */
export const EVENT_RETENTION_MS = 60 * 60_000;

/** How many messages one catch-up read takes from the store. */
const READ_BATCH = 500;

const id = z.number().int().positive();

/** Events as they cross front ends (PoolEvent), as the log holds them. */
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
]) satisfies z.ZodType<PoolEvent>;

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
  /** This process's id in the pool: events it logged itself are not applied twice. */
  origin: string;
  log: Logger;
  retryMs?: number;
}

/**
 * The event log of a front end (Domain.eventLog): each command writes its events into the
 * pool's log in its own transaction, under this process's id.
 */
export function poolEventLog(origin: string, clock: () => number = Date.now): EventLog {
  return {
    record: async (tx, events) => {
      await tx.appendPoolEvents(
        origin,
        events.map((e) => JSON.stringify(e)),
        clock(),
      );
    },
  };
}

/**
 * Pool fan-out: sits between the domain's event bus and the hub's. Every room's messages reach
 * the hub exactly in sequence order with no gap, whichever front end posted them: a local post
 * goes straight through when it is the next in its room; otherwise (another front end posted
 * the ones before it, or a notification was missed) the missing range is read from the store by
 * sequence first. The store announces every committed post by (room, sequence), so a late or
 * lost notification only delays a message. Other events go to the local hub at once and reach
 * the other front ends through the pool's event log (written with their change, see
 * poolEventLog), which each front end reads in id order: every one applied once, in order.
 */
export class FanOut {
  private readonly rooms = new Map<number, RoomCursor>();
  /** Where this front end stands in the event log, and the highest id known to be committed. */
  private readonly logCursor = {
    last: 0,
    target: 0,
    running: undefined as Promise<void> | undefined,
    again: false,
  };
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
    // The command logged it for the other front ends in its transaction.
    this.opts.out.publish(event);
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

  /** An EVENT_CHANNEL notification: the id of the last event a transaction logged. */
  event(payload: string): void {
    if (!/^\d{1,15}$/.test(payload)) return this.log.warn({ payload }, 'unreadable pool event');
    const id = Number(payload);
    if (id <= this.logCursor.target) return;
    this.logCursor.target = id;
    this.pumpEvents().catch((err: unknown) =>
      this.log.warn({ err }, 'reading the pool event log failed; retrying on the next beat'),
    );
  }

  /** The event log's baseline at start-up (nothing cached yet): later events are applied. */
  startEvents(head: number): void {
    this.logCursor.last = this.logCursor.target = head;
  }

  /**
   * Reads and applies every logged event up to `head` (the log's last id) not yet applied: after
   * a lost LISTEN connection and on every heartbeat, for notifications that never came.
   */
  async catchUpEvents(head: number): Promise<void> {
    if (head > this.logCursor.target) this.logCursor.target = head;
    await this.pumpEvents();
  }

  /** The last event log id applied here (or logged here). */
  get eventPosition(): number {
    return this.logCursor.last;
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

  /** One reader of the event log at a time; a call while it runs makes it look again. */
  private pumpEvents(): Promise<void> {
    const l = this.logCursor;
    if (l.running) {
      l.again = true;
      return l.running;
    }
    l.running = (async () => {
      try {
        do {
          l.again = false;
          await this.readEvents();
        } while (l.again && !this.closed);
      } finally {
        l.running = undefined;
      }
    })();
    return l.running;
  }

  private async readEvents(): Promise<void> {
    const l = this.logCursor;
    while (l.last < l.target && !this.closed) {
      const rows = await this.d.store.readPoolEvents(l.last, READ_BATCH);
      if (rows.length === 0 || rows[0]!.id !== l.last + 1) {
        // Ids have no gaps: the ones missing were pruned while this front end was away.
        this.log.warn(
          { from: l.last + 1, to: (rows[0]?.id ?? l.target + 1) - 1 },
          'pool events pruned before they were read here; dropping every cache',
        );
        this.resetCaches();
        if (rows.length === 0) {
          l.last = l.target;
          break;
        }
      }
      for (const row of rows) {
        if (row.origin !== this.opts.origin) {
          const parsed = relayedSchema.safeParse(safeJson(row.payload));
          if (parsed.success) await this.applyRemote(parsed.data);
          else this.log.warn({ id: row.id }, 'unreadable pool event skipped');
        }
        l.last = row.id;
      }
      if (l.last > l.target) l.target = l.last;
    }
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

  private async applyRemote(e: PoolEvent): Promise<void> {
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
