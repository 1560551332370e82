import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Actor } from '../domain/types.js';
import type { MessageView } from '../domain/messages/present.js';
import { SlowConsumerError } from '../errors.js';
import { CloseCodes } from '../protocol/frames.js';
import { sendFrame, type OutgoingFrame } from './frame.js';
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

/** How long a peer has to complete the close handshake (and read what was queued before it). */
const closeGraceMs = 5_000;

/** Per-connection rate limits: token buckets of `burst` tokens refilled at `perSecond`. */
export const RateLimits = {
  frames: { burst: 200, perSecond: 50 },
  posts: { burst: 30, perSecond: 10 },
  /** Frames accepted but not yet answered; more are refused with `rate_limited`. */
  maxQueued: 64,
  /** Consecutive refused frames after which the connection is closed (4029). */
  maxViolations: 200,
} as const;

/**
 * What the hub routes to: one signed-in client session, whatever its transport (a WebSocket of
 * the Perch protocol, or an XMPP stream of the gateway in src/xmpp). It holds the identity, the
 * rooms joined and what each has been delivered; the transport turns hub frames into its wire
 * format and cuts off a client that does not read.
 */
export abstract class HubConnection {
  readonly id = nextConnectionId++;
  actor: (Actor & { chatEnabled: boolean }) | undefined;
  tokenHash: string | undefined;
  readonly rooms = new Map<number, RoomSubscription>();
  closed = false;
  /** Takes the connection out of the hub; runs once, when closing starts or the socket closes. */
  private detach: (() => void) | undefined;

  constructor(
    readonly remote: string,
    protected readonly limits: ConnectionLimits,
  ) {}

  /** Sends a frame built once for many connections (a fan-out); false if (now) closed. */
  abstract sendFrame(frame: OutgoingFrame): boolean;

  /** Sends frames in order (a room's messages that queued during a fan-out); false if closed. */
  sendFrames(frames: readonly OutgoingFrame[]): boolean {
    for (const frame of frames) if (!this.sendFrame(frame)) return false;
    return true;
  }

  /** Sends one frame (an object of the Perch protocol); false if (now) closed. */
  abstract send(frame: Record<string, unknown>): boolean;

  /** Closes with a Perch close code and reason; no more events are routed here. */
  abstract close(code: number, reason: string): void;

  /** Cuts off a client that does not read fast enough (typed error `slow_consumer`). */
  protected abstract cutOff(): void;

  onDetach(fn: () => void): void {
    this.detach = fn;
  }

  /** Runs the detach hook (at most once): no more events are routed to this connection. */
  detachOnce(): void {
    const fn = this.detach;
    this.detach = undefined;
    fn?.();
  }

  /** Buffers a live message during a join; returns false when the buffer overflowed. */
  buffer(sub: RoomSubscription, message: MessageView): boolean {
    if (!sub.pending) return true;
    if (sub.pending.length >= this.limits.maxPending) {
      this.cutOff();
      return false;
    }
    sub.pending.push(message);
    return true;
  }
}

/**
 * One WebSocket client. Output goes through `sendRaw`, which cuts off a client whose unsent output
 * grows past the limit instead of letting server memory grow.
 */
export class Connection extends HubConnection {
  readonly frames = new TokenBucket(RateLimits.frames.burst, RateLimits.frames.perSecond);
  readonly posts = new TokenBucket(RateLimits.posts.burst, RateLimits.posts.perSecond);
  /** Frames are handled one after another, in the order they arrived. */
  queue: Promise<void> = Promise.resolve();
  queued = 0;
  /** Work to run right after the current frame's reply is sent (a join's backlog release). */
  afterReply: (() => Promise<void>) | undefined;
  rateViolations = 0;
  alive = true;

  constructor(
    readonly ws: WebSocket,
    remote: string,
    limits: ConnectionLimits,
  ) {
    super(remote, limits);
  }

  /** Sends an already serialized frame; returns false if the connection is (now) closed. */
  sendRaw(raw: string): boolean {
    if (!this.mayWrite()) return false;
    this.ws.send(raw);
    return true;
  }

  sendFrame(frame: OutgoingFrame): boolean {
    if (!this.mayWrite()) return false;
    sendFrame(this.ws, frame);
    return true;
  }

  /** Several frames in one write to the socket (corked), instead of one write each. */
  override sendFrames(frames: readonly OutgoingFrame[]): boolean {
    if (frames.length === 1) return this.sendFrame(frames[0]!);
    const socket = (this.ws as unknown as { _socket?: Socket | null })._socket;
    socket?.cork();
    try {
      return super.sendFrames(frames);
    } finally {
      socket?.uncork();
    }
  }

  private mayWrite(): boolean {
    if (this.closed) return false;
    if (this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.cutOff();
      return false;
    }
    return true;
  }

  send(frame: Record<string, unknown>): boolean {
    return this.sendRaw(JSON.stringify(frame));
  }

  /**
   * Closes with a code and reason and stops routing events here at once; a peer that does not
   * complete the close handshake within the grace period is dropped.
   */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.detachOnce();
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
      return;
    }
    setTimeout(() => this.ws.terminate(), closeGraceMs).unref();
  }

  /** Cuts off a client that does not read fast enough: a typed error, then close 4008. */
  protected cutOff(): void {
    const e = new SlowConsumerError();
    // Bypasses the buffer check: this one small frame tells the client why it is cut off.
    this.ws.send(JSON.stringify({ type: 'error', id: null, code: e.code, message: e.message }));
    this.close(CloseCodes.slowConsumer, 'slow_consumer');
  }
}
