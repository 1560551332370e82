import type { NewMessage, StoreOps } from '../../src/store/store.js';

/** A stored plain-text post with no title, file, clientId or mentions unless given. */
export function buildNewMessage(
  roomId: number,
  authorId: number,
  body: string,
  extra: Partial<NewMessage> = {},
): NewMessage {
  return {
    roomId,
    authorId,
    body,
    title: null,
    alert: false,
    fileId: null,
    clientId: null,
    store: true,
    mentionUserIds: [],
    createdAt: 1_700_000_000_000,
    ...extra,
  };
}

/**
 * A user "alice", a category "General" (history kept unless `history` is false) and `rooms` open
 * rooms in it, named "room 0", "room 1", ...; returns their ids.
 */
export async function seedRooms(
  store: StoreOps,
  opts: { rooms?: number; history?: boolean; now?: number } = {},
): Promise<{ userId: number; categoryId: number; roomIds: number[] }> {
  const now = opts.now ?? 1_700_000_000_000;
  const user = await store.createPrincipal({ kind: 'user', name: 'alice', displayName: 'A' }, now);
  const category = await store.createCategory(
    {
      name: 'General',
      description: '',
      fileUpload: false,
      invitations: false,
      history: opts.history ?? true,
    },
    now,
  );
  const roomIds: number[] = [];
  for (let i = 0; i < (opts.rooms ?? 1); i += 1) {
    const room = await store.createRoom(
      {
        categoryId: category.id,
        name: `room ${i}`,
        description: '',
        privacy: 'open',
        type: 'normal',
        invitations: 'inherit',
        addinId: null,
        createdBy: user.id,
      },
      now,
    );
    roomIds.push(room.id);
  }
  return { userId: user.id, categoryId: category.id, roomIds };
}
