import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildDomain, type TestDomain } from '../../test/harness/domain.js';
import { createLogger } from '../logger.js';
import { apiRoutes, buildHttpApp } from './app.js';
import { openApiPath } from './openapi.js';

const MAX_FRAME = 64 * 1024;

interface Ctx {
  t: TestDomain;
  app: FastifyInstance;
  admin: string;
  alice: string;
  bob: string;
  carol: string;
}

async function signIn(app: FastifyInstance, login: string, password: string): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/sessions',
    payload: { login, password },
  });
  assert.equal(res.statusCode, 201, res.body);
  return (res.json() as { token: string }).token;
}

function auth(token: string) {
  return { authorization: `Bearer ${token}` };
}

function errorCode(res: LightMyRequestResponse): string {
  return (res.json() as { error: { code: string } }).error.code;
}

async function setup(): Promise<Ctx> {
  const t = await buildDomain();
  const app = await buildHttpApp({
    domain: t.d,
    config: { maxFrameBytes: MAX_FRAME },
    log: createLogger('silent'),
  });
  for (const login of ['alice', 'bob', 'carol']) await t.buildUser(login);
  return {
    t,
    app,
    admin: await signIn(app, 'admin', 'admin-password'),
    alice: await signIn(app, 'alice', 'password-alice'),
    bob: await signIn(app, 'bob', 'password-bob'),
    carol: await signIn(app, 'carol', 'password-carol'),
  };
}

/** A category with uploads on, alice as creator, and a closed room of alice and bob. */
async function buildRoom(c: Ctx, name = 'design'): Promise<number> {
  let res = await c.app.inject({
    method: 'POST',
    url: '/api/v1/categories',
    headers: auth(c.admin),
    payload: {
      name: `${name}-cat`,
      fileUpload: true,
      allowed: ['alice', 'bob', 'carol'],
      creators: ['alice'],
    },
  });
  assert.equal(res.statusCode, 201, res.body);
  res = await c.app.inject({
    method: 'POST',
    url: '/api/v1/rooms',
    headers: auth(c.alice),
    payload: { name, category: `${name}-cat`, members: ['alice', 'bob'] },
  });
  assert.equal(res.statusCode, 201, res.body);
  return (res.json() as { id: number }).id;
}

