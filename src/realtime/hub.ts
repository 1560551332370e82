import { roomRights } from '../domain/access.js';
import { actorFor } from '../domain/directory/commands.js';
import type { DomainEvent } from '../domain/events.js';
import type { MessageView } from '../domain/messages/present.js';
import type { Domain } from '../domain/types.js';
import type { Logger } from '../logger.js';
import { CloseCodes } from '../protocol/frames.js';
import type { Connection, RoomSubscription } from './connection.js';

interface RoomState {
  conns: Set<Connection>;
  /** Connected users (a user with several connections counts once) and their connection count. */
  users: Map<number, { count: number; name: string; displayName: string }>;
  /** Above the participant-update limit: roster updates stop until below 80 % of it. */
  large: boolean;
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

  constructor(
    private readonly d: Domain,
    private readonly log: Logger,
  ) {}

  connectionCount(): number {
    let n = 0;
    for (const set of this.byUser.values()) n += set.size;
    return n;
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
    for (const message of pending)
      this.deliver(conn, sub, message, JSON.stringify({ type: 'message', roomId, message }));
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
        this.updateLarge(state, limit);
        if (!state.large) {
          this.broadcast(
            roomId,
            state,
            {
              type: 'roster',
              roomId,
              event: 'join',
              user: { id: actor.userId, name: actor.login, displayName: actor.displayName },
            },
            conn,
          );
        }
      }
    }
    return this.roster(roomId, limit)!;
  }

  roster(roomId: number, limit: number): RosterInfo | undefined {
    const state = this.rooms.get(roomId);
    if (!state) return undefined;
    this.updateLarge(state, limit);
    if (state.large) return { count: state.users.size, suppressed: true };
    return {
      count: state.users.size,
      suppressed: false,
      users: [...state.users].map(([id, u]) => ({ id, name: u.name, displayName: u.displayName })),
    };
  }

  private updateLarge(state: RoomState, limit: number): void {
    if (!state.large && state.users.size > limit) state.large = true;
    else if (state.large && state.users.size < limit * 0.8) state.large = false;
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
      const actor = conn.actor!;
      const entry = state.users.get(actor.userId);
      if (entry && --entry.count === 0) {
        state.users.delete(actor.userId);
        this.updateLarge(state, limit);
        if (!state.large) {
          this.broadcast(
            roomId,
            state,
            {
              type: 'roster',
              roomId,
              event: 'part',
              user: { id: actor.userId, name: actor.login, displayName: actor.displayName },
            },
            conn,
          );
        }
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
    raw: string,
  ): void {
    if (sub.pending) {
      conn.buffer(sub, message);
      return;
    }
    if (message.seq <= sub.delivered) return;
    sub.delivered = message.seq;
    conn.sendRaw(raw);
  }

  /** Sends a roster frame to the connections that have completed their join. */
  private broadcast(
    roomId: number,
    state: RoomState,
    frame: Record<string, unknown>,
    except: Connection,
  ): void {
    const raw = JSON.stringify(frame);
    for (const conn of state.conns) {
      if (conn !== except && conn.rooms.get(roomId)?.present) conn.sendRaw(raw);
    }
  }

  /** Handles a domain event (called by the event bus after commit). */
  handle(event: DomainEvent, limit: number): void {
    switch (event.type) {
      case 'message': {
        const state = this.rooms.get(event.roomId);
        if (!state) return;
        const raw = JSON.stringify({
          type: 'message',
          roomId: event.roomId,
          message: event.message,
        });
        for (const conn of state.conns) {
          const sub = conn.rooms.get(event.roomId);
          if (sub) this.deliver(conn, sub, event.message, raw);
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
        this.recheckRoom(
          event.roomId,
          limit,
          event.type === 'room.deleted' ? 'room_deleted' : undefined,
        );
        return;
      case 'invitation':
        for (const conn of this.byUser.get(event.userId) ?? [])
          conn.send({ type: 'invitation', invitation: event.invitation });
        return;
      case 'directory.changed':
        this.recheckAll(limit);
        return;
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

  private toRoom(roomId: number, frame: Record<string, unknown>): void {
    const state = this.rooms.get(roomId);
    if (!state) return;
    const raw = JSON.stringify(frame);
    for (const conn of state.conns) conn.sendRaw(raw);
  }

  /** Removes from a room every connection that may no longer read it ("kick"). */
  private recheckRoom(roomId: number, limit: number, forcedReason?: string): void {
    const state = this.rooms.get(roomId);
    if (!state) return;
    const conns = [...state.conns];
    void this.d.access
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
          if (reason) {
            this.leave(conn, roomId, limit);
            conn.send({ type: 'removed', roomId, reason });
          }
        }
      })
      .catch((err: unknown) => this.log.error({ err, roomId }, 'room re-check failed'));
  }

  /** After a directory or policy change: refresh each connection's actor and re-check its rooms. */
  private recheckAll(limit: number): void {
    this.d.access.invalidateDirectory();
    const work = async () => {
      for (const set of [...this.byUser.values()]) {
        for (const conn of [...set]) {
          if (conn.closed || !conn.actor) continue;
          const user = await this.d.store.getPrincipal(conn.actor.userId);
          if (!user || user.disabled) {
            conn.close(CloseCodes.signedOut, 'account_disabled');
            continue;
          }
          conn.actor = await actorFor(this.d, user);
          if (!conn.actor.chatEnabled) {
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
            if (!info || !roomRights(info, conn.actor).canRead) {
              this.leave(conn, roomId, limit);
              conn.send({ type: 'removed', roomId, reason: 'access_revoked' });
            }
          }
        }
      }
    };
    work().catch((err: unknown) => this.log.error({ err }, 'directory re-check failed'));
  }
}
