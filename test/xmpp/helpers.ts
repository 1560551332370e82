// XMPP clients for the gateway tests: @xmpp/client (a real third-party library) for what a chat
// client does, and a raw TCP socket for what a hostile one does.
import assert from 'node:assert/strict';
import net from 'node:net';
import { client, xml, type Client, type Element } from '@xmpp/client';

export { xml };
export type { Element };

const defaultWaitMs = 20_000;

export interface XmppTestClient {
  xmpp: Client;
  /** The full JID the server bound. */
  jid: string;
  /** Resolves with the next stanza that matches, looking first at those received earlier. */
  next(what: string, match: (el: Element) => boolean, timeoutMs?: number): Promise<Element>;
  /** Sends an iq and resolves with the result (rejects with the error stanza). */
  iq(el: Element): Promise<Element>;
  /** Unconsumed stanzas. */
  inbox: Element[];
  stop(): Promise<void>;
}

/**
 * Signs in with @xmpp/client: `mechanism` picks the SASL mechanism (the library refuses PLAIN
 * without TLS on its own; STARTTLS runs whenever the server offers it).
 */
export async function connectXmpp(opts: {
  port: number;
  login: string;
  password: string;
  mechanism: 'PLAIN' | 'SCRAM-SHA-1';
  domain?: string;
  resource?: string;
}): Promise<XmppTestClient> {
  const xmpp = client({
    service: `xmpp://127.0.0.1:${opts.port}`,
    domain: opts.domain ?? 'localhost',
    resource: opts.resource ?? 'test',
    // The library's 2 s default for each negotiation step is short on a loaded shared machine.
    timeout: 15_000,
    credentials: async (
      authenticate: (c: { username: string; password: string }, m: string) => Promise<void>,
      mechanisms: string[],
    ) => {
      assert.ok(mechanisms.includes(opts.mechanism), `server offers ${mechanisms.join(', ')}`);
      await authenticate({ username: opts.login, password: opts.password }, opts.mechanism);
    },
  });
  // A test that fails must not reconnect behind its back.
  xmpp.reconnect.stop();
  const inbox: Element[] = [];
  const waiters: { match: (el: Element) => boolean; resolve: (el: Element) => void }[] = [];
  xmpp.on('stanza', (el: Element) => {
    const i = waiters.findIndex((w) => w.match(el));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(el);
    else inbox.push(el);
  });
  xmpp.on('error', () => undefined);
  const address = await xmpp.start();
  return {
    xmpp,
    jid: address.toString(),
    inbox,
    next(what, match, timeoutMs = defaultWaitMs) {
      const i = inbox.findIndex(match);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]!);
      return new Promise((resolve, reject) => {
        const w = {
          match,
          resolve: (el: Element) => {
            clearTimeout(timer);
            resolve(el);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting for ${what}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    iq: (el) => xmpp.iqCaller.request(el, defaultWaitMs),
    async stop() {
      await xmpp.stop().catch(() => undefined);
    },
  };
}

/** A raw TCP connection to the gateway: what it writes, and everything the server sent back. */
export interface RawXmpp {
  socket: net.Socket;
  received(): string;
  /** Resolves when the server's output contains `text` (or rejects at the deadline). */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the server closed the connection. */
  closed: Promise<void>;
}

export async function rawXmpp(port: number): Promise<RawXmpp> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let out = '';
  const listeners = new Set<() => void>();
  socket.on('data', (d: Buffer) => {
    out += d.toString();
    for (const l of [...listeners]) l();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    received: () => out,
    closed,
    waitFor(text, timeoutMs = defaultWaitMs) {
      const found = () => (typeof text === 'string' ? out.includes(text) : text.test(out));
      if (found()) return Promise.resolve(out);
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!found()) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(out);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${String(text)}; got: ${out.slice(-500)}`));
        }, timeoutMs);
        listeners.add(check);
      });
    },
  };
}

/** The opening of a client stream to `localhost`. */
export const streamHeader =
  "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
