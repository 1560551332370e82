// Several pools on loopback: pools "north" and "south", each a front end on its own PostgreSQL
// database of one test cluster, published as one topology. A user signed in at north finds rooms
// of both pools, joins, posts, reads history, searches and follows in a south room through the
// north front end; south decides every such call against its own directory and permissions, so a
// room hidden from the user stays hidden, and a user south does not know gets nothing. The
// pool-link assertion is refused when forged, stale, replayed on another request or body, or used
// on an administrator route.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { runPerch } from '../cli/helpers.js';
import { publishPools } from '../harness/pools.js';
import { testCluster, type PostgresCluster } from '../harness/postgres.js';
import { cleanup, startServer, type TestServer } from '../harness/server.js';
import { connect, type Frame, type WsClient } from '../harness/ws-client.js';
import {
  adminHttp,
  ask,
  askFails,
  buildCategory,
  buildRoom,
  Http,
  type HttpAnswer,
  nextMessages,
  openClient,
  signIn,
} from './helpers.js';

const adminPassword = 'Pw1!pools-admin-password';

type PoolAnswer = { pool: string; status: number; body: unknown };

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/**
 * A pool-link assertion made the way docs/operations/pools.md describes it, independently of the
 * server's code: base64url(JSON claims) "." base64url(HMAC-SHA256(secret, that first part)).
 */
function assertion(
  secret: Buffer,
  claims: { pool: string; login: string; ts: number; method: string; url: string; body: string },
): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = crypto.createHmac('sha256', secret).update(payload).digest('base64url');
  return `PerchPool ${payload}.${sig}`;
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

