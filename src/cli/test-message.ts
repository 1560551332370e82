import crypto from 'node:crypto';
import type { Command } from 'commander';
import type WebSocket from 'ws';
import { ApiClient, seg, signedInClient, type ServerOptions } from './client.js';
import { intIn, nameOf, serverCommand } from './common.js';
import { ApiError, CliError, UsageError } from './errors.js';
import { emit, stdio } from './output.js';
import { ask, interactive, readStdinLines } from './prompt.js';
import { resolveRoom, type RoomRecord } from './room.js';

// Test-CsPersistentChatMessage: a synthetic transaction. As an administrator, make sure a test
// room exists that both users may use; sign both in with their own passwords; the receiver joins
// over the WebSocket protocol; the sender posts; the receiver must get the message before the
// deadline. Each step that fails names itself, so that the reason is clear.

export const TEST_CATEGORY = 'perch-test';
export const TEST_ROOM = 'perch-test-message';

type Frame = Record<string, unknown>;

class StepError extends CliError {
  constructor(
    readonly stage: string,
    message: string,
    readonly reason?: string,
  ) {
    super('test_failed', `${stage}: ${message}`, { stage, ...(reason ? { reason } : {}) });
  }
}

/** A minimal protocol client: request/reply by id, and waiting for an event with a deadline. */
class ProtocolClient {
  private readonly frames: Frame[] = [];
  private waiters: { match: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  private nextId = 1;
  closed: { code: number; reason: string } | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      let f: Frame;
      try {
        f = JSON.parse(String(data)) as Frame;
      } catch {
        return;
      }
      const i = this.waiters.findIndex((w) => w.match(f));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(f);
      else this.frames.push(f);
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
    ws.on('error', () => {});
  }

  static async open(url: string, deadline: number): Promise<ProtocolClient> {
    const { default: WS } = await import('ws');
    const ws = new WS(url);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('timed out')),
        Math.max(1, deadline - Date.now()),
      );
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return new ProtocolClient(ws);
  }

  wait(match: (f: Frame) => boolean, deadline: number, what: string): Promise<Frame> {
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (f: Frame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(
        () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(
            new Error(
              this.closed
                ? `connection closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}`
                : `no ${what} within the deadline`,
            ),
          );
        },
        Math.max(1, deadline - Date.now()),
      );
      this.waiters.push(waiter);
    });
  }

  /** Sends a frame and resolves with its reply's data; an error frame rejects with its code. */
  async request(frame: Frame, deadline: number): Promise<Record<string, unknown>> {
    const id = `t${this.nextId++}`;
    this.ws.send(JSON.stringify({ ...frame, id }));
    const answer = await this.wait((f) => f.id === id, deadline, `answer to ${String(frame.type)}`);
    if (answer.type === 'error') {
      throw new ApiError(String(answer.code), String(answer.message), 0);
    }
    return (answer.data ?? {}) as Record<string, unknown>;
  }

  close(): void {
    this.ws.close(1000, 'test done');
  }
}

