import crypto from 'node:crypto';
import { z } from 'zod';
import {
  FileNotFoundError,
  FileTooLargeError,
  FileUploadDisabledError,
  MessageTooLargeError,
  PostNotAllowedError,
} from '../../errors.js';
import type { FileRecord } from '../../store/store.js';
import { roomRights } from '../access.js';
import { requireChat } from '../directory/commands.js';
import { postMessage, postSchema, replay, type PostResult } from '../messages/commands.js';
import { loadReadableRoom } from '../rooms/commands.js';
import type { Actor, Domain } from '../types.js';
import { hasControlChars, parseInput } from '../validation.js';

/** Lync's file transfer token lifetime. */
export const DOWNLOAD_TOKEN_TTL_MS = 30 * 60_000;

const uploadSchema = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(255)
      .refine(
        (v) => !hasControlChars(v) && !/[\t\n\r/\\]/.test(v),
        'must not contain control characters or slashes',
      ),
    contentType: z
      .string()
      .max(255)
      .regex(/^[\w.+-]+\/[\w.+-]+$/, 'must be a MIME type')
      .default('application/octet-stream'),
    text: z.string().max(8000).optional(),
    clientId: z.string().max(64).optional(),
  })
  .strict();

/**
 * Uploads a file into a room and posts a message linking to it. The category must allow uploads
 * and the actor must be allowed to post; the size is capped by the `maxFileSizeKb` setting.
 */
export async function uploadFile(
  d: Domain,
  actor: Actor,
  roomId: number,
  meta: unknown,
  data: Buffer,
): Promise<PostResult> {
  const v = parseInput(uploadSchema, meta, 'upload');
  const text = v.text ?? v.name;
  // The linking post is checked before anything is written, so that a refused post leaves no file.
  parseInput(postSchema, { text, clientId: v.clientId }, 'post');
  const { info, rights } = await loadReadableRoom(d, actor, roomId);
  if (!rights.canPost) throw new PostNotAllowedError();
  if (!info.category.fileUpload) throw new FileUploadDisabledError();
  const { maxFileSizeKb, maxMessageChars } = await d.settings.get();
  if (data.length > maxFileSizeKb * 1024) throw new FileTooLargeError(maxFileSizeKb);
  if (text.length > maxMessageChars) throw new MessageTooLargeError(maxMessageChars);
  // A retried upload returns the first post and stores nothing new.
  if (v.clientId !== undefined) {
    const earlier = await replay(d, actor, roomId, v.clientId);
    if (earlier) return earlier;
  }
  const stored = await d.files.put(data);
  const now = d.clock();
  let file: FileRecord;
  try {
    file = await d.store.transaction(async (tx) => {
      const f = await tx.createFile({
        roomId,
        uploaderId: actor.userId,
        name: v.name,
        contentType: v.contentType,
        size: stored.size,
        sha256: stored.sha256,
        storageKey: stored.key,
        createdAt: now,
      });
      await tx.recordActivity({
        kind: 'FILEUPLOAD',
        actorId: actor.userId,
        roomId,
        createdAt: now,
        payload: {
          fileId: f.id,
          name: f.name,
          size: f.size,
          sha256: f.sha256,
          contentType: f.contentType,
        },
      });
      return f;
    });
  } catch (err) {
    await d.files.remove(stored.key);
    throw err;
  }
  return postMessage(d, actor, roomId, { text, clientId: v.clientId }, file);
}

function sign(secret: Buffer, payload: string): string {
  return crypto.createHmac('sha256', secret).update(payload).digest('base64url');
}

/** Issues a short-lived download link token for a file in a room the actor may read. */
export async function createDownloadToken(
  d: Domain,
  actor: Actor,
  fileId: number,
): Promise<{ token: string; expiresAt: number; file: FileRecord }> {
  const file = Number.isSafeInteger(fileId) ? await d.store.getFile(fileId) : undefined;
  requireChat(actor);
  if (!file) throw new FileNotFoundError();
  try {
    await loadReadableRoom(d, actor, file.roomId);
  } catch {
    // Files in rooms the actor cannot read do not exist for them.
    throw new FileNotFoundError();
  }
  const expiresAt = d.clock() + DOWNLOAD_TOKEN_TTL_MS;
  const payload = `${file.id}.${actor.userId}.${expiresAt}`;
  return { token: `${payload}.${sign(d.secret, payload)}`, expiresAt, file };
}

/**
 * Checks a download token and that its user may still read the room, records the download for
 * compliance and returns the file with the path of its body.
 */
export async function openDownload(
  d: Domain,
  token: string,
): Promise<{ file: FileRecord; path: string }> {
  const parts = token.split('.');
  if (parts.length !== 4) throw new FileNotFoundError();
  const [fileId, userId, expiresAt, mac] = parts as [string, string, string, string];
  const expected = sign(d.secret, `${fileId}.${userId}.${expiresAt}`);
  const ok =
    mac.length === expected.length &&
    crypto.timingSafeEqual(Buffer.from(mac), Buffer.from(expected));
  if (!ok || Number(expiresAt) < d.clock()) throw new FileNotFoundError();
  const file = await d.store.getFile(Number(fileId));
  const user = await d.store.getPrincipal(Number(userId));
  if (!file || !user || user.disabled) throw new FileNotFoundError();
  const info = await d.access.room(file.roomId);
  const principalIds = await d.access.principalIds(user.id);
  if (!info || !roomRights(info, { principalIds, isAdmin: user.isAdmin }).canRead)
    throw new FileNotFoundError();
  await d.store.recordActivity({
    kind: 'FILEDOWNLOAD',
    actorId: user.id,
    roomId: file.roomId,
    createdAt: d.clock(),
    payload: { fileId: file.id, name: file.name, size: file.size },
  });
  return { file, path: d.files.path(file.storageKey) };
}
