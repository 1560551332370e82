/**
 * `npm run bench:load -- --users N [--fes K] [--store sqlite|postgres] [--duration S] [--rate R] [--scenario mixed|rooms20|room1000] [--ramp]`
 *
 * Seeds a store, starts the servers, spreads N users over load-generator processes (each below
 * the 20,000 open-files limit, each with its own 127.0.0.x source addresses), joins every user to
 * its rooms through the real protocol, posts R messages per second from random members for S
 * seconds and reports delivery and acknowledgement latency, lost and duplicated messages, errors,
 * each server's RSS and CPU, and memory per connection. The last line on standard output is one
 * JSON object; the same goes to bench/results/ with an SVG plot next to it.
 *
 * --fes 1 (default) runs one Standard Edition server, on SQLite (default) or, with
 * --store postgres, on a PostgreSQL cluster started for the run. --fes K (2-4) starts that
 * cluster and K front ends of one Enterprise Edition pool on it; the users are spread evenly over
 * the front ends (user i on front end i mod K), so the members of a room sit on different front
 * ends and delivery is measured across them. The cluster keeps PostgreSQL's durability defaults.
 * Every process and the cluster are stopped at the end, on error and on Ctrl-C.
 *
 * --cpu-prof DIR writes each server's V8 CPU profile (node --cpu-prof) there when it stops. Every
 * run measures each server's event-loop delay during the posting phase (loop_delay_*, by
 * bench/load/loop-delay.ts preloaded into the server) and its CPU per delivered message.
 *
 * --ramp adds users step by step (--step, default 1000) until p99 delivery exceeds 100 ms, errors
 * exceed 0.025 % or a server's CPU stays above 85 % of a core, and reports the largest number
 * held (Mattermost's published method).
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { TestServer } from '../../test/harness/server.js';
import { barChart, lineChart } from '../chart.js';
import { machine, publish } from '../results.js';
import {
  clusterCpuSeconds,
  onInterrupt,
  prepareStore,
  startFrontEnds,
  usage,
  type StoreKind,
} from '../servers.js';
import { benchArgs, printHelp } from '../args.js';
import { Histogram } from './histogram.js';
import { seed, type Scenario, type SeededUser } from './seed.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000' },
    fes: { type: 'string', default: '1' },
    duration: { type: 'string', default: '30' },
    rate: { type: 'string', default: '200' },
    scenario: { type: 'string', default: 'mixed' },
    store: { type: 'string', default: 'sqlite' },
    'per-worker': { type: 'string', default: '6000' },
    'connect-rate': { type: 'string', default: '1000' },
    ramp: { type: 'boolean', default: false },
    sync: { type: 'string', default: 'full' },
    'compliance-poll-ms': { type: 'string' },
    step: { type: 'string', default: '1000' },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  printHelp(fileURLToPath(import.meta.url));
  process.exit(0);
}
const { fail, positive, storeKind: parseStore } = benchArgs('load', values);
const users = positive('users');
const fes = positive('fes');
const durationS = positive('duration');
const rate = Number(values.rate);
const scenario = values.scenario as Scenario;
if (!['mixed', 'rooms20', 'room1000'].includes(scenario)) fail(`unknown --scenario ${scenario}`);
const storeKind = parseStore();
if (!Number.isInteger(fes) || fes > 4)
  fail('--fes must be 1 (Standard Edition) or 2-4 (a pool; its active set holds four)');
if (fes > 1 && storeKind !== 'postgres') {
  if (process.argv.includes('--store'))
    fail('a pool (--fes > 1) runs on PostgreSQL: --store postgres');
}
const poolStore: StoreKind = fes > 1 ? 'postgres' : storeKind;
const perWorker = positive('per-worker');
if (perWorker > 18_000)
  fail('--per-worker must stay below the 20,000 open-files limit of a process');

const log = (line: string) => process.stderr.write(`${line}\n`);

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
      // The 'exit' handler stops the servers, the cluster and the other workers.
      process.exit(1);
    }
    waiting.get(String(m.evt))?.(m);
  });
  return {
    proc,
    next: (evt) => new Promise((resolve) => waiting.set(evt, resolve)),
  };
}

async function signInSample(server: TestServer, password: string, n: number): Promise<Histogram> {
  const h = new Histogram();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await fetch(`${server.url}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: `u${i}`, password }),
    });
    if (!res.ok) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
    h.record(performance.now() - t);
  }
  return h;
}

async function roomSeqs(
  server: TestServer,
  token: string,
  roomCount: number,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let offset = 0; offset < roomCount; offset += 500) {
    const res = await fetch(`${server.url}/api/v1/rooms?limit=500&offset=${offset}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const rooms = (await res.json()) as { id: number; lastSeq: number }[];
    for (const r of rooms) out[String(r.id)] = r.lastSeq;
  }
  return out;
}

async function main(): Promise<void> {
  const store = await prepareStore(poolStore, log);
  let stopNow = () => {
    store.cluster?.stop();
    fs.rmSync(store.dataDir, { recursive: true, force: true });
  };
  const workers: Worker[] = [];
  onInterrupt(() => {
    for (const w of workers) w.proc.kill('SIGKILL');
    stopNow();
  });
  log(`seeding ${users} users (${scenario}) in ${store.storeUrl ? 'PostgreSQL' : store.dataDir}`);
  const plan = await seed(store.dataDir, scenario, users, log, store.storeUrl);
  log(
    `seeded ${plan.rooms.length} rooms; starting ${fes === 1 ? 'the server' : `${fes} front ends`}`,
  );
  const profDir = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;
  if (profDir) fs.mkdirSync(profDir, { recursive: true });
  // Each front end writes its event-loop delay to loop-delay-<pid>.json in the run's data dir.
  const loopDelayFile = path.join(store.dataDir, 'loop-delay');
  const frontEnds = await startFrontEnds(store, fes, {
    adminPassword: plan.password,
    log,
    env: {
      PERCH_LOG_LEVEL: 'warn',
      PERCH_MAX_BUFFERED_BYTES: String(16 * 1024 * 1024),
      PERCH_SQLITE_SYNCHRONOUS: values.sync === 'normal' ? 'normal' : 'full',
      PERCH_BENCH_LOOP_DELAY_FILE: loopDelayFile,
      ...(values['compliance-poll-ms']
        ? { PERCH_COMPLIANCE_POLL_MS: values['compliance-poll-ms'] }
        : {}),
    },
    nodeOptions: [
      '--import',
      'tsx',
      '--import',
      path.join(here, 'loop-delay.ts'),
      ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
    ],
  });
  stopNow = frontEnds.stopNow;
  const servers = frontEnds.servers;
  const server = servers[0]!;
  const pids = servers.map((s) => s.proc.pid!);
  const results: Record<string, unknown>[] = [];
  try {
    const signIns = await signInSample(server, plan.password, 10);
    const adminToken = (
      (await (
        await fetch(`${server.url}/api/v1/sessions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ login: 'admin', password: plan.password }),
        })
      ).json()) as { token: string }
    ).token;
    const baseline = pids.map(usage);
    const stepSize = values.ramp ? positive('step') : users;
    let connectedUsers = 0;
    let best: Record<string, unknown> | undefined;
    while (connectedUsers < users) {
      const target = Math.min(users, connectedUsers + stepSize);
      const batch = plan.users.slice(connectedUsers, target);
      log(`connecting users ${connectedUsers}..${target - 1}`);
      const t0 = performance.now();
      await connectBatch(workers, batch, servers, connectedUsers);
      const connectS = (performance.now() - t0) / 1000;
      connectedUsers = target;
      const afterConnect = pids.map(usage);
      log(
        `${connectedUsers} users connected in ${connectS.toFixed(1)} s; posting ${rate}/s for ${durationS} s`,
      );
      // Starts each server's event-loop delay afresh for the posting phase.
      await loopDelays(pids, loopDelayFile);
      const cpu0 = pids.map(usage);
      const pg0 = clusterCpuSeconds(store.cluster);
      const t1 = performance.now();
      const active = workers.filter((w) => w !== undefined);
      await Promise.all(
        active.map((w) => {
          const posted = w.next('posted');
          w.proc.send({ cmd: 'load', rate: rate / active.length, durationMs: durationS * 1000 });
          return posted;
        }),
      );
      const cpu1 = pids.map(usage);
      const pg1 = clusterCpuSeconds(store.cluster);
      const elapsed = (performance.now() - t1) / 1000;
      const delays = await loopDelays(pids, loopDelayFile);
      const lastSeqs = await roomSeqs(server, adminToken, plan.rooms.length);
      const stats = await Promise.all(
        active.map((w) => {
          const s = w.next('stats');
          w.proc.send({ cmd: 'finish', lastSeqs });
          return s;
        }),
      );
      const delivery = new Histogram();
      const acks = new Histogram();
      const joins = new Histogram();
      let lost = 0;
      let duplicated = 0;
      let errors = 0;
      let posted = 0;
      let received = 0;
      let closed = 0;
      let connectFailures = 0;
      let connections = 0;
      let generatorCores = 0;
      const codes: Record<string, number> = {};
      for (const s of stats) {
        delivery.merge(s.delivery as Histogram);
        acks.merge(s.acks as Histogram);
        joins.merge(s.joins as Histogram);
        lost += s.lost as number;
        duplicated += s.duplicated as number;
        errors += s.errors as number;
        posted += s.posted as number;
        received += s.received as number;
        closed += s.closedUnexpectedly as number;
        connectFailures += s.connectFailures as number;
        connections += s.connections as number;
        generatorCores = Math.max(generatorCores, s.cpuCores as number);
        for (const [k, v] of Object.entries(s.errorCodes as Record<string, number>))
          codes[k] = (codes[k] ?? 0) + v;
      }
      const round = (v: number, digits: number) => +v.toFixed(digits);
      const cores = pids.map((_, i) => round((cpu1[i]!.cpuS - cpu0[i]!.cpuS) / elapsed, 3));
      const rss = cpu1.map((u) => round(u.rssMb, 1));
      const perConnection = pids.map(
        (_, i) =>
          ((afterConnect[i]!.rssMb - baseline[i]!.rssMb) * 1024) /
          Math.max(1, connectedUsers / fes),
      );
      const result = {
        bench: 'load',
        scenario,
        users: connectedUsers,
        // Users whose connection, sign-in or join failed: counted in errors as well.
        connect_failures: connectFailures,
        connections,
        fes,
        store: poolStore,
        ...(poolStore === 'sqlite' ? { sqlite_synchronous: values.sync } : {}),
        rate,
        duration_s: durationS,
        posted,
        received,
        p50_ms: round(delivery.quantile(0.5), 2),
        p95_ms: round(delivery.quantile(0.95), 2),
        p99_ms: round(delivery.quantile(0.99), 2),
        max_ms: round(delivery.max, 2),
        ack_p50_ms: round(acks.quantile(0.5), 2),
        ack_p99_ms: round(acks.quantile(0.99), 2),
        join_p50_ms: round(joins.quantile(0.5), 2),
        join_p99_ms: round(joins.quantile(0.99), 2),
        signin_p50_ms: round(signIns.quantile(0.5), 1),
        connect_s: round(connectS, 1),
        lost,
        duplicated,
        errors: errors + connectFailures,
        error_codes: codes,
        closed_unexpectedly: closed,
        // Per front end (array, in fe1..feK order) and the largest.
        rss_mb_per_fe: rss,
        max_rss_mb: Math.max(...rss),
        baseline_rss_mb: baseline.map((u) => round(u.rssMb, 1)),
        kib_per_connection: round(Math.max(...perConnection), 1),
        cpu_cores_per_fe: cores,
        max_cpu_cores: Math.max(...cores),
        // Server CPU (all front ends) per message handed to a receiver during the posting phase.
        cpu_ms_per_delivery: round(
          (pids.reduce((sum, _, i) => sum + cpu1[i]!.cpuS - cpu0[i]!.cpuS, 0) * 1000) /
            Math.max(1, received),
          4,
        ),
        // Each front end's event-loop delay during the posting phase (ms).
        loop_delay_p99_ms_per_fe: delays.map((d) => d.p99_ms),
        loop_delay_max_ms_per_fe: delays.map((d) => d.max_ms),
        loop_delay_mean_ms_per_fe: delays.map((d) => d.mean_ms),
        ...(store.cluster ? { postgres_cpu_cores: round((pg1 - pg0) / elapsed, 3) } : {}),
        max_generator_cpu_cores: round(generatorCores, 3),
        load_generators: stats.length,
        machine: machine(),
      };
      results.push(result);
      log(JSON.stringify(result));
      if (!values.ramp) break;
      const errorRate = (errors + connectFailures) / Math.max(1, posted + connectedUsers);
      const busiest = Math.max(...cores);
      if (result.p99_ms > 100 || errorRate > 0.00025 || busiest > 0.85 || lost > 0) {
        log(
          `ramp stopped at ${connectedUsers} users (p99 ${result.p99_ms} ms, errors ${errorRate}, cpu ${busiest.toFixed(2)}, lost ${lost})`,
        );
        break;
      }
      best = result;
    }
    const final = values.ramp
      ? {
          ...(best ?? results[0]!),
          ramp: true,
          largest_users_held: best ? best.users : 0,
          steps: results,
        }
      : results[0]!;
    publish(`load-${scenario}-${fes}fe-${poolStore}-${connectedUsers}u`, final, {
      svg: plot(results),
      table: results.map((r) => ({
        users: r.users,
        fes: r.fes,
        store: r.store,
        'rate/s': r.rate,
        'p50 ms': r.p50_ms,
        'p95 ms': r.p95_ms,
        'p99 ms': r.p99_ms,
        'max ms': r.max_ms,
        'ack p99': r.ack_p99_ms,
        lost: r.lost,
        dup: r.duplicated,
        errors: r.errors,
        'cpu/fe': (r.cpu_cores_per_fe as number[]).join(' '),
        'rss MB/fe': (r.rss_mb_per_fe as number[]).join(' '),
        'gen cpu': r.max_generator_cpu_cores,
        'cpu ms/delivery': r.cpu_ms_per_delivery,
        'loop delay p99': (r.loop_delay_p99_ms_per_fe as number[]).join(' '),
      })),
    });
  } finally {
    for (const w of workers) w.proc.send({ cmd: 'stop' });
    await frontEnds.stop();
  }
}

/** Latency against users for a ramp; latency percentiles of the one run otherwise. */
function plot(results: Record<string, unknown>[]): string {
  const first = results[0]!;
  const title = `bench:load ${scenario}, ${fes} ${fes === 1 ? 'server' : 'front ends'} on ${poolStore}, ${rate} posts/s`;
  if (results.length > 1) {
    const series = (key: string, name: string) => ({
      name,
      points: results.map((r) => [r.users as number, r[key] as number] as [number, number]),
    });
    return lineChart({
      title,
      xLabel: 'connected users',
      yLabel: 'delivery latency (ms)',
      logY: true,
      series: [series('p50_ms', 'p50'), series('p95_ms', 'p95'), series('p99_ms', 'p99')],
      marks: [{ label: 'p99 target 100 ms', y: 100 }],
    });
  }
  return barChart({
    title: `${title}, ${String(first.users)} users`,
    yLabel: 'latency (ms)',
    logY: true,
    groups: [
      {
        label: 'delivery',
        bars: ['p50', 'p95', 'p99', 'max'].map((q) => ({
          name: q,
          value: first[`${q}_ms`] as number,
        })),
      },
      {
        label: 'acknowledgement',
        bars: [
          { name: 'p50', value: first.ack_p50_ms as number },
          { name: 'p99', value: first.ack_p99_ms as number },
        ],
      },
      {
        label: 'connect + auth + join',
        bars: [
          { name: 'p50', value: first.join_p50_ms as number },
          { name: 'p99', value: first.join_p99_ms as number },
        ],
      },
    ],
    marks: [{ label: 'p99 target 100 ms', y: 100 }],
  });
}

