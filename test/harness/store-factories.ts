import type { NewMessage } from '../../src/store/store.js';

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
