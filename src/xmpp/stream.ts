import crypto from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import { signOut } from '../domain/directory/commands.js';
import type { Domain } from '../domain/types.js';
import { XmppStreamError, type PerchError } from '../errors.js';
import type { Logger } from '../logger.js';
import { CloseCodes } from '../protocol/frames.js';
import { HubConnection } from '../realtime/connection.js';
import type { OutgoingFrame } from '../realtime/frame.js';
import type { Hub } from '../realtime/hub.js';
import { RateLimits } from '../realtime/connection.js';
import { TokenBucket } from '../realtime/rate-limit.js';
import { NS } from './ns.js';
import { routeStanza, renderHubFrame } from './routing.js';
import {
  plainMechanism,
  saslFailureFor,
  SaslFailure,
  type SaslIdentity,
  type SaslMechanism,
} from './sasl.js';
import { scramSha1Mechanism } from './scram.js';
import { StreamParser, x, escapeXml, type StreamProblem, type XmlElement } from './xml.js';

export interface XmppLimits {
  /** Largest stanza in characters (policy-violation above it). */
  maxStanzaChars: number;
  maxDepth: number;
  /** Time allowed for the stream header, each negotiation step, and any stanza once begun. */
  timeoutMs: number;
  /** A signed-in stream that sends nothing (not even a whitespace ping) for this long is closed. */
  idleMs: number;
  maxBufferedBytes: number;
}

/** What every stream of one gateway shares. */
export interface GatewayContext {
  d: Domain;
  hub: Hub;
  log: Logger;
  /** The XMPP domain users sign in to (`user@domain`). */
  domainName: string;
  /** The multi-user chat service (`conference.<domain>`). */
  mucDomain: string;
  limits: XmppLimits;
  /** Set when the front end has a certificate: STARTTLS is offered and required. */
  secureContext: tls.SecureContext | undefined;
  /** Development only: SASL PLAIN without TLS from loopback addresses. */
  allowPlaintext: boolean;
  /** The refusal of a new session (an idle front end of a pool), or undefined. */
  admission?: () => PerchError | undefined;
  /** Each pool front end's XMPP address (`host:port`) by front-end name. */
  peers: Map<string, string>;
  /** The participant-update limit as last read from the settings (joins refresh it). */
  participantLimit: number;
}

type State = 'header' | 'negotiating' | 'bound' | 'closed';

/** Output of a render: elements, or stanzas already serialised. */
type Stanzas = (XmlElement | string)[];

/** Per joined room: the nick the client used and the role shown for it. */
export interface MucRoom {
  nick: string;
  affiliation: string;
  role: string;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/**
 * One client stream (RFC 6120): negotiation (STARTTLS, SASL, resource binding), then a hub
 * connection like a WebSocket's, so the hub routes the same live events to it and every request
 * runs through the same domain commands. Stanzas are handled one after another, in order.
 */
export class XmppStream extends HubConnection {
  private socket: net.Socket;
  private parser: StreamParser;
  private state: State = 'header';
  secure = false;
  private authenticated = false;
  private mechanism: SaslMechanism | undefined;
  private token: string | undefined;
  /** The client's full JID once bound. */
  jid = '';
  /** The same, escaped for an attribute value (live messages splice it in). */
  jidXml = '';
  readonly streamId = crypto.randomBytes(8).toString('hex');
  readonly posts = new TokenBucket(RateLimits.posts.burst, RateLimits.posts.perSecond);
  readonly muc = new Map<number, MucRoom>();
  /** Stanzas are handled in order; a join's history goes out before the next stanza is read. */
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  /** Output that needs the store to render (an occupant's role) keeps later output behind it. */
  private outTail: Promise<void> | undefined;
  private outPending = 0;
  private timer: NodeJS.Timeout;
  private stanzaTimer: NodeJS.Timeout | undefined;

  constructor(
    socket: net.Socket,
    readonly gw: GatewayContext,
    private readonly onGone: (s: XmppStream) => void,
  ) {
    super(socket.remoteAddress ?? 'unknown', {
      maxBufferedBytes: gw.limits.maxBufferedBytes,
      maxPending: 10_000,
    });
    this.socket = socket;
    this.parser = this.newParser();
    this.timer = setTimeout(
      () => this.streamError('connection-timeout', 'negotiation took too long'),
      gw.limits.timeoutMs,
    );
    this.timer.unref();
    this.listen(socket);
    socket.on('close', () => this.gone());
    socket.on('error', (err) => gw.log.debug({ err, conn: this.id }, 'xmpp socket error'));
  }