interface LoopDelay {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
}

/**
 * Asks each server (SIGUSR2, see loop-delay.ts) for its event-loop delay since the last ask and
 * waits for the file it writes.
 */
async function loopDelays(pids: number[], base: string): Promise<LoopDelay[]> {
  return Promise.all(
    pids.map(async (pid, i) => {
      const file = `${base}-${pid}.json`;
      fs.rmSync(file, { force: true });
      process.kill(pid, 'SIGUSR2');
      for (let waited = 0; waited < 30_000; waited += 50) {
        try {
          return JSON.parse(fs.readFileSync(file, 'utf8')) as LoopDelay;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      throw new Error(`server ${i + 1} did not report its event-loop delay`);
    }),
  );
}

/** Hands a batch of users to workers, starting new ones so that none exceeds --per-worker. */
async function connectBatch(
  workers: Worker[],
  batch: SeededUser[],
  servers: TestServer[],
  offset: number,
): Promise<void> {
  const assignments = new Map<number, SeededUser[]>();
  const firstIndex = new Map<number, number>();
  batch.forEach((user, i) => {
    const w = Math.floor((offset + i) / perWorker);
    if (!assignments.has(w)) {
      assignments.set(w, []);
      firstIndex.set(w, offset + i);
    }
    assignments.get(w)!.push(user);
  });
  await Promise.all(
    [...assignments].map(async ([w, list]) => {
      workers[w] ??= startWorker(w);
      const worker = workers[w];
      const connected = worker.next('connected');
      // Four source addresses per worker: 127.0.0.2 and up, each with its own ephemeral ports.
      const localAddresses = [0, 1, 2, 3].map((k) => `127.0.0.${2 + w * 4 + k}`);
      worker.proc.send({
        cmd: 'start',
        // User i connects to front end i mod K.
        wsUrls: servers.map((s) => s.wsUrl),
        firstIndex: firstIndex.get(w),
        users: list,
        localAddresses,
        connectPerSecond: Number(values['connect-rate']) / assignments.size,
      });
      const m = await connected;
      if ((m.failures as number) > 0) log(`worker ${w}: ${String(m.failures)} connection failures`);
    }),
  );
}

await main();
