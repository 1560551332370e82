import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { PoolLink } from '../cluster/pool-link.js';
import { PoolRelay, RELAY_PATH } from '../cluster/pool-relay.js';
import { authenticate, hashToken } from '../domain/directory/commands.js';
import { authenticatePoolAssertion, isPoolAssertion } from '../domain/pools/link.js';
import { createDownloadToken } from '../domain/files/commands.js';
import {
  listFollows,
  followRoom,
  listInvitations,
  markInvitationsSeen,
  markRead,
  unfollowRoom,
} from '../domain/me/commands.js';
import {
  joinRooms,
  partRoom,
  postMessage,
  roomHistory,
  SEARCH_LIMIT,
  searchMessages,
} from '../domain/messages/commands.js';
import { associations, createRoom, getRoom, searchRooms } from '../domain/rooms/commands.js';
import type { Domain } from '../domain/types.js';
import {
  FrameTooLargeError,
  MalformedFrameError,
  PerchError,
  RateLimitedError,
  RoomNotFoundError,
  ShuttingDownError,
  UnauthenticatedError,
  UnknownFrameTypeError,
  ValidationError,
  ConflictError,
  toPerchError,
} from '../errors.js';
import type { EventBus } from '../events.js';
import type { Logger } from '../logger.js';
import {
  clientFrameSchemas,
  CloseCodes,
  PROTOCOL_VERSION,
  type ClientFrameType,
  type FrameOf,
} from '../protocol/frames.js';
import { Connection, RateLimits } from './connection.js';
import { Heartbeat } from './heartbeat.js';
import { Hub } from './hub.js';

export interface RealtimeOptions {
  domain: Domain;
  bus: EventBus;
  log: Logger;
  version: string;
  maxFrameBytes: number;
  maxBufferedBytes: number;
  /** Close a connection that has not authenticated within this time. */
  authTimeoutMs?: number;
  /** Each connection is pinged once per period and closed if it missed the last ping (Heartbeat). */
  heartbeatMs?: number;
  /** Set on a front end of an Enterprise Edition pool (see src/cluster). */
  pool?: {
    name: string;
    frontEnd: string;
    /** The error refusing a new session (this front end is idle), or undefined to admit it. */
    admission(): PerchError | undefined;
    /** The link to the other pools: `/ws/pool/{name}` relays a client's socket to one of them. */
    link?: PoolLink;
  };
}

type Handler<K extends ClientFrameType> = (conn: Connection, frame: FrameOf<K>) => Promise<unknown>;

/**
 * The WebSocket endpoint (`/ws`): parses every frame with its schema, authenticates, rate-limits,
 * runs the domain command and answers `reply` or `error` with the frame's id. Live events come
 * from the hub.
 */
export class RealtimeServer {
  readonly hub: Hub;
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Connection>();
  private readonly d: Domain;
  private readonly log: Logger;
  private accepting = true;
  private readonly heartbeat: Heartbeat<Connection>;
  private participantLimit = 75;
  private readonly unsubscribe: () => void;
  private readonly relay: PoolRelay | undefined;
  /** Connections opened by another pool's relay, and the user it asserted. */
  private readonly linked = new WeakMap<Connection, LinkedActor>();