describe('HTTP API', () => {
  let c: Ctx;
  before(async () => {
    c = await setup();
  });
  after(async () => {
    await c.app.close();
    await c.t.close();
  });

  test('GET /healthz answers ok with edition and version, without auth', async () => {
    const res = await c.app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 200);
    const body = res.json() as Record<string, unknown>;
    assert.equal(body['status'], 'ok');
    assert.equal(body['edition'], 'standard');
    assert.match(String(body['version']), /^\d+\.\d+\.\d+/);
  });

  test('sign-in returns a token; a wrong password is invalid_credentials', async () => {
    const ok = await c.app.inject({
      method: 'POST',
      url: '/api/v1/sessions',
      payload: { login: 'bob', password: 'password-bob' },
    });
    assert.equal(ok.statusCode, 201);
    const body = ok.json() as { token: string; expiresAt: number; user: { name: string } };
    assert.equal(body.user.name, 'bob');
    assert.ok(body.token.length > 20);
    assert.ok(body.expiresAt > Date.now());
    const bad = await c.app.inject({
      method: 'POST',
      url: '/api/v1/sessions',
      payload: { login: 'bob', password: 'wrong-password' },
    });
    assert.equal(bad.statusCode, 401);
    assert.equal(errorCode(bad), 'invalid_credentials');
  });

  test('API routes need a bearer token', async () => {
    for (const headers of [
      {},
      { authorization: 'Bearer not-a-real-token' },
      { authorization: 'Basic YWRtaW46YWRtaW4=' },
      { cookie: `token=${c.alice}` },
    ]) {
      const res = await c.app.inject({ method: 'GET', url: '/api/v1/me', headers });
      assert.equal(res.statusCode, 401, JSON.stringify(headers));
      assert.equal(errorCode(res), 'unauthenticated');
      assert.equal(res.headers['www-authenticate'], 'Bearer');
    }
    // Authentication comes before validation: an anonymous bad body still gets 401.
    const res = await c.app.inject({ method: 'POST', url: '/api/v1/rooms', payload: {} });
    assert.equal(res.statusCode, 401);
  });

  test('GET /api/v1/me shows the user, its policy and the chat settings', async () => {
    const res = await c.app.inject({ method: 'GET', url: '/api/v1/me', headers: auth(c.alice) });
    assert.equal(res.statusCode, 200);
    const body = res.json() as {
      user: { name: string; isAdmin: boolean; chatEnabled: boolean };
      policy: { enabled: boolean; source: string };
      settings: { maxFileSizeKb: number };
    };
    assert.equal(body.user.name, 'alice');
    assert.equal(body.user.isAdmin, false);
    assert.equal(body.policy.source, 'global');
    assert.equal(body.settings.maxFileSizeKb, 20_000);
  });

  test('sign-out revokes the token', async () => {
    const token = await signIn(c.app, 'carol', 'password-carol');
    const out = await c.app.inject({
      method: 'DELETE',
      url: '/api/v1/sessions/current',
      headers: auth(token),
    });
    assert.equal(out.statusCode, 204);
    const res = await c.app.inject({ method: 'GET', url: '/api/v1/me', headers: auth(token) });
    assert.equal(res.statusCode, 401);
  });

  test('administrator routes refuse other users with admin_required', async () => {
    const cases: [string, string, unknown?][] = [
      ['GET', '/api/v1/users'],
      ['POST', '/api/v1/users', { login: 'eve', password: 'password-eve' }],
      ['GET', '/api/v1/groups'],
      ['GET', '/api/v1/policies'],
      ['PUT', '/api/v1/policies/off', { enabled: false }],
      ['PATCH', '/api/v1/settings', { defaultHistory: 10 }],
      ['POST', '/api/v1/categories', { name: 'x' }],
      ['DELETE', '/api/v1/rooms/1'],
      ['POST', '/api/v1/messages/remove', { room: 1 }],
    ];
    for (const [method, url, payload] of cases) {
      const res = await c.app.inject({
        method: method as 'GET',
        url,
        headers: auth(c.alice),
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      assert.equal(errorCode(res), 'admin_required', `${method} ${url}`);
    }
  });

  test('administrators manage users, groups, policies and settings', async () => {
    let res = await c.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: auth(c.admin),
      payload: { login: 'dave', password: 'password-dave', displayName: 'Dave' },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal((res.json() as { name: string }).name, 'dave');
    assert.ok(!res.body.includes('argon2'), 'no password hash in the answer');
    res = await c.app.inject({
      method: 'PATCH',
      url: '/api/v1/users/dave',
      headers: auth(c.admin),
      payload: { displayName: 'David' },
    });
    assert.equal((res.json() as { displayName: string }).displayName, 'David');
    res = await c.app.inject({
      method: 'POST',
      url: '/api/v1/groups',
      headers: auth(c.admin),
      payload: { name: 'staff', members: ['dave'] },
    });
    assert.equal(res.statusCode, 201, res.body);
    res = await c.app.inject({
      method: 'PATCH',
      url: '/api/v1/groups/staff/members',
      headers: auth(c.admin),
      payload: { add: ['carol'], remove: ['dave'] },
    });
    assert.deepEqual(
      (res.json() as { members: { name: string }[] }).members.map((m) => m.name),
      ['carol'],
    );
    res = await c.app.inject({
      method: 'PUT',
      url: '/api/v1/policies/no-chat',
      headers: auth(c.admin),
      payload: { enabled: false },
    });
    assert.equal(res.statusCode, 200, res.body);
    res = await c.app.inject({
      method: 'PUT',
      url: '/api/v1/principals/dave/policy',
      headers: auth(c.admin),
      payload: { policy: 'no-chat' },
    });
    assert.equal(res.statusCode, 204, res.body);
    res = await c.app.inject({
      method: 'GET',
      url: '/api/v1/users/dave/policy',
      headers: auth(c.admin),
    });
    assert.deepEqual(res.json(), { enabled: false, policy: 'no-chat', source: 'user' });
    res = await c.app.inject({
      method: 'PATCH',
      url: '/api/v1/settings',
      headers: auth(c.admin),
      payload: { defaultHistory: 40 },
    });
    assert.equal((res.json() as { defaultHistory: number }).defaultHistory, 40);
    res = await c.app.inject({ method: 'GET', url: '/api/v1/settings', headers: auth(c.bob) });
    assert.equal((res.json() as { defaultHistory: number }).defaultHistory, 40);
  });

  test('principal look-up shows names only, to any signed-in user', async () => {
    const res = await c.app.inject({
      method: 'GET',
      url: '/api/v1/principals?filter=car&kind=user',
      headers: auth(c.bob),
    });
    assert.equal(res.statusCode, 200, res.body);
    const list = res.json() as Record<string, unknown>[];
    assert.deepEqual(
      list.map((p) => p['name']),
      ['carol'],
    );
    assert.deepEqual(Object.keys(list[0]!).sort(), ['displayName', 'id', 'kind', 'name']);
  });

  test('rooms: create, search, get, post, replay and history', async () => {
    const roomId = await buildRoom(c, 'rooms-flow');
    let res = await c.app.inject({
      method: 'GET',
      url: '/api/v1/rooms?text=rooms-flow&limit=10',
      headers: auth(c.bob),
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      (res.json() as { id: number }[]).map((r) => r.id),
      [roomId],
    );
    res = await c.app.inject({
      method: 'GET',
      url: `/api/v1/rooms/${roomId}`,
      headers: auth(c.bob),
    });
    assert.equal((res.json() as { my: { member: boolean } }).my.member, true);

    const post = (payload: object, token = c.bob) =>
      c.app.inject({
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: auth(token),
        payload,
      });
    res = await post({ text: 'hello', clientId: 'c-1' });
    assert.equal(res.statusCode, 201, res.body);
    const first = res.json() as { message: { seq: number; text: string }; duplicate: boolean };
    assert.equal(first.duplicate, false);
    assert.equal(first.message.text, 'hello');
    res = await post({ text: 'hello', clientId: 'c-1' });
    assert.equal(res.statusCode, 200);
    const replay = res.json() as { message: { seq: number }; duplicate: boolean };
    assert.equal(replay.duplicate, true);
    assert.equal(replay.message.seq, first.message.seq);
    res = await post({ text: 'second' });
    assert.equal(res.statusCode, 201);

    res = await c.app.inject({
      method: 'GET',
      url: `/api/v1/rooms/${roomId}/messages?limit=10`,
      headers: auth(c.alice),
    });
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json() as { messages: { text: string }[]; lastSeq: number };
    assert.deepEqual(
      page.messages.map((m) => m.text),
      ['hello', 'second'],
    );
    res = await c.app.inject({
      method: 'GET',
      url: `/api/v1/rooms/${roomId}/messages?after=${first.message.seq}`,
      headers: auth(c.alice),
    });
    assert.deepEqual(
      (res.json() as { messages: { text: string }[] }).messages.map((m) => m.text),
      ['second'],
    );

    // carol is in scope but not a member of the closed room: no reading, no posting.
    res = await c.app.inject({
      method: 'GET',
      url: `/api/v1/rooms/${roomId}/messages`,
      headers: auth(c.carol),
    });
    assert.equal(res.statusCode, 403);
    res = await post({ text: 'let me in' }, c.carol);
    assert.equal(res.statusCode, 403);

    res = await c.app.inject({
      method: 'POST',
      url: `/api/v1/rooms/${roomId}/join`,
      headers: auth(c.bob),
    });
    assert.equal(res.statusCode, 200, res.body);
    const joined = res.json() as { room: { id: number }; messages: unknown[] };
    assert.equal(joined.room.id, roomId);
    assert.equal(joined.messages.length, 2);

    res = await c.app.inject({
      method: 'GET',
      url: '/api/v1/search/messages?query=second',
      headers: auth(c.alice),
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((res.json() as { count: number }).count, 1);
    res = await c.app.inject({
      method: 'POST',
      url: '/api/v1/search/messages',
      headers: auth(c.alice),
      payload: { query: 'hello', rooms: [roomId] },
    });
    assert.equal((res.json() as { count: number }).count, 1);

    res = await c.app.inject({ method: 'GET', url: '/api/v1/me/rooms', headers: auth(c.alice) });
    assert.ok((res.json() as { manager: { id: number }[] }).manager.some((r) => r.id === roomId));
  });

  test('follows, read marks and invitations', async () => {
    const roomId = await buildRoom(c, 'follow-flow');
    let res = await c.app.inject({
      method: 'PUT',
      url: `/api/v1/me/follows/${roomId}`,
      headers: auth(c.bob),
    });
    assert.equal(res.statusCode, 204, res.body);
    await c.app.inject({
      method: 'POST',
      url: `/api/v1/rooms/${roomId}/messages`,
      headers: auth(c.alice),
      payload: { text: 'news' },
    });
    res = await c.app.inject({ method: 'GET', url: '/api/v1/me/follows', headers: auth(c.bob) });
    const follows = res.json() as { roomId: number; unread: number; lastSeq: number }[];
    const f = follows.find((x) => x.roomId === roomId)!;
    assert.equal(f.unread, 1);
    res = await c.app.inject({
      method: 'POST',
      url: '/api/v1/me/read',
      headers: auth(c.bob),
      payload: { roomId, seq: f.lastSeq },
    });
    assert.equal(res.statusCode, 204);
    res = await c.app.inject({ method: 'GET', url: '/api/v1/me/follows', headers: auth(c.bob) });
    assert.equal(
      (res.json() as { roomId: number; unread: number }[]).find((x) => x.roomId === roomId)!.unread,
      0,
    );
    res = await c.app.inject({
      method: 'GET',
      url: '/api/v1/me/invitations?all=true',
      headers: auth(c.bob),
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(Array.isArray(res.json()));
  });

  test('topic feeds: create, list, change, delete; typed errors', async () => {
    const call = (
      method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
      url: string,
      who = c.bob,
      payload?: object,
    ) => c.app.inject({ method, url: `/api/v1/me/feeds${url}`, headers: auth(who), payload });
    let res = await call('POST', '', c.bob, { name: 'Outages', keywords: ['outage', 'sev1'] });
    assert.equal(res.statusCode, 201, res.body);
    const feed = res.json() as { id: number; name: string; keywords: string[] };
    assert.deepEqual([feed.name, feed.keywords], ['Outages', ['outage', 'sev1']]);

    res = await call('POST', '', c.bob, { name: 'outages', keywords: ['down'] });
    assert.equal(res.statusCode, 409);
    assert.equal((res.json() as { error: { code: string } }).error.code, 'feed_name_taken');
    res = await call('POST', '', c.bob, { name: 'Long', keywords: ['k'.repeat(65)] });
    assert.equal(res.statusCode, 400);
    assert.equal((res.json() as { error: { code: string } }).error.code, 'invalid_request');
    res = await c.app.inject({ method: 'GET', url: '/api/v1/me/feeds' });
    assert.equal(res.statusCode, 401);

    res = await call('PATCH', `/${feed.id}`, c.bob, { keywords: ['incident'] });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual((res.json() as { keywords: string[] }).keywords, ['incident']);
    // Another user's feed is not found, neither to change nor to delete.
    res = await call('PATCH', `/${feed.id}`, c.alice, { name: 'Mine' });
    assert.equal(res.statusCode, 404);
    assert.equal((res.json() as { error: { code: string } }).error.code, 'feed_not_found');
    res = await call('DELETE', `/${feed.id}`, c.alice);
    assert.equal(res.statusCode, 404);
    res = await call('GET', '', c.alice);
    assert.deepEqual(res.json(), []);

    res = await call('DELETE', `/${feed.id}`, c.bob);
    assert.equal(res.statusCode, 204);
    res = await call('GET', '', c.bob);
    assert.deepEqual(res.json(), []);
  });

  test('upload, link and download; non-members get file_not_found', async () => {
    const roomId = await buildRoom(c, 'files-flow');
    const data = Buffer.from('%PDF-1.4 not really\n\x00\x01\x02');
    let res = await c.app.inject({
      method: 'POST',
      url: `/api/v1/rooms/${roomId}/files?name=${encodeURIComponent('plan é.pdf')}&contentType=application/pdf`,
      headers: { ...auth(c.bob), 'content-type': 'application/octet-stream' },
      payload: data,
    });
    assert.equal(res.statusCode, 201, res.body);
    const file = (res.json() as { message: { file: { id: number; size: number } } }).message.file;
    assert.equal(file.size, data.length);

    res = await c.app.inject({
      method: 'GET',
      url: `/api/v1/files/${file.id}/link`,
      headers: auth(c.alice),
    });
    assert.equal(res.statusCode, 200, res.body);
    const link = res.json() as { url: string; expiresAt: number };
    assert.match(link.url, /^\/api\/v1\/files\/download\//);

    // A HEAD is no download: it is not served, so no FILEDOWNLOAD record is written for it.
    const before = await c.t.store.countActivity();
    res = await c.app.inject({ method: 'HEAD', url: link.url });
    assert.equal(res.statusCode, 404);
    assert.equal(await c.t.store.countActivity(), before);

    res = await c.app.inject({ method: 'GET', url: link.url });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.rawPayload, data);
    assert.equal(await c.t.store.countActivity(), before + 1);
    assert.equal(res.headers['content-type'], 'application/pdf');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.match(String(res.headers['content-disposition']), /^attachment; /);
    assert.match(
      String(res.headers['content-disposition']),
      /filename\*=UTF-8''plan%20%C3%A9\.pdf/,
    );

    res = await c.app.inject({
      method: 'GET',
      url: `/api/v1/files/${file.id}/link`,
      headers: auth(c.carol),
    });
    assert.equal(res.statusCode, 404);
    assert.equal(errorCode(res), 'file_not_found');

    const forged = link.url.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A'));
    res = await c.app.inject({ method: 'GET', url: forged });
    assert.equal(res.statusCode, 404);
    assert.equal(errorCode(res), 'file_not_found');

    // Anonymous uploads are refused before the body is read.
    res = await c.app.inject({
      method: 'POST',
      url: `/api/v1/rooms/${roomId}/files?name=x.bin`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: data,
    });
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['connection'], 'close');

    // A JSON body on the upload route, and a raw body on a JSON route, are refused.
    res = await c.app.inject({
      method: 'POST',
      url: `/api/v1/rooms/${roomId}/files?name=x.txt`,
      headers: auth(c.bob),
      payload: { text: 'no' },
    });
    assert.equal(res.statusCode, 415);
    assert.equal(errorCode(res), 'unsupported_media_type');
    res = await c.app.inject({
      method: 'POST',
      url: `/api/v1/rooms/${roomId}/messages`,
      headers: { ...auth(c.bob), 'content-type': 'application/octet-stream' },
      payload: Buffer.from('{"text":"x"}'),
    });
    assert.equal(res.statusCode, 415);

    // The maxFileSizeKb setting caps uploads.
    await c.app.inject({
      method: 'PATCH',
      url: '/api/v1/settings',
      headers: auth(c.admin),
      payload: { maxFileSizeKb: 1 },
    });
    res = await c.app.inject({
      method: 'POST',
      url: `/api/v1/rooms/${roomId}/files?name=big.bin`,
      headers: { ...auth(c.bob), 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(2048),
    });
    assert.equal(res.statusCode, 413);
    assert.equal(errorCode(res), 'file_too_large');
    await c.app.inject({
      method: 'PATCH',
      url: '/api/v1/settings',
      headers: auth(c.admin),
      payload: { maxFileSizeKb: 20_000 },
    });
  });

  test('every response carries the security headers', async () => {
    for (const url of ['/healthz', '/api/v1/me', '/api/v1/nope', '/openapi.json']) {
      const res = await c.app.inject({ method: 'GET', url });
      assert.equal(res.headers['x-content-type-options'], 'nosniff', url);
      assert.equal(res.headers['referrer-policy'], 'no-referrer', url);
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'/, url);
      assert.equal(res.headers['cache-control'], 'no-store', url);
    }
  });

  test('openapi.json describes every registered route', async () => {
    const res = await c.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json() as {
      openapi: string;
      paths: Record<string, Record<string, { summary: string; security: unknown[] }>>;
    };
    assert.equal(doc.openapi, '3.1.0');
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    const registry = [
      'GET /healthz',
      'GET /openapi.json',
      'GET /',
      ...apiRoutes().map((r) => `${r.method} ${openApiPath(r.url)}`),
    ];
    assert.deepEqual([...documented].sort(), [...registry].sort());
    for (const key of documented) {
      const [method, p] = key.split(' ') as [string, string];
      const url = p.replace(/\{(\w+)\}/g, ':$1');
      assert.ok(c.app.hasRoute({ method: method as 'GET', url }), `fastify serves ${key}`);
    }
    assert.ok(doc.paths['/api/v1/rooms/{id}/messages']?.['post']?.summary);
    assert.deepEqual(doc.paths['/api/v1/sessions']?.['post']?.security, []);
    assert.deepEqual(doc.paths['/api/v1/users']?.['get']?.security, [{ bearer: [] }]);
    const history = doc.paths['/api/v1/rooms/{id}/messages']?.['get'] as unknown as {
      parameters: { name: string; in: string }[];
    };
    assert.deepEqual(
      history.parameters.map((p) => `${p.in}:${p.name}`),
      ['path:id', 'query:before', 'query:after', 'query:limit'],
    );
  });

  test('bad inputs get typed errors, and the app keeps serving', async () => {
    const roomId = await buildRoom(c, 'bad-inputs');
    const json = { ...auth(c.alice), 'content-type': 'application/json' };
    const cases: {
      name: string;
      method: 'GET' | 'POST' | 'PATCH';
      url: string;
      headers?: Record<string, string>;
      payload?: string | Buffer;
      status: number;
      code: string;
    }[] = [
      {
        name: 'malformed JSON',
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: json,
        payload: '{"text": "unterminated',
        status: 400,
        code: 'malformed_json',
      },
      {
        name: 'empty JSON body',
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: json,
        payload: '',
        status: 400,
        code: 'malformed_json',
      },
      {
        name: 'prototype pollution',
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: json,
        payload: '{"text":"x","__proto__":{"isAdmin":true}}',
        status: 400,
        code: 'malformed_json',
      },
      {
        name: 'wrong type',
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: json,
        payload: '{"text": 42}',
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'body is an array',
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: json,
        payload: '["text"]',
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'unknown field',
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: json,
        payload: '{"text":"x","seq":1}',
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'missing body',
        method: 'POST',
        url: '/api/v1/rooms',
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'oversized body',
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: json,
        payload: JSON.stringify({ text: 'x'.repeat(MAX_FRAME) }),
        status: 413,
        code: 'body_too_large',
      },
      {
        name: 'message over the character limit',
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: json,
        payload: JSON.stringify({ text: 'x'.repeat(9000) }),
        status: 413,
        code: 'message_too_large',
      },
      {
        name: 'text/plain body',
        method: 'POST',
        url: `/api/v1/rooms/${roomId}/messages`,
        headers: { ...auth(c.alice), 'content-type': 'text/plain' },
        payload: 'hello',
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'form body',
        method: 'POST',
        url: '/api/v1/sessions',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'login=admin&password=admin-password',
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'non-numeric id',
        method: 'GET',
        url: '/api/v1/rooms/abc',
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'negative id',
        method: 'GET',
        url: '/api/v1/rooms/-1',
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'zero id',
        method: 'GET',
        url: '/api/v1/rooms/0',
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'id beyond safe integers',
        method: 'GET',
        url: '/api/v1/rooms/99999999999999999999',
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'id written as a float',
        method: 'GET',
        url: '/api/v1/rooms/1e3',
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'unknown room',
        method: 'GET',
        url: '/api/v1/rooms/987654',
        headers: auth(c.alice),
        status: 404,
        code: 'room_not_found',
      },
      {
        name: 'huge limit',
        method: 'GET',
        url: `/api/v1/rooms/${roomId}/messages?limit=100000`,
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'limit not a number',
        method: 'GET',
        url: `/api/v1/rooms?limit=ten`,
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'repeated query value',
        method: 'GET',
        url: `/api/v1/rooms?limit=1&limit=2`,
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'bad boolean',
        method: 'GET',
        url: '/api/v1/me/invitations?all=maybe',
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_request',
      },
      {
        name: 'cursor beyond the room',
        method: 'GET',
        url: `/api/v1/rooms/${roomId}/messages?after=999`,
        headers: auth(c.alice),
        status: 400,
        code: 'invalid_cursor',
      },
      {
        name: 'unknown API route',
        method: 'GET',
        url: '/api/v1/nothing-here',
        headers: auth(c.alice),
        status: 404,
        code: 'not_found',
      },
      {
        name: 'wrong method',
        method: 'PATCH',
        url: '/api/v1/sessions',
        status: 404,
        code: 'not_found',
      },
      {
        name: 'bad percent-encoding',
        method: 'GET',
        url: '/api/v1/users/%E0%A4%A',
        headers: auth(c.admin),
        status: 400,
        code: 'invalid_request',
      },
    ];
    for (const k of cases) {
      const res = await c.app.inject({
        method: k.method,
        url: k.url,
        ...(k.headers ? { headers: k.headers } : {}),
        ...(k.payload === undefined ? {} : { payload: k.payload }),
      });
      assert.equal(res.statusCode, k.status, `${k.name}: ${res.body}`);
      const body = res.json() as { error: { code: string; message: string } };
      assert.equal(body.error.code, k.code, k.name);
      assert.equal(typeof body.error.message, 'string', k.name);
      assert.ok(!/\bat .+:\d+:\d+/.test(res.body), `${k.name}: no stack trace`);
    }
    const health = await c.app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(health.statusCode, 200);
    const post = await c.app.inject({
      method: 'POST',
      url: `/api/v1/rooms/${roomId}/messages`,
      headers: auth(c.alice),
      payload: { text: 'still here' },
    });
    assert.equal(post.statusCode, 201);
  });
});
