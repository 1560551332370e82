/**
 * The servers a benchmark runs against, and their teardown: a Standard Edition server on SQLite
 * (in the run's data dir) or on PostgreSQL, or K front ends of one Enterprise Edition pool on a
 * PostgreSQL cluster started for the run. The cluster keeps PostgreSQL's durability defaults
 * (fsync and synchronous_commit on, on disk), as a deployment would. Everything started here is
 * stopped by `stop()`, and by `stopNow()` (synchronous, for signal and exit handlers).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPostgres, type PostgresCluster } from '../test/harness/postgres.js';
import { startServer, type TestServer } from '../test/harness/server.js';

export type StoreKind = 'sqlite' | 'postgres';

export interface BenchStore {
  kind: StoreKind;
  /** The run's data dir: perch.db on SQLite; the first server's files otherwise. */
  dataDir: string;
  /** PERCH_STORE_URL of the PostgreSQL database; undefined on SQLite. */
  storeUrl: string | undefined;
  cluster: PostgresCluster | undefined;
}

/** Creates the run's data dir and, for PostgreSQL, a durable cluster and an empty migrated database. */
export async function prepareStore(
  kind: StoreKind,
  log: (line: string) => void,
): Promise<BenchStore> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-bench-'));
  if (kind === 'sqlite') return { kind, dataDir, storeUrl: undefined, cluster: undefined };
  log('starting a PostgreSQL cluster (durable: fsync and synchronous_commit on)');
  const cluster = await startPostgres({ durable: true, maxConnections: 300 });
  const db = await cluster.createDatabase();
  return { kind, dataDir, storeUrl: db.url, cluster };
}

export interface FrontEnds {
  servers: TestServer[];
  /** Stops every server, then the cluster, and removes the data dirs. */
  stop(): Promise<void>;
  /** The same at once (SIGKILL), synchronously: for signal handlers and 'exit'. */
  stopNow(): void;
}

/**
 * Starts `count` servers on `store`: one Standard Edition server when count is 1, else the front
 * ends fe1..feK of pool `bench` (all in the pool's default active set, which holds up to four).
 */
export async function startFrontEnds(
  store: BenchStore,
  count: number,
  opts: {
    adminPassword: string;
    env: Record<string, string>;
    log: (line: string) => void;
    nodeOptions?: string[];
  },
): Promise<FrontEnds> {
  const servers: TestServer[] = [];
  const dirs = [store.dataDir];
  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    for (const s of servers) s.proc.kill('SIGKILL');
    store.cluster?.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
  const stop = async () => {
    if (stopped) return;
    await Promise.allSettled(servers.map((s) => s.stop()));
    stopNow();
  };
  try {
    if (count === 1) {
      servers.push(
        await startServer({
          dataDir: store.dataDir,
          storeUrl: store.storeUrl,
          adminPassword: opts.adminPassword,
          env: opts.env,
          nodeOptions: opts.nodeOptions,
        }),
      );
    } else {
      const started = await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const dataDir =
            i === 0 ? store.dataDir : fs.mkdtempSync(path.join(os.tmpdir(), 'perch-bench-fe-'));
          if (i > 0) dirs.push(dataDir);
          return startServer({
            dataDir,
            storeUrl: store.storeUrl,
            adminPassword: opts.adminPassword,
            // Several servers starting at once on a small machine: be patient.
            startDeadlineMs: 120_000,
            nodeOptions: opts.nodeOptions,
            env: { ...opts.env, PERCH_POOL: 'bench', PERCH_FRONT_END: `fe${i + 1}` },
          });
        }),
      );
      servers.push(...started);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  opts.log(
    `${count === 1 ? 'server' : `${count} front ends`} on ${store.kind}: ${servers.map((s) => s.url).join(', ')}`,
  );
  return { servers, stop, stopNow };
}

/** Resident memory (MB) and CPU time (s) of a process, from /proc. */
export function usage(pid: number): { rssMb: number; cpuS: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { rssMb: rssKb / 1024, cpuS: cpuSeconds(pid) };
}

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU time (s) of a PostgreSQL cluster: the postmaster and every backend it forked. */
export function clusterCpuSeconds(cluster: PostgresCluster | undefined): number {
  if (!cluster) return 0;
  let postmaster: number;
  try {
    postmaster = Number(
      fs.readFileSync(path.join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
    );
  } catch {
    return 0;
  }
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (Number(entry) === postmaster || ppid === postmaster) total += cpuSeconds(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return total;
}

/**
 * Runs `cleanup` (synchronous) when the process is interrupted (Ctrl-C, SIGTERM, SIGHUP) or
 * exits, then exits with 130 on a signal.
 */
export function onInterrupt(cleanup: () => void): void {
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping every process this run started\n`);
      cleanup();
      process.exit(130);
    });
  }
}
