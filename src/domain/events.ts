import type { Invitation } from '../store/store.js';
import type { MessageView } from './messages/present.js';

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
