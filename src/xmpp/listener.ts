import net from 'node:net';
import tls from 'node:tls';
import type { Domain } from '../domain/types.js';
import type { PerchError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Hub } from '../realtime/hub.js';
import { XmppStream, type GatewayContext, type XmppLimits } from './stream.js';

export interface XmppGatewayOptions {
  domain: Domain;
  hub: Hub;
  log: Logger;
  host: string;
  port: number;
  /** The XMPP domain (`user@domain`); the chat service is `conference.<domain>`. */
  xmppDomain: string;
  limits: XmppLimits;
  /** The front end's certificate and key: STARTTLS is then offered and required. */
  tls?: { cert: Buffer; key: Buffer };
  allowPlaintext: boolean;
  admission?: () => PerchError | undefined;
  /** PERCH_XMPP_PEERS: `name=host:port,...`, each front end's XMPP address in the pool. */
  peers?: string;
}

/**
 * The XMPP client listener (RFC 6120 §14.7, port 5222 by convention): each TCP connection is a
 * stream, each signed-in stream a connection of the realtime hub.
 */
export class XmppGateway {
  private readonly server: net.Server;
  private readonly streams = new Set<XmppStream>();
  private readonly ctx: GatewayContext;

  constructor(private readonly opts: XmppGatewayOptions) {
    this.ctx = {
      d: opts.domain,
      hub: opts.hub,
      log: opts.log,
      domainName: opts.xmppDomain,
      mucDomain: `conference.${opts.xmppDomain}`,
      limits: opts.limits,
      secureContext: opts.tls ? tls.createSecureContext(opts.tls) : undefined,
      allowPlaintext: opts.allowPlaintext,
      admission: opts.admission,
      peers: parsePeers(opts.peers),
      participantLimit: 75,
    };
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => opts.log.error({ err }, 'xmpp listener error'));
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const stream = new XmppStream(socket, this.ctx, (s) => this.streams.delete(s));
    this.streams.add(stream);
    // Leaving the hub when the stream ends records a PART for every room still joined.
    stream.onDetach(() => {
      const joined = this.ctx.hub.removeConnection(stream, this.ctx.participantLimit);
      const actor = stream.actor;
      if (actor) for (const roomId of joined) this.ctx.hub.recordPart(actor, roomId);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.address();
    this.opts.log.info({ ...a, domain: this.ctx.domainName }, 'xmpp gateway listening');
  }

  address(): { host: string; port: number } {
    const a = this.server.address();
    return typeof a === 'object' && a
      ? { host: a.address, port: a.port }
      : { host: this.opts.host, port: this.opts.port };
  }

  connectionCount(): number {
    return this.streams.size;
  }

  /**
   * Stops accepting, lets the stanzas being handled finish, then ends every stream with
   * `system-shutdown` (their rooms' PART records go through the hub, which the realtime drain
   * waits for).
   */
  async drain(): Promise<void> {
    this.server.close();
    const pending = [...this.streams];
    await Promise.all(pending.map((s) => s.idle()));
    for (const s of pending) s.streamError('system-shutdown', 'the server is shutting down');
  }
}

/** `fe1=host:port,fe2=host:port` (validated by the config schema) as a map by front-end name. */
export function parsePeers(peers: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of (peers ?? '').split(',')) {
    const at = item.indexOf('=');
    if (at > 0) out.set(item.slice(0, at), item.slice(at + 1));
  }
  return out;
}
