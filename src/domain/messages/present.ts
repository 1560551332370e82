import type { FileRecord, Message, Principal } from '../../store/store.js';

/** A message as clients see it. `id` is null in categories that keep no history. */
export interface MessageView {
  id: number | null;
  roomId: number;
  seq: number;
  author: { id: number; name: string; displayName: string };
  /** Server time of the commit, milliseconds since the epoch. */
  ts: number;
  text: string;
  title: string | null;
  alert: boolean;
  file: { id: number; name: string; size: number; contentType: string } | null;
  clientId: string | null;
  state: Message['state'];
}

export function presentMessage(
  m: Message,
  author: Pick<Principal, 'id' | 'name' | 'displayName'> | undefined,
  file?: FileRecord,
): MessageView {
  return {
    id: m.id,
    roomId: m.roomId,
    seq: m.seq,
    author: author
      ? { id: author.id, name: author.name, displayName: author.displayName }
      : { id: m.authorId, name: `#${m.authorId}`, displayName: 'unknown user' },
    ts: m.createdAt,
    text: m.body,
    title: m.title,
    alert: m.alert,
    file: fileView(file),
    clientId: m.clientId,
    state: m.state,
  };
}

/** How a message shows its attached file. */
export function fileView(file: FileRecord | undefined): MessageView['file'] {
  return file
    ? { id: file.id, name: file.name, size: file.size, contentType: file.contentType }
    : null;
}
