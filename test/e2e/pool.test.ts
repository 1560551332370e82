// An Enterprise Edition pool on loopback: four `perch serve --pool --front-end` processes sharing
// one real PostgreSQL database. Posts made through any front end reach every front end's clients
// in sequence order; administrator changes and sign-outs cross front ends; the active set makes
// a front end idle (it refuses new sessions and names the active ones); the LISTEN connections
// are cut and come back with nothing lost; a front end killed mid-traffic loses nothing for the
// clients that move to another.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { cliFor } from '../cli/helpers.js';
import { testCluster, type PostgresCluster } from '../harness/postgres.js';
import { cleanup, freePort, startServer, tempDir, type TestServer } from '../harness/server.js';
import { connect, type Frame, type WsClient } from '../harness/ws-client.js';
import {
  adminHttp,
  ask,
  assertNothingMore,
  buildCategory,
  buildRoom,
  Http,
  isMessageIn,
  nextMessages,
  openClient,
  postMany,
  range,
  signIn,
  type MessageFrame,
} from './helpers.js';
import { rawXmpp, streamHeader } from '../xmpp/helpers.js';

const POOL = 'pool1';
const logins = ['alice', 'bob', 'carol', 'dave'] as const;

/** Polls a condition until it holds; fails with `what` when the deadline passes. */
async function waitFor(what: string, check: () => Promise<boolean>, deadlineMs = 30_000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('Enterprise Edition pool: four front ends on one PostgreSQL store', () => {
  let cluster: PostgresCluster;
  let db: { name: string; url: string };
  const fe: Record<string, TestServer> = {};
  const clients: WsClient[] = [];
  let admin: Http;
  const tokens: Record<string, string> = {};
  let configHome: string;
  // One folder for every front end's uploaded files (a network share in production).
  let fileStore: string;
  let roomCount = 0;
  const adminPassword = 'Pw1!pool-admin-password';

  // fe1's data folder holds a secret.key, as a front end upgraded from an earlier version does.
  const leftoverKey = crypto.randomBytes(32);

  async function startFrontEnd(
    name: string,
    env: Record<string, string> = {},
  ): Promise<TestServer> {
    let dataDir: string | undefined;
    if (name === 'fe1') {
      dataDir = await tempDir();
      fs.writeFileSync(path.join(dataDir, 'secret.key'), leftoverKey, { mode: 0o600 });
    }
    return startServer({
      dataDir,
      storeUrl: db.url,
      adminPassword,
      // Four servers starting on a busy two-core machine: be patient.
      startDeadlineMs: 90_000,
      env: {
        PERCH_POOL: POOL,
        PERCH_FRONT_END: name,
        PERCH_POOL_HEARTBEAT_MS: '200',
        PERCH_FILE_STORE_DIR: fileStore,
        ...env,
      },
    });
  }

  /** What an XMPP client opening a stream to `port` gets before the server closes it. */
  async function xmppRefusal(port: number): Promise<string> {
    const raw = await rawXmpp(port);
    raw.socket.write(streamHeader);
    await raw.closed;
    return raw.received();
  }

  /** A signed-in connection of `login` to front end `name`. */
  async function client(name: string, login: string): Promise<WsClient> {
    const c = await openClient(fe[name]!, tokens[login]!);
    clients.push(c);
    return c;
  }

  async function room(): Promise<number> {
    const r = await buildRoom(admin, {
      name: `pool-room-${++roomCount}`,
      category: 'General',
      privacy: 'open',
    });
    return r.id;
  }

  function http(name: string, login: string): Http {
    return new Http(fe[name]!.url, tokens[login]!);
  }

  before(async () => {
    cluster = await testCluster();
    db = await cluster.createDatabase();
    configHome = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-pool-cli-'));
    fileStore = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-pool-files-'));
    // One at a time: the first creates the administrator, the others find it.
    for (const name of ['fe1', 'fe2', 'fe3']) fe[name] = await startFrontEnd(name);
    admin = await adminHttp(fe.fe1!);
    for (const login of logins) {
      await admin.ok('POST', '/api/v1/users', { login, password: `password-${login}` });
      tokens[login] = await signIn(fe.fe1!, login, `password-${login}`);
    }
    await buildCategory(admin, { name: 'General', allowed: [...logins], fileUpload: true });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.terminate()));
    await Promise.all(Object.values(fe).map((s) => cleanup(s)));
    if (db) await cluster.dropDatabase(db.name);
    if (configHome) fs.rmSync(configHome, { recursive: true, force: true });
    if (fileStore) fs.rmSync(fileStore, { recursive: true, force: true });
  });

  test('posts through three front ends reach every front end in sequence order, each once', async () => {
    const roomId = await room();
    const a = await client('fe1', 'alice');
    const b = await client('fe2', 'bob');
    const c = await client('fe3', 'carol');
    for (const x of [a, b, c]) await ask(x, { type: 'join', roomId });
    // Twenty posts through each front end at once: the sequence interleaves the three.
    const [s1, s2, s3] = await Promise.all([
      postMany(http('fe1', 'alice'), roomId, 20, (i) => `fe1 ${i}`),
      postMany(http('fe2', 'bob'), roomId, 20, (i) => `fe2 ${i}`),
      postMany(http('fe3', 'carol'), roomId, 20, (i) => `fe3 ${i}`),
    ]);
    assert.deepEqual(
      [...s1, ...s2, ...s3].sort((x, y) => x - y),
      range(1, 60),
    );
    for (const x of [a, b, c]) {
      const got = await nextMessages(x, roomId, 60);
      assert.deepEqual(
        got.map((m) => m.message.seq),
        range(1, 60),
      );
      // Each message is the one stored under its sequence, whoever posted it.
      const bySeq = new Map(got.map((m) => [m.message.seq, m.message.text]));
      for (const seq of s2) assert.match(bySeq.get(seq)!, /^fe2 /);
      await assertNothingMore(x, isMessageIn(roomId));
    }
  });

  test('administrator changes and sign-outs reach clients on the other front ends', async () => {
    const roomId = await room();
    const b = await client('fe2', 'bob');
    await ask(b, { type: 'join', roomId });
    const { message } = await http('fe3', 'carol').ok<{ message: { seq: number } }>(
      'POST',
      `/api/v1/rooms/${roomId}/messages`,
      { text: 'regrettable' },
    );
    await nextMessages(b, roomId, 1);
    await admin.ok('POST', '/api/v1/messages/remove', { room: roomId, seq: message.seq });
    const changed = await b.nextEvent((f) => f.type === 'message_changed');
    const m = changed.message as { seq: number; state: string };
    assert.deepEqual([m.seq, m.state], [message.seq, 'removed']);
    await admin.ok('PATCH', `/api/v1/rooms/${roomId}`, { description: 'renovated' });
    assert.deepEqual(await b.nextEvent((f) => f.type === 'room_changed'), {
      type: 'room_changed',
      roomId,
    });
    // A room made closed without bob: his connection on fe2 is removed from it.
    await admin.ok('PATCH', `/api/v1/rooms/${roomId}`, { privacy: 'closed' });
    assert.deepEqual(await b.nextEvent((f) => f.type === 'removed'), {
      type: 'removed',
      roomId,
      reason: 'access_revoked',
    });
    // A session ended through fe1 closes its connection on fe3.
    const token = await signIn(fe.fe1!, 'dave', 'password-dave');
    const doomed = await openClient(fe.fe3!, token);
    clients.push(doomed);
    await new Http(fe.fe1!.url, token).ok('DELETE', '/api/v1/sessions/current');
    assert.deepEqual(await doomed.closed, { code: 4004, reason: 'signed_out' });
  });

  test('a file uploaded through one front end downloads through the others by a link made on any (shared file store, pool-wide link secret)', async () => {
    const roomId = await room();
    const bytes = Buffer.from(`shared across the pool ${Date.now()}\n`.repeat(50));
    const uploaded = await fetch(`${fe.fe1!.url}/api/v1/rooms/${roomId}/files?name=plan.txt`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tokens.alice!}`,
        'content-type': 'application/octet-stream',
      },
      body: bytes,
    });
    assert.equal(uploaded.status, 201, await uploaded.clone().text());
    const { message } = (await uploaded.json()) as { message: { file: { id: number } } };
    // The body lies in the shared folder, not in fe1's data folder.
    assert.equal(fs.readdirSync(fileStore).length >= 1, true);
    assert.equal(fs.existsSync(path.join(fe.fe1!.dataDir, 'files')), false);
    // A link made by one front end downloads from every other: the signing secret is the
    // pool's, in the store. fe1 started first and offered its leftover secret.key, so links
    // handed out before the upgrade stay valid: the signature is an HMAC under that key.
    const link = await http('fe1', 'bob').ok<{ url: string }>(
      'GET',
      `/api/v1/files/${message.file.id}/link`,
    );
    const token = decodeURIComponent(link.url.split('/').pop()!);
    const payload = token.slice(0, token.lastIndexOf('.'));
    assert.equal(
      token.slice(token.lastIndexOf('.') + 1),
      crypto.createHmac('sha256', leftoverKey).update(payload).digest('base64url'),
    );
    for (const name of ['fe2', 'fe3']) {
      const download = await fetch(`${fe[name]!.url}${link.url}`);
      assert.equal(download.status, 200, name);
      assert.deepEqual(Buffer.from(await download.arrayBuffer()), bytes);
    }
    // And the other way round, from a front end that never had a secret.key.
    const back = await http('fe3', 'alice').ok<{ url: string }>(
      'GET',
      `/api/v1/files/${message.file.id}/link`,
    );
    const download = await fetch(`${fe.fe1!.url}${back.url}`);
    assert.equal(download.status, 200);
    assert.deepEqual(Buffer.from(await download.arrayBuffer()), bytes);
  });

  test('the active set: an idle front end refuses new sessions, names the active ones, keeps its clients', async () => {
    const cli = cliFor(fe.fe1, configHome);
    const login = await cli(['login', '--user', 'admin', '--password-stdin'], {
      input: adminPassword,
    });
    assert.equal(login.code, 0, login.stderr);
    await cli.json(['pool', 'active-server', 'set', '--pool', POOL, '--servers', 'fe1,fe2,fe3']);
    // fe4 has an XMPP listener and knows fe2's (fe1 and fe3 have none).
    const fe4Xmpp = await freePort();
    const fe4 = (fe.fe4 = await startFrontEnd('fe4', {
      PERCH_XMPP_PORT: String(fe4Xmpp),
      PERCH_XMPP_PEERS: `fe2=chat2.example.org:5222,fe4=127.0.0.1:${fe4Xmpp}`,
    }));
    type Pool = {
      activeServers: string[];
      frontEnds: { name: string; state: string; url: string; users: number }[];
    };
    const pool = await cli.json<Pool>(['pool', 'get', '--pool', POOL]);
    assert.deepEqual(pool.activeServers, ['fe1', 'fe2', 'fe3']);
    assert.deepEqual(
      pool.frontEnds.map((f) => [f.name, f.state, f.url]),
      ['fe1', 'fe2', 'fe3', 'fe4'].map((n) => [n, n === 'fe4' ? 'idle' : 'active', fe[n]!.url]),
    );

    // fe4 is idle: WebSocket sign-in and the HTTP API answer front_end_idle with the active set.
    const refused = await connect(fe4.wsUrl);
    clients.push(refused);
    const error = await refused.request({ type: 'auth', id: 1, token: tokens.alice });
    assert.equal(error.code, 'front_end_idle');
    const details = error.details as { frontEnd: string; active: { name: string; url: string }[] };
    assert.equal(details.frontEnd, 'fe4');
    assert.deepEqual(
      details.active,
      ['fe1', 'fe2', 'fe3'].map((n) => ({ name: n, url: fe[n]!.url })),
    );
    assert.deepEqual(await refused.closed, { code: 4009, reason: 'front_end_idle' });
    // An XMPP client is sent to the first active front end with an XMPP listener (RFC 6120
    // see-other-host, naming host:port).
    assert.match(
      await xmppRefusal(fe4Xmpp),
      /<stream:error><see-other-host xmlns="urn:ietf:params:xml:ns:xmpp-streams">chat2\.example\.org:5222<\/see-other-host><text [^>]*>front end &quot;fe4&quot; is idle/,
    );
    const answer = await http('fe4', 'alice').call('GET', '/api/v1/rooms');
    assert.equal(answer.status, 503);
    assert.equal((answer.body.error as { code: string }).code, 'front_end_idle');

    // The CLI pointed at idle fe4 signs in there (sign-in is served), then moves its request on
    // to an active front end by itself and says so on stderr.
    const viaIdle = cliFor(fe4, configHome);
    const idleLogin = await viaIdle(['login', '--user', 'admin', '--password-stdin'], {
      input: adminPassword,
    });
    assert.equal(idleLogin.code, 0, idleLogin.stderr);
    const moved = await viaIdle(['room', 'get', '--json']);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(
      moved.stderr,
      new RegExp(`${fe4.url} is an idle front end .*active front end fe1 \\(${fe.fe1!.url}\\)`),
    );
    const listed = JSON.parse(moved.stdout) as { id: number }[];
    const rooms = await admin.ok<{ id: number }[]>('GET', '/api/v1/admin/rooms');
    assert.deepEqual(
      listed.map((r) => r.id),
      rooms.map((r) => r.id),
    );

    // fe3 goes idle: its connected client stays and still gets posts; new sessions are refused.
    const roomId = await room();
    const c = await client('fe3', 'carol');
    await ask(c, { type: 'join', roomId });
    const changed = await cli.json<Pool>([
      'pool',
      'active-server',
      'set',
      '--pool',
      POOL,
      '--servers',
      'fe1,fe2,fe4',
    ]);
    assert.deepEqual(changed.activeServers, ['fe1', 'fe2', 'fe4']);
    await waitFor('fe3 to refuse new sessions', async () => {
      const probe = await http('fe3', 'alice').call('GET', '/api/v1/rooms');
      return probe.status === 503;
    });
    await waitFor('fe4 to take new sessions', async () => {
      const probe = await http('fe4', 'alice').call('GET', '/api/v1/rooms');
      return probe.status === 200;
    });
    await http('fe4', 'alice').ok('POST', `/api/v1/rooms/${roomId}/messages`, {
      text: 'still here?',
    });
    const [got] = await nextMessages(c, roomId, 1);
    assert.equal(got!.message.text, 'still here?');
    await waitFor('the pool to show fe3 idle with its one user', async () => {
      const now = await admin.ok<Pool>('GET', `/api/v1/pools/${POOL}`);
      const fe3 = now.frontEnds.find((f) => f.name === 'fe3')!;
      return fe3.state === 'idle' && fe3.users >= 1;
    });

    // Bad active sets are refused with their own codes (exit 1); usage errors exit 2.
    const tooMany = await cli([
      'pool',
      'active-server',
      'set',
      '--pool',
      POOL,
      '--servers',
      'fe1,fe2,fe3,fe4,fe5',
    ]);
    assert.equal(tooMany.code, 1);
    assert.match(tooMany.stderr, /too_many_active_servers/);
    const both = await cli([
      'pool',
      'active-server',
      'set',
      '--pool',
      POOL,
      '--none',
      '--servers',
      'fe1',
    ]);
    assert.equal(both.code, 2, both.stderr);
    for (const [body, status, code] of [
      [{ servers: ['fe9'] }, 404, 'front_end_not_found'],
      [{ servers: ['fe1', 'fe1'] }, 400, 'invalid_request'],
      [{ servers: ['fe 1'] }, 400, 'invalid_request'],
      [{ active: [] }, 400, 'invalid_request'],
    ] as const) {
      const r = await admin.call('PUT', `/api/v1/pools/${POOL}/active-servers`, body);
      assert.deepEqual([r.status, (r.body.error as { code: string }).code], [status, code]);
    }
    const missing = await admin.call('GET', '/api/v1/pools/nowhere');
    assert.deepEqual(
      [missing.status, (missing.body.error as { code: string }).code],
      [404, 'pool_not_found'],
    );
    const notAdmin = await http('fe1', 'alice').call('GET', `/api/v1/pools/${POOL}`);
    assert.equal(notAdmin.status, 403);

    // No active front end has an XMPP listener: idle fe4 closes XMPP streams with system-shutdown.
    await cli.json(['pool', 'active-server', 'set', '--pool', POOL, '--servers', 'fe1,fe3']);
    await waitFor('fe4 (idle) to end XMPP streams with system-shutdown', async () =>
      /<system-shutdown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/><text [^>]*>front end &quot;fe4&quot; is idle.*none of them has an XMPP listener/.test(
        await xmppRefusal(fe4Xmpp),
      ),
    );

    // Back to fe1–fe3 for the tests below.
    await cli.json(['pool', 'active-server', 'set', '--pool', POOL, '--servers', 'fe1,fe2,fe3']);
    await waitFor('fe3 to take new sessions again', async () => {
      const probe = await http('fe3', 'alice').call('GET', '/api/v1/rooms');
      return probe.status === 200;
    });
  });

  test('LISTEN connections cut by the database come back, and nothing posted meanwhile is lost', async () => {
    const roomId = await room();
    const b = await client('fe2', 'bob');
    const c = await client('fe3', 'carol');
    for (const x of [b, c]) await ask(x, { type: 'join', roomId });
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const listening = async () =>
        Number(
          (
            await admin.query<{ n: string }>(
              "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'perch-listen' AND datname = $1",
              [db.name],
            )
          ).rows[0]!.n,
        );
      const running = Object.keys(fe).length;
      await waitFor('every front end to listen', async () => (await listening()) === running);
      const cut = await admin.query<{ ok: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'perch-listen' AND datname = $1",
        [db.name],
      );
      assert.equal(cut.rows.filter((r) => r.ok).length, running);
      // Posted while the front ends reconnect: announced to nobody, read back by sequence.
      const seqs = await postMany(http('fe1', 'alice'), roomId, 30);
      assert.deepEqual(seqs, range(1, 30));
      for (const x of [b, c]) {
        const got = await nextMessages(x, roomId, 30);
        assert.deepEqual(
          got.map((m) => m.message.seq),
          range(1, 30),
        );
      }
      await waitFor('every front end to listen again', async () => (await listening()) === running);
      // And live delivery works again afterwards.
      await postMany(http('fe2', 'bob'), roomId, 5);
      for (const x of [b, c]) {
        assert.deepEqual(
          (await nextMessages(x, roomId, 5)).map((m) => m.message.seq),
          range(31, 35),
        );
        await assertNothingMore(x, isMessageIn(roomId));
      }
    } finally {
      await admin.end();
    }
  });

  test('room and access changes while LISTEN connections are cut: every front end applies each once, in order', async () => {
    const rooms = [await room(), await room(), await room()];
    const watchers = [
      await client('fe1', 'bob'),
      await client('fe2', 'bob'),
      await client('fe3', 'bob'),
    ];
    for (const w of watchers) for (const roomId of rooms) await ask(w, { type: 'join', roomId });
    const pgAdmin = new pg.Client({ connectionString: db.url });
    await pgAdmin.connect();
    const expected: string[] = [];
    try {
      for (let i = 0; i < 24; i++) {
        // Every sixth change, every front end's LISTEN connection is cut just before it.
        if (i % 6 === 0) {
          await pgAdmin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'perch-listen' AND datname = $1",
            [db.name],
          );
        }
        const roomId = rooms[i % 3]!;
        await admin.ok('PATCH', `/api/v1/rooms/${roomId}`, { description: `change ${i}` });
        expected.push(`room_changed ${roomId}`);
      }
    } finally {
      await pgAdmin.end();
    }
    // An access change: the second room closed without bob removes him on every front end.
    await admin.ok('PATCH', `/api/v1/rooms/${rooms[1]!}`, { privacy: 'closed' });
    expected.push(`room_changed ${rooms[1]!}`, `removed ${rooms[1]!}`);
    // A last change marks the end: nothing repeated may come before it.
    await admin.ok('PATCH', `/api/v1/rooms/${rooms[2]!}`, { description: 'the end' });
    expected.push(`room_changed ${rooms[2]!}`);
    const roomFrame = (f: Frame) => f.type === 'room_changed' || f.type === 'removed';
    for (const w of watchers) {
      const got: string[] = [];
      while (got.length < expected.length) {
        const f = await w.nextEvent(roomFrame, 30_000);
        got.push(`${String(f.type)} ${String(f.roomId)}`);
      }
      assert.deepEqual(got, expected);
      await assertNothingMore(w, roomFrame);
    }
  });

  test('a front end killed mid-traffic: its client moves to another and misses nothing', async () => {
    const roomId = await room();
    const total = 60;
    const d = await client('fe3', 'dave');
    await ask(d, { type: 'join', roomId });
    const received: number[] = [];
    // Posts through fe1 while fe3 dies.
    const posting = postMany(http('fe1', 'alice'), roomId, total);
    for (let i = 0; i < 10; i++)
      received.push((await d.nextEvent(isMessageIn(roomId))).message.seq as number);
    await fe.fe3!.kill9();
    await d.closed;
    // Everything fe3 sent before dying, then the rest after reconnecting to fe2 with `since`.
    for (const f of d.unconsumed()) {
      if (isMessageIn(roomId)(f)) received.push((f as MessageFrame).message.seq);
    }
    const since = received.at(-1)!;
    const moved = await client('fe2', 'dave');
    const joined = await ask<{ messages: { seq: number }[] }>(moved, {
      type: 'join',
      roomId,
      since,
    });
    received.push(...joined.messages.map((m) => m.seq));
    await posting;
    while (received.at(-1)! < total) {
      received.push((await moved.nextEvent(isMessageIn(roomId))).message.seq as number);
    }
    assert.deepEqual(received, range(1, total));
    await assertNothingMore(moved, isMessageIn(roomId));
    // Its heartbeats stop: the pool shows it unreachable (still in the active set until changed).
    await waitFor('fe3 to show unreachable', async () => {
      const pool = await admin.ok<{ frontEnds: { name: string; state: string }[] }>(
        'GET',
        `/api/v1/pools/${POOL}`,
      );
      return pool.frontEnds.find((f) => f.name === 'fe3')?.state === 'unreachable';
    });
  });
});
