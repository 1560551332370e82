// The XMPP gateway end to end: a real server process with PERCH_XMPP_PORT and a certificate, the
// @xmpp/client library signing in (PLAIN over STARTTLS, SCRAM-SHA-1), discovering rooms,
// joining, posting to and receiving from web-protocol clients in order, paging the archive, and
// refused where Perch's permissions say so.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { selfSignedCertificate } from '../harness/tls.js';
import { cleanup, freePort, startServer, tempDir, type TestServer } from '../harness/server.js';
import type { WsClient } from '../harness/ws-client.js';
import {
  adminHttp,
  ask,
  buildCategory,
  buildRoom,
  buildUsers,
  type Http,
  nextMessages,
  openClient,
  postMany,
  range,
  type TestUser,
} from '../e2e/helpers.js';
import {
  connectXmpp,
  rawXmpp,
  streamHeader,
  xml,
  type Element,
  type XmppTestClient,
} from './helpers.js';

const MUC = 'http://jabber.org/protocol/muc';
const MUC_USER = 'http://jabber.org/protocol/muc#user';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const MAM = 'urn:xmpp:mam:2';
const RSM = 'http://jabber.org/protocol/rsm';
const CONFERENCE = 'conference.localhost';
const logins = ['alice', 'bob', 'carol', 'dave'] as const;

function statusCodes(presence: Element): string[] {
  return (presence.getChild('x', MUC_USER)?.getChildren('status') ?? []).map((s) => s.attrs.code!);
}

function errorCondition(el: Element): string | undefined {
  const error = el.getChild('error');
  return error
    ?.getChildElements()
    .find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text')
    ?.name;
}

