// Hostile and malformed XML against the XMPP gateway of a real server process: each bad stream
// gets its stream error and is closed, and a signed-in client on the same server keeps being
// served throughout.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminHttp, buildCategory, buildRoom, buildUsers } from '../e2e/helpers.js';
import { cleanup, freePort, startServer, type TestServer } from '../harness/server.js';
import { connectXmpp, rawXmpp, streamHeader, xml, type XmppTestClient } from './helpers.js';

const maxStanza = 8192;

describe('XMPP gateway against hostile input', () => {
  let server: TestServer;
  let port: number;
  let bystander: XmppTestClient;
  let roomId: number;

  before(async () => {
    port = await freePort();
    server = await startServer({
      env: {
        PERCH_XMPP_PORT: String(port),
        // No certificate here: the bystander signs in with PLAIN on loopback (development setting).
        PERCH_XMPP_ALLOW_PLAINTEXT: 'true',
        PERCH_XMPP_MAX_STANZA_BYTES: String(maxStanza),
        PERCH_XMPP_TIMEOUT_MS: '5000',
      },
    });
    const admin = await adminHttp(server);
    await buildUsers(server, admin, ['alice']);
    await buildCategory(admin, { name: 'General', allowed: ['alice'] });
    roomId = (await buildRoom(admin, { name: 'Lobby', category: 'General', privacy: 'open' })).id;
    bystander = await connectXmpp({
      port,
      login: 'alice',
      password: 'password-alice',
      mechanism: 'PLAIN',
    });
  });

  after(async () => {
    await bystander?.stop();
    if (server) await cleanup(server);
  });

  /** The bystander still gets answers: a ping and a disco query round-trip. */
  async function stillServed(): Promise<void> {
    const reply = await bystander.iq(
      xml(
        'iq',
        { type: 'get', to: `conference.localhost` },
        xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }),
      ),
    );
    const items = reply.getChild('query')!.getChildren('item');
    assert.ok(items.some((i) => i.attrs.jid === `${roomId}@conference.localhost`));
  }

  /** Sends `input` on a fresh stream and expects the stream error `condition`, then a close. */
  async function expectStreamError(input: string | string[], condition: string): Promise<void> {
    const raw = await rawXmpp(port);
    for (const part of Array.isArray(input) ? input : [input]) raw.socket.write(part);
    const out = await raw.waitFor(
      new RegExp(`<${condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>`),
    );
    assert.match(out, /<\/stream:error><\/stream:stream>/);
    await raw.closed;
    await stillServed();
  }

  test('an oversized stanza is a policy-violation', async () => {
    await expectStreamError(
      [streamHeader, `<message to='x'><body>${'a'.repeat(maxStanza * 2)}</body></message>`],
      'policy-violation',
    );
  });

  test('a flood of text without any end is a policy-violation too', async () => {
    await expectStreamError(
      [streamHeader, '<message><body>', 'b'.repeat(maxStanza + 10)],
      'policy-violation',
    );
  });

  test('billion laughs: a DOCTYPE with entities is restricted-xml, nothing is expanded', async () => {
    const laughs =
      "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>" +
      Array.from(
        { length: 9 },
        (_, i) => `<!ENTITY lol${i + 1} '${`&lol${i === 0 ? '' : i};`.repeat(10)}'>`,
      ).join('') +
      ']>';
    await expectStreamError(
      [
        laughs,
        "<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>&lol9;",
      ],
      'restricted-xml',
    );
  });

  test('an entity reference inside a stanza is restricted-xml', async () => {
    await expectStreamError(
      [streamHeader, '<message><body>&xxe;</body></message>'],
      'restricted-xml',
    );
  });

  test('comments and processing instructions are restricted-xml', async () => {
    await expectStreamError([streamHeader, '<!-- hello -->'], 'restricted-xml');
    await expectStreamError([streamHeader, '<?evil data?>'], 'restricted-xml');
  });

  test('garbage is not-well-formed; a wrong root is invalid-namespace', async () => {
    await expectStreamError([streamHeader, '<message><body></message>'], 'not-well-formed');
    await expectStreamError('\u0000\u0001garbage<<<>>>', 'not-well-formed');
    await expectStreamError('<html><body>hi</body></html>', 'invalid-namespace');
  });

  test('nesting beyond the depth limit is a policy-violation', async () => {
    await expectStreamError([streamHeader, '<a>'.repeat(40)], 'policy-violation');
  });

  test('another domain is host-unknown', async () => {
    await expectStreamError(
      streamHeader.replace("to='localhost'", "to='example.com'"),
      'host-unknown',
    );
  });

  test('slow-loris: no header, or a stanza that never ends, is a connection-timeout', async () => {
    await expectStreamError('', 'connection-timeout');
    await expectStreamError([streamHeader, '<iq type="get" id="1"'], 'connection-timeout');
  });

  test('an unclosed stream dropped by its client leaves the server serving', async () => {
    const raw = await rawXmpp(port);
    raw.socket.write(streamHeader);
    await raw.waitFor('</stream:features>');
    raw.socket.write('<iq type="get" id="half"><query xmlns="jabber:iq:roster"');
    raw.socket.destroy();
    await raw.closed;
    await stillServed();
  });

  test('the server still serves after it all, and the bystander posts', async () => {
    await bystander.xmpp.send(
      xml(
        'presence',
        { to: `${roomId}@conference.localhost/alice` },
        xml('x', { xmlns: 'http://jabber.org/protocol/muc' }),
      ),
    );
    await bystander.next(
      'subject',
      (el) => el.is('message') && el.getChild('subject') !== undefined,
    );
    await bystander.xmpp.send(
      xml(
        'message',
        { to: `${roomId}@conference.localhost`, type: 'groupchat', id: 'ok-1' },
        xml('body', {}, 'still here'),
      ),
    );
    const echo = await bystander.next('echo', (el) => el.is('message') && el.attrs.id === 'ok-1');
    assert.equal(echo.getChildText('body'), 'still here');
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
  });
});
