import {
  clientFrameSchemas,
  CloseCodes,
  type ClientFrameType,
  type FrameOf,
} from '../../src/protocol/frames.js';
import { activeServers, ApiError } from './api.js';
import { backoffMs } from './logic.js';
import type { AuthReply, ErrorBody, ServerEvent } from './types.js';

export type ConnectionStatus = 'connecting' | 'syncing' | 'online' | 'offline' | 'stopped';

export interface SocketHandlers {
  status(status: ConnectionStatus, retryAt?: number): void;
  /** Runs after every successful auth (first connect and each reconnect), before `online`. */
  ready(auth: AuthReply): Promise<void>;
  event(event: ServerEvent): void;
  /** The token is no longer valid (signed out elsewhere, expired): the session is over. */
  sessionEnded(reason: string): void;
  /**
   * Signed in on this server: '' (the page's own) or another front end of the pool, which the
   * HTTP calls should use too.
   */
  server(server: string): void;
}

type Fields<K extends ClientFrameType> = Omit<FrameOf<K>, 'type' | 'id'>;

interface Pending {
  resolve(data: unknown): void;
  reject(err: Error): void;
}

/** The WebSocket address of a server ('' is the page's own), at `path`. */
function socketUrl(server: string, path: string): string {
  const base = server === '' ? location.origin : server;
  return `${base.replace(/^http/, 'ws')}${path}`;
}

/**
 * The WebSocket connection: authenticates with the token, correlates requests and replies by id,
 * and reconnects with backoff whenever the connection drops, until stopped. Every outgoing frame
 * is checked against the server's own frame schema before it is sent. An idle front end of a
 * pool refuses the session naming the active ones: the socket moves to one of them at once, and
 * after a later lost connection tries the next one it knows (the page's own server last).
 */
export class ChatSocket {
  private ws: WebSocket | null = null;
  /** Servers to try; servers[current] is the one in use. */
  private servers = [''];
  private current = 0;
  /** Refused by an idle front end: the close that follows moves on without waiting. */
  private moving = false;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private authed = false;
  status: ConnectionStatus = 'connecting';

  /** `path`: `/ws`, or `/ws/pool/{name}` for another pool's rooms relayed by this pool. */
  constructor(
    private readonly token: string,
    private readonly on: SocketHandlers,
    private readonly path = '/ws',
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close(CloseCodes.normal, 'signed out');
    this.ws = null;
    this.failPending('disconnected', 'signed out');
    this.setStatus('stopped');
  }

  /** Reconnects now instead of waiting for the backoff timer. */
  retryNow(): void {
    if (this.stopped || this.status !== 'offline') return;
    clearTimeout(this.timer);
    this.connect();
  }

  /** Sends a request frame and resolves with the reply's data; rejects with ApiError. */
  request<K extends ClientFrameType>(type: K, fields: Fields<K>): Promise<unknown> {
    const id = String(this.nextId++);
    const frame = { type, id, ...fields };
    const checked = clientFrameSchemas[type].safeParse(frame);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      return Promise.reject(
        new ApiError({
          code: 'invalid_request',
          message: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
        }),
      );
    }
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || (!this.authed && type !== 'auth')) {
      return Promise.reject(new ApiError({ code: 'disconnected', message: 'not connected' }));
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      ws.send(JSON.stringify(frame));
    });
  }

  private setStatus(status: ConnectionStatus, retryAt?: number): void {
    this.status = status;
    this.on.status(status, retryAt);
  }

  private connect(): void {
    this.setStatus('connecting');
    const ws = new WebSocket(socketUrl(this.servers[this.current] ?? '', this.path));
    this.ws = ws;
    this.authed = false;
    ws.addEventListener('open', () => {
      this.request('auth', { token: this.token }).then(
        (data) => this.onAuthed(ws, data as AuthReply),
        (err: unknown) => {
          if (err instanceof ApiError && err.code === 'unauthenticated') {
            this.stopped = true;
            this.on.sessionEnded('session_ended');
            ws.close();
          }
          const active = activeServers(err);
          if (active.length > 0) {
            // Any of them will do; spread the clients an idle front end turns away.
            this.servers = [...new Set([...active, ''])];
            this.current = Math.floor(Math.random() * active.length);
            this.moving = true;
          }
          // Anything else: the close that follows schedules a retry.
        },
      );
    });
    ws.addEventListener('message', (e: MessageEvent) => this.onFrame(e.data));
    ws.addEventListener('close', (e: CloseEvent) => this.onClose(ws, e.code));
  }

  private async onAuthed(ws: WebSocket, auth: AuthReply): Promise<void> {
    if (ws !== this.ws) return;
    this.authed = true;
    this.attempt = 0;
    this.on.server(this.servers[this.current] ?? '');
    this.setStatus('syncing');
    try {
      await this.on.ready(auth);
      if (ws === this.ws && ws.readyState === WebSocket.OPEN) this.setStatus('online');
    } catch {
      // A failed catch-up: drop the connection and start over rather than run with a gap.
      if (ws === this.ws) ws.close(CloseCodes.normal, 'resync');
    }
  }

  private onFrame(raw: unknown): void {
    if (typeof raw !== 'string') return;
    let frame: { type?: string; id?: string | number | null; data?: unknown } & ErrorBody;
    try {
      frame = JSON.parse(raw) as typeof frame;
    } catch {
      return;
    }
    if (frame.type === 'reply' || frame.type === 'error') {
      const key = frame.id === null || frame.id === undefined ? null : String(frame.id);
      const p = key === null ? undefined : this.pending.get(key);
      if (p && key !== null) {
        this.pending.delete(key);
        if (frame.type === 'reply') p.resolve(frame.data);
        else p.reject(new ApiError(frame));
      }
      return;
    }
    this.on.event(frame as unknown as ServerEvent);
  }

  private onClose(ws: WebSocket, code: number): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.authed = false;
    this.failPending('disconnected', 'connection lost');
    if (this.stopped) return;
    if (
      code === CloseCodes.signedOut ||
      code === CloseCodes.unauthenticated ||
      code === CloseCodes.chatDisabled
    ) {
      this.stopped = true;
      this.setStatus('stopped');
      this.on.sessionEnded(code === CloseCodes.chatDisabled ? 'chat_disabled' : 'session_ended');
      return;
    }
    if (this.moving || code === CloseCodes.frontEndIdle) {
      this.moving = false;
      this.setStatus('connecting');
      this.timer = setTimeout(() => this.connect(), 0);
      return;
    }
    // Lost: the next known server (one front end of a pool may be down for good).
    this.current = (this.current + 1) % this.servers.length;
    const delay = backoffMs(this.attempt++, Math.random());
    this.setStatus('offline', Date.now() + delay);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private failPending(code: string, message: string): void {
    for (const p of this.pending.values()) p.reject(new ApiError({ code, message }));
    this.pending.clear();
  }
}
