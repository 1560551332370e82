// The postMessage API between the web client and a room's add-in pane (docs/web-client.md,
// "Add-in API"). Requests from the pane are accepted only from that frame's window and from the
// add-in URL's origin, are parsed with zod, and are rate-limited; posts go through the normal
// protocol as the signed-in user, so the server applies every permission check.
import { z } from 'zod';
import { takeToken, type Bucket, type Rate } from './logic.js';
import type { MessageView } from './types.js';

export const ADDIN_API_VERSION = 1;

/** Requests of any kind: a burst of 20, then 10 a second. */
export const requestRate: Rate = { perSecond: 10, burst: 20 };
/** Posts: a burst of 3, then one every 2 seconds. */
export const postRate: Rate = { perSecond: 0.5, burst: 3 };

const requestId = z.string().max(64).optional();
const requestSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('perch.ready'), id: requestId }),
  z.object({
    type: z.literal('perch.messages'),
    id: requestId,
    limit: z.number().int().min(1).max(100).optional(),
  }),
  z.object({
    type: z.literal('perch.post'),
    id: requestId,
    text: z.string().min(1).max(8000),
    title: z.string().min(1).max(256).optional(),
    alert: z.boolean().optional(),
  }),
]);

export type AddinRequest = z.infer<typeof requestSchema>;

/** A message as an add-in sees it. */
export interface AddinMessage {
  seq: number;
  ts: number;
  author: { name: string; displayName: string };
  text: string;
  title: string | null;
  alert: boolean;
}

export function toAddinMessage(m: MessageView): AddinMessage {
  return {
    seq: m.seq,
    ts: m.ts,
    author: { name: m.author.name, displayName: m.author.displayName },
    text: m.text,
    title: m.title,
    alert: m.alert,
  };
}

export interface AddinHost {
  /** The add-in URL's origin: the only origin requests are taken from and replies go to. */
  origin: string;
  /** The pane's window (the iframe's contentWindow). */
  target(): Window | null;
  context(): { room: { id: number; name: string }; user: { name: string; displayName: string } };
  /** The room's most recent messages the client holds, oldest first. */
  recent(limit: number): MessageView[];
  /** Posts as the user through the protocol; rejects with an error carrying a `code`. */
  post(p: { text: string; title?: string; alert?: boolean }): Promise<{ seq: number }>;
  now(): number;
}

/** Speaks the add-in API for one pane. Call `handle` for every window `message` event. */
export class AddinBridge {
  private requests: Bucket;
  private posts: Bucket;
  private ready = false;

  constructor(private readonly host: AddinHost) {
    const now = host.now();
    this.requests = { tokens: requestRate.burst, at: now };
    this.posts = { tokens: postRate.burst, at: now };
  }

  private send(data: Record<string, unknown>): void {
    this.host.target()?.postMessage(data, this.host.origin);
  }

  /** Handles a message event; anything not from the pane at the add-in's origin is ignored. */
  handle(e: MessageEvent): void {
    const target = this.host.target();
    if (!target || e.source !== target || e.origin !== this.host.origin) return;
    const parsed = requestSchema.safeParse(e.data);
    if (!parsed.success) {
      const id = (e.data as { id?: unknown } | null)?.id;
      this.send({
        type: 'perch.error',
        id: typeof id === 'string' ? id.slice(0, 64) : undefined,
        code: 'invalid_request',
        message: parsed.error.issues[0]?.message ?? 'invalid request',
      });
      return;
    }
    const req = parsed.data;
    const now = this.host.now();
    const r = takeToken(this.requests, now, requestRate);
    this.requests = r.bucket;
    if (!r.ok) return this.refuse(req.id, 'rate_limited', 'too many requests');
    switch (req.type) {
      case 'perch.ready':
        this.ready = true;
        this.send({
          type: 'perch.context',
          id: req.id,
          version: ADDIN_API_VERSION,
          ...this.host.context(),
        });
        return;
      case 'perch.messages':
        this.send({
          type: 'perch.messages',
          id: req.id,
          messages: this.host.recent(req.limit ?? 50).map(toAddinMessage),
        });
        return;
      case 'perch.post': {
        const p = takeToken(this.posts, now, postRate);
        this.posts = p.bucket;
        if (!p.ok) return this.refuse(req.id, 'rate_limited', 'too many posts');
        this.host.post({ text: req.text, title: req.title, alert: req.alert }).then(
          (reply) => this.send({ type: 'perch.posted', id: req.id, seq: reply.seq }),
          (err: unknown) => {
            const e2 = err as { code?: unknown; message?: unknown };
            this.refuse(
              req.id,
              typeof e2.code === 'string' ? e2.code : 'error',
              typeof e2.message === 'string' ? e2.message : String(err),
            );
          },
        );
        return;
      }
    }
  }

  /** Forwards a new message of the room, once the add-in said it is ready. */
  push(m: MessageView): void {
    if (this.ready) this.send({ type: 'perch.message', message: toAddinMessage(m) });
  }

  private refuse(id: string | undefined, code: string, message: string): void {
    this.send({ type: 'perch.error', id, code, message });
  }
}
