// Shapes the server sends. They come from the server's own modules (type-only imports, so
// nothing of the server ends up in the bundle) so that client and server cannot drift.
import type { MessageView } from '../../src/domain/messages/present.js';
import type { RoomView } from '../../src/domain/rooms/commands.js';
import type { FollowView, InvitationView } from '../../src/domain/me/commands.js';
import type { TopicFeedView } from '../../src/domain/me/feeds.js';
import type { RosterInfo } from '../../src/realtime/hub.js';

export type { MessageView, RoomView, FollowView, InvitationView, RosterInfo, TopicFeedView };

export interface SessionUser {
  id: number;
  name: string;
  displayName: string;
  isAdmin: boolean;
}

export interface Session {
  token: string;
  expiresAt: number;
  user: SessionUser;
}

export interface ServerLimits {
  defaultHistory: number;
  maxHistoryPage: number;
  maxMessageChars: number;
  maxFileSizeKb: number;
  participantUpdateLimit: number;
  searchLimit: number;
}

/** The `auth` frame's reply. */
export interface AuthReply {
  user: SessionUser;
  chatEnabled: boolean;
  server: { version: string; protocol: number; limits: ServerLimits };
}

/** The `join` reply, and each successful entry of a `bjoin` reply. */
export interface JoinReply {
  roomId: number;
  ok: true;
  room: RoomView;
  messages: MessageView[];
  more: boolean;
  roster: RosterInfo;
}

export type BjoinEntry = JoinReply | { roomId: number; ok: false; error: ErrorBody };

export interface HistoryReply {
  roomId: number;
  messages: MessageView[];
  more: boolean;
  lastSeq: number;
}

export interface SearchReply {
  messages: MessageView[];
  count: number;
  exceededLimit: boolean;
}

export interface CategoryView {
  id: number;
  name: string;
  description: string;
  canCreate?: boolean;
}

export interface PrincipalRef {
  id: number;
  kind: 'user' | 'group';
  name: string;
  displayName: string;
}

export interface ErrorBody {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** Frames the server pushes without a request. */
export type ServerEvent =
  | { type: 'message'; roomId: number; message: MessageView; backfill?: boolean }
  | { type: 'message_changed'; roomId: number; message: MessageView }
  | { type: 'room_changed'; roomId: number }
  | { type: 'room_cleared'; roomId: number; upTo: number }
  | {
      type: 'roster';
      roomId: number;
      event: 'join' | 'part';
      user: { id: number; name: string; displayName: string };
    }
  | { type: 'removed'; roomId: number; reason: string }
  | { type: 'invitation'; invitation: InvitationView }
  | { type: 'bye'; code: string; message: string };