function wsUrl(server: string): string {
  const u = new URL(server);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/ws`;
  return u.href;
}

/** Passwords from stdin (two lines), PERCH_SENDER_PASSWORD/PERCH_RECEIVER_PASSWORD, or prompts. */
async function passwords(
  opts: { passwordsStdin?: boolean },
  sender: string,
  receiver: string,
): Promise<[string, string]> {
  if (opts.passwordsStdin) {
    const [s, r] = await readStdinLines();
    if (!s || !r) {
      throw new UsageError(
        '--passwords-stdin: give the sender and receiver passwords on two lines',
      );
    }
    return [s, r];
  }
  const env = [process.env.PERCH_SENDER_PASSWORD, process.env.PERCH_RECEIVER_PASSWORD];
  if (env[0] && env[1]) return [env[0], env[1]];
  if (!interactive()) {
    throw new UsageError(
      'no passwords: use --passwords-stdin, or set PERCH_SENDER_PASSWORD and PERCH_RECEIVER_PASSWORD',
    );
  }
  return [
    await ask(`Password for ${sender}: `, true),
    await ask(`Password for ${receiver}: `, true),
  ];
}

/** Makes sure the test category has both users in scope and the test room has them as members. */
async function ensureTestRoom(api: ApiClient, users: string[]): Promise<RoomRecord> {
  let category: { name: string; allowed: { name: string }[] } | undefined;
  try {
    category = await api.get(`/categories/${seg(TEST_CATEGORY)}`);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'category_not_found')) throw err;
  }
  if (!category) {
    await api.request('POST', '/categories', {
      body: {
        name: TEST_CATEGORY,
        description: 'Synthetic message tests (perch test message)',
        allowed: users,
      },
    });
  } else {
    const have = new Set(category.allowed.map((p) => p.name.toLowerCase()));
    const missing = users.filter((u) => !have.has(u.toLowerCase()));
    if (missing.length > 0) {
      await api.request('PATCH', `/categories/${seg(TEST_CATEGORY)}`, {
        body: { allowed: [...category.allowed.map((p) => p.name), ...missing] },
      });
    }
  }
  const [room] = await api.get<RoomRecord[]>('/admin/rooms', { name: TEST_ROOM, limit: 1 });
  if (!room) {
    return api.request<RoomRecord>('POST', '/rooms', {
      body: {
        name: TEST_ROOM,
        category: TEST_CATEGORY,
        description: 'Synthetic message tests (perch test message)',
        privacy: 'closed',
        members: users,
      },
    });
  }
  return api.request<RoomRecord>('PATCH', `/rooms/${room.id}`, {
    body: { disabled: false, members: { add: users } },
  });
}

async function step<T>(stage: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StepError || err instanceof UsageError) throw err;
    if (err instanceof CliError)
      throw new StepError(stage, `${err.code}: ${err.message}`, err.code);
    throw new StepError(stage, (err as Error).message);
  }
}

/** `perch test message` (Test-CsPersistentChatMessage). */
export function registerTestCommands(program: Command): void {
  const testGroup = program
    .command('test')
    .description('synthetic transactions against a running server');

  serverCommand(testGroup, 'message', 'check that a message posted by one user reaches another')
    .requiredOption('--sender <login>', 'user who posts', nameOf(256))
    .requiredOption('--receiver <login>', 'user who must receive it', nameOf(256))
    .option('--room <room>', `use this room as it is instead of setting up "${TEST_ROOM}"`)
    .option('--passwords-stdin', "read the sender's and receiver's passwords from two stdin lines")
    .option(
      '--timeout <ms>',
      'deadline for the whole exchange (100-120000)',
      intIn(100, 120_000),
      10_000,
    )
    .addHelpText(
      'after',
      `
Needs a chat administrator's sign-in (perch login) to set up the test: the category
"${TEST_CATEGORY}" gets both users in scope and the closed room "${TEST_ROOM}" gets them as
members. The users sign in with their own passwords (from --passwords-stdin, or
PERCH_SENDER_PASSWORD and PERCH_RECEIVER_PASSWORD, or asked on the terminal); their sessions
are signed out afterwards. Exit 0 when the receiver got the message, 1 with the failing step
(setup, policy, sign-in, connect, join, post, deliver) otherwise.

Examples:
  printf 'alice-pw\\nbob-pw\\n' | perch test message --sender alice --receiver bob --passwords-stdin
  PERCH_SENDER_PASSWORD=... PERCH_RECEIVER_PASSWORD=... perch test message --sender alice --receiver bob --json`,
    )
    .action(
      async (
        opts: ServerOptions & {
          sender: string;
          receiver: string;
          room?: string;
          passwordsStdin?: boolean;
          timeout: number;
        },
      ) => {
        if (opts.sender.toLowerCase() === opts.receiver.toLowerCase()) {
          throw new UsageError('the sender and the receiver must be different users');
        }
        const [senderPw, receiverPw] = await passwords(opts, opts.sender, opts.receiver);
        const deadline = Date.now() + opts.timeout;
        const admin = await signedInClient(opts);
        const clients: ProtocolClient[] = [];
        const sessions: string[] = [];
        try {
          const room = await step('setup', () =>
            opts.room === undefined
              ? ensureTestRoom(admin, [opts.sender, opts.receiver])
              : resolveRoom(admin, opts.room),
          );
          await step('policy', async () => {
            for (const [who, login] of [
              ['sender', opts.sender],
              ['receiver', opts.receiver],
            ] as const) {
              const p = await admin.get<{ enabled: boolean; policy: string; source: string }>(
                `/users/${seg(login)}/policy`,
              );
              if (!p.enabled) {
                throw new StepError(
                  'policy',
                  `${who} ${login} may not use persistent chat (policy ${p.policy}, from ${p.source})`,
                  'chat_disabled',
                );
              }
            }
          });
          const anon = new ApiClient(admin.server);
          const tokens = await step('sign-in', async () => {
            const out: string[] = [];
            for (const [login, password] of [
              [opts.sender, senderPw],
              [opts.receiver, receiverPw],
            ] as const) {
              try {
                const s = await anon.request<{ token: string }>('POST', '/sessions', {
                  body: { login, password },
                });
                out.push(s.token);
                sessions.push(s.token);
              } catch (err) {
                if (err instanceof CliError) {
                  throw new StepError('sign-in', `${login}: ${err.code}: ${err.message}`, err.code);
                }
                throw err;
              }
            }
            return out;
          });
          const [sender, receiver] = await step('connect', async () => {
            const url = wsUrl(admin.server);
            const out: ProtocolClient[] = [];
            for (const [i, token] of tokens.entries()) {
              const c = await ProtocolClient.open(url, deadline);
              clients.push(c);
              const auth = await c.request({ type: 'auth', token }, deadline);
              if (auth.chatEnabled === false) {
                const login = i === 0 ? opts.sender : opts.receiver;
                throw new StepError(
                  'connect',
                  `${login} may not use persistent chat`,
                  'chat_disabled',
                );
              }
              out.push(c);
            }
            return out as [ProtocolClient, ProtocolClient];
          });
          await step('join', async () => {
            for (const [c, login] of [
              [receiver, opts.receiver],
              [sender, opts.sender],
            ] as const) {
              try {
                await c.request({ type: 'join', roomId: room.id, limit: 1 }, deadline);
              } catch (err) {
                if (err instanceof CliError) {
                  throw new StepError('join', `${login}: ${err.code}: ${err.message}`, err.code);
                }
                throw err;
              }
            }
          });
          const clientId = `perch-test-${crypto.randomUUID()}`;
          const text = `perch test message ${new Date().toISOString()}`;
          const delivered = receiver.wait(
            (f) =>
              f.type === 'message' &&
              (f.message as { clientId?: unknown } | undefined)?.clientId === clientId,
            deadline,
            'delivery to the receiver',
          );
          // Observed below; keeps an early rejection from going unhandled meanwhile.
          delivered.catch(() => {});
          const sent = Date.now();
          const ack = await step('post', () =>
            sender.request({ type: 'post', roomId: room.id, text, clientId }, deadline),
          );
          const ackMs = Date.now() - sent;
          await step('deliver', () => delivered);
          const latencyMs = Date.now() - sent;
          emit(
            opts.json,
            {
              ok: true,
              sender: opts.sender,
              receiver: opts.receiver,
              room: { id: room.id, name: room.name },
              seq: ack.seq,
              ackMs,
              latencyMs,
            },
            () =>
              `OK: ${opts.receiver} received ${opts.sender}'s message in room ${room.name} (#${room.id}, seq ${String(ack.seq)}) ` +
              `in ${latencyMs} ms (post acknowledged in ${ackMs} ms).`,
          );
        } catch (err) {
          if (opts.json && err instanceof StepError) {
            stdio.out(
              JSON.stringify(
                { ok: false, stage: err.stage, code: err.reason ?? err.code, message: err.message },
                null,
                2,
              ),
            );
          }
          throw err;
        } finally {
          for (const c of clients) c.close();
          const anon = new ApiClient(admin.server);
          for (const token of sessions) {
            await anon.request('DELETE', '/sessions/current', { token }).catch(() => undefined);
          }
        }
      },
    );
}
