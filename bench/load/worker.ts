/**
 * A load-generator process: opens WebSocket connections for its share of users (each from one of
 * its 127.0.0.x source addresses), authenticates, batch-joins their rooms, then posts at its share
 * of the rate and measures, for every message received, the delivery latency from the sender's
 * clock (same machine), and per connection and room any gap (lost) or repeat (duplicate) in the
 * sequence numbers. Talks to the orchestrator over IPC.
 */
import { WebSocket } from 'ws';
import { Histogram } from './histogram.js';
import type { SeededUser } from './seed.js';

interface StartCommand {
  cmd: 'start';
  /** One WebSocket URL per front end: user number firstIndex + i connects to (firstIndex + i) mod K. */
  wsUrls: string[];
  firstIndex: number;
  users: SeededUser[];
  localAddresses: string[];
  connectPerSecond: number;
}
interface LoadCommand {
  cmd: 'load';
  rate: number;
  durationMs: number;
}
interface FinishCommand {
  cmd: 'finish';
  /** Each room's last sequence number at the end of the run, from the server. */
  lastSeqs: Record<string, number>;
}
type Command = StartCommand | LoadCommand | FinishCommand | { cmd: 'stop' };

const now = () => performance.timeOrigin + performance.now();

interface Client {
  ws: WebSocket;
  user: SeededUser;
  lastSeq: Map<number, number>;
  pending: Map<string, { resolve: (frame: Record<string, unknown>) => void; sent: number }>;
  nextId: number;
}

const clients: Client[] = [];
let delivery = new Histogram();
let acks = new Histogram();
const joinTimes = new Histogram();
let lost = 0;
let duplicated = 0;
let received = 0;
let errors = 0;
let closedUnexpectedly = 0;
/** Users whose connection, sign-in or join failed (over the whole run; they are not retried). */
let connectFailures = 0;
let posted = 0;
let stopping = false;
let loadStarted = { cpu: process.cpuUsage(), at: now() };
const errorCodes: Record<string, number> = {};

function send(parent: unknown): void {
  process.send!(parent);
}

function request(c: Client, frame: Record<string, unknown>): Promise<Record<string, unknown>> {
  const id = `r${c.nextId++}`;
  return new Promise((resolve) => {
    c.pending.set(id, { resolve, sent: now() });
    c.ws.send(JSON.stringify({ ...frame, id }));
  });
}

function onFrame(c: Client, raw: string): void {
  const frame = JSON.parse(raw) as Record<string, unknown>;
  if (frame.type === 'message') {
    const roomId = frame.roomId as number;
    const message = frame.message as { seq: number; text: string };
    const last = c.lastSeq.get(roomId) ?? 0;
    if (message.seq <= last) duplicated += 1;
    else {
      if (message.seq > last + 1) lost += message.seq - last - 1;
      c.lastSeq.set(roomId, message.seq);
    }
    received += 1;
    const sentAt = Number(message.text.slice(0, message.text.indexOf(' ')));
    if (Number.isFinite(sentAt)) delivery.record(now() - sentAt);
    return;
  }
  if ((frame.type === 'reply' || frame.type === 'error') && typeof frame.id === 'string') {
    const p = c.pending.get(frame.id);
    if (p) {
      c.pending.delete(frame.id);
      p.resolve(frame);
    }
    if (frame.type === 'error') {
      errors += 1;
      const code = String(frame.code);
      errorCodes[code] = (errorCodes[code] ?? 0) + 1;
    }
  }
}

