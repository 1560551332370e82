/**
 * A Patroni-managed PostgreSQL cluster for tests: a one-member etcd on free loopback ports and N
 * Patroni nodes, each with its own data folder, REST API port and PostgreSQL port, configured
 * from examples/patroni/patroni.yml (the runbook's file) with test names, addresses, folders
 * and short timings. Everything lives in one temp folder; stop() (also run when the process
 * exits, however it exits) kills every process and removes the folder, and a later run removes
 * what a killed test process left behind.
 *
 * Patroni and PostgreSQL run as the `postgres` system user when the tests run as root (they
 * refuse root). Patroni starts PostgreSQL detached (the postmaster is not its child), so stopping
 * a node means killing Patroni and then the postmaster named in postmaster.pid.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import YAML from 'yaml';
import { findPostgresBin } from './postgres.js';
import { freePort } from './server.js';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const exampleConfig = path.join(repoRoot, 'examples', 'patroni', 'patroni.yml');
const DIR_PREFIX = 'perch-patroni-';
const HOST = '127.0.0.1';
const asRoot = process.getuid?.() === 0;

export interface PatroniNode {
  /** Patroni's member name (node1, node2, ...). */
  readonly name: string;
  readonly host: string;
  /** PostgreSQL's port. */
  readonly port: number;
  /** Patroni's REST API port. */
  readonly restPort: number;
  /** The node's folder: config.yml, patroni.log, data/. */
  readonly dir: string;
  /** Whether its Patroni process runs (started and not killed). */
  readonly running: boolean;
}

export interface PatroniMember {
  name: string;
  role: string;
  state: string;
  host: string;
  port: number;
  lag?: number | string;
}

export interface PatroniCluster {
  readonly scope: string;
  readonly etcdUrl: string;
  readonly nodes: readonly PatroniNode[];
  /** Path of a node's Patroni configuration (for patronictl -c). */
  configFile(node: PatroniNode): string;
  /** Every node as `host:port,host:port,...` (the host list of a multi-host store URL). */
  readonly hostList: string;
  /** A connection string naming every node (a Perch multi-host store URL) for `database`. */
  storeUrl(database: string, user?: string): string;
  /** A connection string for `database` on one node only. */
  nodeUrl(node: PatroniNode, database: string): string;
  /** The cluster's members as Patroni's REST API (GET /cluster) of any running node sees them. */
  members(): Promise<PatroniMember[]>;
  /**
   * Waits until one member leads and a synchronous standby streams from it (checked on the
   * leader's pg_stat_replication too), leaving out `except`; returns the leader's node.
   */
  waitHealthy(opts?: { except?: PatroniNode; deadlineMs?: number }): Promise<PatroniNode>;
  /** Kills a node as a machine dies: Patroni, the postmaster and every backend, with SIGKILL. */
  kill(node: PatroniNode): Promise<void>;
  /** Starts a killed node's Patroni again on its data folder. */
  start(node: PatroniNode): Promise<void>;
  /** Runs patronictl against this cluster; resolves with its stdout. */
  patronictl(args: string[]): Promise<string>;
  /** Kills everything and removes the folder; synchronous so that it works in 'exit'. */
  stop(): void;
}

export interface StartPatroniOptions {
  /** PostgreSQL nodes (default 3: with synchronous_mode_strict one can be lost). */
  nodes?: number;
  /** Overrides the example's synchronous_mode_strict. */
  strict?: boolean;
}