  get clientKey(): string {
    return `xmpp:${this.remote}`;
  }

  private listen(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  private newParser(): StreamParser {
    return new StreamParser(
      { maxStanzaChars: this.gw.limits.maxStanzaChars, maxDepth: this.gw.limits.maxDepth },
      {
        streamStart: (attrs) => this.onStreamStart(attrs),
        stanza: (el) => this.onStanza(el),
        streamEnd: () => this.end(),
        problem: (p) => this.onProblem(p),
      },
    );
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    if (this.state === 'bound') this.timer.refresh();
    this.parser.write(chunk);
    // A stanza begun must be finished in time: a trickle of bytes does not hold a stream open.
    if ((this.state as State) === 'closed') return;
    if (this.parser.midStanza) {
      this.stanzaTimer ??= setTimeout(
        () => this.streamError('connection-timeout', 'a stanza took too long to arrive'),
        this.gw.limits.timeoutMs,
      ).unref();
    } else if (this.stanzaTimer) {
      clearTimeout(this.stanzaTimer);
      this.stanzaTimer = undefined;
    }
  }

  private onProblem(p: StreamProblem): void {
    this.streamError(p.condition, p.text);
  }

  private headerSent = false;

  private sendHeader(): void {
    this.headerSent = true;
    this.raw(
      `<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}' id='${this.streamId}' from='${escapeXml(this.gw.domainName)}' version='1.0' xml:lang='en'>`,
    );
  }

  private onStreamStart(attrs: Record<string, string>): void {
    this.sendHeader();
    if (attrs.xmlns !== NS.client)
      return this.streamError('invalid-namespace', 'the default namespace must be jabber:client');
    if ((attrs.to ?? '').toLowerCase() !== this.gw.domainName.toLowerCase())
      return this.streamError('host-unknown', `this server serves ${this.gw.domainName}`);
    if (this.state === 'header') this.state = 'negotiating';
    if (this.state !== 'bound') this.timer.refresh();
    if (!this.authenticated) {
      const refused = this.gw.admission?.();
      if (refused) return this.elsewhere(refused);
    }
    this.raw(this.features().toString());
  }

  /**
   * An idle front end of a pool (RFC 6120 §4.9.3.19): names an active front end's XMPP listener
   * in `see-other-host`, or, when no active front end has one, ends with `system-shutdown`.
   */
  private elsewhere(refused: PerchError): void {
    const active = (refused.details?.active ?? []) as { name: string }[];
    const peer = active.map((a) => this.gw.peers.get(a.name)).find((p) => p !== undefined);
    if (peer) return this.streamError('see-other-host', refused.message, peer);
    this.streamError(
      'system-shutdown',
      active.length === 0
        ? `${refused.message}: this pool serves no new sessions now`
        : `${refused.message}; none of them has an XMPP listener (PERCH_XMPP_PEERS)`,
    );
  }

  private mayPlain(): boolean {
    return this.secure || (this.gw.allowPlaintext && isLoopback(this.remote));
  }

  private features(): XmlElement {
    const f = x('stream:features');
    if (this.authenticated) {
      return f.c(x('bind', { xmlns: NS.bind }), x('session', { xmlns: NS.session }, x('optional')));
    }
    if (!this.secure && this.gw.secureContext)
      return f.c(x('starttls', { xmlns: NS.tls }, x('required')));
    const mechanisms = x('mechanisms', { xmlns: NS.sasl }, x('mechanism', {}, 'SCRAM-SHA-1'));
    if (this.mayPlain()) mechanisms.c(x('mechanism', {}, 'PLAIN'));
    return f.c(mechanisms);
  }

  private onStanza(el: XmlElement): void {
    if (this.state === 'closed') return;
    // STARTTLS swaps the socket before another byte is read, so it is handled here, not queued.
    if (el.name === 'starttls') return this.startTls(el);
    if (this.queued >= RateLimits.maxQueued)
      return this.streamError('policy-violation', 'too many stanzas waiting; slow down');
    this.queued += 1;
    this.queue = this.queue.then(async () => {
      try {
        if (this.state !== 'closed') await this.handle(el);
      } catch (err) {
        this.gw.log.error({ err, conn: this.id }, 'xmpp stanza handler failed');
        this.streamError('internal-server-error', 'the server failed to handle a stanza');
      }
      this.queued -= 1;
    });
  }

  private async handle(el: XmlElement): Promise<void> {
    // Each negotiation step gets the whole timeout: a slow step is cut, a slow client is not.
    if (this.state !== 'bound') this.timer.refresh();
    if (!this.authenticated) return this.negotiate(el);
    if (this.state !== 'bound') {
      if (el.name === 'iq' && el.child('bind', NS.bind)) return this.bind(el);
      if (el.name === 'iq' && el.child('session', NS.session)) {
        this.write(x('iq', { type: 'result', id: el.attrs.id }));
        return;
      }
      return this.streamError('not-authorized', 'bind a resource first');
    }
    await routeStanza(this, el);
  }

  private startTls(el: XmlElement): void {
    if (this.secure || this.authenticated || !this.gw.secureContext || el.attrs.xmlns !== NS.tls) {
      this.raw(x('failure', { xmlns: NS.tls }).toString());
      return this.destroy();
    }
    this.raw(x('proceed', { xmlns: NS.tls }).toString());
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secured = new tls.TLSSocket(plain, {
      isServer: true,
      secureContext: this.gw.secureContext,
    });
    secured.on('secure', () => {
      this.secure = true;
    });
    secured.on('error', (err) => {
      this.gw.log.debug({ err, conn: this.id }, 'xmpp tls error');
      this.destroy();
    });
    this.socket = secured;
    this.parser = this.newParser();
    this.listen(secured);
    this.timer.refresh();
  }

  private async negotiate(el: XmlElement): Promise<void> {
    if (el.attrs.xmlns !== NS.sasl)
      return this.streamError('not-authorized', 'authenticate first (SASL)');
    if (this.gw.secureContext && !this.secure)
      return this.saslFailure(new SaslFailure('encryption-required', 'use STARTTLS first'));
    try {
      let step;
      if (el.name === 'auth') {
        const name = el.attrs.mechanism;
        if (name === 'PLAIN' && this.mayPlain())
          this.mechanism = plainMechanism(this.gw.d, this.gw.domainName, this.clientKey);
        else if (name === 'SCRAM-SHA-1')
          this.mechanism = scramSha1Mechanism(this.gw.d, this.clientKey);
        else
          return this.saslFailure(
            new SaslFailure(
              name === 'PLAIN' ? 'encryption-required' : 'invalid-mechanism',
              name === 'PLAIN' ? 'PLAIN needs TLS' : 'offered: SCRAM-SHA-1, PLAIN',
            ),
          );
        step = await this.mechanism.step(decode64(el.text()));
      } else if (el.name === 'response' && this.mechanism) {
        step = await this.mechanism.step(decode64(el.text()));
      } else if (el.name === 'abort') {
        this.mechanism = undefined;
        return this.saslFailure(new SaslFailure('aborted', 'aborted'));
      } else {
        return this.streamError('policy-violation', 'unexpected SASL element');
      }
      if ('challenge' in step) {
        this.write(x('challenge', { xmlns: NS.sasl }, step.challenge.toString('base64')));
        return;
      }
      this.signedIn(step.success, step.additional);
    } catch (err) {
      this.mechanism = undefined;
      this.saslFailure(saslFailureFor(err));
    }
  }

  private saslFailure(f: SaslFailure): void {
    this.write(x('failure', { xmlns: NS.sasl }, x(f.condition), x('text', {}, f.message)));
  }

  private signedIn(identity: SaslIdentity, additional?: Buffer): void {
    if (this.state === 'closed') {
      void signOut(this.gw.d, identity.token, false).catch(() => undefined);
      return;
    }
    this.mechanism = undefined;
    this.authenticated = true;
    this.actor = identity.actor;
    this.tokenHash = identity.tokenHash;
    this.token = identity.token;
    this.write(x('success', { xmlns: NS.sasl }, additional?.toString('base64') ?? ''));
    // The client restarts the stream (RFC 6120 §6.4.6) with a new header.
    this.parser = this.newParser();
  }

  private bind(el: XmlElement): void {
    const asked = el.child('bind', NS.bind)?.child('resource')?.text().trim() ?? '';
    const resource =
      asked && asked.length <= 256 && !/[\s/]/.test(asked)
        ? asked
        : `perch-${crypto.randomBytes(4).toString('hex')}`;
    this.jid = `${this.actor!.login}@${this.gw.domainName}/${resource}`;
    this.jidXml = escapeXml(this.jid);
    this.state = 'bound';
    this.gw.hub.addConnection(this);
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.streamError('connection-timeout', 'idle for too long'),
      this.gw.limits.idleMs,
    );
    this.timer.unref();
    this.write(
      x(
        'iq',
        { type: 'result', id: el.attrs.id },
        x('bind', { xmlns: NS.bind }, x('jid', {}, this.jid)),
      ),
    );
  }

