import { roomRights } from '../domain/access.js';
import { actorFor } from '../domain/directory/commands.js';
import { partRoom } from '../domain/messages/commands.js';
import type { DomainEvent } from '../domain/events.js';
import type { MessageView } from '../domain/messages/present.js';
import type { Actor, Domain } from '../domain/types.js';
import type { Logger } from '../logger.js';
import type { Invitation } from '../store/store.js';
import { CloseCodes } from '../protocol/frames.js';
import type { HubConnection as Connection, RoomSubscription } from './connection.js';
import { OutgoingFrame } from './frame.js';

interface RoomState {
  conns: Set<Connection>;
  /** Connected users (a user with several connections counts once) and their connection count. */
  users: Map<number, { count: number; name: string; displayName: string }>;
  /** Above the participant-update limit: roster updates stop until below 80 % of it. */
  large: boolean;
}

/**
 * A room with more connections than this gets each message in slices of this many connections,
 * one slice per turn of the event loop (see Hub.fanOut).
 */
export const FAN_OUT_SLICE = 500;

export interface HubOptions {
  /** Connections served per turn of the event loop in a large room's fan-out (tests lower it). */
  fanOutSlice?: number;
}

/** A large room's fan-out under way: the room's messages waiting for it, in sequence order. */
interface FanOutJob {
  queue: MessageView[];
  done: Promise<void>;
}

export interface RosterInfo {
  count: number;
  suppressed: boolean;
  users?: { id: number; name: string; displayName: string }[];
}

/**
 * Routes live events to connections: messages in sequence order with no duplicates, roster
 * updates within the participant-update limit, and removals when access is lost.
 */
export class Hub {
  private readonly rooms = new Map<number, RoomState>();
  private readonly byUser = new Map<number, Set<Connection>>();
  /** Large rooms whose fan-out is under way, by room id. */
  private readonly fanOuts = new Map<number, FanOutJob>();
  private readonly slice: number;

  constructor(
    private readonly d: Domain,
    private readonly log: Logger,
    opts: HubOptions = {},
  ) {
    this.slice = opts.fanOutSlice ?? FAN_OUT_SLICE;
  }

  connectionCount(): number {
    let n = 0;
    for (const set of this.byUser.values()) n += set.size;
    return n;
  }

  /** Connected users (a user with several connections counts once). */
  userCount(): number {
    return this.byUser.size;
  }

  /** Whether any connection here has joined (or is joining) the room: the cluster's cue. */
  hasRoom(roomId: number): boolean {
    return this.rooms.has(roomId);
  }

  addConnection(conn: Connection): void {
    const userId = conn.actor!.userId;
    let set = this.byUser.get(userId);
    if (!set) this.byUser.set(userId, (set = new Set()));
    set.add(conn);
  }

  /** Starts buffering live messages for a room before its backfill is read. */
  subscribe(conn: Connection, roomId: number): RoomSubscription {
    let state = this.rooms.get(roomId);
    if (!state)
      this.rooms.set(roomId, (state = { conns: new Set(), users: new Map(), large: false }));
    let sub = conn.rooms.get(roomId);
    if (!sub) {
      sub = { delivered: 0, pending: [], present: false };
      conn.rooms.set(roomId, sub);
      state.conns.add(conn);
    } else if (!sub.pending) {
      sub.pending = [];
    }
    return sub;
  }

  /**
   * Ends buffering: sends the live messages that arrived during the backfill and are newer than
   * what it delivered, then delivers live.
   */
  goLive(conn: Connection, roomId: number): void {
    const sub = conn.rooms.get(roomId);
    if (!sub || !sub.pending) return;
    const pending = sub.pending;
    sub.pending = null;
    for (const message of pending) this.deliver(conn, sub, message, messageFrame(roomId, message));
  }

  /** Counts the connection's user in the room's roster; returns what the joiner should see. */
  enterRoster(conn: Connection, roomId: number, limit: number): RosterInfo {
    const state = this.rooms.get(roomId)!;
    const sub = conn.rooms.get(roomId)!;
    const actor = conn.actor!;
    if (!sub.present) {
      sub.present = true;
      const entry = state.users.get(actor.userId);
      if (entry) entry.count += 1;
      else {
        state.users.set(actor.userId, {
          count: 1,
          name: actor.login,
          displayName: actor.displayName,
        });
        this.rosterChanged(roomId, state, limit, 'join', conn);
      }
    }
    return this.roster(roomId)!;
  }

  /** The room's roster as a joiner sees it; only the count while updates are suppressed. */
  roster(roomId: number): RosterInfo | undefined {
    const state = this.rooms.get(roomId);
    if (!state) return undefined;
    if (state.large) return { count: state.users.size, suppressed: true };
    return { count: state.users.size, suppressed: false, users: rosterUsers(state) };
  }

