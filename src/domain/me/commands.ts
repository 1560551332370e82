import { z } from 'zod';
import { RoomNotFoundError } from '../../errors.js';
import type { Invitation } from '../../store/store.js';
import { roomRights } from '../access.js';
import { requireChat } from '../directory/commands.js';
import { loadRoom } from '../rooms/commands.js';
import type { Actor, Domain } from '../types.js';
import { parseInput } from '../validation.js';

export interface FollowView {
  roomId: number;
  name: string;
  lastReadSeq: number;
  lastSeq: number;
  unread: number;
  mentions: number;
}

/** Follows a room the actor can find; unread counting starts at the room's current sequence. */
export async function followRoom(d: Domain, actor: Actor, roomId: number): Promise<void> {
  requireChat(actor);
  const { info } = await loadRoom(d, actor, roomId);
  await d.store.follow(actor.userId, roomId, info.room.lastSeq, d.clock());
}

export async function unfollowRoom(d: Domain, actor: Actor, roomId: number): Promise<void> {
  requireChat(actor);
  await d.store.unfollow(actor.userId, roomId);
}

/**
 * Followed rooms with unread and mention counts. Rooms the actor can no longer read count
 * nothing (and secret ones the actor no longer finds are left out) so that nothing leaks.
 */
export async function listFollows(d: Domain, actor: Actor): Promise<FollowView[]> {
  requireChat(actor);
  const out: FollowView[] = [];
  for (const f of await d.store.listFollows(actor.userId)) {
    const info = await d.access.room(f.roomId);
    if (!info) continue;
    const rights = roomRights(info, actor);
    if (!rights.canFind) continue;
    const lastSeq = rights.canRead ? Math.max(f.lastSeq, info.room.lastSeq) : f.lastReadSeq;
    out.push({
      roomId: f.roomId,
      name: info.room.name,
      lastReadSeq: f.lastReadSeq,
      lastSeq,
      unread: Math.max(0, lastSeq - f.lastReadSeq),
      mentions: rights.canRead ? f.mentions : 0,
    });
  }
  return out;
}

export async function markRead(d: Domain, actor: Actor, input: unknown): Promise<void> {
  requireChat(actor);
  const v = parseInput(
    z.object({ roomId: z.number().int().positive(), seq: z.number().int().min(0) }).strict(),
    input,
    'mark read',
  );
  const { info } = await loadRoom(d, actor, v.roomId);
  await d.store.markRead(actor.userId, v.roomId, Math.min(v.seq, info.room.lastSeq));
}

export interface InvitationView extends Invitation {
  room: { id: number; name: string; description: string };
}

/** Invitations kept for the actor (unseen ones by default), for rooms the actor can still find. */
export async function listInvitations(
  d: Domain,
  actor: Actor,
  input: unknown,
): Promise<InvitationView[]> {
  requireChat(actor);
  const q = parseInput(
    z
      .object({
        all: z.boolean().default(false),
        limit: z.number().int().min(1).max(500).default(100),
      })
      .strict(),
    input ?? {},
    'invitations request',
  );
  const out: InvitationView[] = [];
  for (const inv of await d.store.listInvitations(actor.userId, {
    unseenOnly: !q.all,
    limit: q.limit,
  })) {
    const info = await d.access.room(inv.roomId);
    if (!info || !roomRights(info, actor).canFind) continue;
    out.push({
      ...inv,
      room: { id: info.room.id, name: info.room.name, description: info.room.description },
    });
  }
  return out;
}

export async function markInvitationsSeen(
  d: Domain,
  actor: Actor,
  input: unknown,
): Promise<{ updated: number }> {
  requireChat(actor);
  const v = parseInput(
    z.object({ ids: z.array(z.number().int().positive()).min(1).max(1000) }).strict(),
    input,
    'invitations seen',
  );
  return { updated: await d.store.markInvitationsSeen(actor.userId, v.ids, d.clock()) };
}

/** Throws `room_not_found` unless the actor can find the room (used by transports). */
export async function assertFindable(d: Domain, actor: Actor, roomId: number): Promise<void> {
  const info = await d.access.room(roomId);
  if (!info || !roomRights(info, actor).canFind) throw new RoomNotFoundError();
}
