import type { Invitation, StoreOps } from '../store/store.js';
import type { MessageView } from './messages/present.js';
import type { Domain } from './types.js';

/** Events the domain publishes after commit; the realtime hub turns them into frames. */
export type DomainEvent =
  | { type: 'message'; roomId: number; message: MessageView }
  | { type: 'message.changed'; roomId: number; message: MessageView }
  | { type: 'room.changed'; roomId: number }
  /** Role, privacy, scope or disabled state changed: connected users must be re-checked. */
  | { type: 'room.access_changed'; roomId: number }
  | { type: 'room.deleted'; roomId: number }
  | { type: 'room.cleared'; roomId: number; upTo: number }
  | { type: 'invitation'; userId: number; invitation: Invitation }
  /** Group membership, admin flag, policy or category scope changed somewhere. */
  | { type: 'directory.changed' }
  | { type: 'user.signed_out'; userId: number; all: boolean; tokenHash?: string }
  /** Chat settings changed: caches of them (other front ends of a pool) must be dropped. */
  | { type: 'settings.changed' };

/**
 * An event as it crosses the front ends of an Enterprise Edition pool: what another front end
 * needs to act as if the event were its own. Posts never travel this way (the store announces
 * them by sequence); a changed message travels by id and is read back from the store.
 */
export type PoolEvent =
  ChangeEvent | { type: 'message.changed'; roomId: number; messageId: number };

/** The events that cross front ends as they are (every one but posts and changed messages). */
export type ChangeEvent = Exclude<DomainEvent, { type: 'message' | 'message.changed' }>;

/** Writes a change's events into the pool's event log, inside the change's transaction. */
export interface EventLog {
  record(tx: StoreOps, events: PoolEvent[]): Promise<void>;
}

/**
 * Logs the events of a change in its own transaction (call it last there), so that the other
 * front ends of a pool learn of them if and only if the change commits. Nothing is written
 * outside a pool. The caller still publishes them after the commit, as always.
 */
export async function logForPool(d: Domain, tx: StoreOps, events: PoolEvent[]): Promise<void> {
  if (d.eventLog && events.length > 0) await d.eventLog.record(tx, events);
}