describe('XMPP gateway', () => {
  let server: TestServer;
  let certDir: string;
  let port: number;
  let admin: Http;
  let users: Record<(typeof logins)[number], TestUser>;
  const xmppClients: XmppTestClient[] = [];
  const wsClients: WsClient[] = [];
  let rooms: Record<'open' | 'closed' | 'secret' | 'stage', { id: number; name: string }>;

  async function signInXmpp(
    login: (typeof logins)[number],
    mechanism: 'PLAIN' | 'SCRAM-SHA-1' = 'PLAIN',
  ): Promise<XmppTestClient> {
    const c = await connectXmpp({ port, login, password: `password-${login}`, mechanism });
    xmppClients.push(c);
    return c;
  }

  async function web(user: TestUser): Promise<WsClient> {
    const c = await openClient(server, user.token);
    wsClients.push(c);
    return c;
  }

  /** Joins a room over XMPP; resolves with the self-presence and the history before the subject. */
  async function join(c: XmppTestClient, roomId: number, nick = 'whatever', maxstanzas?: number) {
    const room = `${roomId}@${CONFERENCE}`;
    await c.xmpp.send(
      xml(
        'presence',
        { to: `${room}/${nick}` },
        xml(
          'x',
          { xmlns: MUC },
          maxstanzas === undefined ? undefined : xml('history', { maxstanzas }),
        ),
      ),
    );
    const self = await c.next(
      `self-presence in ${room}`,
      (el) =>
        el.is('presence') &&
        el.attrs.from?.startsWith(`${room}/`) === true &&
        (statusCodes(el).includes('110') || el.attrs.type === 'error'),
    );
    if (self.attrs.type === 'error') return { self, history: [] as Element[] };
    const history: Element[] = [];
    for (;;) {
      const m = await c.next(
        `history or subject of ${room}`,
        (el) => el.is('message') && el.attrs.from?.startsWith(room) === true,
      );
      if (m.getChild('subject')) break;
      history.push(m);
    }
    return { self, history };
  }

  function groupchatFrom(roomId: number) {
    return (el: Element) =>
      el.is('message') &&
      el.attrs.type === 'groupchat' &&
      el.attrs.from?.startsWith(`${roomId}@${CONFERENCE}/`) === true &&
      el.getChild('body') !== undefined;
  }

  before(async () => {
    certDir = await tempDir('perch-xmpp-cert-');
    const { cert, key } = selfSignedCertificate(certDir);
    port = await freePort();
    server = await startServer({
      env: {
        PERCH_XMPP_PORT: String(port),
        PERCH_XMPP_DOMAIN: 'localhost',
        PERCH_XMPP_TLS_CERT_FILE: cert,
        PERCH_XMPP_TLS_KEY_FILE: key,
      },
    });
    // The certificate is self-signed: the client trusts it for this test process only.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    admin = await adminHttp(server);
    users = await buildUsers(server, admin, logins);
    await buildCategory(admin, { name: 'General', allowed: [...logins] });
    rooms = {
      open: await buildRoom(admin, { name: 'Open room', category: 'General', privacy: 'open' }),
      closed: await buildRoom(admin, {
        name: 'Closed room',
        category: 'General',
        privacy: 'closed',
        members: ['alice', 'bob'],
      }),
      secret: await buildRoom(admin, {
        name: 'Secret room',
        category: 'General',
        privacy: 'secret',
        members: ['alice'],
      }),
      stage: await buildRoom(admin, {
        name: 'Stage',
        category: 'General',
        privacy: 'open',
        type: 'auditorium',
        presenters: ['alice'],
      }),
    };
  });

  after(async () => {
    for (const c of xmppClients) await c.stop();
    for (const c of wsClients) await c.close();
    delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    if (server) await cleanup(server);
    if (certDir) await cleanup(certDir);
  });

  test('PLAIN signs in over STARTTLS and binds a resource', async () => {
    const c = await signInXmpp('alice');
    assert.ok(c.xmpp.isSecure(), 'the stream runs over TLS after STARTTLS');
    assert.match(c.jid, /^alice@localhost\/test$/);
  });

  test('SCRAM-SHA-1 signs in with the salted credentials stored when the password was set', async () => {
    const c = await signInXmpp('bob', 'SCRAM-SHA-1');
    assert.match(c.jid, /^bob@localhost\//);
    await assert.rejects(
      connectXmpp({ port, login: 'bob', password: 'not-bobs', mechanism: 'SCRAM-SHA-1' }),
      (err: Error & { condition?: string }) => err.condition === 'not-authorized',
    );
    await assert.rejects(
      connectXmpp({ port, login: 'nobody', password: 'whatever1', mechanism: 'SCRAM-SHA-1' }),
      (err: Error & { condition?: string }) => err.condition === 'not-authorized',
    );
    // A password changed in Perch changes what SCRAM accepts.
    await admin.ok('PATCH', '/api/v1/users/dave', { password: 'password-dave-2' });
    await assert.rejects(
      connectXmpp({ port, login: 'dave', password: 'password-dave', mechanism: 'SCRAM-SHA-1' }),
      (err: Error & { condition?: string }) => err.condition === 'not-authorized',
    );
    const dave = await connectXmpp({
      port,
      login: 'dave',
      password: 'password-dave-2',
      mechanism: 'SCRAM-SHA-1',
    });
    await dave.stop();
    await admin.ok('PATCH', '/api/v1/users/dave', { password: 'password-dave' });
  });

  test('without STARTTLS the server offers nothing but STARTTLS and refuses PLAIN', async () => {
    const raw = await rawXmpp(port);
    raw.socket.write(streamHeader);
    const features = await raw.waitFor('</stream:features>');
    assert.match(
      features,
      /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required\/><\/starttls>/,
    );
    assert.doesNotMatch(features, /PLAIN/);
    const creds = Buffer.from('\0alice\0password-alice').toString('base64');
    raw.socket.write(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${creds}</auth>`,
    );
    await raw.waitFor('<encryption-required/>');
    raw.socket.destroy();
  });

  test('a wrong password is refused with not-authorized', async () => {
    await assert.rejects(
      connectXmpp({ port, login: 'bob', password: 'wrong-password', mechanism: 'PLAIN' }),
      (err: Error & { condition?: string }) => err.condition === 'not-authorized',
    );
  });

  test('disco lists the chat service and only the rooms the user may see', async () => {
    const carol = await signInXmpp('carol');
    const items = await carol.iq(
      xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: DISCO_ITEMS })),
    );
    assert.deepEqual(
      items
        .getChild('query', DISCO_ITEMS)!
        .getChildren('item')
        .map((i) => i.attrs.jid),
      [CONFERENCE],
    );
    const service = await carol.iq(
      xml('iq', { type: 'get', to: CONFERENCE }, xml('query', { xmlns: DISCO_INFO })),
    );
    const identity = service.getChild('query', DISCO_INFO)!.getChild('identity')!;
    assert.equal(identity.attrs.category, 'conference');
    const listed = await carol.iq(
      xml('iq', { type: 'get', to: CONFERENCE }, xml('query', { xmlns: DISCO_ITEMS })),
    );
    const names = listed
      .getChild('query', DISCO_ITEMS)!
      .getChildren('item')
      .map((i) => i.attrs.name);
    assert.deepEqual(names.sort(), ['Closed room', 'Open room', 'Stage']);
    const alice = await signInXmpp('alice');
    const aliceList = await alice.iq(
      xml('iq', { type: 'get', to: CONFERENCE }, xml('query', { xmlns: DISCO_ITEMS })),
    );
    assert.ok(
      aliceList
        .getChild('query', DISCO_ITEMS)!
        .getChildren('item')
        .some((i) => i.attrs.jid === `${rooms.secret.id}@${CONFERENCE}`),
      'a member sees the secret room',
    );
    // A secret room is as unknown as a room that does not exist.
    for (const jid of [`${rooms.secret.id}@${CONFERENCE}`, `999999@${CONFERENCE}`]) {
      await assert.rejects(
        carol.iq(xml('iq', { type: 'get', to: jid }, xml('query', { xmlns: DISCO_INFO }))),
        (err: Error & { condition?: string }) => err.condition === 'item-not-found',
      );
    }
    const info = await carol.iq(
      xml(
        'iq',
        { type: 'get', to: `${rooms.stage.id}@${CONFERENCE}` },
        xml('query', { xmlns: DISCO_INFO }),
      ),
    );
    const features = info
      .getChild('query', DISCO_INFO)!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(
      features.includes('muc_moderated') &&
        features.includes(MAM) &&
        features.includes('muc_persistent'),
    );
  });

  test('joining gives history, then web and XMPP posts flow both ways, live and in order', async () => {
    const roomId = rooms.open.id;
    await postMany(users.bob.http, roomId, 3, (i) => `before ${i}`);
    const alice = await signInXmpp('alice');
    const { self, history } = await join(alice, roomId, 'Ali');
    const codes = statusCodes(self);
    assert.ok(codes.includes('110') && codes.includes('210'), `status codes ${codes.join(',')}`);
    assert.equal(
      self.attrs.from,
      `${roomId}@${CONFERENCE}/alice`,
      'the service sets the nick to the login',
    );
    assert.equal(self.getChild('x', MUC_USER)!.getChild('item')!.attrs.role, 'participant');
    assert.deepEqual(
      history.map((m) => m.getChildText('body')),
      ['before 0', 'before 1', 'before 2'],
    );
    assert.ok(
      history.every((m) => m.getChild('delay', 'urn:xmpp:delay')),
      'history is marked delayed',
    );

    const bob = await web(users.bob);
    await ask(bob, { type: 'join', roomId });
    // Web posts reach the XMPP occupant in order.
    const webSeqs = await postMany(users.bob.http, roomId, 20, (i) => `web ${i}`);
    const got: string[] = [];
    while (got.length < 20)
      got.push((await alice.next('web post', groupchatFrom(roomId))).getChildText('body')!);
    assert.equal(webSeqs.length, 20);
    assert.deepEqual(
      got.map((t) => Number(t.split(' ')[1])).sort((a, b) => a - b),
      range(0, 19),
    );
    const bySeq = (await nextMessages(bob, roomId, 20)).map((f) => f.message.text);
    assert.deepEqual(got, bySeq, 'the XMPP client sees them in the room sequence order');

    // XMPP posts become Perch posts that web clients receive in order, echoed to the sender.
    for (const i of range(0, 9))
      await alice.xmpp.send(
        xml(
          'message',
          { to: `${roomId}@${CONFERENCE}`, type: 'groupchat', id: `x-${i}` },
          xml('body', {}, `xmpp ${i}`),
        ),
      );
    const seen = await nextMessages(bob, roomId, 10);
    assert.deepEqual(
      seen.map((f) => f.message.text),
      range(0, 9).map((i) => `xmpp ${i}`),
    );
    assert.ok(seen.every((f) => f.message.author.name === 'alice'));
    const echoes: Element[] = [];
    while (echoes.length < 10) echoes.push(await alice.next('echo', groupchatFrom(roomId)));
    assert.deepEqual(
      echoes.map((m) => m.attrs.id),
      range(0, 9).map((i) => `x-${i}`),
      'reflected with the sender id',
    );
    assert.ok(echoes.every((m) => m.attrs.from === `${roomId}@${CONFERENCE}/alice`));
    // Stored for good, with the author, like any post.
    const page = await users.carol.http.ok<{
      messages: { text: string; author: { name: string } }[];
    }>('GET', `/api/v1/rooms/${roomId}/messages?limit=10`);
    assert.deepEqual(
      page.messages.map((m) => m.text),
      range(0, 9).map((i) => `xmpp ${i}`),
    );
    // And captured for compliance like every post: CHAT records by alice in that room.
    await admin.ok('POST', '/api/v1/compliance/run');
    const { records } = await admin.ok<{
      records: { type: string; content: string; sender: { userName: string } | null }[];
    }>('POST', '/api/v1/compliance/search', { roomId, types: ['CHAT'], text: 'xmpp' });
    assert.deepEqual(
      records.map((r) => [r.sender?.userName, r.content]).sort(),
      range(0, 9).map((i) => ['alice', `xmpp ${i}`]),
    );
  });

  test('a live message is serialised once: occupants get the same bytes but for their own `to`', async () => {
    const roomId = rooms.open.id;
    const occupants = [await signInXmpp('bob'), await signInXmpp('carol')];
    for (const c of occupants) await join(c, roomId, 'x', 0);
    // What each occupant's socket delivers, decrypted, before any parsing.
    const raw = occupants.map((c) => {
      const chunks: Buffer[] = [];
      c.xmpp.socket!.on('data', (d: Buffer) => chunks.push(d));
      return () => Buffer.concat(chunks).toString('utf8');
    });
    const text = `escaping <&> "quoted" 'single' ünï 😀 ]]>`;
    const [seq] = await postMany(users.alice.http, roomId, 1, () => text);
    for (const c of occupants)
      await c.next('the post', (el) => groupchatFrom(roomId)(el) && el.attrs.id !== undefined);
    const stanzas = raw.map((r) => {
      const found = [...r().matchAll(/<message [^>]*>.*?<\/message>/gs)]
        .map((m) => m[0])
        .filter((st) => st.includes('<stanza-id ') && st.includes(` id="${seq}"/>`));
      assert.equal(found.length, 1, r());
      return found[0]!;
    });
    occupants.forEach((c, i) =>
      assert.ok(stanzas[i]!.includes(` to="${c.jid}" `), `${stanzas[i]} is addressed to ${c.jid}`),
    );
    const withoutTo = (st: string) => st.replace(/ to="[^"]*"/, '');
    assert.notEqual(stanzas[0], stanzas[1]);
    assert.equal(withoutTo(stanzas[0]!), withoutTo(stanzas[1]!));
    assert.ok(
      stanzas[0]!.includes(
        '<body>escaping &lt;&amp;&gt; &quot;quoted&quot; &apos;single&apos; ünï 😀 ]]&gt;</body>',
      ),
      stanzas[0],
    );
  });

  test('occupants see each other come and go', async () => {
    const roomId = rooms.open.id;
    const carol = await signInXmpp('carol');
    await join(carol, roomId, 'carol', 0);
    const dave = await signInXmpp('dave');
    const { self } = await join(dave, roomId, 'dave', 0);
    assert.ok(self);
    const came = await carol.next(
      'dave joined',
      (el) => el.is('presence') && el.attrs.from === `${roomId}@${CONFERENCE}/dave`,
    );
    assert.equal(came.attrs.type, undefined);
    await dave.xmpp.send(
      xml('presence', { to: `${roomId}@${CONFERENCE}/dave`, type: 'unavailable' }),
    );
    const own = await dave.next(
      'own unavailable',
      (el) => el.is('presence') && el.attrs.type === 'unavailable',
    );
    assert.ok(statusCodes(own).includes('110'));
    const left = await carol.next(
      'dave left',
      (el) =>
        el.is('presence') &&
        el.attrs.from === `${roomId}@${CONFERENCE}/dave` &&
        el.attrs.type === 'unavailable',
    );
    assert.ok(left);
  });

  test('permissions: closed room is forbidden, a secret room unknown, an auditorium gives voice to presenters only', async () => {
    const carol = await signInXmpp('carol');
    const closed = await join(carol, rooms.closed.id);
    assert.equal(closed.self.attrs.type, 'error');
    assert.equal(errorCondition(closed.self), 'forbidden');
    const secret = await join(carol, rooms.secret.id);
    assert.equal(errorCondition(secret.self), 'item-not-found');

    const stage = rooms.stage.id;
    const listener = await join(carol, stage, 'carol', 0);
    assert.equal(listener.self.getChild('x', MUC_USER)!.getChild('item')!.attrs.role, 'visitor');
    await carol.xmpp.send(
      xml(
        'message',
        { to: `${stage}@${CONFERENCE}`, type: 'groupchat', id: 'no-voice' },
        xml('body', {}, 'hello?'),
      ),
    );
    const refused = await carol.next(
      'refused post',
      (el) => el.is('message') && el.attrs.id === 'no-voice',
    );
    assert.equal(refused.attrs.type, 'error');
    assert.equal(errorCondition(refused), 'forbidden');

    const alice = await signInXmpp('alice');
    const presenter = await join(alice, stage, 'alice', 0);
    assert.equal(
      presenter.self.getChild('x', MUC_USER)!.getChild('item')!.attrs.role,
      'participant',
    );
    const seesAlice = await carol.next(
      'presenter presence',
      (el) => el.is('presence') && el.attrs.from === `${stage}@${CONFERENCE}/alice`,
    );
    assert.equal(seesAlice.getChild('x', MUC_USER)!.getChild('item')!.attrs.role, 'participant');
    await alice.xmpp.send(
      xml(
        'message',
        { to: `${stage}@${CONFERENCE}`, type: 'groupchat' },
        xml('body', {}, 'welcome'),
      ),
    );
    const heard = await carol.next('presenter post', groupchatFrom(stage));
    assert.equal(heard.getChildText('body'), 'welcome');
  });

  test('a web client sees an XMPP occupant in the roster', async () => {
    const roomId = rooms.closed.id;
    const bob = await signInXmpp('bob');
    await join(bob, roomId, 'bob', 0);
    const alice = await web(users.alice);
    const reply = await ask<{ roster: { users: { name: string }[] } }>(alice, {
      type: 'join',
      roomId,
    });
    assert.ok(reply.roster.users.some((u) => u.name === 'bob'));
  });

  test('the archive pages through room history with RSM', async () => {
    const room = await buildRoom(admin, { name: 'Archive', category: 'General', privacy: 'open' });
    // One after another, so that the texts follow the sequence numbers.
    for (const i of range(0, 24))
      await users.bob.http.ok('POST', `/api/v1/rooms/${room.id}/messages`, {
        text: `m${String(i).padStart(2, '0')}`,
      });
    const carol = await signInXmpp('carol');
    const query = async (set: Element | undefined, queryid: string) => {
      const fin = await carol.iq(
        xml(
          'iq',
          { type: 'set', to: `${room.id}@${CONFERENCE}` },
          xml('query', { xmlns: MAM, queryid }, set),
        ),
      );
      const results: Element[] = [];
      for (;;) {
        const i = carol.inbox.findIndex(
          (el) => el.getChild('result', MAM)?.attrs.queryid === queryid,
        );
        if (i < 0) break;
        results.push(carol.inbox.splice(i, 1)[0]!);
      }
      const bodies = results.map((r) =>
        r
          .getChild('result', MAM)!
          .getChild('forwarded', 'urn:xmpp:forward:0')!
          .getChild('message')!
          .getChildText('body'),
      );
      const f = fin.getChild('fin', MAM)!;
      return {
        bodies,
        complete: f.attrs.complete === 'true',
        last: f.getChild('set', RSM)?.getChildText('last'),
        first: f.getChild('set', RSM)?.getChildText('first'),
      };
    };
    const first = await query(xml('set', { xmlns: RSM }, xml('max', {}, '10')), 'q1');
    assert.deepEqual(
      first.bodies,
      range(0, 9).map((i) => `m${String(i).padStart(2, '0')}`),
    );
    assert.equal(first.complete, false);
    const second = await query(
      xml('set', { xmlns: RSM }, xml('max', {}, '10'), xml('after', {}, first.last!)),
      'q2',
    );
    assert.deepEqual(
      second.bodies,
      range(10, 19).map((i) => `m${i}`),
    );
    const third = await query(
      xml('set', { xmlns: RSM }, xml('max', {}, '10'), xml('after', {}, second.last!)),
      'q3',
    );
    assert.deepEqual(
      third.bodies,
      range(20, 24).map((i) => `m${i}`),
    );
    assert.equal(third.complete, true);
    const latest = await query(
      xml('set', { xmlns: RSM }, xml('max', {}, '5'), xml('before')),
      'q4',
    );
    assert.deepEqual(
      latest.bodies,
      range(20, 24).map((i) => `m${i}`),
    );
    const back = await query(
      xml('set', { xmlns: RSM }, xml('max', {}, '5'), xml('before', {}, latest.first!)),
      'q5',
    );
    assert.deepEqual(
      back.bodies,
      range(15, 19).map((i) => `m${i}`),
    );
    // Invisible rooms stay invisible in the archive too.
    await assert.rejects(
      carol.iq(
        xml(
          'iq',
          { type: 'set', to: `${rooms.secret.id}@${CONFERENCE}` },
          xml('query', { xmlns: MAM }),
        ),
      ),
      (err: Error & { condition?: string }) => err.condition === 'item-not-found',
    );
    await assert.rejects(
      carol.iq(
        xml(
          'iq',
          { type: 'set', to: `${rooms.closed.id}@${CONFERENCE}` },
          xml('query', { xmlns: MAM }),
        ),
      ),
      (err: Error & { condition?: string }) => err.condition === 'forbidden',
    );
  });
});