  /** Writes an element; false when the stream is closed. */
  write(el: XmlElement | string): boolean {
    if (this.state === 'closed') return false;
    if (this.socket.writableLength > this.limits.maxBufferedBytes) {
      this.cutOff();
      return false;
    }
    this.socket.write(typeof el === 'string' ? el : el.toString());
    return true;
  }

  private raw(s: string): void {
    if (this.state !== 'closed' && !this.socket.destroyed) this.socket.write(s);
  }

  /**
   * Sends output that may need the store to render; output after it waits, so that the client
   * sees everything in the order the hub sent it.
   */
  emit(render: () => Stanzas | Promise<Stanzas>): void {
    if (this.outPending === 0) {
      const out = render();
      if (Array.isArray(out)) {
        for (const el of out) this.write(el);
        return;
      }
      this.chain(() => out);
      return;
    }
    this.chain(render);
  }

  private chain(render: () => Stanzas | Promise<Stanzas>): void {
    this.outPending += 1;
    this.outTail = (this.outTail ?? Promise.resolve())
      .then(render)
      .then((els) => {
        for (const el of els) this.write(el);
      })
      .catch((err: unknown) => this.gw.log.error({ err, conn: this.id }, 'xmpp render failed'))
      .finally(() => {
        this.outPending -= 1;
      });
  }