  constructor(private readonly opts: RealtimeOptions) {
    this.d = opts.domain;
    this.log = opts.log;
    this.hub = new Hub(this.d, this.log);
    const pool = opts.pool;
    this.relay =
      pool?.link &&
      new PoolRelay({
        domain: opts.domain,
        link: pool.link,
        log: opts.log.child({ subsystem: 'pool-relay' }),
        maxFrameBytes: opts.maxFrameBytes,
        maxBufferedBytes: opts.maxBufferedBytes,
        admission: () => pool.admission(),
      });
    // Frames above maxFrameBytes get a typed error; only far larger ones are cut by ws itself.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes * 4,
      perMessageDeflate: false,
    });
    this.unsubscribe = opts.bus.subscribe((event) => {
      this.relay?.handle(event);
      return this.hub.handle(event, this.participantLimit);
    });
    this.heartbeat = new Heartbeat(opts.heartbeatMs ?? 30_000);
  }

  /**
   * Takes over HTTP upgrade requests on the given server: `/ws`, and on a pool's front end
   * `/ws/pool/{name}` (the relay to another pool) and `/ws` opened by another pool's relay with a
   * pool-link assertion instead of a session.
   */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      const relayTo = RELAY_PATH.exec(path)?.[1];
      if (relayTo !== undefined && this.relay && this.accepting) {
        this.relay.upgrade(req, socket, head, relayTo);
        return;
      }
      if (path !== '/ws' || !this.accepting) {
        refuseUpgrade(socket, this.accepting ? 404 : 503);
        return;
      }
      const header = req.headers.authorization;
      if (this.opts.pool && isPoolAssertion(header)) {
        socket.on('error', () => {});
        authenticatePoolAssertion(this.d, this.opts.pool.name, header, {
          method: req.method ?? 'GET',
          url: req.url ?? '',
        }).then(
          ({ actor }) =>
            this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req, actor)),
          (err: unknown) => {
            const e = toPerchError(err);
            if (!(err instanceof PerchError))
              this.log.error({ err }, 'pool-link socket authentication failed');
            refuseUpgrade(socket, e.status, {
              error: {
                code: e.code,
                message: e.message,
                ...(e.details ? { details: e.details } : {}),
              },
            });
          },
        );
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req));
    });
  }

  connectionCount(): number {
    return this.conns.size;
  }

  /** `linked`: the user another pool's relay asserted; its `auth` frame's token is not used. */
  private onConnection(ws: WebSocket, req: IncomingMessage, linked?: LinkedActor): void {
    const conn = new Connection(ws, req.socket.remoteAddress ?? 'unknown', {
      maxBufferedBytes: this.opts.maxBufferedBytes,
      maxPending: 10_000,
    });
    if (linked) this.linked.set(conn, linked);
    this.conns.add(conn);
    this.heartbeat.add(conn);
    const authTimer = setTimeout(() => {
      if (!conn.actor) {
        conn.send({
          type: 'error',
          id: null,
          code: 'unauthenticated',
          message: 'authenticate within 10 seconds',
        });
        conn.close(CloseCodes.authTimeout, 'auth_timeout');
      }
    }, this.opts.authTimeoutMs ?? 10_000);
    authTimer.unref();
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      // A throw here would escape into ws and take the process down: answer it instead.
      try {
        this.onFrame(conn, data, isBinary);
      } catch (err) {
        this.fail(conn, null, err);
      }
    });
    ws.on('error', (err) => this.log.debug({ err, conn: conn.id }, 'websocket error'));
    conn.onDetach(() => {
      const joined = this.hub.removeConnection(conn, this.participantLimit);
      const actor = conn.actor;
      if (actor) for (const roomId of joined) this.hub.recordPart(actor, roomId);
    });
    ws.on('close', () => {
      clearTimeout(authTimer);
      conn.closed = true;
      this.conns.delete(conn);
      this.heartbeat.delete(conn);
      conn.detachOnce();
    });
  }

  private onFrame(conn: Connection, data: RawData, isBinary: boolean): void {
    // Every frame spends a token, even one that turns out malformed.
    const allowed = conn.frames.take() && conn.queued < RateLimits.maxQueued;
    const size = Array.isArray(data)
      ? data.reduce((n, b) => n + b.length, 0)
      : (data as Buffer | ArrayBuffer).byteLength;
    if (isBinary)
      return this.fail(
        conn,
        null,
        new MalformedFrameError('binary frames are not supported; send JSON text'),
      );
    if (size > this.opts.maxFrameBytes)
      return this.fail(conn, null, new FrameTooLargeError(this.opts.maxFrameBytes));
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString());
    } catch {
      return this.fail(conn, null, new MalformedFrameError());
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return this.fail(conn, null, new MalformedFrameError('a frame must be a JSON object'));
    }
    const raw = parsed as Record<string, unknown>;
    const id = typeof raw.id === 'string' || typeof raw.id === 'number' ? raw.id : null;
    if (!allowed) {
      conn.rateViolations += 1;
      if (conn.rateViolations > RateLimits.maxViolations) {
        conn.close(CloseCodes.rateLimited, 'rate_limited');
      }
      return this.fail(conn, id, new RateLimitedError());
    }
    const type = raw.type;
    // Own keys only: `constructor` or `__proto__` must not reach Object.prototype.
    if (typeof type !== 'string' || !Object.hasOwn(clientFrameSchemas, type)) {
      return this.fail(conn, id, new UnknownFrameTypeError(String(type)));
    }
    const schema = clientFrameSchemas[type as ClientFrameType];
    const checked = schema.safeParse(raw);
    if (!checked.success) {
      const issues = checked.error.issues.map((i) => ({
        path: i.path.join('.'),
        message: i.message,
      }));
      const first = issues[0];
      return this.fail(
        conn,
        id,
        new ValidationError(
          `invalid ${type} frame: ${first?.path ? `${first.path}: ` : ''}${first?.message ?? ''}`,
          { issues },
        ),
      );
    }
    if (type === 'post' && !conn.posts.take()) {
      conn.rateViolations += 1;
      return this.fail(conn, id, new RateLimitedError('too many posts; slow down'));
    }
    conn.rateViolations = 0;
    conn.queued += 1;
    conn.queue = conn.queue.then(async () => {
      try {
        const result = await this.dispatch(conn, type as ClientFrameType, checked.data);
        if (result !== undefined) conn.send({ type: 'reply', id, data: result });
      } catch (err) {
        this.fail(conn, id, err);
      }
      // A join leaves work for after its reply (or its error): backlog, then buffered live messages.
      const after = conn.afterReply;
      conn.afterReply = undefined;
      if (after)
        await after().catch((err: unknown) =>
          this.log.error({ err, conn: conn.id }, 'join release failed'),
        );
      conn.queued -= 1;
    });
  }

  private fail(conn: Connection, id: string | number | null, err: unknown): void {
    const e = toPerchError(err);
    if (!(err instanceof PerchError))
      this.log.error({ err, conn: conn.id }, 'frame handler failed');
    conn.send({
      type: 'error',
      id,
      code: e.code,
      message: e.message,
      ...(e.details ? { details: e.details } : {}),
    });
  }

  private async dispatch(
    conn: Connection,
    type: ClientFrameType,
    frame: unknown,
  ): Promise<unknown> {
    if (type === 'auth') return this.auth(conn, frame as FrameOf<'auth'>);
    if (type === 'ping') return { pong: true, serverTime: this.d.clock() };
    if (!conn.actor) throw new UnauthenticatedError('send an auth frame first');
    if (!this.accepting) throw new ShuttingDownError();
    const handler = this.handlers[type] as Handler<ClientFrameType> | undefined;
    if (!handler) throw new UnknownFrameTypeError(type);
    return handler(conn, frame as never);
  }

  private async auth(conn: Connection, frame: FrameOf<'auth'>): Promise<unknown> {
    if (conn.actor)
      throw new ConflictError('already_authenticated', 'this connection is already authenticated');
    // An idle front end keeps the sessions it has and refuses new ones, naming the active ones.
    const refused = this.opts.pool?.admission();
    if (refused) {
      this.fail(conn, frame.id ?? null, refused);
      conn.close(CloseCodes.frontEndIdle, 'front_end_idle');
      return undefined;
    }
    const linked = this.linked.get(conn);
    const actor = linked ?? (await authenticate(this.d, frame.token));
    if (conn.closed) return undefined;
    conn.actor = actor;
    // A relayed session ends with its home session, which the relay watches.
    conn.tokenHash = linked ? undefined : hashToken(frame.token);
    this.hub.addConnection(conn);
    return {
      user: {
        id: actor.userId,
        name: actor.login,
        displayName: actor.displayName,
        isAdmin: actor.isAdmin,
      },
      chatEnabled: actor.chatEnabled,
      server: await this.serverInfo(),
    };
  }

  private async serverInfo(): Promise<Record<string, unknown>> {
    const s = await this.d.settings.get();
    this.participantLimit = s.participantUpdateLimit;
    return {
      product: 'perch',
      edition: this.opts.pool ? 'enterprise' : 'standard',
      ...(this.opts.pool
        ? { pool: { name: this.opts.pool.name, frontEnd: this.opts.pool.frontEnd } }
        : {}),
      version: this.opts.version,
      protocol: PROTOCOL_VERSION,
      serverTime: this.d.clock(),
      limits: {
        defaultHistory: s.defaultHistory,
        maxHistoryPage: 500,
        maxMessageChars: s.maxMessageChars,
        maxFileSizeKb: s.maxFileSizeKb,
        participantUpdateLimit: s.participantUpdateLimit,
        maxFrameBytes: this.opts.maxFrameBytes,
        searchLimit: SEARCH_LIMIT,
        framesPerSecond: RateLimits.frames.perSecond,
        frameBurst: RateLimits.frames.burst,
        postsPerSecond: RateLimits.posts.perSecond,
        postBurst: RateLimits.posts.burst,
        maxQueuedFrames: RateLimits.maxQueued,
        maxBufferedBytes: this.opts.maxBufferedBytes,
      },
      roomManagementUrl: s.roomManagementUrl || null,
    };
  }

  /** Joins rooms: subscribe first, read backfill, reply, then release live messages in order. */
  private async join(
    conn: Connection,
    requests: { roomId: number; since?: number; limit?: number }[],
  ): Promise<JoinOutcome[]> {
    const actor = conn.actor!;
    const fresh = requests.filter(
      (r) => !conn.rooms.has(r.roomId) || conn.rooms.get(r.roomId)!.pending === null,
    );
    for (const r of fresh) this.hub.subscribe(conn, r.roomId);
    const limit = (await this.d.settings.get()).participantUpdateLimit;
    this.participantLimit = limit;
    let results;
    try {
      results = await joinRooms(this.d, actor, requests);
    } catch (err) {
      for (const r of fresh) {
        if (!conn.rooms.get(r.roomId)?.present) this.hub.leave(conn, r.roomId, limit);
        else this.hub.goLive(conn, r.roomId);
      }
      throw err;
    }
    if (conn.closed) {
      // Closed while the backfill was read: the subscriptions made above must not outlive it.
      this.hub.removeConnection(conn, limit);
      return [];
    }
    const out: JoinOutcome[] = [];
    const backlog: { roomId: number; after: number }[] = [];
    for (const [i, r] of results.entries()) {
      const req = requests[i]!;
      if (!r.ok) {
        if (!conn.rooms.get(req.roomId)?.present) this.hub.leave(conn, req.roomId, limit);
        out.push({ roomId: req.roomId, ok: false, error: toPerchError(r.error) });
        continue;
      }
      if (!conn.rooms.has(req.roomId)) {
        // Removed (access revoked) while the backfill was being read.
        out.push({ roomId: req.roomId, ok: false, error: new RoomNotFoundError() });
        continue;
      }
      const last = r.result.messages.at(-1)?.seq;
      const delivered = Math.max(req.since ?? 0, last ?? 0);
      this.hub.delivered(conn, req.roomId, delivered);
      const roster = this.hub.enterRoster(conn, req.roomId, limit);
      out.push({
        roomId: req.roomId,
        ok: true,
        room: r.result.room,
        messages: r.result.messages,
        more: r.result.more,
        roster,
      });
      if (r.result.more && req.since !== undefined)
        backlog.push({ roomId: req.roomId, after: delivered });
    }
    // Runs once the reply is sent: the backlog pages, then the live messages buffered meanwhile.
    conn.afterReply = () =>
      this.release(
        conn,
        backlog,
        requests.map((r) => r.roomId),
      );
    return out;
  }

  /** Streams a reconnecting client's remaining backlog, then lets live messages through. */
  private async release(
    conn: Connection,
    backlog: { roomId: number; after: number }[],
    roomIds: number[],
  ): Promise<void> {
    for (const item of backlog) {
      let after = item.after;
      for (;;) {
        if (conn.closed || !conn.rooms.has(item.roomId)) break;
        const page = await roomHistory(this.d, conn.actor!, item.roomId, { after, limit: 500 });
        for (const message of page.messages) {
          conn.send({ type: 'message', roomId: item.roomId, message, backfill: true });
          after = message.seq;
        }
        this.hub.delivered(conn, item.roomId, after);
        if (!page.more || page.messages.length === 0) break;
      }
    }
    for (const roomId of roomIds) this.hub.goLive(conn, roomId);
  }

  private readonly handlers: { [K in ClientFrameType]?: Handler<K> } = {
    server_info: async () => this.serverInfo(),
    associations: async (c) => associations(this.d, c.actor!),
    room_search: async (c, f) => ({ rooms: await searchRooms(this.d, c.actor!, strip(f)) }),
    room_create: async (c, f) => {
      const { roomType, ...rest } = strip(f);
      return { room: await createRoom(this.d, c.actor!, { ...rest, type: roomType }) };
    },
    room_get: async (c, f) => ({
      room: await getRoom(this.d, c.actor!, f.roomId),
      roster: this.hub.roster(f.roomId) ?? {
        count: 0,
        suppressed: false,
        users: [],
      },
    }),
    join: async (c, f) => {
      const [result] = await this.join(c, [{ roomId: f.roomId, since: f.since, limit: f.limit }]);
      if (!result) return undefined; // the connection closed meanwhile
      if (!result.ok) throw result.error;
      return result;
    },
    bjoin: async (c, f) => ({
      results: (await this.join(c, f.rooms)).map((r) =>
        r.ok
          ? r
          : {
              roomId: r.roomId,
              ok: false,
              error: { code: r.error.code, message: r.error.message },
            },
      ),
    }),
    part: async (c, f) => {
      const joined = this.hub.leave(c, f.roomId, this.participantLimit);
      if (joined) await partRoom(this.d, c.actor!, f.roomId);
      return { roomId: f.roomId, parted: joined };
    },
    history: async (c, f) => {
      const page = await roomHistory(this.d, c.actor!, f.roomId, {
        before: f.before,
        after: f.after,
        limit: f.limit,
      });
      return { roomId: f.roomId, ...page };
    },
    post: async (c, f) => {
      const r = await postMessage(this.d, c.actor!, f.roomId, {
        text: f.text,
        title: f.title,
        alert: f.alert,
        clientId: f.clientId,
      });
      return {
        roomId: f.roomId,
        seq: r.message.seq,
        id: r.message.id,
        ts: r.message.ts,
        duplicate: r.duplicate,
      };
    },
    search: async (c, f) => searchMessages(this.d, c.actor!, strip(f)),
    invitations: async (c, f) => ({
      invitations: await listInvitations(this.d, c.actor!, { all: f.all }),
    }),
    invitations_seen: async (c, f) => markInvitationsSeen(this.d, c.actor!, { ids: f.ids }),
    follows: async (c) => ({ follows: await listFollows(this.d, c.actor!) }),
    follow: async (c, f) => {
      await followRoom(this.d, c.actor!, f.roomId);
      return { roomId: f.roomId, following: true };
    },
    unfollow: async (c, f) => {
      await unfollowRoom(this.d, c.actor!, f.roomId);
      return { roomId: f.roomId, following: false };
    },
    mark_read: async (c, f) => {
      await markRead(this.d, c.actor!, { roomId: f.roomId, seq: f.seq });
      return { roomId: f.roomId, seq: f.seq };
    },
    file_link: async (c, f) => {
      const t = await createDownloadToken(this.d, c.actor!, f.fileId);
      return {
        url: `/api/v1/files/download/${encodeURIComponent(t.token)}`,
        expiresAt: t.expiresAt,
        name: t.file.name,
        size: t.file.size,
      };
    },
  };

  /** Stops accepting connections, says goodbye to each client and waits for them to close. */
  async drain(graceMs: number): Promise<void> {
    this.accepting = false;
    this.heartbeat.stop();
    this.unsubscribe();
    this.relay?.close();
    const closing = [...this.conns].map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.ws.readyState === conn.ws.CLOSED) return resolve();
          conn.ws.once('close', () => resolve());
          // Let frames already being handled finish (a post in flight gets its ack) before the goodbye.
          void conn.queue.then(() => {
            conn.send({
              type: 'bye',
              code: 'shutting_down',
              message: 'server is shutting down; reconnect later',
            });
            conn.close(CloseCodes.goingAway, 'shutting_down');
          });
        }),
    );
    await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, graceMs).unref())]);
    for (const conn of this.conns) conn.ws.terminate();
    this.wss.close();
    // Leaving connections record their PARTs; those writes must land before the store closes.
    await this.hub.settled();
  }
}

type LinkedActor = Awaited<ReturnType<typeof authenticatePoolAssertion>>['actor'];

const statusText: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  503: 'Service Unavailable',
};

/** Answers an upgrade request with an HTTP error (and a JSON error body when given). */
function refuseUpgrade(socket: Duplex, status: number, body?: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${statusText[status] ?? 'Error'}\r\nConnection: close\r\n` +
      (text ? 'Content-Type: application/json\r\n' : '') +
      `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

/** Drops the frame envelope (type, id) before handing a frame to a domain command. */
function strip<T extends { type: string; id: unknown }>(frame: T): Omit<T, 'type' | 'id'> {
  const { type: _type, id: _id, ...rest } = frame;
  return rest;
}

type JoinOutcome =
  | { roomId: number; ok: true; room: unknown; messages: unknown[]; more: boolean; roster: unknown }
  | { roomId: number; ok: false; error: PerchError };
