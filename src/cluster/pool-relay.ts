import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { authenticate, hashToken } from '../domain/directory/commands.js';
import type { DomainEvent } from '../domain/events.js';
import type { Domain } from '../domain/types.js';
import {
  FrameTooLargeError,
  MalformedFrameError,
  PerchError,
  UnauthenticatedError,
  toPerchError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { CloseCodes } from '../protocol/frames.js';
import type { PoolLink } from './pool-link.js';

/** The path a client of this pool opens to reach another pool's rooms live: `/ws/pool/{name}`. */
export const RELAY_PATH = /^\/ws\/pool\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})$/;

/** How long a relayed client has to send its `auth` frame. */
const AUTH_TIMEOUT_MS = 10_000;
/** How often both sides are pinged and the home session checked again. */
const HEARTBEAT_MS = 30_000;

interface RelayOptions {
  domain: Domain;
  link: PoolLink;
  log: Logger;
  maxFrameBytes: number;
  maxBufferedBytes: number;
  /** The error refusing a new session (this front end is idle), or undefined to admit it. */
  admission(): PerchError | undefined;
}

/** One relayed client: its home session and the socket to the owning pool. */
interface Relayed {
  client: WebSocket;
  upstream: WebSocket;
  userId: number;
  tokenHash: string;
  token: string;
  clientAlive: boolean;
  upstreamAlive: boolean;
  close(code: number, reason: string, error?: PerchError): void;
}

/**
 * The live half of the pool link (docs/operations/pools.md): a client signed in to this pool
 * opens `/ws/pool/{name}` here and speaks the ordinary WebSocket protocol with pool `name`. This
 * front end checks the client's `auth` frame against its own sessions, opens a socket to an
 * active front end of that pool with a pool-link assertion for the user, and from then on passes
 * frames both ways unchanged: the other pool runs every command as that user, with its own room
 * ids, permissions and live events. Signing out here (or the session ending) closes the relay.
 */
export class PoolRelay {
  private readonly wss: WebSocketServer;
  private readonly relays = new Set<Relayed>();
  private readonly heartbeat: NodeJS.Timeout;
  private accepting = true;

