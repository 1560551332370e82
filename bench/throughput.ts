/**
 * `npm run bench:throughput -- [--store sqlite|postgres] [--duration S] [--clients N] [--window W]`
 *
 * Acknowledged posts per second through the real server and the real WebSocket protocol, with
 * the durability Perch ships with (SQLite synchronous=full; PostgreSQL with fsync and
 * synchronous_commit on, on disk). N signed-in connections, each the only member of its own
 * room and joined to it, keep up to W posts outstanding (each post carries a clientId, as the
 * web client's do) and stay under the server's per-connection post limit (--per-client-rate,
 * default 9 a second against the server's 10). Load-generator processes (--generators) share
 * the connections. After --warmup seconds, acknowledgements are counted for --duration seconds;
 * the server's CPU time over that window gives its CPU per post. --cpu-prof DIR writes the
 * server's V8 CPU profile (node --cpu-prof) there when it stops. --store-pool-size N sets the
 * server's PERCH_STORE_POOL_SIZE (PostgreSQL connections; default the server's, 10).
 *
 * The last line on standard output is one JSON object; the same goes to bench/results/ with an
 * SVG plot next to it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { benchArgs, printHelp } from './args.js';
import { barChart } from './chart.js';
import { Histogram } from './load/histogram.js';
import { seed, type SeededUser } from './load/seed.js';
import { machine, publish } from './results.js';
import { clusterCpuSeconds, onInterrupt, prepareStore, startFrontEnds, usage } from './servers.js';

const self = fileURLToPath(import.meta.url);
const log = (line: string) => process.stderr.write(`${line}\n`);
const now = () => performance.timeOrigin + performance.now();

interface GeneratorJob {
  wsUrl: string;
  users: SeededUser[];
  localAddress: string;
  window: number;
  perClientRate: number;
}

/** Sent once every generator has connected: the counting window, in ms since the epoch. */
interface GeneratorGo {
  countFrom: number;
  countUntil: number;
}

interface GeneratorResult {
  acked: number;
  ackedTotal: number;
  errors: number;
  errorCodes: Record<string, number>;
  acks: { counts: number[]; max: number };
  cpuCores: number;
  received: number;
}

if (process.send && process.argv.includes('--generator')) {
  process.on('disconnect', () => process.exit(0));
  process.once('message', (m: { connect: GeneratorJob }) => {
    generate(m.connect).catch((err: unknown) => {
      process.send!({ failed: String(err) });
    });
  });
} else {
  await main();
}

