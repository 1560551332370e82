/**
 * `npm run bench:xmpp -- [--servers perch,prosody,ejabberd] [--users N] [--room-sizes 20] [--rate R] [--duration S] [--workers W]`
 *
 * The same multi-user chat scenario against Perch's XMPP gateway, Prosody and ejabberd, one
 * server after the other: N users in rooms of the given sizes (a comma list is cycled: 20,50
 * makes rooms of 20, 50, 20, ...; each user in one room), every user signed in over its own
 * XMPP connection (TCP, SASL PLAIN without TLS, on loopback only) and joined to its room, then R
 * groupchat messages per second in total from random users for S seconds. Reports delivery
 * latency p50/p95/p99/max (sender's clock to receiver's clock, same machine), the reflection to
 * the sender (ack), messages lost and duplicated, errors, connect + sign-in + join time, and the
 * server's RSS and CPU (from /proc, summed over the server's processes: ejabberd is the BEAM),
 * and the ratios between the servers. The last line on standard output is one JSON object; the
 * same goes to bench/results/xmpp-<date>.json with an SVG plot next to it.
 *
 * Each server is configured by the run in a temporary folder on a loopback port (Prosody: muc +
 * muc_mam; ejabberd: mod_muc + mod_mam; Perch: Standard Edition on SQLite with PERCH_XMPP_PORT),
 * with every room persistent and archived, its users created (in-band registration on Prosody
 * and ejabberd, seeded as bench:load does on Perch), started, measured, stopped and its folder
 * removed, also on failure and on Ctrl-C. A missing server program exits 2 with how to install it.
 *
 * Options: --connect-rate (new connections per second, default 200), --max-users 20000 (a bound),
 * --results-dir (default bench/results).
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer, type TestServer } from '../../test/harness/server.js';
import { benchArgs, printHelp } from '../args.js';
import { barChart } from '../chart.js';
import { Histogram } from '../load/histogram.js';
import { seed, type RoomSpec } from '../load/seed.js';
import { machine, publish } from '../results.js';
import { onInterrupt } from '../servers.js';
import { XmppConnection, XmppError } from './client.js';
import {
  DOMAIN,
  freePort,
  INSTALL,
  missingServers,
  processName,
  processTree,
  SERVER_NAMES,
  startEjabberd,
  startProsody,
  treeUsage,
  type RunningXmppServer,
  type ServerName,
} from './servers.js';
import { memoryPerConnection, ratio, roomLayout, sumCounts } from './tally.js';
import type { BenchUser, StartCommand } from './worker.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    servers: { type: 'string', default: SERVER_NAMES.join(',') },
    users: { type: 'string', default: '200' },
    'room-sizes': { type: 'string', default: '20' },
    rate: { type: 'string', default: '50' },
    duration: { type: 'string', default: '20' },
    workers: { type: 'string' },
    'connect-rate': { type: 'string', default: '200' },
    'max-users': { type: 'string', default: '20000' },
    'results-dir': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  printHelp(fileURLToPath(import.meta.url));
  process.exit(0);
}
const { fail, positive } = benchArgs('xmpp', values);
const users = positive('users');
const rate = positive('rate');
const durationS = positive('duration');
const connectRate = positive('connect-rate');
if (!Number.isInteger(users) || users > positive('max-users'))
  fail(`--users must be a whole number up to --max-users (${values['max-users']})`);
if (durationS > 600) fail('--duration is bounded to 600 s');
const roomSizes = values['room-sizes'].split(',').map(Number);
if (roomSizes.some((s) => !Number.isInteger(s) || s < 1))
  fail('--room-sizes must be a comma list of positive whole numbers, e.g. 20 or 20,50');
const servers = values.servers.split(',').map((s) => s.trim()) as ServerName[];
for (const s of servers)
  if (!SERVER_NAMES.includes(s))
    fail(`unknown server ${s} in --servers (${SERVER_NAMES.join(', ')})`);
const missing = missingServers(servers);
if (missing.length > 0) fail(missing.map((m) => INSTALL[m].hint).join('; '));
// One generator per 4,000 connections by default, each well under the open-files limit.
const workerCount = values.workers ? positive('workers') : Math.max(1, Math.ceil(users / 4000));
if (users / workerCount > 15_000) fail('--workers too few: keep each under 15,000 connections');

const log = (line: string) => process.stderr.write(`${line}\n`);
const layout = roomLayout(users, roomSizes);
const maxRoom = Math.max(...layout.map((r) => r.length));
const PASSWORD = 'bench-password';

/** Everything to stop on Ctrl-C or a failure. */
const live = new Set<() => void>();
onInterrupt(() => {
  for (const stop of live) stop();
});

