// Factories and helpers for the end-to-end suites: they talk to a real server process only
// through HTTP (/api/v1) and the WebSocket protocol (/ws), as a client would.
import assert from 'node:assert/strict';
import type { TestServer } from '../harness/server.js';
import { connect, type Frame, type WsClient } from '../harness/ws-client.js';

export interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** A signed-in HTTP client: `call` returns any answer, `ok` fails the test on a non-2xx one. */
export class Http {
  constructor(
    readonly url: string,
    readonly token: string,
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<HttpAnswer> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async ok<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const answer = await this.call(method, path, body);
    assert.ok(
      answer.status >= 200 && answer.status < 300,
      `${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`,
    );
    return answer.body as T;
  }
}

/** Signs in through POST /api/v1/sessions and returns the bearer token. */
export async function signIn(server: TestServer, login: string, password: string): Promise<string> {
  const res = await fetch(`${server.url}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login, password }),
  });
  const body = (await res.json()) as { token?: string };
  assert.equal(res.status, 201, `sign-in of ${login} failed: ${JSON.stringify(body)}`);
  return body.token!;
}

export async function adminHttp(server: TestServer): Promise<Http> {
  return new Http(server.url, await signIn(server, 'admin', server.adminPassword));
}

export interface TestUser {
  login: string;
  id: number;
  token: string;
  http: Http;
}

/** Creates users (as admin) with the password `password-<login>` and signs each in. */
export async function buildUsers<const L extends string>(
  server: TestServer,
  admin: Http,
  logins: readonly L[],
): Promise<Record<L, TestUser>> {
  const out = {} as Record<L, TestUser>;
  for (const login of logins) {
    const user = await admin.ok<{ id: number }>('POST', '/api/v1/users', {
      login,
      password: `password-${login}`,
    });
    const token = await signIn(server, login, `password-${login}`);
    out[login] = { login, id: user.id, token, http: new Http(server.url, token) };
  }
  return out;
}

export interface RoomView {
  id: number;
  name: string;
  lastSeq: number;
  [key: string]: unknown;
}

/** A category made by the administrator (history on). */
export function buildCategory(
  admin: Http,
  input: {
    name: string;
    allowed?: string[];
    denied?: string[];
    creators?: string[];
    invitations?: boolean;
    fileUpload?: boolean;
  },
): Promise<Record<string, unknown>> {
  return admin.ok('POST', '/api/v1/categories', input);
}

/** A room made by the administrator (who is in no scope, so no manager unless listed). */
export function buildRoom(
  admin: Http,
  input: { name: string; category: string } & Record<string, unknown>,
): Promise<RoomView> {
  return admin.ok<RoomView>('POST', '/api/v1/rooms', input);
}

/**
 * Posts `count` messages over HTTP (not rate-limited per connection), a few at a time; returns
 * their sequence numbers in ascending order.
 */
export async function postMany(
  http: Http,
  roomId: number,
  count: number,
  text = (i: number) => `message ${i}`,
): Promise<number[]> {
  const seqs: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const r = await http.ok<{ message: { seq: number } }>(
        'POST',
        `/api/v1/rooms/${roomId}/messages`,
        { text: text(i) },
      );
      seqs.push(r.message.seq);
    }
  };
  await Promise.all(range(1, 16).map(worker));
  return seqs.sort((a, b) => a - b);
}

/** Opens a WebSocket and authenticates it with the token; checks the auth reply. */
export async function openClient(server: TestServer, token: string): Promise<WsClient> {
  const client = await connect(server.wsUrl);
  const reply = await client.request({ type: 'auth', token });
  assert.equal(reply.type, 'reply', `auth failed: ${JSON.stringify(reply)}`);
  return client;
}

/** Sends a request and returns its reply's `data`; fails the test on an error frame. */
export async function ask<T = Record<string, unknown>>(
  client: WsClient,
  frame: Record<string, unknown>,
): Promise<T> {
  const answer = await client.request(frame);
  assert.equal(answer.type, 'reply', `${String(frame.type)} failed: ${JSON.stringify(answer)}`);
  return answer.data as T;
}

/** Sends a request that must fail; returns the error frame after checking its code. */
export async function askFails(
  client: WsClient,
  frame: Record<string, unknown>,
  code: string,
): Promise<Frame> {
  const answer = await client.request(frame);
  assert.equal(answer.type, 'error', `${String(frame.type)} should fail with ${code}`);
  assert.equal(answer.code, code, `${String(frame.type)}: ${JSON.stringify(answer)}`);
  return answer;
}

export interface MessageFrame extends Frame {
  type: 'message';
  roomId: number;
  message: { seq: number; text: string; author: { name: string }; clientId: string | null };
  backfill?: boolean;
}

export function isMessageIn(roomId: number): (f: Frame) => f is MessageFrame {
  return (f: Frame): f is MessageFrame => f.type === 'message' && f.roomId === roomId;
}

/** Waits for the next `count` message events of a room, in arrival order. */
export async function nextMessages(
  client: WsClient,
  roomId: number,
  count: number,
): Promise<MessageFrame[]> {
  const out: MessageFrame[] = [];
  for (let i = 0; i < count; i++) out.push(await client.nextEvent(isMessageIn(roomId)));
  return out;
}

/** Sequence numbers from `from` to `to` inclusive. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/**
 * Proves that nothing else is queued for the client: a ping's reply comes after everything the
 * server sent before it, so any frame matching `unwanted` would already be unconsumed.
 */
export async function assertNothingMore(
  client: WsClient,
  unwanted: (f: Frame) => boolean,
): Promise<void> {
  await ask(client, { type: 'ping' });
  const extra = client.unconsumed().filter(unwanted);
  assert.deepEqual(extra, [], 'unexpected frames arrived');
}
