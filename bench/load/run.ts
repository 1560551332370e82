/**
 * `npm run bench:load -- --users N [--fes 1] [--duration S] [--rate R] [--scenario mixed|rooms20|room1000] [--ramp]`
 *
 * Seeds a Standard Edition store, starts the server, spreads N users over load-generator
 * processes (each below the 20,000 open-files limit, each with its own 127.0.0.x source
 * addresses), joins every user to its rooms through the real protocol, posts R messages per
 * second from random members for S seconds and reports delivery and acknowledgement latency,
 * lost and duplicated messages, errors, the server's RSS and CPU, and memory per connection.
 * The last line on standard output is one JSON object; the same goes to bench/results/.
 *
 * --ramp adds users step by step (--step, default 1000) until p99 delivery exceeds 100 ms, errors
 * exceed 0.025 % or the server's CPU stays above 85 % of a core, and reports the largest number
 * held (Mattermost's published method).
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer, type TestServer } from '../../test/harness/server.js';
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
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    fs
      .readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('*/')[0]!
      .replace(/^\/\*\*?|^ \* ?/gm, '') + '\n',
  );
  process.exit(0);
}
const users = positive('users');
const fes = positive('fes');
const durationS = positive('duration');
const rate = Number(values.rate);
const scenario = values.scenario as Scenario;
if (!['mixed', 'rooms20', 'room1000'].includes(scenario)) fail(`unknown --scenario ${scenario}`);
if (fes !== 1 || values.store !== 'sqlite') {
  fail(
    'only --fes 1 --store sqlite (Standard Edition) exists yet; pools need the Enterprise Edition (PostgreSQL) work',
  );
}
const perWorker = positive('per-worker');
if (perWorker > 18_000)
  fail('--per-worker must stay below the 20,000 open-files limit of a process');

function positive(name: keyof typeof values): number {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || v <= 0) fail(`--${name} must be a positive number`);
  return v;
}
function fail(message: string): never {
  process.stderr.write(`bench:load: ${message}\n`);
  process.exit(2);
}
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Resident memory (MB) and CPU time (s) of a process, from /proc. */
function usage(pid: number): { rssMb: number; cpuS: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssMb: rssKb / 1024, cpuS: ticks / 100 };
}

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
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-bench-load-'));
  const total = values.ramp ? users : users;
  log(`seeding ${total} users (${scenario}) in ${dataDir}`);
  const plan = await seed(dataDir, scenario, total, log);
  log(`seeded ${plan.rooms.length} rooms; starting the server`);
  const server = await startServer({
    dataDir,
    env: {
      PERCH_LOG_LEVEL: 'warn',
      PERCH_ADMIN_PASSWORD: plan.password,
      PERCH_MAX_BUFFERED_BYTES: String(16 * 1024 * 1024),
      PERCH_SQLITE_SYNCHRONOUS: values.sync === 'normal' ? 'normal' : 'full',
      ...(values['compliance-poll-ms']
        ? { PERCH_COMPLIANCE_POLL_MS: values['compliance-poll-ms'] }
        : {}),
    },
  });
  const pid = server.proc.pid!;
  const results: Record<string, unknown>[] = [];
  const workers: Worker[] = [];
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
    const baseline = usage(pid);
    const stepSize = values.ramp ? positive('step') : users;
    let connectedUsers = 0;
    let best: Record<string, unknown> | undefined;
    while (connectedUsers < users) {
      const target = Math.min(users, connectedUsers + stepSize);
      const batch = plan.users.slice(connectedUsers, target);
      log(`connecting users ${connectedUsers}..${target - 1}`);
      const t0 = performance.now();
      await connectBatch(workers, batch, server.wsUrl, connectedUsers);
      const connectS = (performance.now() - t0) / 1000;
      connectedUsers = target;
      const afterConnect = usage(pid);
      log(
        `${connectedUsers} users connected in ${connectS.toFixed(1)} s; posting ${rate}/s for ${durationS} s`,
      );
      const cpu0 = usage(pid);
      const t1 = performance.now();
      const active = workers.filter((w) => w !== undefined);
      await Promise.all(
        active.map((w) => {
          const posted = w.next('posted');
          w.proc.send({ cmd: 'load', rate: rate / active.length, durationMs: durationS * 1000 });
          return posted;
        }),
      );
      const cpu1 = usage(pid);
      const elapsed = (performance.now() - t1) / 1000;
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
        generatorCores = Math.max(generatorCores, s.cpuCores as number);
        for (const [k, v] of Object.entries(s.errorCodes as Record<string, number>))
          codes[k] = (codes[k] ?? 0) + v;
      }
      const cores = (cpu1.cpuS - cpu0.cpuS) / elapsed;
      const result = {
        bench: 'load',
        scenario,
        users: connectedUsers,
        fes,
        store: values.store,
        sqlite_synchronous: values.sync,
        rate,
        duration_s: durationS,
        posted,
        received,
        p50_ms: +delivery.quantile(0.5).toFixed(2),
        p95_ms: +delivery.quantile(0.95).toFixed(2),
        p99_ms: +delivery.quantile(0.99).toFixed(2),
        max_ms: +delivery.max.toFixed(2),
        ack_p50_ms: +acks.quantile(0.5).toFixed(2),
        ack_p99_ms: +acks.quantile(0.99).toFixed(2),
        join_p50_ms: +joins.quantile(0.5).toFixed(2),
        join_p99_ms: +joins.quantile(0.99).toFixed(2),
        signin_p50_ms: +signIns.quantile(0.5).toFixed(1),
        connect_s: +connectS.toFixed(1),
        lost,
        duplicated,
        errors,
        error_codes: codes,
        closed_unexpectedly: closed,
        rss_mb_per_fe: +cpu1.rssMb.toFixed(1),
        baseline_rss_mb: +baseline.rssMb.toFixed(1),
        kib_per_connection: +(
          ((afterConnect.rssMb - baseline.rssMb) * 1024) /
          connectedUsers
        ).toFixed(1),
        cpu_cores_per_fe: +cores.toFixed(3),
        max_generator_cpu_cores: +generatorCores.toFixed(3),
        load_generators: stats.length,
        machine: `${os.cpus().length} cores, node ${process.version}`,
      };
      results.push(result);
      log(JSON.stringify(result));
      if (!values.ramp) break;
      const errorRate = errors / Math.max(1, posted + connectedUsers);
      if (result.p99_ms > 100 || errorRate > 0.00025 || cores > 0.85 || lost > 0) {
        log(
          `ramp stopped at ${connectedUsers} users (p99 ${result.p99_ms} ms, errors ${errorRate}, cpu ${cores.toFixed(2)}, lost ${lost})`,
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
    const dir = path.join(here, '..', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(
      dir,
      `load-${scenario}-${connectedUsers}u-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
    );
    fs.writeFileSync(file, `${JSON.stringify(final, null, 2)}\n`);
    log(`results written to ${path.relative(process.cwd(), file)}`);
    process.stdout.write(`${JSON.stringify(final)}\n`);
  } finally {
    for (const w of workers) w.proc.send({ cmd: 'stop' });
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Hands a batch of users to workers, starting new ones so that none exceeds --per-worker. */
async function connectBatch(
  workers: Worker[],
  batch: SeededUser[],
  wsUrl: string,
  offset: number,
): Promise<void> {
  const assignments = new Map<number, SeededUser[]>();
  batch.forEach((user, i) => {
    const w = Math.floor((offset + i) / perWorker);
    if (!assignments.has(w)) assignments.set(w, []);
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
        wsUrl,
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