/** Rejects with `what` unless `p` settles within CONNECT_STEP_MS: a connection never hangs a run. */
const CONNECT_STEP_MS = 60_000;
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no ${what} within ${CONNECT_STEP_MS} ms`)),
      CONNECT_STEP_MS,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function connect(wsUrl: string, user: SeededUser, localAddress: string): Promise<void> {
  const ws = new WebSocket(wsUrl, { localAddress, perMessageDeflate: false });
  const c: Client = { ws, user, lastSeq: new Map(), pending: new Map(), nextId: 1 };
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      'WebSocket open',
    );
    await signInAndJoin(c);
  } catch (err) {
    ws.terminate();
    throw err;
  }
  clients.push(c);
}

async function signInAndJoin(c: Client): Promise<void> {
  const { ws, user } = c;
  ws.on('message', (data) => onFrame(c, data.toString()));
  ws.on('close', (code, reason) => {
    if (stopping) return;
    closedUnexpectedly += 1;
    if (closedUnexpectedly <= 3)
      process.stderr.write(`connection of ${user.login} closed: ${code} ${reason.toString()}\n`);
    // Whatever it was waiting for will not come.
    for (const p of c.pending.values()) p.resolve({ type: 'error', code: 'closed' });
    c.pending.clear();
  });
  ws.on('error', () => undefined);
  const started = now();
  const auth = await within(request(c, { type: 'auth', token: user.token }), 'auth reply');
  if (auth.type !== 'reply') throw new Error(`auth failed: ${JSON.stringify(auth)}`);
  if (user.rooms.length > 0) {
    const joined = await within(
      request(c, { type: 'bjoin', rooms: user.rooms.map((roomId) => ({ roomId, limit: 1 })) }),
      'bjoin reply',
    );
    if (joined.type !== 'reply') throw new Error(`bjoin failed: ${JSON.stringify(joined)}`);
    for (const r of (
      joined.data as { results: { roomId: number; ok: boolean; messages?: { seq: number }[] }[] }
    ).results) {
      if (r.ok) c.lastSeq.set(r.roomId, r.messages?.at(-1)?.seq ?? 0);
    }
  }
  joinTimes.record(now() - started);
}

async function start(cmd: StartCommand): Promise<void> {
  const interval = 1000 / cmd.connectPerSecond;
  const began = now();
  const inflight: Promise<void>[] = [];
  let failures = 0;
  for (const [i, user] of cmd.users.entries()) {
    const due = began + i * interval;
    const wait = due - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      connect(
        cmd.wsUrls[(cmd.firstIndex + i) % cmd.wsUrls.length]!,
        user,
        cmd.localAddresses[i % cmd.localAddresses.length]!,
      ).catch((err: unknown) => {
        failures += 1;
        if (failures <= 3) process.stderr.write(`connect failed: ${String(err)}\n`);
      }),
    );
    // At most 50 handshakes at once: a starved server closes connections that have not signed
    // in within 10 s (4002 auth_timeout).
    if (inflight.length >= 50) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  connectFailures += failures;
  send({ evt: 'connected', connected: clients.length, failures });
}

async function load(cmd: LoadCommand): Promise<void> {
  // Each load phase (one ramp step) is measured on its own.
  delivery = new Histogram();
  acks = new Histogram();
  lost = duplicated = received = errors = posted = closedUnexpectedly = 0;
  loadStarted = { cpu: process.cpuUsage(), at: now() };
  for (const key of Object.keys(errorCodes)) delete errorCodes[key];
  const posters = clients.filter((c) => c.user.postable.length > 0);
  const interval = cmd.rate > 0 ? 1000 / cmd.rate : Infinity;
  const began = now();
  const total = Math.floor((cmd.durationMs / 1000) * cmd.rate);
  const acked: Promise<void>[] = [];
  for (let i = 0; i < total && posters.length > 0; i++) {
    const due = began + i * interval;
    const wait = due - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const c = posters[Math.floor(Math.random() * posters.length)]!;
    const roomId = c.user.postable[Math.floor(Math.random() * c.user.postable.length)]!;
    const sent = now();
    posted += 1;
    acked.push(
      request(c, { type: 'post', roomId, text: `${sent} load message ${process.pid}-${i}` }).then(
        (reply) => {
          if (reply.type === 'reply') acks.record(now() - sent);
        },
      ),
    );
  }
  await Promise.race([Promise.all(acked), new Promise((r) => setTimeout(r, 10_000))]);
  // Let the last deliveries arrive: wait until nothing new is received for a moment.
  let last = -1;
  while (last !== received) {
    last = received;
    await new Promise((r) => setTimeout(r, 500));
  }
  send({ evt: 'posted', posted });
}

function finish(cmd: FinishCommand): void {
  // Messages never received at the end of a stream are lost too.
  for (const c of clients) {
    for (const roomId of c.user.rooms) {
      const final = cmd.lastSeqs[String(roomId)] ?? 0;
      const seen = c.lastSeq.get(roomId) ?? 0;
      if (final > seen) lost += final - seen;
    }
  }
  send({
    evt: 'stats',
    delivery: delivery.toJSON(),
    acks: acks.toJSON(),
    joins: joinTimes.toJSON(),
    lost,
    duplicated,
    received,
    posted,
    errors,
    errorCodes,
    closedUnexpectedly,
    connectFailures,
    connections: clients.length,
    // Cores this generator used during the load phase: near 1 means it, not the server, limited.
    cpuCores: (() => {
      const used = process.cpuUsage(loadStarted.cpu);
      return (used.user + used.system) / 1000 / (now() - loadStarted.at);
    })(),
  });
}

// The orchestrator is gone (killed, or exited on an error): so is this run.
process.on('disconnect', () => {
  stopping = true;
  process.exit(0);
});

process.on('message', (cmd: Command) => {
  if (cmd.cmd === 'start')
    start(cmd).catch((err: unknown) => send({ evt: 'failed', error: String(err) }));
  else if (cmd.cmd === 'load')
    load(cmd).catch((err: unknown) => send({ evt: 'failed', error: String(err) }));
  else if (cmd.cmd === 'finish') finish(cmd);
  else {
    stopping = true;
    for (const c of clients) c.ws.terminate();
    process.exit(0);
  }
});