interface Worker {
  proc: ChildProcess;
  next(evt: string): Promise<Record<string, unknown>>;
}

function startWorker(index: number): Worker {
  const proc = fork(path.join(here, 'worker.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<string, (m: Record<string, unknown>) => void>();
  proc.on('message', (m: Record<string, unknown>) => {
    if (m.evt === 'failed') {
      log(`worker ${index} failed: ${String(m.error)}`);
      // The 'exit' handler stops the server and the other workers.
      process.exit(1);
    }
    waiting.get(String(m.evt))?.(m);
  });
  return { proc, next: (evt) => new Promise((resolve) => waiting.set(evt, resolve)) };
}

/**
 * Perch: a seeded Standard Edition server with its XMPP gateway on a loopback port. The domain it
 * serves is learnt from its stream header when it is not the one asked for; its multi-user chat
 * service from service discovery; a room's JID is its id there.
 */
async function startPerch(): Promise<RunningXmppServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-xmppbench-perch-'));
  // Set once the server is up; the stop handler may run before that.
  const started: { server?: TestServer } = {};
  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    started.server?.proc.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  live.add(stopNow);
  const specs: RoomSpec[] = layout.map((members, r) => ({
    name: `xb-${r}`,
    type: 'normal',
    privacy: 'closed',
    members,
    presenters: [],
  }));
  log(`perch: seeding ${users} users in ${layout.length} rooms`);
  const plan = await seed(dataDir, 'rooms20', users, log, undefined, specs);
  const port = await freePort();
  const running = await startServer({
    dataDir,
    adminPassword: plan.password,
    env: {
      PERCH_LOG_LEVEL: 'warn',
      PERCH_XMPP_PORT: String(port),
      PERCH_XMPP_DOMAIN: DOMAIN,
      // SASL PLAIN without TLS, as for the other two servers: loopback only.
      PERCH_XMPP_ALLOW_PLAINTEXT: 'true',
      PERCH_MAX_BUFFERED_BYTES: String(16 * 1024 * 1024),
    },
  });
  started.server = running;
  let domain = DOMAIN;
  let mucDomain = '';
  for (let attempt = 0; !mucDomain; attempt++) {
    try {
      const probe = await XmppConnection.open({
        host: '127.0.0.1',
        port,
        domain,
        username: plan.users[0]!.login,
        password: plan.password,
        stepTimeoutMs: 10_000,
      });
      mucDomain = (await probe.discoItems(domain))[0]?.jid ?? '';
      probe.end();
      if (!mucDomain) throw new Error(`disco#items on ${domain} lists no multi-user chat service`);
    } catch (err) {
      if (err instanceof XmppError && err.serverDomain && err.serverDomain !== domain) {
        domain = err.serverDomain;
        continue;
      }
      if (attempt >= 20) {
        const logs = running.logs().slice(-4000);
        stopNow();
        throw new Error(
          `perch: no XMPP gateway answered on 127.0.0.1:${port} (PERCH_XMPP_PORT): ${String(err)}\n${logs}`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return {
    name: 'perch',
    host: '127.0.0.1',
    port,
    domain,
    mucDomain,
    dir: dataDir,
    roomJid: (r) => `${plan.rooms[r]!.id}@${mucDomain}`,
    registerInBand: false,
    // Not tsx's esbuild service: a deployment runs the compiled server with plain node.
    pids: () => processTree(running.proc.pid!).filter((pid) => processName(pid) !== 'esbuild'),
    stop: async () => {
      await running.stop();
      stopNow();
    },
    stopNow,
    logs: () => running.logs().slice(-8000),
  };
}

async function startNamed(name: ServerName): Promise<RunningXmppServer> {
  if (name === 'prosody') return startProsody(maxRoom + 10);
  if (name === 'ejabberd') return startEjabberd(maxRoom + 10);
  return startPerch();
}

/** The run against one server: start, connect and join, post, measure, stop. */
async function measure(name: ServerName): Promise<Record<string, unknown>> {
  log(`\n== ${name}: starting`);
  const server = await startNamed(name);
  live.add(server.stopNow);
  const workers: Worker[] = [];
  const killWorkers = () => workers.forEach((w) => w.proc.kill('SIGKILL'));
  live.add(killWorkers);
  try {
    log(
      `${name}: listening on ${server.host}:${server.port} (${server.domain}, MUC ${server.mucDomain})`,
    );
    const baseline = treeUsage(server.pids());
    const benchUsers: BenchUser[] = layout.flatMap((members, r) =>
      members.map((index) => ({
        index,
        username: `u${index}`,
        password: PASSWORD,
        room: server.roomJid(r),
        roomKey: r,
      })),
    );
    for (let w = 0; w < workerCount; w++) workers.push(startWorker(w));
    // Each room's first member joins first: on Prosody and ejabberd that join creates the room.
    const first = new Set(layout.map((m) => m[0]!));
    const rest = benchUsers.filter((u) => !first.has(u.index));
    // The rest join in two halves: the server's memory after the first half is the baseline of
    // the marginal memory per connection (tally.ts memoryPerConnection).
    const half = Math.floor(rest.length / 2);
    const phases = [
      benchUsers.filter((u) => first.has(u.index)),
      rest.slice(0, half),
      rest.slice(half),
    ];
    let mid = { rssMb: 0, connections: 0 };
    const t0 = performance.now();
    for (const [p, phase] of phases.entries()) {
      if (p === 2)
        mid = { rssMb: treeUsage(server.pids()).rssMb, connections: users - phase.length };
      await Promise.all(
        workers.map(async (w, k) => {
          const share = phase.filter((u) => u.index % workerCount === k);
          if (share.length === 0) return;
          const connected = w.next('connected');
          const cmd: StartCommand = {
            cmd: 'start',
            server: {
              host: server.host,
              port: server.port,
              domain: server.domain,
              registerInBand: server.registerInBand,
            },
            users: share,
            // Four source addresses per generator: 127.0.0.2 and up.
            localAddresses: [0, 1, 2, 3].map((a) => `127.0.0.${2 + k * 4 + a}`),
            connectPerSecond: connectRate / workerCount,
          };
          w.proc.send(cmd);
          const m = await connected;
          if ((m.failures as number) > 0)
            log(`${name}: generator ${k}: ${String(m.failures)} connection failures`);
        }),
      );
    }
    const connectS = (performance.now() - t0) / 1000;
    const afterConnect = treeUsage(server.pids());
    log(
      `${name}: ${users} users connected and joined in ${connectS.toFixed(1)} s; posting ${rate}/s for ${durationS} s`,
    );
    const cpu0 = treeUsage(server.pids());
    const t1 = performance.now();
    const posted = await Promise.all(
      workers.map((w) => {
        const done = w.next('posted');
        w.proc.send({ cmd: 'load', rate: rate / workers.length, durationMs: durationS * 1000 });
        return done;
      }),
    );
    const cpu1 = treeUsage(server.pids());
    const elapsed = (performance.now() - t1) / 1000;
    const sentPerRoom = sumCounts(posted.map((p) => p.sentPerRoom as Record<string, number>));
    const stats = await Promise.all(
      workers.map((w) => {
        const s = w.next('stats');
        w.proc.send({ cmd: 'finish', sentPerRoom });
        return s;
      }),
    );
    return summarize(name, stats, {
      connectS,
      baselineMb: baseline.rssMb,
      midMb: mid.rssMb,
      midConnections: mid.connections,
      afterConnectMb: afterConnect.rssMb,
      rssMb: cpu1.rssMb,
      cpuS: cpu1.cpuS - cpu0.cpuS,
      elapsedS: elapsed,
      processes: [...new Set(server.pids().map(processName))].join(' '),
    });
  } catch (err) {
    log(`${name}: failed; its last output:\n${server.logs()}`);
    throw err;
  } finally {
    for (const w of workers) if (w.proc.connected) w.proc.send({ cmd: 'stop' });
    await Promise.race([
      Promise.all(workers.map((w) => new Promise((r) => w.proc.once('exit', r)))),
      new Promise((r) => setTimeout(r, 5000)),
    ]);
    killWorkers();
    live.delete(killWorkers);
    log(`${name}: stopping`);
    await server.stop();
    live.delete(server.stopNow);
  }
}

function summarize(
  name: ServerName,
  stats: Record<string, unknown>[],
  server: {
    connectS: number;
    baselineMb: number;
    /** RSS once `midConnections` of the users had connected and joined. */
    midMb: number;
    midConnections: number;
    afterConnectMb: number;
    rssMb: number;
    /** Server CPU time (s) over the posting phase (with the wait for the last deliveries). */
    cpuS: number;
    elapsedS: number;
    /** The server's process names (ejabberd: beam.smp, erl_child_setup, ...). */
    processes: string;
  },
): Record<string, unknown> {
  const delivery = new Histogram();
  const acks = new Histogram();
  const joins = new Histogram();
  const sum = (key: string) => stats.reduce((a, s) => a + (s[key] as number), 0);
  const codes: Record<string, number> = {};
  for (const s of stats) {
    delivery.merge(s.delivery as Histogram);
    acks.merge(s.acks as Histogram);
    joins.merge(s.joins as Histogram);
    for (const [k, v] of Object.entries(s.errorCodes as Record<string, number>))
      codes[k] = (codes[k] ?? 0) + v;
  }
  const round = (v: number, digits: number) => +v.toFixed(digits);
  const connections = sum('connections');
  const received = sum('received');
  return {
    server: name,
    connections,
    connect_failures: sum('connectFailures'),
    posted: sum('posted'),
    received,
    p50_ms: round(delivery.quantile(0.5), 2),
    p95_ms: round(delivery.quantile(0.95), 2),
    p99_ms: round(delivery.quantile(0.99), 2),
    max_ms: round(delivery.max, 2),
    deliveries: delivery.count,
    ack_p50_ms: round(acks.quantile(0.5), 2),
    ack_p99_ms: round(acks.quantile(0.99), 2),
    join_p50_ms: round(joins.quantile(0.5), 2),
    join_p99_ms: round(joins.quantile(0.99), 2),
    connect_s: round(server.connectS, 1),
    lost: sum('lost'),
    duplicated: sum('duplicated'),
    errors: sum('errors') + sum('connectFailures'),
    error_codes: codes,
    closed_unexpectedly: sum('closedUnexpectedly'),
    rss_mb: round(server.rssMb, 1),
    baseline_rss_mb: round(server.baselineMb, 1),
    ...memoryPerConnection({
      baselineMb: server.baselineMb,
      midMb: server.midMb,
      afterMb: server.afterConnectMb,
      midConnections: server.midConnections,
      connections,
    }),
    cpu_cores: round(server.cpuS / server.elapsedS, 3),
    // The figure a loaded machine distorts least: server CPU per message handed to an occupant.
    cpu_ms_per_delivery: round((server.cpuS * 1000) / Math.max(1, received), 4),
    server_processes: server.processes,
    max_generator_cpu_cores: round(Math.max(...stats.map((s) => s.cpuCores as number)), 3),
  };
}

/** Each server's figure against the others': perch/prosody, perch/ejabberd, ejabberd/prosody. */
function ratios(byServer: Record<string, Record<string, unknown>>): Record<string, unknown> {
  const keys = [
    'p50_ms',
    'p95_ms',
    'p99_ms',
    'max_ms',
    'rss_mb',
    'kib_per_connection',
    'rss_growth_kib_per_connection',
    'cpu_cores',
    'cpu_ms_per_delivery',
  ];
  const out: Record<string, Record<string, number | undefined>> = {};
  for (const [a, b] of [
    ['perch', 'prosody'],
    ['perch', 'ejabberd'],
    ['ejabberd', 'prosody'],
  ] as const) {
    if (!byServer[a] || !byServer[b]) continue;
    out[`${a}/${b}`] = Object.fromEntries(
      keys.map((k) => [k, ratio(byServer[b]![k] as number, byServer[a]![k] as number)]),
    );
  }
  return out;
}

async function main(): Promise<void> {
  log(
    `bench:xmpp: ${users} users in ${layout.length} rooms (sizes ${roomSizes.join(',')}), ${rate} posts/s for ${durationS} s, ${workerCount} generator(s); servers: ${servers.join(', ')}`,
  );
  const byServer: Record<string, Record<string, unknown>> = {};
  for (const name of servers) {
    byServer[name] = await measure(name);
    log(JSON.stringify(byServer[name]));
  }
  const result = {
    bench: 'xmpp',
    users,
    rooms: layout.length,
    room_sizes: roomSizes,
    rate,
    duration_s: durationS,
    transport: 'TCP on loopback, SASL PLAIN without TLS',
    servers: byServer,
    ratios: ratios(byServer),
    machine: machine(),
  };
  const rows: Record<string, unknown>[] = Object.values(byServer).map((r) => ({
    server: r.server,
    'p50 ms': r.p50_ms,
    'p95 ms': r.p95_ms,
    'p99 ms': r.p99_ms,
    'max ms': r.max_ms,
    'ack p99': r.ack_p99_ms,
    'join p99': r.join_p99_ms,
    lost: r.lost,
    dup: r.duplicated,
    errors: r.errors,
    'rss MB': r.rss_mb,
    'KiB/conn': r.kib_per_connection,
    'growth KiB/conn': r.rss_growth_kib_per_connection,
    cpu: r.cpu_cores,
    'cpu ms/dlv': r.cpu_ms_per_delivery,
    'gen cpu': r.max_generator_cpu_cores,
  }));
  for (const [pair, r] of Object.entries(result.ratios as Record<string, Record<string, number>>))
    rows.push({
      server: pair,
      'p50 ms': r.p50_ms,
      'p95 ms': r.p95_ms,
      'p99 ms': r.p99_ms,
      'max ms': r.max_ms,
      'rss MB': r.rss_mb,
      'KiB/conn': r.kib_per_connection,
      'growth KiB/conn': r.rss_growth_kib_per_connection,
      cpu: r.cpu_cores,
      'cpu ms/dlv': r.cpu_ms_per_delivery,
    });
  publish('xmpp', result, { svg: plot(byServer), table: rows, dir: values['results-dir'] });
}

function plot(byServer: Record<string, Record<string, unknown>>): string {
  return barChart({
    title: `bench:xmpp, ${users} users in rooms of ${roomSizes.join('/')}, ${rate} posts/s`,
    yLabel: 'delivery latency (ms)',
    logY: true,
    groups: ['p50', 'p95', 'p99', 'max'].map((q) => ({
      label: q,
      bars: Object.values(byServer).map((r) => ({
        name: `${String(r.server)} (${String(r.rss_mb)} MB, ${String(r.cpu_cores)} core)`,
        value: r[`${q}_ms`] as number,
      })),
    })),
  });
}

try {
  await main();
} catch (err) {
  log(`bench:xmpp: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
