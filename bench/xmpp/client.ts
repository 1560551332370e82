/**
 * A lean raw-socket XMPP client for the benchmark: TCP, stream negotiation (RFC 6120) without
 * TLS, optional in-band registration (XEP-0077), SASL PLAIN, resource binding, multi-user chat
 * join (XEP-0045) and groupchat messages. Plain SASL over an unencrypted stream is acceptable
 * only because every connection is on loopback; the three servers are configured to allow it.
 *
 * Parsing is deliberately minimal: the stream is split into top-level stanzas by a tag scanner
 * (quotes respected), and the few fields the benchmark needs are read from each stanza's text.
 * That keeps a generator process cheap enough that the server, not the generator, is measured.
 */
import net from 'node:net';

/** Splits an XMPP stream into its opening tag and top-level stanzas (as strings). */
export class StanzaSplitter {
  private buf = '';
  private pos = 0;
  /** Depth of open elements, counting <stream:stream> as 1 once it is open. */
  private depth = 0;
  private stanzaStart = -1;

  constructor(
    private readonly onStreamOpen: (tag: string) => void,
    private readonly onStanza: (stanza: string) => void,
    private readonly onStreamClose: () => void,
  ) {}

  /** A stream restart (after SASL success): the next thing is a new stream header. */
  reset(): void {
    this.buf = this.buf.slice(this.pos);
    this.pos = 0;
    this.depth = 0;
    this.stanzaStart = -1;
  }

  push(chunk: string): void {
    this.buf += chunk;
    for (;;) {
      const lt = this.buf.indexOf('<', this.pos);
      if (lt < 0) break;
      const end = tagEnd(this.buf, lt);
      if (end < 0) break;
      const tag = this.buf.slice(lt, end + 1);
      this.pos = end + 1;
      if (tag.startsWith('<?')) continue;
      if (tag.startsWith('</')) {
        if (this.depth === 1) {
          this.depth = 0;
          this.onStreamClose();
          continue;
        }
        this.depth -= 1;
        if (this.depth === 1) this.emit(end);
        continue;
      }
      if (this.depth === 0) {
        // The stream header: never closed by '/>'.
        this.depth = 1;
        this.onStreamOpen(tag);
        continue;
      }
      if (this.depth === 1) this.stanzaStart = lt;
      if (tag.endsWith('/>')) {
        if (this.depth === 1) this.emit(end);
      } else this.depth += 1;
    }
    // Keep only the unparsed tail (and the current stanza's start).
    const keep = this.depth > 1 && this.stanzaStart >= 0 ? this.stanzaStart : this.pos;
    if (keep > 0) {
      this.buf = this.buf.slice(keep);
      if (this.stanzaStart >= 0 && this.depth > 1) this.stanzaStart = 0;
      this.pos -= keep;
    }
  }

  private emit(end: number): void {
    const stanza = this.buf.slice(this.stanzaStart, end + 1);
    this.stanzaStart = -1;
    this.onStanza(stanza);
  }
}

/** Index of the '>' closing the tag that starts at `lt`, skipping quoted attribute values. */
function tagEnd(s: string, lt: number): number {
  let quote = '';
  for (let i = lt + 1; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return i;
  }
  return -1;
}

/** The value of attribute `name` on the first tag of `xml`. */
export function attr(xml: string, name: string): string | undefined {
  const first = xml.slice(0, tagEnd(xml, 0) + 1);
  const m = new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(first);
  return m ? unescapeXml(m[1] ?? m[2]!) : undefined;
}

/** The element name of the stanza (message, presence, iq, stream:error, ...). */
export function elementName(xml: string): string {
  return /^<([^\s/>]+)/.exec(xml)?.[1] ?? '';
}

/** Text of the first <body> element. */
export function bodyText(xml: string): string | undefined {
  const m = /<body(?:\s[^>]*)?>([^<]*)<\/body>/.exec(xml);
  return m ? unescapeXml(m[1]!) : undefined;
}

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}

