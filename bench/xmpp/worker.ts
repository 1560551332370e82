/**
 * A bench:xmpp load-generator process: opens one XMPP connection per user of its share (each from
 * one of its 127.0.0.x source addresses), registers it in-band where the server needs that, signs
 * in, binds, joins the user's room, then posts groupchat messages at its share of the rate and
 * measures, for every message received, the delivery latency from the sender's clock (same
 * machine), the reflection to the sender (its acknowledgement), duplicates and, at the end, what
 * was never received. Talks to the orchestrator over IPC.
 */
import { Histogram } from '../load/histogram.js';
import { attr, bodyText, errorCondition, XmppConnection } from './client.js';
import { messageBody, parseBody, ReceiverTally } from './tally.js';

export interface BenchUser {
  index: number;
  username: string;
  password: string;
  /** Bare JID of the user's room. */
  room: string;
  /** The room's number in the run's layout (the key of per-room counts). */
  roomKey: number;
}

export interface StartCommand {
  cmd: 'start';
  server: { host: string; port: number; domain: string; registerInBand: boolean };
  users: BenchUser[];
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
  /** Messages sent to each room (by every generator) during the load phase. */
  sentPerRoom: Record<string, number>;
}
type Command = StartCommand | LoadCommand | FinishCommand | { cmd: 'stop' };

const now = () => performance.timeOrigin + performance.now();

interface Client {
  conn: XmppConnection;
  user: BenchUser;
  tally: ReceiverTally;
  counter: number;
}

const clients: Client[] = [];
const delivery = new Histogram();
const acks = new Histogram();
const joins = new Histogram();
let received = 0;
let errors = 0;
let closedUnexpectedly = 0;
let connectFailures = 0;
let posted = 0;
let stopping = false;
let loadStarted = { cpu: process.cpuUsage(), at: now() };
const errorCodes: Record<string, number> = {};
const sentPerRoom: Record<string, number> = {};

function send(message: unknown): void {
  process.send!(message);
}

function countError(code: string): void {
  errors += 1;
  errorCodes[code] = (errorCodes[code] ?? 0) + 1;
}

function onStanza(c: Client, stanza: string): void {
  if (stanza.startsWith('<message')) {
    if (attr(stanza, 'type') === 'error') {
      countError(`message:${errorCondition(stanza)}`);
      return;
    }
    // History replayed on join (none is asked for) is not a delivery.
    if (stanza.includes('urn:xmpp:delay')) return;
    const body = bodyText(stanza);
    const parsed = body === undefined ? undefined : parseBody(body);
    if (!parsed) return;
    received += 1;
    if (!c.tally.record(parsed.sender, parsed.counter)) return;
    const latency = now() - parsed.sentAt;
    if (parsed.sender === c.user.index) acks.record(latency);
    else delivery.record(latency);
    return;
  }
  if (attr(stanza, 'type') === 'error')
    countError(`${stanza.slice(1, 5)}:${errorCondition(stanza)}`);
}

async function connect(cmd: StartCommand, user: BenchUser, localAddress: string): Promise<void> {
  const conn = await XmppConnection.open({
    ...cmd.server,
    register: cmd.server.registerInBand,
    username: user.username,
    password: user.password,
    localAddress,
  });
  const c: Client = { conn, user, tally: new ReceiverTally(), counter: 0 };
  conn.onStanza = (s) => onStanza(c, s);
  conn.onClose = (reason) => {
    if (stopping) return;
    closedUnexpectedly += 1;
    if (closedUnexpectedly <= 3)
      process.stderr.write(`connection of ${user.username} closed: ${reason.slice(0, 300)}\n`);
  };
  try {
    await conn.join(user.room, user.username);
  } catch (err) {
    conn.destroy();
    throw err;
  }
  // TCP connect and stream set-up are not in it; sign-in, bind and join are.
  joins.record(now() - conn.signInStartedAt);
  clients.push(c);
}

async function start(cmd: StartCommand): Promise<void> {
  const interval = 1000 / cmd.connectPerSecond;
  const began = now();
  const inflight: Promise<void>[] = [];
  let failures = 0;
  for (const [i, user] of cmd.users.entries()) {
    const wait = began + i * interval - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      connect(cmd, user, cmd.localAddresses[i % cmd.localAddresses.length]!).catch(
        (err: unknown) => {
          failures += 1;
          if (failures <= 3) process.stderr.write(`connect failed: ${String(err).slice(0, 500)}\n`);
        },
      ),
    );
    // At most 50 handshakes at once, as bench:load does.
    if (inflight.length >= 50) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  connectFailures += failures;
  send({ evt: 'connected', connected: clients.length, failures });
}

async function load(cmd: LoadCommand): Promise<void> {
  loadStarted = { cpu: process.cpuUsage(), at: now() };
  const interval = cmd.rate > 0 ? 1000 / cmd.rate : Infinity;
  const began = now();
  const total = Math.floor((cmd.durationMs / 1000) * cmd.rate);
  for (let i = 0; i < total && clients.length > 0; i++) {
    const wait = began + i * interval - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const c = clients[Math.floor(Math.random() * clients.length)]!;
    if (c.conn.closed) continue;
    c.counter += 1;
    posted += 1;
    sentPerRoom[c.user.roomKey] = (sentPerRoom[c.user.roomKey] ?? 0) + 1;
    c.conn.groupchat(c.user.room, messageBody(now(), c.user.index, c.counter));
  }
  // Let the last deliveries arrive: until nothing new comes for a second (at most 30 s).
  const until = now() + 30_000;
  let last = -1;
  while (last !== received && now() < until) {
    last = received;
    await new Promise((r) => setTimeout(r, 1000));
  }
  send({ evt: 'posted', posted, sentPerRoom });
}

function finish(cmd: FinishCommand): void {
  let lost = 0;
  let duplicated = 0;
  for (const c of clients) {
    lost += c.tally.lost(cmd.sentPerRoom[c.user.roomKey] ?? 0);
    duplicated += c.tally.duplicated;
  }
  const used = process.cpuUsage(loadStarted.cpu);
  send({
    evt: 'stats',
    delivery: delivery.toJSON(),
    acks: acks.toJSON(),
    joins: joins.toJSON(),
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
    cpuCores: (used.user + used.system) / 1000 / (now() - loadStarted.at),
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
    for (const c of clients) c.conn.end();
    process.exit(0);
  }
});