/** The uid/gid PostgreSQL and Patroni run as: postgres when root, else this process's own. */
function owner(): { uid: number; gid: number } | undefined {
  if (!asRoot) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killQuietly(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** The postmaster's pid from a data folder, if one is recorded. */
function postmasterPid(data: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pids of a process's children (from /proc; PostgreSQL's backends are the postmaster's). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start after its ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** Kills a postmaster and its backends with SIGKILL (a backend left over would hold the port). */
function killPostgres(data: string): number[] {
  const pid = postmasterPid(data);
  if (pid === undefined || !isAlive(pid)) return [];
  const all = [pid, ...childrenOf(pid)];
  for (const p of all) killQuietly(p);
  return all;
}

/** Pids recorded in a cluster folder (patroni and etcd processes), one a line. */
function recordedPids(dir: string): number[] {
  try {
    return fs
      .readFileSync(path.join(dir, 'pids'), 'utf8')
      .split('\n')
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

/** Whether a process's command line mentions `dir` (a recorded pid not yet reused). */
function runsIn(pid: number, dir: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
  } catch {
    return false;
  }
}

/** Kills every process of a cluster folder, then removes it. */
function destroySync(dir: string): void {
  for (const pid of recordedPids(dir)) if (runsIn(pid, dir)) killQuietly(pid);
  for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (entry.startsWith('node')) killPostgres(path.join(dir, entry, 'data'));
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Removes clusters whose test process was killed (SIGKILL runs no handler). */
function removeOrphans(): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = path.join(os.tmpdir(), name);
    let pid: number;
    try {
      pid = Number(fs.readFileSync(path.join(dir, 'owner.pid'), 'utf8'));
    } catch {
      continue;
    }
    if (Number.isInteger(pid) && !isAlive(pid)) destroySync(dir);
  }
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  deadlineMs: number,
  explain: () => string = () => '',
): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${explain()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function tail(file: string, chars = 4_000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return `--- ${file}\n${text.slice(-chars)}`;
  } catch {
    return '';
  }
}

/** The parts of a Patroni configuration file the harness changes. */
interface PatroniConfig {
  scope: string;
  name: string;
  restapi: Record<string, unknown>;
  etcd3: Record<string, unknown>;
  bootstrap: {
    dcs: Record<string, unknown> & { postgresql: { parameters: Record<string, unknown> } };
    pg_hba: string[];
  };
  postgresql: Record<string, unknown> & { parameters?: Record<string, unknown> };
}

interface NodeState {
  name: string;
  port: number;
  restPort: number;
  dir: string;
  proc?: ChildProcess;
}

/** Starts etcd and the Patroni nodes; resolves once a leader and a sync standby exist. */
export async function startPatroni(opts: StartPatroniOptions = {}): Promise<PatroniCluster> {
  const bin = findPostgresBin();
  removeOrphans();
  const user = owner();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  fs.writeFileSync(path.join(dir, 'owner.pid'), String(process.pid));
  let stopped = false;
  const children: ChildProcess[] = [];
  const stop = () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', stop);
    for (const child of children) killQuietly(child.pid);
    destroySync(dir);
  };
  process.on('exit', stop);
  const record = (child: ChildProcess) => {
    children.push(child);
    fs.appendFileSync(path.join(dir, 'pids'), `${child.pid}\n`);
  };
  const spawnLogged = (
    file: string,
    args: string[],
    log: string,
    as?: { uid: number; gid: number },
  ) => {
    const out = fs.openSync(log, 'a');
    try {
      const child = spawn(file, args, {
        cwd: path.dirname(log),
        stdio: ['ignore', out, out],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: dir },
        ...(as ?? {}),
      });
      child.on('error', () => {});
      record(child);
      return child;
    } finally {
      fs.closeSync(out);
    }
  };

  try {
    if (user) fs.chownSync(dir, user.uid, user.gid);
    // etcd: one member, client and peer ports on loopback.
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const etcdUrl = `http://${HOST}:${clientPort}`;
    const peerUrl = `http://${HOST}:${peerPort}`;
    spawnLogged(
      'etcd',
      [
        '--name=etcd1',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=etcd1=${peerUrl}`,
        '--initial-cluster-state=new',
      ],
      path.join(dir, 'etcd.log'),
    );
    await until(
      'etcd',
      async () => {
        const r = await fetch(`${etcdUrl}/health`);
        return ((await r.json()) as { health: string }).health === 'true' ? true : undefined;
      },
      30_000,
      () => tail(path.join(dir, 'etcd.log')),
    );

    const example = YAML.parse(fs.readFileSync(exampleConfig, 'utf8')) as PatroniConfig;
    const scope = `perch-test-${process.pid}`;
    const states: NodeState[] = [];
    for (let i = 1; i <= (opts.nodes ?? 3); i++) {
      const nodeDir = path.join(dir, `node${i}`);
      fs.mkdirSync(nodeDir, { mode: 0o700 });
      if (user) fs.chownSync(nodeDir, user.uid, user.gid);
      states.push({
        name: `node${i}`,
        port: await freePort(),
        restPort: await freePort(),
        dir: nodeDir,
      });
    }
    const configFile = (state: { dir: string }) => path.join(state.dir, 'config.yml');
    for (const state of states) {
      const config = structuredClone(example);
      config.scope = scope;
      config.name = state.name;
      config.restapi = {
        listen: `${HOST}:${state.restPort}`,
        connect_address: `${HOST}:${state.restPort}`,
      };
      config.etcd3 = { hosts: [`${HOST}:${clientPort}`] };
      const dcs = config.bootstrap.dcs;
      // Short timings: a dead leader's key expires within seconds, not half a minute.
      Object.assign(dcs, { ttl: 10, loop_wait: 1, retry_timeout: 4 });
      if (opts.strict !== undefined) dcs.synchronous_mode_strict = opts.strict;
      // Tests lose processes, never the machine: fsync buys nothing and costs the disk.
      dcs.postgresql.parameters = { ...dcs.postgresql.parameters, fsync: 'off' };
      delete dcs.postgresql.parameters.wal_keep_size;
      const hba = [
        'local all all trust',
        `host replication all ${HOST}/32 trust`,
        `host all all ${HOST}/32 trust`,
      ];
      config.bootstrap.pg_hba = hba;
      const pgConfig = config.postgresql;
      Object.assign(pgConfig, {
        listen: `${HOST}:${state.port}`,
        connect_address: `${HOST}:${state.port}`,
        data_dir: path.join(state.dir, 'data'),
        bin_dir: bin,
        pgpass: path.join(state.dir, 'pgpass'),
        pg_hba: hba,
      });
      pgConfig.parameters = { ...pgConfig.parameters, unix_socket_directories: state.dir };
      fs.writeFileSync(configFile(state), YAML.stringify(config));
      if (user) fs.chownSync(configFile(state), user.uid, user.gid);
    }

    const startNode = (state: NodeState) => {
      state.proc = spawnLogged(
        'patroni',
        [configFile(state)],
        path.join(state.dir, 'patroni.log'),
        user,
      );
    };
    const logs = () =>
      [
        tail(path.join(dir, 'etcd.log'), 1_000),
        ...states.map((s) => tail(path.join(s.dir, 'patroni.log'))),
      ].join('\n');

    const nodes: PatroniNode[] = states.map((state) => ({
      name: state.name,
      host: HOST,
      port: state.port,
      restPort: state.restPort,
      dir: state.dir,
      get running() {
        return (
          state.proc !== undefined && state.proc.exitCode === null && state.proc.signalCode === null
        );
      },
    }));
    const nodeUrl = (node: { port: number }, database: string) =>
      `postgres://postgres@${HOST}:${node.port}/${database}`;

    const members = async (): Promise<PatroniMember[]> => {
      let lastError: unknown;
      for (const node of nodes.filter((n) => n.running)) {
        try {
          const r = await fetch(`http://${HOST}:${node.restPort}/cluster`, {
            signal: AbortSignal.timeout(3_000),
          });
          return ((await r.json()) as { members: PatroniMember[] }).members;
        } catch (err) {
          lastError = err;
        }
      }
      throw new Error(`no Patroni REST API answered: ${String(lastError)}`);
    };

    const waitHealthy = async (
      wait: { except?: PatroniNode; deadlineMs?: number } = {},
    ): Promise<PatroniNode> =>
      until(
        'a Patroni leader with a streaming synchronous standby',
        async () => {
          const list = (await members()).filter((m) => m.name !== wait.except?.name);
          const leader = list.find((m) => m.role === 'leader' && m.state === 'running');
          const sync = list.find((m) => m.role === 'sync_standby');
          if (!leader || !sync) return undefined;
          const client = new pg.Client({ connectionString: nodeUrl(leader, 'postgres') });
          await client.connect();
          try {
            const r = await client.query<{ name: string }>(
              `SELECT application_name AS name FROM pg_stat_replication
                WHERE state = 'streaming' AND sync_state = 'sync'`,
            );
            if (!r.rows.some((row) => row.name === sync.name)) return undefined;
          } finally {
            await client.end();
          }
          return nodes.find((n) => n.name === leader.name);
        },
        wait.deadlineMs ?? 90_000,
        logs,
      );

    for (const state of states) startNode(state);
    await waitHealthy();

    const hostList = nodes.map((n) => `${HOST}:${n.port}`).join(',');
    return {
      scope,
      etcdUrl,
      nodes,
      configFile,
      hostList,
      storeUrl: (database, user = 'postgres') => `postgres://${user}@${hostList}/${database}`,
      nodeUrl,
      members,
      waitHealthy,
      async kill(node) {
        const state = states.find((s) => s.name === node.name)!;
        // Patroni first: left alive, it would start PostgreSQL again at once.
        const proc = state.proc;
        killQuietly(proc?.pid);
        const pids = killPostgres(path.join(state.dir, 'data'));
        if (proc && proc.exitCode === null && proc.signalCode === null)
          await new Promise((resolve) => proc.once('exit', resolve));
        await until(
          `${node.name}'s PostgreSQL processes to die`,
          async () => (pids.some(isAlive) ? undefined : true),
          30_000,
        );
      },
      async start(node) {
        const state = states.find((s) => s.name === node.name)!;
        if (nodes.find((n) => n.name === node.name)!.running) return;
        startNode(state);
      },
      async patronictl(args) {
        const { stdout } = await run('patronictl', ['-c', configFile(states[0]!), ...args], {
          env: { ...process.env, HOME: dir },
        });
        return stdout;
      },
      stop,
    };
  } catch (err) {
    stop();
    throw err;
  }
}