function unescapeXml(s: string): string {
  if (!s.includes('&')) return s;
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&apos;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

export interface XmppOptions {
  host: string;
  port: number;
  /** The XMPP domain (the stream's `to`). */
  domain: string;
  username: string;
  password: string;
  localAddress?: string;
  /** Register the account in-band (XEP-0077) before signing in. */
  register?: boolean;
  resource?: string;
  /** Rejects any step that takes longer (a connection never hangs a run). */
  stepTimeoutMs?: number;
}

/** What stopped a connection, or an error stanza it received. */
export class XmppError extends Error {
  /** The `from` of the server's stream header, when one came (the domain it serves). */
  serverDomain: string | undefined;

  constructor(
    message: string,
    readonly condition: string,
  ) {
    super(message);
  }
}

const STREAM_NS =
  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'";

/**
 * One signed-in XMPP connection. Stanzas other than replies to its own requests go to
 * `onStanza` (set it before joining rooms).
 */
export class XmppConnection {
  jid = '';
  /** The `from` of the server's stream header: the domain it serves. */
  serverDomain: string | undefined;
  /** When SASL began (after any in-band registration): sign-in time excludes account creation. */
  signInStartedAt = 0;
  onStanza: (stanza: string) => void = () => undefined;
  onClose: (reason: string) => void = () => undefined;
  closed = false;
  private socket!: net.Socket;
  private splitter!: StanzaSplitter;
  private waiters: { match: (s: string) => boolean; resolve: (s: string) => void }[] = [];
  private features: ((s: string) => void) | undefined;
  private nextId = 1;

  private constructor(private readonly opts: XmppOptions) {}

  /** Connects, optionally registers, signs in with SASL PLAIN and binds a resource. */
  static async open(opts: XmppOptions): Promise<XmppConnection> {
    const c = new XmppConnection(opts);
    try {
      await c.negotiate();
    } catch (err) {
      c.destroy();
      if (err instanceof XmppError) err.serverDomain = c.serverDomain;
      throw err;
    }
    return c;
  }

  private async negotiate(): Promise<void> {
    const { opts } = this;
    this.socket = net.connect({
      host: opts.host,
      port: opts.port,
      localAddress: opts.localAddress,
    });
    this.socket.setNoDelay(true);
    this.socket.setEncoding('utf8');
    this.splitter = new StanzaSplitter(
      (tag) => (this.serverDomain = attr(tag, 'from') ?? this.serverDomain),
      (s) => this.dispatch(s),
      () => this.close('stream closed by the server'),
    );
    this.socket.on('data', (chunk: string) => this.splitter.push(chunk));
    this.socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    this.socket.on('close', () => this.close('connection closed'));
    await this.within(
      new Promise<void>((resolve, reject) => {
        this.socket.once('connect', resolve);
        this.socket.once('error', reject);
      }),
      'TCP connect',
    );
    let features = await this.openStream();
    if (opts.register) {
      if (!features.includes('iq-register'))
        throw new XmppError('the server offers no in-band registration', 'no-register');
      await this.iq(
        'set',
        undefined,
        `<query xmlns='jabber:iq:register'><username>${escapeXml(opts.username)}</username><password>${escapeXml(opts.password)}</password></query>`,
      );
    }
    if (!/<mechanism>PLAIN<\/mechanism>/.test(features))
      throw new XmppError('the server offers no SASL PLAIN on this stream', 'no-plain');
    this.signInStartedAt = performance.timeOrigin + performance.now();
    const auth = Buffer.from(`\0${opts.username}\0${opts.password}`).toString('base64');
    const outcome = this.waitFor(
      (s) => s.startsWith('<success') || s.startsWith('<failure'),
      'SASL outcome',
    );
    this.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`);
    const result = await outcome;
    if (result.startsWith('<failure'))
      throw new XmppError(`SASL PLAIN refused: ${result}`, 'not-authorized');
    this.splitter.reset();
    features = await this.openStream();
    const bound = await this.iq(
      'set',
      undefined,
      `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${escapeXml(opts.resource ?? 'bench')}</resource></bind>`,
    );
    this.jid = /<jid>([^<]*)<\/jid>/.exec(bound)?.[1] ?? '';
    // RFC 3921 session establishment, only where the server still requires it.
    if (/<session\s[^>]*xmpp-session/.test(features) && !/<optional\/>/.test(features))
      await this.iq('set', undefined, "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>");
  }

  private async openStream(): Promise<string> {
    const features = this.within(
      new Promise<string>((resolve) => (this.features = resolve)),
      'stream features',
    );
    this.write(
      `<?xml version='1.0'?><stream:stream to='${escapeXml(this.opts.domain)}' ${STREAM_NS}>`,
    );
    return features;
  }

  private dispatch(stanza: string): void {
    if (stanza.startsWith('<stream:features')) {
      const f = this.features;
      this.features = undefined;
      f?.(stanza);
      return;
    }
    if (stanza.startsWith('<stream:error')) {
      this.close(`stream error: ${stanza}`);
      return;
    }
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i]!;
      if (w.match(stanza)) {
        this.waiters.splice(i, 1);
        w.resolve(stanza);
        return;
      }
    }
    this.onStanza(stanza);
  }

  /** Resolves with the first stanza `match` accepts (it is not passed to onStanza). */
  waitFor(match: (s: string) => boolean, what: string): Promise<string> {
    return this.within(
      new Promise<string>((resolve) => this.waiters.push({ match, resolve })),
      what,
    );
  }

  /** Sends an IQ and resolves with its result; an error reply rejects with its condition. */
  async iq(type: 'get' | 'set', to: string | undefined, payload: string): Promise<string> {
    const id = `q${this.nextId++}`;
    const reply = this.waitFor(
      (s) => s.startsWith('<iq') && attr(s, 'id') === id,
      `reply to iq ${payload.slice(0, 40)}`,
    );
    this.write(
      `<iq type='${type}' id='${id}'${to ? ` to='${escapeXml(to)}'` : ''}>${payload}</iq>`,
    );
    const s = await reply;
    if (attr(s, 'type') === 'error') throw new XmppError(`iq error: ${s}`, errorCondition(s));
    return s;
  }

  /** The JIDs (and names) of a disco#items query. */
  async discoItems(to: string): Promise<{ jid: string; name: string | undefined }[]> {
    const s = await this.iq('get', to, "<query xmlns='http://jabber.org/protocol/disco#items'/>");
    return [...s.matchAll(/<item\s[^>]*>/g)].map((m) => ({
      jid: attr(m[0], 'jid') ?? '',
      name: attr(m[0], 'name'),
    }));
  }

  /** The identities and features of a disco#info query. */
  async discoInfo(to: string): Promise<string> {
    return this.iq('get', to, "<query xmlns='http://jabber.org/protocol/disco#info'/>");
  }

  /**
   * Joins `room` (a bare room JID) as `nick` without history, and resolves with the self-presence
   * (status 110). A room the join created (status 201) is configured as an instant room.
   */
  async join(room: string, nick: string): Promise<{ created: boolean }> {
    const occupant = `${room}/${nick}`;
    const self = this.waitFor(
      (s) =>
        s.startsWith('<presence') &&
        attr(s, 'from') === occupant &&
        (attr(s, 'type') === 'error' || s.includes("code='110'") || s.includes('code="110"')),
      `self-presence from ${room}`,
    );
    this.write(
      `<presence to='${escapeXml(occupant)}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`,
    );
    const s = await self;
    if (attr(s, 'type') === 'error')
      throw new XmppError(`join ${room} refused: ${s}`, errorCondition(s));
    const created = s.includes("code='201'") || s.includes('code="201"');
    if (created)
      await this.iq(
        'set',
        room,
        "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>",
      );
    return { created };
  }

  groupchat(room: string, body: string): void {
    this.write(
      `<message to='${escapeXml(room)}' type='groupchat'><body>${escapeXml(body)}</body></message>`,
    );
  }

  write(data: string): void {
    if (!this.closed) this.socket.write(data);
  }

  /** Ends the stream politely and closes the socket. */
  end(): void {
    if (this.closed) return;
    this.write('</stream:stream>');
    this.closed = true;
    this.socket.end();
    this.socket.destroy();
  }

  destroy(): void {
    this.closed = true;
    this.socket?.destroy();
  }

  private close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose(reason);
  }

  private within<T>(p: Promise<T>, what: string): Promise<T> {
    const ms = this.opts.stepTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new XmppError(`no ${what} within ${ms} ms`, 'timeout')), ms);
    });
    const closed = new Promise<never>((_, reject) => {
      const prev = this.onClose;
      this.onClose = (reason) => {
        prev(reason);
        reject(new XmppError(`${what}: ${reason}`, 'closed'));
      };
    });
    return Promise.race([p, timeout, closed]).finally(() => clearTimeout(timer));
  }
}

/** The defined condition of an error stanza (forbidden, item-not-found, ...). */
export function errorCondition(stanza: string): string {
  return (
    /<error[^>]*>\s*<([a-z-]+)\s+xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]/.exec(
      stanza,
    )?.[1] ?? 'undefined-condition'
  );
}
