import type { WebSocket } from 'ws';
import type { Actor } from '../domain/types.js';
import type { MessageView } from '../domain/messages/present.js';
import { CloseCodes } from '../protocol/frames.js';
import { TokenBucket } from './rate-limit.js';

/** Per-room delivery state of one connection. */
export interface RoomSubscription {
  /** Highest sequence delivered to this connection; live events at or below it are dropped. */
  delivered: number;
  /** While a join's backfill is being read, live messages wait here (null once live). */
  pending: MessageView[] | null;
  /** True once the join succeeded and the user counts in the roster. */
  present: boolean;
}

export interface ConnectionLimits {
  maxBufferedBytes: number;
  maxPending: number;
}

let nextConnectionId = 1;

/**
 * One WebSocket client: its identity once authenticated, the rooms it has joined and what it has
 * been sent. Output goes through `sendRaw`, which cuts off a client whose unsent output grows past
 * the limit instead of letting server memory grow.
 */
export class Connection {
  readonly id = nextConnectionId++;
  actor: (Actor & { chatEnabled: boolean }) | undefined;
  tokenHash: string | undefined;
  readonly rooms = new Map<number, RoomSubscription>();
  readonly frames = new TokenBucket(200, 50);
  readonly posts = new TokenBucket(30, 10);
  /** Frames are handled one after another, in the order they arrived. */
  queue: Promise<void> = Promise.resolve();
  queued = 0;
  /** Work to run right after the current frame's reply is sent (a join's backlog release). */
  afterReply: (() => Promise<void>) | undefined;
  rateViolations = 0;
  alive = true;
  closed = false;

  constructor(
    readonly ws: WebSocket,
    readonly remote: string,
    private readonly limits: ConnectionLimits,
  ) {}

  /** Sends an already serialized frame; returns false if the connection is (now) closed. */
  sendRaw(raw: string): boolean {
    if (this.closed) return false;
    if (this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(CloseCodes.slowConsumer, 'slow_consumer');
      return false;
    }
    this.ws.send(raw);
    return true;
  }

  send(frame: Record<string, unknown>): boolean {
    return this.sendRaw(JSON.stringify(frame));
  }

  /** Closes with a code and reason; a peer that does not complete the close is dropped. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
      return;
    }
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** Buffers a live message during a join; returns false when the buffer overflowed. */
  buffer(sub: RoomSubscription, message: MessageView): boolean {
    if (!sub.pending) return true;
    if (sub.pending.length >= this.limits.maxPending) {
      this.close(CloseCodes.slowConsumer, 'slow_consumer');
      return false;
    }
    sub.pending.push(message);
    return true;
  }
}