/** One generator process: connects its users, then posts until countUntil and reports. */
async function generate(job: GeneratorJob): Promise<void> {
  const clients: {
    ws: WebSocket;
    user: SeededUser;
    roomId: number;
    outstanding: number;
    nextAt: number;
  }[] = [];
  const pending = new Map<
    string,
    { sent: number; resolve: (f: Record<string, unknown>) => void }
  >();
  let nextId = 1;
  let acked = 0;
  let ackedTotal = 0;
  let errors = 0;
  let received = 0;
  let stop = false;
  const errorCodes: Record<string, number> = {};
  const acks = new Histogram();
  const request = (ws: WebSocket, frame: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const id = `t${nextId++}`;
      pending.set(id, { sent: now(), resolve });
      ws.send(JSON.stringify({ ...frame, id }));
    });
  const onFrame = (raw: string) => {
    const f = JSON.parse(raw) as Record<string, unknown>;
    if (f.type === 'message') {
      received += 1;
      return;
    }
    if (typeof f.id !== 'string') return;
    const p = pending.get(f.id);
    if (!p) return;
    pending.delete(f.id);
    if (f.type === 'error') {
      errors += 1;
      errorCodes[String(f.code)] = (errorCodes[String(f.code)] ?? 0) + 1;
    }
    p.resolve(f);
  };
  // Connect in batches of 100, so that a thousand handshakes do not all time out together.
  for (let i = 0; i < job.users.length; i += 100) {
    await Promise.all(
      job.users.slice(i, i + 100).map(async (user) => {
        const ws = new WebSocket(job.wsUrl, {
          localAddress: job.localAddress,
          perMessageDeflate: false,
        });
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        ws.on('message', (data) => onFrame(data.toString()));
        ws.on('error', () => undefined);
        const auth = await request(ws, { type: 'auth', token: user.token });
        if (auth.type !== 'reply') throw new Error(`auth failed: ${JSON.stringify(auth)}`);
        const roomId = user.postable[0]!;
        const joined = await request(ws, { type: 'bjoin', rooms: [{ roomId, limit: 1 }] });
        if (joined.type !== 'reply') throw new Error(`bjoin failed: ${JSON.stringify(joined)}`);
        clients.push({ ws, user, roomId, outstanding: 0, nextAt: 0 });
      }),
    );
  }
  process.send!({ connected: clients.length });
  const go = await new Promise<GeneratorGo>((resolve) => process.once('message', resolve));
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const interval = 1000 / job.perClientRate;
  let sequence = 0;
  const pump = (c: (typeof clients)[number]): void => {
    while (!stop && c.outstanding < job.window) {
      const t = now();
      if (c.nextAt > t) {
        setTimeout(() => pump(c), c.nextAt - t);
        return;
      }
      // Paced below the server's post limit: one post every `interval`, catching up no more
      // than one interval at a time.
      c.nextAt = Math.max(c.nextAt, t - interval) + interval;
      c.outstanding += 1;
      const sent = t;
      const clientId = `${process.pid}-${sequence++}`;
      void request(c.ws, {
        type: 'post',
        roomId: c.roomId,
        text: `throughput ${clientId}`,
        clientId,
      }).then((f) => {
        c.outstanding -= 1;
        const at = now();
        if (f.type === 'reply') {
          ackedTotal += 1;
          if (at >= go.countFrom && at < go.countUntil) {
            acked += 1;
            acks.record(at - sent);
          }
        }
        pump(c);
      });
    }
  };
  // Spread the first posts over one interval so that the connections do not beat in step.
  for (const [i, c] of clients.entries()) c.nextAt = t0 + (i / clients.length) * interval;
  for (const c of clients) pump(c);
  await new Promise((r) => setTimeout(r, Math.max(0, go.countUntil - now())));
  stop = true;
  const used = process.cpuUsage(cpu0);
  const result: GeneratorResult = {
    acked,
    ackedTotal,
    errors,
    errorCodes,
    acks: acks.toJSON(),
    cpuCores: (used.user + used.system) / 1000 / (now() - t0),
    received,
  };
  // Let posts still in flight finish before the connections close.
  const end = now() + 5_000;
  while (clients.some((c) => c.outstanding > 0) && now() < end)
    await new Promise((r) => setTimeout(r, 50));
  process.send!({ result });
  for (const c of clients) c.ws.terminate();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      store: { type: 'string', default: 'sqlite' },
      duration: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '5' },
      clients: { type: 'string', default: '800' },
      window: { type: 'string', default: '4' },
      'per-client-rate': { type: 'string', default: '9' },
      generators: { type: 'string', default: '2' },
      'cpu-prof': { type: 'string' },
      'store-pool-size': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    printHelp(self);
    return;
  }
  const { fail, positive, storeKind } = benchArgs('throughput', values);
  const kind = storeKind();
  const durationS = positive('duration');
  const warmupS = positive('warmup');
  const clientCount = positive('clients');
  const window = positive('window');
  const perClientRate = positive('per-client-rate');
  if (perClientRate > 10) fail('--per-client-rate above 10 would hit the server post limit');
  const generatorCount = Math.min(positive('generators'), clientCount);
  if (durationS > 600) fail('--duration is at most 600 s');
  const storePoolSize = values['store-pool-size'] === undefined ? 10 : positive('store-pool-size');
  if (kind !== 'postgres' && values['store-pool-size'] !== undefined)
    fail('--store-pool-size applies to --store postgres only');

  const store = await prepareStore(kind, log);
  let stopNow = () => {
    store.cluster?.stop();
    fs.rmSync(store.dataDir, { recursive: true, force: true });
  };
  const generators: ChildProcess[] = [];
  onInterrupt(() => {
    for (const g of generators) g.kill('SIGKILL');
    stopNow();
  });
  log(`seeding ${clientCount} users, each in a room of its own`);
  const plan = await seed(store.dataDir, 'solo', clientCount, log, store.storeUrl);
  const profDir = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;
  if (profDir) fs.mkdirSync(profDir, { recursive: true });
  const frontEnds = await startFrontEnds(store, 1, {
    adminPassword: plan.password,
    log,
    env: {
      PERCH_LOG_LEVEL: 'warn',
      // What Perch ships with (the default, said explicitly).
      PERCH_SQLITE_SYNCHRONOUS: 'full',
      PERCH_STORE_POOL_SIZE: String(storePoolSize),
    },
    nodeOptions: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
  });
  stopNow = frontEnds.stopNow;
  const server = frontEnds.servers[0]!;
  const pid = server.proc.pid!;
  try {
    const share = Math.ceil(clientCount / generatorCount);
    const messages = (g: ChildProcess, key: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const on = (m: Record<string, unknown>) => {
          if (m.failed) reject(new Error(`generator failed: ${String(m.failed)}`));
          else if (key in m) {
            g.off('message', on);
            resolve(m);
          }
        };
        g.on('message', on);
        g.once('exit', (code) => reject(new Error(`generator exited (${code})`)));
      });
    log(`connecting ${clientCount} clients from ${generatorCount} generators`);
    const jobs: GeneratorJob[] = [];
    for (let g = 0; g < generatorCount; g++) {
      const proc = fork(self, ['--generator'], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      generators.push(proc);
      jobs.push({
        wsUrl: server.wsUrl,
        users: plan.users.slice(g * share, (g + 1) * share),
        localAddress: `127.0.0.${2 + g}`,
        window,
        perClientRate,
      });
    }
    const connected = generators.map((g) => messages(g, 'connected'));
    for (const [g, proc] of generators.entries()) proc.send({ connect: jobs[g]! });
    await Promise.all(connected);
    // The counting window is fixed once every generator has connected; they start together.
    const countFrom = now() + warmupS * 1000;
    const countUntil = countFrom + durationS * 1000;
    const results = generators.map((g) => messages(g, 'result'));
    const go: GeneratorGo = { countFrom, countUntil };
    for (const g of generators) g.send(go);
    log(`posting: warm-up ${warmupS} s, then counting for ${durationS} s`);
    await new Promise((r) => setTimeout(r, Math.max(0, countFrom - now())));
    const cpu0 = usage(pid);
    const pg0 = clusterCpuSeconds(store.cluster);
    const t0 = now();
    await new Promise((r) => setTimeout(r, Math.max(0, countUntil - now())));
    const cpu1 = usage(pid);
    const pg1 = clusterCpuSeconds(store.cluster);
    const elapsed = (now() - t0) / 1000;
    const out = (await Promise.all(results)).map((m) => m.result as GeneratorResult);
    const acks = new Histogram();
    let acked = 0;
    let errors = 0;
    let generatorCores = 0;
    const codes: Record<string, number> = {};
    for (const r of out) {
      acks.merge(r.acks);
      acked += r.acked;
      errors += r.errors;
      generatorCores = Math.max(generatorCores, r.cpuCores);
      for (const [k, v] of Object.entries(r.errorCodes)) codes[k] = (codes[k] ?? 0) + v;
    }
    const serverCores = (cpu1.cpuS - cpu0.cpuS) / elapsed;
    const postsPerS = acked / durationS;
    const round = (v: number, d: number) => +v.toFixed(d);
    const result = {
      bench: 'throughput',
      store: kind,
      durability:
        kind === 'sqlite' ? 'synchronous=full' : 'fsync=on, synchronous_commit=on, on disk',
      ...(kind === 'postgres' ? { store_pool_size: storePoolSize } : {}),
      clients: clientCount,
      window,
      per_client_rate: perClientRate,
      offered_max_posts_per_s: clientCount * perClientRate,
      duration_s: durationS,
      warmup_s: warmupS,
      acked,
      posts_per_s: round(postsPerS, 1),
      ack_p50_ms: round(acks.quantile(0.5), 2),
      ack_p99_ms: round(acks.quantile(0.99), 2),
      ack_max_ms: round(acks.max, 2),
      errors,
      error_codes: codes,
      server_cpu_cores: round(serverCores, 3),
      server_cpu_ms_per_post: round((serverCores * 1000) / Math.max(1, postsPerS), 3),
      server_rss_mb: round(cpu1.rssMb, 1),
      ...(store.cluster
        ? {
            postgres_cpu_cores: round((pg1 - pg0) / elapsed, 3),
            postgres_cpu_ms_per_post: round(((pg1 - pg0) * 1000) / Math.max(1, acked), 3),
          }
        : {}),
      max_generator_cpu_cores: round(generatorCores, 3),
      generators: generatorCount,
      target_posts_per_s: 5000,
      machine: machine(),
      ...(profDir ? { cpu_profile_dir: profDir } : {}),
    };
    for (const g of generators) g.kill('SIGTERM');
    await frontEnds.stop();
    publish(`throughput-${kind}`, result, {
      svg: barChart({
        title: `bench:throughput on ${kind} (${result.durability}), ${clientCount} clients`,
        yLabel: 'acknowledged posts per second',
        groups: [
          {
            label: kind,
            bars: [
              { name: 'posts/s', value: result.posts_per_s },
              { name: 'server CPU (cores) x 1000', value: serverCores * 1000 },
            ],
          },
        ],
        marks: [{ label: 'target 5,000/s', y: 5000 }],
      }),
      table: [
        {
          store: kind,
          clients: clientCount,
          window,
          'posts/s': result.posts_per_s,
          'ack p50 ms': result.ack_p50_ms,
          'ack p99 ms': result.ack_p99_ms,
          errors,
          'server cores': result.server_cpu_cores,
          'server ms/post': result.server_cpu_ms_per_post,
          ...(store.cluster ? { 'pg cores': result.postgres_cpu_cores } : {}),
          'gen cores': result.max_generator_cpu_cores,
        },
      ],
    });
  } finally {
    for (const g of generators) g.kill('SIGKILL');
    await frontEnds.stop();
  }
}