  /**
   * After a user joined or left: re-evaluates the participant-update limit and tells the others.
   * Above the limit roster updates stop (one `suppressed` event says so); below 80 % of it they
   * resume with a `sync` event carrying the whole list, then `join`/`part` again.
   */
  private rosterChanged(
    roomId: number,
    state: RoomState,
    limit: number,
    event: 'join' | 'part',
    conn: Connection,
  ): void {
    const actor = conn.actor!;
    const was = state.large;
    if (!state.large && state.users.size > limit) state.large = true;
    else if (state.large && state.users.size < limit * 0.8) state.large = false;
    const count = state.users.size;
    let frame: Record<string, unknown> | undefined;
    if (state.large && !was) frame = { type: 'roster', roomId, event: 'suppressed', count };
    else if (!state.large && was) {
      frame = { type: 'roster', roomId, event: 'sync', count, users: rosterUsers(state) };
    } else if (!state.large) {
      const user = { id: actor.userId, name: actor.login, displayName: actor.displayName };
      frame = { type: 'roster', roomId, event, user, count };
    }
    if (frame) this.broadcast(roomId, state, frame, conn);
  }

  /** Removes the connection from a room; returns whether it had joined. */
  leave(conn: Connection, roomId: number, limit: number): boolean {
    const sub = conn.rooms.get(roomId);
    if (!sub) return false;
    conn.rooms.delete(roomId);
    const state = this.rooms.get(roomId);
    if (!state) return sub.present;
    state.conns.delete(conn);
    if (sub.present) {
      const entry = state.users.get(conn.actor!.userId);
      if (entry && --entry.count === 0) {
        state.users.delete(conn.actor!.userId);
        this.rosterChanged(roomId, state, limit, 'part', conn);
      }
    }
    if (state.conns.size === 0) this.rooms.delete(roomId);
    return sub.present;
  }

  /** Forgets a closed connection everywhere; returns the rooms it had joined. */
  removeConnection(conn: Connection, limit: number): number[] {
    const joined: number[] = [];
    for (const roomId of [...conn.rooms.keys()])
      if (this.leave(conn, roomId, limit)) joined.push(roomId);
    const set = conn.actor && this.byUser.get(conn.actor.userId);
    if (set) {
      set.delete(conn);
      if (set.size === 0) this.byUser.delete(conn.actor!.userId);
    }
    return joined;
  }

  /** Marks what a join's backfill delivered. */
  delivered(conn: Connection, roomId: number, seq: number): void {
    const sub = conn.rooms.get(roomId);
    if (sub && seq > sub.delivered) sub.delivered = seq;
  }

  private deliver(
    conn: Connection,
    sub: RoomSubscription,
    message: MessageView,
    frame: OutgoingFrame,
  ): void {
    if (sub.pending) {
      conn.buffer(sub, message);
      return;
    }
    if (message.seq <= sub.delivered) return;
    sub.delivered = message.seq;
    conn.sendFrame(frame);
  }

  /** `deliver` for several messages of one room in sequence order, written together. */
  private deliverAll(
    conn: Connection,
    sub: RoomSubscription,
    messages: MessageView[],
    frames: OutgoingFrame[],
  ): void {
    if (messages.length === 1) return this.deliver(conn, sub, messages[0]!, frames[0]!);
    if (sub.pending) {
      for (const message of messages) if (!conn.buffer(sub, message)) return;
      return;
    }
    const out: OutgoingFrame[] = [];
    for (let i = 0; i < messages.length; i++) {
      const seq = messages[i]!.seq;
      if (seq <= sub.delivered) continue;
      sub.delivered = seq;
      out.push(frames[i]!);
    }
    if (out.length > 0) conn.sendFrames(out);
  }

  /** Sends a roster frame to the connections that have completed their join. */
  private broadcast(
    roomId: number,
    state: RoomState,
    frame: Record<string, unknown>,
    except: Connection,
  ): void {
    const out = new OutgoingFrame(JSON.stringify(frame), frame);
    for (const conn of state.conns) {
      if (conn !== except && conn.rooms.get(roomId)?.present) conn.sendFrame(out);
    }
  }

  private readonly queued: { event: DomainEvent; limit: number }[] = [];
  private flushScheduled = false;
  /** A flush is under way (it may be waiting on the store); `flushed` settles when it ends. */
  private flushing = false;
  private flushed: Promise<void> = Promise.resolve();