describe('several pools: north and south on two PostgreSQL databases, one topology', () => {
  let cluster: PostgresCluster;
  const db: Record<string, { name: string; url: string }> = {};
  const fe: Record<string, TestServer> = {};
  const clients: WsClient[] = [];
  let dir: string;
  let file: string;
  const tokens: Record<string, string> = {};
  const southTokens: Record<string, string> = {};
  const rooms: Record<string, number> = {};
  let northAdmin: Http;
  let first: Awaited<ReturnType<typeof runPerch>>;
  let southAdmin: Http;

  /** `login` signed in at north. */
  function atNorth(login: string): Http {
    return new Http(fe.north!.url, tokens[login]!);
  }
  /** `login` signed in at south directly (what the forwarded call must equal). */
  function atSouth(login: string): Http {
    return new Http(fe.south!.url, southTokens[login]!);
  }
  function names(body: unknown): string[] {
    return (body as { name: string }[]).map((r) => r.name).sort();
  }
  async function allPools(login: string, p: string): Promise<Map<string, PoolAnswer>> {
    const r = await atNorth(login).ok<{ pools: PoolAnswer[] }>('GET', `/api/v1/all-pools/${p}`);
    return new Map(r.pools.map((x) => [x.pool, x]));
  }

  before(async () => {
    cluster = await testCluster();
    db.north = await cluster.createDatabase();
    db.south = await cluster.createDatabase();
    for (const pool of ['north', 'south']) {
      fe[pool] = await startServer({
        storeUrl: db[pool]!.url,
        adminPassword,
        startDeadlineMs: 90_000,
        env: { PERCH_POOL: pool, PERCH_FRONT_END: `${pool}-fe1`, PERCH_POOL_HEARTBEAT_MS: '200' },
      });
    }
    ({
      dir,
      file,
      publish: first,
    } = await publishPools({
      north: { fe: fe.north!, storeUrl: db.north!.url },
      south: { fe: fe.south!, storeUrl: db.south!.url },
    }));

    // The same people in both pools (alice, bob); carol only in north.
    const north = (northAdmin = await adminHttp(fe.north!));
    const south = (southAdmin = await adminHttp(fe.south!));
    for (const login of ['alice', 'bob', 'carol']) {
      await north.ok('POST', '/api/v1/users', { login, password: `north-${login}` });
      tokens[login] = await signIn(fe.north!, login, `north-${login}`);
    }
    for (const login of ['alice', 'bob']) {
      await south.ok('POST', '/api/v1/users', { login, password: `south-${login}` });
      southTokens[login] = await signIn(fe.south!, login, `south-${login}`);
    }
    await buildCategory(north, { name: 'North', allowed: ['alice', 'bob', 'carol'] });
    await buildCategory(south, { name: 'South', allowed: ['alice', 'bob'], fileUpload: true });
    rooms.plaza = (
      await buildRoom(north, { name: 'plaza', category: 'North', privacy: 'open' })
    ).id;
    rooms.harbour = (
      await buildRoom(south, { name: 'harbour', category: 'South', privacy: 'open' })
    ).id;
    rooms.council = (
      await buildRoom(south, {
        name: 'council',
        category: 'South',
        privacy: 'closed',
        members: ['alice'],
      })
    ).id;
    rooms.vault = (
      await buildRoom(south, {
        name: 'vault',
        category: 'South',
        privacy: 'secret',
        members: ['bob'],
      })
    ).id;
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.terminate()));
    await Promise.all(Object.values(fe).map((s) => cleanup(s)));
    for (const d of Object.values(db)) await cluster.dropDatabase(d.name);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('publish shares one pool-link secret among the pools; publishing again changes nothing', async () => {
    type Published = { steps: { kind: string; subject: string; changed: boolean }[] };
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(
      (JSON.parse(first.stdout) as Published).steps
        .filter((s) => s.kind === 'pool link')
        .map((s) => [s.subject, s.changed]),
      [
        ['north', true],
        ['south', true],
      ],
    );
    const secrets = await Promise.all(
      ['north', 'south'].map((pool) =>
        query<{ value: string }>(
          db[pool]!.url,
          "SELECT value FROM server_secrets WHERE name = 'pool-link'",
        ),
      ),
    );
    assert.equal(secrets[0]!.length, 1);
    assert.deepEqual(secrets[0], secrets[1]);
    assert.equal(Buffer.from(secrets[0]![0]!.value, 'base64').length, 32);
    const second = await runPerch(['topology', 'publish', '--file', file]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trim(), `Nothing to change: ${file} is published as it is.`);
    assert.match(second.stderr, /unchanged pool link south: secret in place/);
  });

  test('the room directory spans the pools, each showing only what its own rules let the user find', async () => {
    const alice = await allPools('alice', 'rooms');
    assert.deepEqual([...alice.keys()], ['north', 'south']);
    assert.deepEqual(names(alice.get('north')!.body), ['plaza']);
    // The closed room is found by its scope; the secret one only by its members.
    assert.deepEqual(names(alice.get('south')!.body), ['council', 'harbour']);
    const bob = await allPools('bob', 'rooms');
    assert.deepEqual(names(bob.get('south')!.body), ['council', 'harbour', 'vault']);
    // Each pool's part is exactly what that pool answers the user directly.
    assert.deepEqual(alice.get('south')!.body, await atSouth('alice').ok('GET', '/api/v1/rooms'));
    // A user the south directory does not know sees north only; south says why.
    const carol = await allPools('carol', 'rooms?text=harbour');
    assert.deepEqual(names(carol.get('north')!.body), []);
    assert.equal(carol.get('south')!.status, 403);
    assert.equal(
      (carol.get('south')!.body as { error: { code: string } }).error.code,
      'pool_user_unknown',
    );
  });

  test("join, post, history, search and follow in another pool's room through the home front end", async () => {
    const roomId = rooms.harbour!;
    // bob is connected to south directly: he sees alice's post live, as south's alice.
    const bob = await openClient(fe.south!, southTokens.bob!);
    clients.push(bob);
    await ask(bob, { type: 'join', roomId });
    const alice = atNorth('alice');
    await alice.ok('POST', `/api/v1/remote/south/rooms/${roomId}/join`, {});
    const posted = await alice.ok<{ message: { seq: number; author: { name: string } } }>(
      'POST',
      `/api/v1/remote/south/rooms/${roomId}/messages`,
      { text: 'tide tables for the harbour', clientId: 'north-1' },
    );
    assert.equal(posted.message.author.name, 'alice');
    const [live] = await nextMessages(bob, roomId, 1);
    assert.equal(live!.message.seq, posted.message.seq);
    assert.equal(live!.message.text, 'tide tables for the harbour');
    // A retry with the same clientId is the same message (south's idempotency, through north).
    const retry = await alice.call('POST', `/api/v1/remote/south/rooms/${roomId}/messages`, {
      text: 'tide tables for the harbour',
      clientId: 'north-1',
    });
    assert.equal((retry.body as { message: { seq: number } }).message.seq, posted.message.seq);
    const history = await alice.ok<{ messages: { seq: number; text: string }[] }>(
      'GET',
      `/api/v1/remote/south/rooms/${roomId}/messages?limit=10`,
    );
    assert.deepEqual(
      history.messages.map((m) => [m.seq, m.text]),
      [[posted.message.seq, 'tide tables for the harbour']],
    );
    // Message search spans the pools.
    const found = await allPools('alice', 'search/messages?query=tide');
    const southHits = found.get('south')!.body as { messages: { text: string }[] };
    assert.deepEqual(
      southHits.messages.map((m) => m.text),
      ['tide tables for the harbour'],
    );
    assert.equal((found.get('north')!.body as { messages: unknown[] }).messages.length, 0);
    // Followed rooms span the pools too.
    await alice.ok('PUT', `/api/v1/remote/south/me/follows/${roomId}`);
    await alice.ok('PUT', `/api/v1/me/follows/${rooms.plaza!}`);
    const follows = await allPools('alice', 'me/follows');
    assert.deepEqual(names(follows.get('north')!.body), ['plaza']);
    assert.deepEqual(names(follows.get('south')!.body), ['harbour']);
  });

  test('the owning pool decides: hidden rooms stay hidden, refusals are its own, unknown users get nothing', async () => {
    const same = async (login: string, method: string, p: string, body?: unknown) => {
      const forwarded: HttpAnswer = await atNorth(login).call(
        method,
        `/api/v1/remote/south/${p}`,
        body,
      );
      const direct: HttpAnswer = await atSouth(login).call(method, `/api/v1/${p}`, body);
      assert.deepEqual(forwarded, direct, `${login} ${method} ${p}`);
      return forwarded;
    };
    // alice may not know the secret room exists: it answers like a room that does not.
    const vault = await same('alice', 'GET', `rooms/${rooms.vault!}`);
    const none = await same('alice', 'GET', 'rooms/999999');
    assert.equal(vault.status, 404);
    assert.deepEqual(vault.body, none.body);
    const post = await same('alice', 'POST', `rooms/${rooms.vault!}/messages`, { text: 'hi' });
    assert.equal(post.status, 404);
    // bob is in the closed room's scope but no member: he finds it and may not read it.
    const history = await same('bob', 'GET', `rooms/${rooms.council!}/messages`);
    assert.equal(history.status, 403);
    // The member may.
    const council = await same('alice', 'GET', `rooms/${rooms.council!}/messages`);
    assert.equal(council.status, 200);
    // An administrator is an ordinary user through the link: the secret room stays hidden.
    const adminDirect = await new Http(fe.south!.url, southAdmin.token).call(
      'GET',
      `/api/v1/rooms/${rooms.vault!}`,
    );
    assert.equal(adminDirect.status, 200);
    const adminLinked = await northAdmin.call('GET', `/api/v1/remote/south/rooms/${rooms.vault!}`);
    assert.deepEqual(adminLinked, none);
    // Not in south's directory: refused with that reason, whatever the room.
    const carol = await atNorth('carol').call(
      'GET',
      `/api/v1/remote/south/rooms/${rooms.harbour!}`,
    );
    assert.equal(carol.status, 403);
    assert.equal((carol.body as { error: { code: string } }).error.code, 'pool_user_unknown');
    // A pool that is not in the topology, and paths that climb out of the API.
    const nowhere = await atNorth('alice').call('GET', '/api/v1/remote/west/rooms');
    assert.equal(nowhere.status, 404);
    assert.equal((nowhere.body as { error: { code: string } }).error.code, 'pool_not_found');
    for (const p of ['sessions/current', 'all-pools/rooms', 'remote/north/rooms']) {
      const bad = await atNorth('alice').call('GET', `/api/v1/remote/south/${p}`);
      assert.equal(bad.status, 400, p);
    }
    // Administration is not reachable through the link, whoever asks.
    const users = await atNorth('alice').call('GET', '/api/v1/remote/south/users');
    assert.equal(users.status, 401);
    assert.equal((users.body as { error: { code: string } }).error.code, 'pool_link_refused');
  });

  test('a pool-link assertion is refused when forged, stale, replayed elsewhere, for another body, or on an admin route', async () => {
    const [row] = await query<{ value: string }>(
      db.south!.url,
      "SELECT value FROM server_secrets WHERE name = 'pool-link'",
    );
    const secret = Buffer.from(row!.value, 'base64');
    const south = fe.south!.url;
    const send = async (url: string, authorization: string, init: RequestInit = {}) => {
      const res = await fetch(`${south}${url}`, {
        ...init,
        headers: { authorization, ...(init.body ? { 'content-type': 'application/json' } : {}) },
      });
      const text = await res.text();
      return {
        status: res.status,
        code: text ? (JSON.parse(text) as { error?: { code: string } }).error?.code : undefined,
      };
    };
    const claims = (over: Partial<Parameters<typeof assertion>[1]> = {}) => ({
      pool: 'north',
      login: 'alice',
      ts: Date.now(),
      method: 'GET',
      url: '/api/v1/rooms',
      body: sha256(''),
      ...over,
    });
    // Made right, it works: the test's signer is the documented format.
    assert.equal((await send('/api/v1/rooms', assertion(secret, claims()))).status, 200);
    const refused = async (url: string, header: string, init?: RequestInit) =>
      assert.deepEqual(await send(url, header, init), { status: 401, code: 'pool_link_refused' });
    await refused('/api/v1/rooms', assertion(crypto.randomBytes(32), claims()));
    await refused('/api/v1/rooms', 'PerchPool not-an-assertion');
    await refused('/api/v1/rooms', assertion(secret, claims({ ts: Date.now() - 5 * 60_000 })));
    await refused('/api/v1/me/follows', assertion(secret, claims()));
    await refused(
      '/api/v1/users',
      assertion(secret, claims({ url: '/api/v1/users', login: 'admin' })),
    );
    const body = JSON.stringify({ text: 'signed for this' });
    const postClaims = claims({
      method: 'POST',
      url: `/api/v1/rooms/${rooms.harbour!}/messages`,
      body: sha256(body),
    });
    await refused(`/api/v1/rooms/${rooms.harbour!}/messages`, assertion(secret, postClaims), {
      method: 'POST',
      body: JSON.stringify({ text: 'but this was sent' }),
    });
    const ok = await send(
      `/api/v1/rooms/${rooms.harbour!}/messages`,
      assertion(secret, postClaims),
      {
        method: 'POST',
        body,
      },
    );
    assert.equal(ok.status, 201);
  });

  test("files of another pool's room: uploaded and downloaded through the home front end", async () => {
    const roomId = rooms.harbour!;
    const bytes = crypto.randomBytes(100_000);
    const up = await fetch(
      `${fe.north!.url}/api/v1/remote/south/rooms/${roomId}/files?name=${encodeURIComponent('chart ⚓.bin')}`,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${tokens.alice!}`,
          'content-type': 'application/octet-stream',
        },
        body: bytes,
      },
    );
    assert.equal(up.status, 201, await up.clone().text());
    const { message } = (await up.json()) as {
      message: { author: { name: string }; file: { id: number; name: string; size: number } };
    };
    assert.equal(message.author.name, 'alice');
    assert.deepEqual([message.file.name, message.file.size], ['chart ⚓.bin', bytes.length]);
    // The link comes from south; through north it is fetched from south and passed on.
    const { url } = await atNorth('alice').ok<{ url: string }>(
      'GET',
      `/api/v1/remote/south/files/${message.file.id}/link`,
    );
    const viaNorth = await fetch(
      `${fe.north!.url}${url.replace(/^\/api\/v1\//, '/api/v1/remote/south/')}`,
    );
    assert.equal(viaNorth.status, 200);
    assert.match(viaNorth.headers.get('content-disposition') ?? '', /chart/);
    assert.ok(Buffer.from(await viaNorth.arrayBuffer()).equals(bytes));
    // bob, at south directly, gets the same bytes; a bad token is south's own 404.
    const bobLink = await atSouth('bob').ok<{ url: string }>(
      'GET',
      `/api/v1/files/${message.file.id}/link`,
    );
    const direct = await fetch(`${fe.south!.url}${bobLink.url}`);
    assert.ok(Buffer.from(await direct.arrayBuffer()).equals(bytes));
    const bad = await fetch(`${fe.north!.url}/api/v1/remote/south/files/download/not-a-token`);
    assert.equal(bad.status, 404);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'file_not_found');
    // A body other than the signed one is refused by south (the digest covers the raw bytes).
    const [row] = await query<{ value: string }>(
      db.south!.url,
      "SELECT value FROM server_secrets WHERE name = 'pool-link'",
    );
    const path = `/api/v1/rooms/${roomId}/files?name=x.bin`;
    const signed = assertion(Buffer.from(row!.value, 'base64'), {
      pool: 'north',
      login: 'alice',
      ts: Date.now(),
      method: 'POST',
      url: path,
      body: sha256('the signed bytes'),
    });
    const swapped = await fetch(`${fe.south!.url}${path}`, {
      method: 'POST',
      headers: { authorization: signed, 'content-type': 'application/octet-stream' },
      body: Buffer.from('other bytes'),
    });
    assert.equal(swapped.status, 401);
  });

  /** A WebSocket to north's relay to `pool` (not yet authenticated). */
  async function relay(pool: string): Promise<WsClient> {
    const client = await connect(fe.north!.wsUrl.replace(/\/ws$/, `/ws/pool/${pool}`));
    clients.push(client);
    return client;
  }
  /** The error frame and close code a relay ends a refused session with. */
  async function refused(client: WsClient, frame: Frame): Promise<[string, number]> {
    const answer = await client.request(frame);
    assert.equal(answer.type, 'error', JSON.stringify(answer));
    return [String(answer.code), (await client.closed).code];
  }

  test("a client of north has a south room live over north's relay socket, as south's user", async () => {
    const roomId = rooms.harbour!;
    const alice = await relay('south');
    const auth = await ask<{
      user: { name: string; isAdmin: boolean };
      server: { pool: { name: string } };
    }>(alice, { type: 'auth', token: tokens.alice! });
    // The session is south's: its user, its pool, its room ids.
    assert.equal(auth.user.name, 'alice');
    assert.equal(auth.server.pool.name, 'south');
    const bob = await openClient(fe.south!, southTokens.bob!);
    clients.push(bob);
    await ask(bob, { type: 'join', roomId });
    const joined = await ask<{ room: { name: string } }>(alice, { type: 'join', roomId });
    assert.equal(joined.room.name, 'harbour');
    // Posts made in south reach the relayed client live, in order.
    const sent: number[] = [];
    for (const n of [1, 2, 3]) {
      const r = await ask<{ seq: number }>(bob, { type: 'post', roomId, text: `bell ${n}` });
      sent.push(r.seq);
    }
    const got = await nextMessages(alice, roomId, 3);
    assert.deepEqual(
      got.map((m) => [m.message.seq, m.message.text]),
      sent.map((seq, i) => [seq, `bell ${i + 1}`]),
    );
    // And the relayed client's posts are south's posts by alice, live to bob.
    const posted = await ask<{ seq: number }>(alice, {
      type: 'post',
      roomId,
      text: 'ahoy from the north',
      clientId: 'relay-1',
    });
    // (bob's own three posts come to him first)
    const live = await nextMessages(bob, roomId, 4);
    assert.deepEqual(
      live.map((m) => m.message.seq),
      [...sent, posted.seq],
    );
    assert.equal(live[3]!.message.author.name, 'alice');
    // South decides: its secret room does not exist for alice; its closed one refuses bob.
    await askFails(alice, { type: 'join', roomId: rooms.vault! }, 'room_not_found');
    const bobRelayed = await relay('south');
    await ask(bobRelayed, { type: 'auth', token: tokens.bob! });
    await askFails(bobRelayed, { type: 'join', roomId: rooms.council! }, 'forbidden');
    // An administrator of north is an ordinary user of south through the relay.
    const admin = await relay('south');
    const adminAuth = await ask<{ user: { isAdmin: boolean } }>(admin, {
      type: 'auth',
      token: northAdmin.token,
    });
    assert.equal(adminAuth.user.isAdmin, false);
    await askFails(admin, { type: 'join', roomId: rooms.vault! }, 'room_not_found');
  });

  test('the relay refuses what the pools do not admit, and ends with the home session', async () => {
    // Not in south's directory; a pool not in the topology; no valid session at home.
    assert.deepEqual(await refused(await relay('south'), { type: 'auth', token: tokens.carol! }), [
      'pool_user_unknown',
      4502,
    ]);
    assert.deepEqual(await refused(await relay('west'), { type: 'auth', token: tokens.alice! }), [
      'pool_not_found',
      4502,
    ]);
    assert.deepEqual(await refused(await relay('south'), { type: 'auth', token: 'nope' }), [
      'unauthenticated',
      4001,
    ]);
    assert.deepEqual(await refused(await relay('south'), { type: 'follows' }), [
      'unauthenticated',
      4001,
    ]);
    // Signing out at north ends the relayed session at once.
    const token = await signIn(fe.north!, 'alice', 'north-alice');
    const alice = await relay('south');
    await ask(alice, { type: 'auth', token });
    await ask(alice, { type: 'follows' });
    await new Http(fe.north!.url, token).ok('DELETE', '/api/v1/sessions/current');
    assert.equal((await alice.closed).code, 4004);
    // South's socket takes a pool-link assertion only when it is genuine.
    const forged = assertion(crypto.randomBytes(32), {
      pool: 'north',
      login: 'alice',
      ts: Date.now(),
      method: 'GET',
      url: '/ws',
      body: sha256(''),
    });
    await assert.rejects(connect(fe.south!.wsUrl, { headers: { authorization: forged } }), /401/);
  });

  test('a pool that cannot be reached is reported by name; the home pool still answers', async () => {
    await fe.south!.stop();
    const r = await allPools('alice', 'rooms');
    assert.deepEqual(names(r.get('north')!.body), ['plaza']);
    assert.equal(r.get('south')!.status, 502);
    assert.equal(
      (r.get('south')!.body as { error: { code: string } }).error.code,
      'pool_unreachable',
    );
    const direct = await atNorth('alice').call(
      'GET',
      `/api/v1/remote/south/rooms/${rooms.harbour!}`,
    );
    assert.equal(direct.status, 502);
    assert.deepEqual(await refused(await relay('south'), { type: 'auth', token: tokens.alice! }), [
      'pool_unreachable',
      4502,
    ]);
  });
});