  constructor(private readonly opts: RelayOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes * 4,
      perMessageDeflate: false,
    });
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Takes an upgrade for `/ws/pool/{target}`. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: string): void {
    if (!this.accepting) {
      socket.end(
        'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onClient(ws, target));
  }

  /** Home-pool events that end a relayed session. */
  handle(event: DomainEvent): void {
    if (event.type !== 'user.signed_out') return;
    for (const r of this.relays) {
      if (r.userId === event.userId && (event.all || r.tokenHash === event.tokenHash)) {
        r.close(CloseCodes.signedOut, 'signed_out', new UnauthenticatedError('session ended'));
      }
    }
  }

  count(): number {
    return this.relays.size;
  }

  /** Closes every relay (going away): their clients reconnect to another front end. */
  close(): void {
    this.accepting = false;
    clearInterval(this.heartbeat);
    for (const r of [...this.relays]) r.close(CloseCodes.goingAway, 'shutting_down');
    this.wss.close();
  }

  private onClient(client: WebSocket, target: string): void {
    const log = this.opts.log;
    let relay: Relayed | undefined;
    let closed = false;
    const fail = (err: unknown, id: unknown, code: number, reason: string) => {
      const e = toPerchError(err);
      if (!(err instanceof PerchError)) log.error({ err, pool: target }, 'pool relay failed');
      sendError(client, id, e);
      closeSocket(client, code, reason);
    };
    const timer = setTimeout(() => {
      if (!relay)
        fail(
          new UnauthenticatedError('authenticate within 10 seconds'),
          null,
          CloseCodes.authTimeout,
          'auth_timeout',
        );
    }, AUTH_TIMEOUT_MS);
    timer.unref();
    client.on('error', (err) => log.debug({ err }, 'relayed client socket error'));
    client.on('close', () => {
      closed = true;
      clearTimeout(timer);
      if (relay) relay.close(CloseCodes.normal, 'client closed');
    });
    // The first frame must be `auth`; the rest wait for the relay to be set up, then pass on.
    const early: RawData[] = [];
    let started = false;
    client.on('message', (data: RawData, isBinary: boolean) => {
      if (relay?.upstream) return forward(relay.upstream, data, isBinary);
      if (started) {
        early.push(data);
        return;
      }
      started = true;
      let auth: { id: unknown; token: string };
      try {
        auth = parseAuth(data, this.opts.maxFrameBytes);
      } catch (err) {
        const e = toPerchError(err);
        return fail(
          e,
          frameId(data),
          e instanceof UnauthenticatedError ? CloseCodes.unauthenticated : CloseCodes.protocolError,
          e.code,
        );
      }
      void this.open(client, target, auth, data.toString())
        .then((r) => {
          if (closed) return r.close(CloseCodes.normal, 'client closed');
          relay = r;
          clearTimeout(timer);
          for (const d of early.splice(0)) forward(r.upstream, d, false);
        })
        .catch((err: unknown) => {
          const e = toPerchError(err);
          const code =
            e.status === 401
              ? CloseCodes.unauthenticated
              : e.code === 'front_end_idle'
                ? CloseCodes.frontEndIdle
                : CloseCodes.poolUnavailable;
          fail(err, auth.id, code, e.code);
        });
    });
  }

  /** Checks the client's `auth` frame here, then opens the socket to the other pool as the user. */
  private async open(
    client: WebSocket,
    target: string,
    auth: { token: string },
    authText: string,
  ): Promise<Relayed> {
    const refused = this.opts.admission();
    if (refused) throw refused;
    const actor = await authenticate(this.opts.domain, auth.token);
    const { upstream, firstReply } = await this.opts.link.openSocket(target, actor.login, authText);
    const relay: Relayed = {
      client,
      upstream,
      userId: actor.userId,
      tokenHash: hashToken(auth.token),
      token: auth.token,
      clientAlive: true,
      upstreamAlive: true,
      close: (code, reason, error) => {
        if (!this.relays.delete(relay)) return;
        if (error) sendError(client, null, error);
        closeSocket(client, code, reason);
        closeSocket(upstream, CloseCodes.normal, 'relay closed');
      },
    };
    this.relays.add(relay);
    client.on('pong', () => (relay.clientAlive = true));
    upstream.on('pong', () => (relay.upstreamAlive = true));
    upstream.on('message', (d: RawData, isBinary: boolean) => {
      // A client that does not read is cut off rather than buffered without bound.
      if (client.bufferedAmount > this.opts.maxBufferedBytes) {
        return relay.close(CloseCodes.slowConsumer, 'slow_consumer');
      }
      forward(client, d, isBinary);
    });
    upstream.on('close', (code: number, reason: Buffer) => {
      if (!this.relays.has(relay)) return;
      // The other pool's own closes (signed out there, rate limited, ...) reach the client as
      // they are; a lost front end is "going away", so the client reconnects.
      const passOn = code === CloseCodes.normal || (code >= 4000 && code < 5000);
      relay.close(
        passOn ? code : CloseCodes.goingAway,
        passOn ? reason.toString() : 'pool link lost',
      );
    });
    upstream.on('error', (err) =>
      this.opts.log.debug({ err, pool: target }, 'relay upstream error'),
    );
    forward(client, firstReply, false);
    return relay;
  }

  private async beat(): Promise<void> {
    for (const r of [...this.relays]) {
      if (!r.clientAlive || !r.upstreamAlive) {
        r.close(CloseCodes.goingAway, 'no heartbeat');
        continue;
      }
      r.clientAlive = r.upstreamAlive = false;
      try {
        r.client.ping();
        r.upstream.ping();
      } catch {
        r.close(CloseCodes.goingAway, 'no heartbeat');
        continue;
      }
      // The home session may have expired, or the user been disabled, without an event here.
      try {
        await authenticate(this.opts.domain, r.token);
      } catch (err) {
        if (err instanceof PerchError && err.status === 401)
          r.close(CloseCodes.signedOut, 'signed_out', new UnauthenticatedError('session ended'));
        else if (err instanceof PerchError && err.status === 403)
          r.close(CloseCodes.signedOut, 'account_disabled', err);
      }
    }
  }
}

function parseAuth(data: RawData, maxBytes: number): { id: unknown; token: string } {
  const text = data.toString();
  if (Buffer.byteLength(text) > maxBytes) throw new FrameTooLargeError(maxBytes);
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    throw new MalformedFrameError();
  }
  const f = frame as { type?: unknown; id?: unknown; token?: unknown } | null;
  if (f === null || typeof f !== 'object' || f.type !== 'auth' || typeof f.token !== 'string') {
    throw new UnauthenticatedError('send an auth frame first');
  }
  return { id: f.id, token: f.token };
}

/** The `id` of a frame that could not be taken, when it has one. */
function frameId(data: RawData): unknown {
  try {
    return (JSON.parse(data.toString()) as { id?: unknown } | null)?.id ?? null;
  } catch {
    return null;
  }
}

function forward(to: WebSocket, data: RawData, isBinary: boolean): void {
  if (to.readyState !== WebSocket.OPEN) return;
  to.send(data, { binary: isBinary });
}

function sendError(ws: WebSocket, id: unknown, e: PerchError): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  const body: Record<string, unknown> = {
    type: 'error',
    id: typeof id === 'string' || typeof id === 'number' ? id : null,
    code: e.code,
    message: e.message,
  };
  if (e.details) body.details = e.details;
  ws.send(JSON.stringify(body));
}

function closeSocket(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) return;
  try {
    ws.close(code, reason.slice(0, 120));
  } catch {
    ws.terminate();
    return;
  }
  setTimeout(() => ws.terminate(), 5_000).unref();
}