  /**
   * Takes a domain event (from the event bus, after commit) and routes it once the current turn
   * of the event loop is over (setImmediate), all events in the order they came. The command
   * that published it finishes first: a post's reply reaches the poster before the fan-out of
   * its message to the room's other connections begins, and a group commit's posts are all
   * acknowledged before their fan-outs.
   *
   * An event whose routing needs the store (an access re-check, an invitation) holds back the
   * events after it until it is done: a connection that lost a room is removed before any later
   * message of that room could reach it, and every connection sees events in the order they
   * were committed.
   */
  handle(event: DomainEvent, limit: number): void {
    this.queued.push({ event, limit });
    if (this.flushScheduled || this.flushing) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushed = this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queued.length > 0) {
        for (const { event, limit } of this.queued.splice(0)) {
          try {
            // Anything but a message waits for the large rooms' fan-outs under way: a removal,
            // an edit or a room change never overtakes a message committed before it.
            if (event.type !== 'message' && this.fanOuts.size > 0) await this.fanOutsDone();
            const pending = this.route(event, limit);
            if (pending) await pending;
          } catch (err) {
            this.log.error({ err, event: event.type }, 'event routing failed');
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private route(event: DomainEvent, limit: number): Promise<void> | undefined {
    switch (event.type) {
      case 'message': {
        const job = this.fanOuts.get(event.roomId);
        if (job) {
          // Behind the room's earlier messages, which are still being sent.
          job.queue.push(event.message);
          return;
        }
        const state = this.rooms.get(event.roomId);
        if (!state) return;
        if (state.conns.size > this.slice) {
          this.fanOut(event.roomId, event.message);
          return;
        }
        // Serialised and framed once for every recipient.
        const frame = messageFrame(event.roomId, event.message);
        for (const conn of state.conns) {
          const sub = conn.rooms.get(event.roomId);
          if (sub) this.deliver(conn, sub, event.message, frame);
        }
        return;
      }
      case 'message.changed':
        this.toRoom(event.roomId, {
          type: 'message_changed',
          roomId: event.roomId,
          message: event.message,
        });
        return;
      case 'room.changed':
        this.toRoom(event.roomId, { type: 'room_changed', roomId: event.roomId });
        return;
      case 'room.cleared':
        this.toRoom(event.roomId, { type: 'room_cleared', roomId: event.roomId, upTo: event.upTo });
        return;
      case 'room.access_changed':
      case 'room.deleted':
        return this.recheckRoom(
          event.roomId,
          limit,
          event.type === 'room.deleted' ? 'room_deleted' : undefined,
        );
      case 'invitation':
        return this.invite(event.userId, event.invitation).catch((err: unknown) =>
          this.log.error({ err }, 'invitation delivery failed'),
        );
      case 'directory.changed':
        return this.recheckAll(limit);
      case 'user.signed_out':
        for (const conn of [...(this.byUser.get(event.userId) ?? [])]) {
          if (event.all || conn.tokenHash === event.tokenHash) {
            conn.send({
              type: 'error',
              id: null,
              code: 'unauthenticated',
              message: 'session ended',
            });
            conn.close(CloseCodes.signedOut, 'signed_out');
          }
        }
        return;
    }
  }

  /**
   * Sends a large room's messages to its connections a slice at a time, one slice per turn of
   * the event loop, so that a post to thousands of sockets does not hold up everything else:
   * between slices the server reads frames, acknowledges posts and routes other rooms' messages.
   * The room's later messages queue behind it (`FanOutJob.queue`), so each connection still gets
   * the room's messages in sequence order; events other than messages wait for every fan-out
   * under way (see flush). Each connection's subscription is looked up when its slice is sent:
   * one that left the room (or was closed) in between gets nothing more.
   */
  private fanOut(roomId: number, first: MessageView): void {
    const job: FanOutJob = { queue: [first], done: Promise.resolve() };
    this.fanOuts.set(roomId, job);
    job.done = (async () => {
      try {
        while (job.queue.length > 0) {
          // Messages that queued while the last ones were sent go out together: a connection
          // gets them in one write, so a backlog costs fewer writes, not more turns.
          const messages = job.queue.splice(0);
          const state = this.rooms.get(roomId);
          if (!state) continue;
          // Serialised and framed once for every recipient.
          const frames = messages.map((m) => messageFrame(roomId, m));
          const conns = [...state.conns];
          for (let start = 0; start < conns.length; start += this.slice) {
            if (start > 0) await nextTurn();
            const end = Math.min(conns.length, start + this.slice);
            for (let i = start; i < end; i++) {
              const conn = conns[i]!;
              const sub = conn.rooms.get(roomId);
              if (!sub) continue;
              try {
                this.deliverAll(conn, sub, messages, frames);
              } catch (err) {
                this.log.error({ err, roomId, conn: conn.id }, 'fan-out to a connection failed');
              }
            }
          }
        }
      } finally {
        // Reached with an empty queue and no await since it was last looked at: nothing is left.
        this.fanOuts.delete(roomId);
      }
    })();
  }

  /** Resolves when no large room's fan-out is under way. */
  private async fanOutsDone(): Promise<void> {
    while (this.fanOuts.size > 0) await Promise.all([...this.fanOuts.values()].map((j) => j.done));
  }

  /** Sends an invitation with its room, as `invitations` lists them, to the user's connections. */
  private async invite(userId: number, invitation: Invitation): Promise<void> {
    const conns = this.byUser.get(userId);
    if (!conns) return;
    const info = await this.d.access.room(invitation.roomId);
    if (!info) return;
    const { id, name, description } = info.room;
    const frame = {
      type: 'invitation',
      invitation: { ...invitation, room: { id, name, description } },
    };
    for (const conn of conns) conn.send(frame);
  }

  private toRoom(roomId: number, frame: Record<string, unknown>): void {
    const state = this.rooms.get(roomId);
    if (!state) return;
    const out = new OutgoingFrame(JSON.stringify(frame), frame);
    for (const conn of state.conns) conn.sendFrame(out);
  }

  /** Removes from a room every connection that may no longer read it ("kick"). */
  private recheckRoom(
    roomId: number,
    limit: number,
    forcedReason?: string,
  ): Promise<void> | undefined {
    const state = this.rooms.get(roomId);
    if (!state) return;
    const conns = [...state.conns];
    return this.d.access
      .room(roomId)
      .then((info) => {
        for (const conn of conns) {
          if (!conn.actor || !conn.rooms.has(roomId)) continue;
          const reason =
            forcedReason ??
            (!info
              ? 'room_deleted'
              : info.room.disabled
                ? 'room_disabled'
                : roomRights(info, conn.actor).canRead
                  ? undefined
                  : 'access_revoked');
          if (reason) this.kick(conn, roomId, reason, limit);
        }
      })
      .catch((err: unknown) => this.log.error({ err, roomId }, 'room re-check failed'));
  }

  /** Takes a connection out of a room it may no longer read and records the part. */
  private kick(conn: Connection, roomId: number, reason: string, limit: number): void {
    const actor = conn.actor!;
    if (this.leave(conn, roomId, limit)) this.recordPart(actor, roomId);
    conn.send({ type: 'removed', roomId, reason });
  }

  private readonly parts = new Set<Promise<void>>();

  /** Records a compliance PART in the background; `settled()` waits for all of them. */
  recordPart(actor: Actor, roomId: number): void {
    const p = partRoom(this.d, actor, roomId)
      .catch((err: unknown) => this.log.error({ err, roomId }, 'recording part failed'))
      .finally(() => this.parts.delete(p));
    this.parts.add(p);
  }

  /**
   * Resolves when the events being routed are done and every PART record started so far is
   * written (before the store closes).
   */
  async settled(): Promise<void> {
    await this.flushed;
    await this.fanOutsDone();
    while (this.parts.size > 0) await Promise.all([...this.parts]);
  }

  /** After a directory or policy change: refresh each connection's actor and re-check its rooms. */
  private recheckAll(limit: number): Promise<void> {
    this.d.access.invalidateDirectory();
    const work = async () => {
      // Once per user, not per connection: the later events wait for this (see handle()).
      for (const [userId, set] of [...this.byUser]) {
        const conns = [...set].filter((conn) => !conn.closed && conn.actor);
        if (conns.length === 0) continue;
        const user = await this.d.store.getPrincipal(userId);
        if (!user || user.disabled) {
          for (const conn of conns) conn.close(CloseCodes.signedOut, 'account_disabled');
          continue;
        }
        const actor = await actorFor(this.d, user);
        for (const conn of conns) {
          conn.actor = actor;
          if (!actor.chatEnabled) {
            conn.send({
              type: 'error',
              id: null,
              code: 'chat_disabled',
              message: 'persistent chat is not enabled for this user by policy',
            });
            conn.close(CloseCodes.chatDisabled, 'chat_disabled');
            continue;
          }
          for (const roomId of [...conn.rooms.keys()]) {
            const info = await this.d.access.room(roomId);
            if (!info || !roomRights(info, actor).canRead) {
              this.kick(conn, roomId, 'access_revoked', limit);
            }
          }
        }
      }
    };
    return work().catch((err: unknown) => this.log.error({ err }, 'directory re-check failed'));
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function messageFrame(roomId: number, message: MessageView): OutgoingFrame {
  const frame = { type: 'message', roomId, message };
  return new OutgoingFrame(JSON.stringify(frame), frame);
}

function rosterUsers(state: RoomState): { id: number; name: string; displayName: string }[] {
  return [...state.users].map(([id, u]) => ({ id, name: u.name, displayName: u.displayName }));
}