  sendFrame(frame: OutgoingFrame): boolean {
    if (this.state === 'closed') return false;
    const source =
      frame.source ?? (JSON.parse(frame.payload.toString()) as Record<string, unknown>);
    renderHubFrame(this, source);
    return true;
  }

  send(frame: Record<string, unknown>): boolean {
    if (this.state === 'closed') return false;
    renderHubFrame(this, frame);
    return true;
  }

  close(code: number, reason: string): void {
    const condition =
      code === CloseCodes.goingAway
        ? 'system-shutdown'
        : code === CloseCodes.signedOut
          ? 'not-authorized'
          : 'policy-violation';
    this.streamError(condition, reason);
  }

  protected cutOff(): void {
    this.streamError('policy-violation', 'slow_consumer: the client did not read its stanzas');
  }

  /** Sends a stream error (RFC 6120 §4.9; `content`: the condition's text, see-other-host's address) and closes the stream. */
  streamError(condition: string, text: string, content?: string): void {
    if (this.state === 'closed') return;
    const e = new XmppStreamError(condition, text);
    this.gw.log.debug({ conn: this.id, code: e.code, condition }, 'xmpp stream error');
    if (!this.headerSent) this.sendHeader();
    this.raw(
      `<stream:error>${x(condition, { xmlns: NS.streams }, content).toString()}${x('text', { xmlns: NS.streams }, text).toString()}</stream:error></stream:stream>`,
    );
    this.finish();
  }

  /** The client closed its stream: close ours. */
  private end(): void {
    if (this.state === 'closed') return;
    this.raw('</stream:stream>');
    this.finish();
  }

  private finish(): void {
    this.state = 'closed';
    this.closed = true;
    this.detachOnce();
    const socket = this.socket;
    socket.end();
    setTimeout(() => socket.destroy(), 2_000).unref();
    this.gone();
  }

  private destroy(): void {
    this.state = 'closed';
    this.socket.destroy();
    this.gone();
  }

  private goneOnce = false;

  private gone(): void {
    this.state = 'closed';
    this.closed = true;
    clearTimeout(this.timer);
    if (this.stanzaTimer) clearTimeout(this.stanzaTimer);
    this.detachOnce();
    if (this.goneOnce) return;
    this.goneOnce = true;
    this.onGone(this);
    // The stream's Perch session ends with it.
    if (this.token)
      void signOut(this.gw.d, this.token, false).catch((err: unknown) =>
        this.gw.log.debug({ err }, 'xmpp sign-out failed'),
      );
  }

  /** Resolves when the stanzas read so far are handled. */
  idle(): Promise<void> {
    return this.queue;
  }
}

function decode64(text: string): Buffer {
  const t = text.trim();
  if (t === '=' || t === '') return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) throw new SaslFailure('malformed-request', 'bad base64');
  return Buffer.from(t, 'base64');
}
