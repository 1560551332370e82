/**
 * A throwaway PostgreSQL cluster for tests: initdb into a temp folder, pg_ctl start on a free
 * loopback port, a database per test (copied from a migrated template, which is fast), and
 * pg_ctl stop plus removal of the folder when the process exits, however it exits. One cluster per
 * test process: `testCluster()` starts it on first use.
 *
 * PostgreSQL's server programs refuse to run as root; as root (CI), the cluster belongs to the
 * `postgres` system user and every server program runs through `runuser -u postgres`.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';

const run = promisify(execFile);

const TEMPLATE = 'perch_template';
const DIR_PREFIX = 'perch-pg-';

/**
 * Where clusters live: memory (/dev/shm) when there is one, because creating a database copies a
 * few hundred files and a disk makes that ten times slower; else the temp folder. A durable
 * cluster lives on disk (the temp folder): fsync on memory would measure nothing.
 */
function baseDir(durable = false): string {
  if (durable) return os.tmpdir();
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

export interface PostgresCluster {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  /** Connection string of a database in this cluster. */
  url(database: string): string;
  /**
   * Creates a database migrated to the current schema (a copy of the template), or an empty one;
   * returns its name and connection string.
   */
  createDatabase(opts?: { empty?: boolean }): Promise<{ name: string; url: string }>;
  /** Drops a database, closing whatever connections are still open to it. */
  dropDatabase(name: string): Promise<void>;
  stop(): void;
}

/** The folder holding initdb, pg_ctl and postgres: PATH first, then Debian's versioned folders. */
export function findPostgresBin(): string {
  const candidates = [
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean),
    ...listVersionDirs(),
  ];
  for (const dir of candidates) {
    if (isExecutable(path.join(dir, 'initdb')) && isExecutable(path.join(dir, 'pg_ctl'))) {
      return path.dirname(fs.realpathSync(path.join(dir, 'initdb')));
    }
  }
  throw new Error(
    'PostgreSQL server programs (initdb, pg_ctl) were not found on PATH or under ' +
      '/usr/lib/postgresql/*/bin. Install the Debian package `postgresql` ' +
      '(apt-get install postgresql; .ci/run does this when they are missing), or run only ' +
      'the SQLite suites with PERCH_TEST_DIALECT=sqlite.',
  );
}

function listVersionDirs(): string[] {
  const root = '/usr/lib/postgresql';
  try {
    return fs
      .readdirSync(root)
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => path.join(root, v, 'bin'));
  } catch {
    return [];
  }
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const asRoot = process.getuid?.() === 0;

/** argv to run a server program as the cluster's owner. */
function asOwner(bin: string, program: string, args: string[]): [string, string[]] {
  const file = path.join(bin, program);
  return asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Stops a cluster at once and removes its folder; synchronous so that it works in 'exit'. */
function destroySync(bin: string, dir: string): void {
  const data = path.join(dir, 'data');
  if (fs.existsSync(path.join(data, 'postmaster.pid'))) {
    const [file, args] = asOwner(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    try {
      execFileSync(file, args, { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // Already stopped, or half started: removing the folder is all that is left to do.
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Removes clusters left behind by test processes that were killed (SIGKILL runs no handler). */
function removeOrphans(bin: string): void {
  for (const base of new Set([baseDir(), baseDir(true)]))
    for (const name of fs.readdirSync(base)) {
      if (name.startsWith(DIR_PREFIX)) removeIfOrphan(bin, path.join(base, name));
    }
}

function removeIfOrphan(bin: string, dir: string): void {
  let owner: number;
  try {
    owner = Number(fs.readFileSync(path.join(dir, 'owner.pid'), 'utf8'));
  } catch {
    return;
  }
  if (!Number.isInteger(owner) || isAlive(owner)) return;
  destroySync(bin, dir);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A new cluster folder under `base`, owned by the postgres user when running as root, with a
 * `stop` that stops whatever runs there and removes it (also when this process exits).
 */
function clusterFolder(bin: string, base: string): { dir: string; data: string; stop: () => void } {
  const dir = fs.mkdtempSync(path.join(base, DIR_PREFIX));
  fs.writeFileSync(path.join(dir, 'owner.pid'), String(process.pid));
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', stop);
    destroySync(bin, dir);
  };
  process.on('exit', stop);
  try {
    if (asRoot) execFileSync('chown', ['postgres:', dir]);
  } catch (err) {
    stop();
    throw err;
  }
  return { dir, data: path.join(dir, 'data'), stop };
}

/**
 * Starts the server of `dir` on a free loopback port with the options `settings` gives for it;
 * another process may take the port between the probe and the server's bind, so it tries three
 * ports. Returns the port.
 */
async function startOnFreePort(
  bin: string,
  dir: string,
  host: string,
  settings: string[],
): Promise<number> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    const options = [`-p ${port}`, `-k ${dir}`, `-c listen_addresses=${host}`, ...settings];
    const [pgCtl, ctlArgs] = asOwner(bin, 'pg_ctl', [
      '-D',
      path.join(dir, 'data'),
      '-l',
      path.join(dir, 'postgres.log'),
      '-o',
      options.join(' '),
      '-w',
      '-t',
      '60',
      'start',
    ]);
    try {
      await run(pgCtl, ctlArgs);
      return port;
    } catch (err) {
      if (attempt >= 3) {
        const log = fs.readFileSync(path.join(dir, 'postgres.log'), 'utf8');
        throw new Error(`PostgreSQL did not start: ${String(err)}\n${log}`);
      }
    }
  }
}

export interface StartPostgresOptions {
  /**
   * Where the cluster lives instead of memory: a benchmark whose data would not fit there, or
   * that wants disk writes measured.
   */
  baseDir?: string;
  /**
   * PostgreSQL's own durability defaults (fsync, synchronous_commit and full_page_writes on), on
   * disk (the temp folder unless baseDir says), as a deployment runs it; benchmarks use this.
   * Default false: tests trade durability for speed.
   */
  durable?: boolean;
  /** max_connections (default 200). */
  maxConnections?: number;
  /**
   * A folder that keeps the cluster between runs (a benchmark's seeded data): the cluster found
   * there is started again instead of a new one, and `stop()` shuts it down cleanly without
   * removing it. Default: a new cluster, removed at stop.
   */
  keepDir?: string;
}

/**
 * The kept cluster folder `dir` (created when missing), with a `stop` that shuts down its server
 * and leaves the folder (also when this process exits).
 */
function keptFolder(bin: string, dir: string): { dir: string; data: string; stop: () => void } {
  fs.mkdirSync(dir, { recursive: true });
  if (asRoot) execFileSync('chown', ['postgres:', dir]);
  const data = path.join(dir, 'data');
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', stop);
    if (!fs.existsSync(path.join(data, 'postmaster.pid'))) return;
    const [file, args] = asOwner(bin, 'pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    try {
      execFileSync(file, args, { stdio: 'ignore', timeout: 120_000 });
    } catch {
      // Already stopped.
    }
  };
  process.on('exit', stop);
  return { dir, data, stop };
}

async function initCluster(bin: string, data: string): Promise<void> {
  const [initdb, initArgs] = asOwner(bin, 'initdb', [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '-E',
    'UTF8',
    // C collation and ctype: byte-order sorting and ASCII-only lower(), as in SQLite.
    '--locale=C',
    '--no-sync',
  ]);
  await run(initdb, initArgs);
}

/** Starts a new cluster with a migrated template database. Call `stop()` when done. */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresCluster> {
  const bin = findPostgresBin();
  removeOrphans(bin);
  const { dir, data, stop } =
    opts.keepDir !== undefined
      ? keptFolder(bin, opts.keepDir)
      : clusterFolder(bin, opts.baseDir ?? baseDir(opts.durable));
  const fresh = !fs.existsSync(path.join(data, 'PG_VERSION'));
  try {
    if (fresh) await initCluster(bin, data);
    const host = '127.0.0.1';
    const port = await startOnFreePort(bin, dir, host, [
      ...(opts.durable
        ? []
        : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
      `-c max_connections=${opts.maxConnections ?? 200}`,
    ]);
    const url = (database: string) => `postgres://postgres@${host}:${port}/${database}`;
    const admin = async <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> => {
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        return await fn(client);
      } finally {
        await client.end();
      }
    };
    if (fresh) {
      await admin((c) => c.query(`CREATE DATABASE ${TEMPLATE}`));
      const template = PostgresStore.open({ connectionString: url(TEMPLATE), poolSize: 1 });
      try {
        await template.migrate();
      } finally {
        await template.close();
      }
    }
    let counter = 0;
    // FILE_COPY copies the template's files after a checkpoint, which costs nothing with fsync
    // off: about 70 ms against 500 ms for the WAL_LOG default of PostgreSQL 15.
    return {
      host,
      port,
      dir,
      url,
      async createDatabase(opts = {}) {
        const name = `perch_test_${process.pid}_${++counter}`;
        const template = opts.empty ? 'template0' : TEMPLATE;
        await admin((c) =>
          c.query(`CREATE DATABASE ${name} TEMPLATE ${template} STRATEGY file_copy`),
        );
        return { name, url: url(name) };
      },
      async dropDatabase(name) {
        await admin((c) =>
          c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`),
        );
      },
      stop,
    };
  } catch (err) {
    stop();
    throw err;
  }
}

let shared: Promise<PostgresCluster> | undefined;

/**
 * This process's cluster, started on first use and removed when the process exits (normally,
 * by an uncaught error, or by SIGINT/SIGTERM/SIGHUP).
 */
export function testCluster(): Promise<PostgresCluster> {
  if (!shared) {
    shared = startPostgres();
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const onSignal = () => {
        // 'exit' handlers do not run on a signal's default action: stop the cluster, then die
        // of the same signal.
        void shared?.then((c) => c.stop()).finally(() => process.kill(process.pid, signal));
        process.removeListener(signal, onSignal);
      };
      process.on(signal, onSignal);
    }
  }
  return shared;
}

/** Stops a cluster at once, as a crash would (pg_ctl stop -m immediate); its folder stays. */
export async function crashCluster(cluster: { dir: string }): Promise<void> {
  const [file, args] = asOwner(findPostgresBin(), 'pg_ctl', [
    '-D',
    path.join(cluster.dir, 'data'),
    '-m',
    'immediate',
    '-w',
    'stop',
  ]);
  await run(file, args);
}

export interface Standby {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  stop(): void;
}

/**
 * A streaming-replication standby of `primary` (pg_basebackup -R into a temp folder, started on
 * its own free loopback port); with `synchronous`, the primary waits for it on every commit
 * (synchronous_standby_names = '*'), so a commit the primary acknowledged is on the standby too.
 * The primary must be a durable cluster (synchronous_commit on). Removed when the process exits.
 */
export async function startStandby(
  primary: PostgresCluster,
  opts: { synchronous?: boolean; maxConnections?: number } = {},
): Promise<Standby> {
  const bin = findPostgresBin();
  const { dir, data, stop } = clusterFolder(bin, baseDir(true));
  try {
    await baseBackup(bin, primary, data);
    // A hot standby needs max_connections at least the primary's.
    const port = await startOnFreePort(bin, dir, primary.host, [
      `-c max_connections=${opts.maxConnections ?? 200}`,
    ]);
    const client = new pg.Client({ connectionString: primary.url('postgres') });
    await client.connect();
    try {
      if (opts.synchronous) {
        await client.query(`ALTER SYSTEM SET synchronous_standby_names = '*'`);
        await client.query('SELECT pg_reload_conf()');
      }
      const want = opts.synchronous ? 'sync' : 'async';
      for (let i = 0; ; i++) {
        const r = await client.query<{ sync_state: string }>(
          `SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'`,
        );
        if (r.rows.some((row) => row.sync_state === want)) break;
        if (i >= 300) throw new Error(`the standby did not start streaming (${want}) in 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await client.end();
    }
    return { host: primary.host, port, dir, stop };
  } catch (err) {
    stop();
    throw err;
  }
}

/** Where a cluster listens and keeps its data: a primary, a standby, or one rebuilt. */
export interface ClusterHandle {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
}

/**
 * Kills every process of a cluster with SIGKILL (the postmaster and all its children), as the
 * loss of its machine would, and waits until they are gone. Its folder stays.
 */
export async function killCluster(cluster: ClusterHandle): Promise<void> {
  const pidFile = path.join(cluster.dir, 'data', 'postmaster.pid');
  const postmaster = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  const children = fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        // Field 4 of /proc/PID/stat is the parent; the name field before it may hold spaces.
        const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
      } catch {
        return false;
      }
    })
    .map(Number);
  for (const pid of [postmaster, ...children]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  for (let i = 0; [postmaster, ...children].some(isAlive); i++) {
    if (i > 300) throw new Error(`cluster processes of ${cluster.dir} did not die`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Stops a cluster cleanly (pg_ctl stop -m fast: a primary first sends its standbys all its WAL). */
export async function stopCluster(cluster: ClusterHandle): Promise<void> {
  const [file, args] = asOwner(findPostgresBin(), 'pg_ctl', [
    '-D',
    path.join(cluster.dir, 'data'),
    '-m',
    'fast',
    '-w',
    'stop',
  ]);
  await run(file, args);
}

/**
 * Rebuilds `target` as a streaming standby of `source`, the way an operator rebuilds a lost
 * site's database server: its data folder is emptied, filled with `pg_basebackup -R -X stream`
 * from the source, and the server started again on its own host and port. Asynchronous unless the
 * source then names it in synchronous_standby_names.
 */
export async function rebuildStandby(
  target: ClusterHandle,
  source: ClusterHandle,
  opts: { maxConnections?: number } = {},
): Promise<void> {
  const bin = findPostgresBin();
  const data = path.join(target.dir, 'data');
  fs.rmSync(data, { recursive: true, force: true });
  await baseBackup(bin, source, data);
  // A hot standby needs max_connections at least the primary's (the harness's default 200).
  const options = [
    `-p ${target.port}`,
    `-k ${target.dir}`,
    `-c listen_addresses=${target.host}`,
    `-c max_connections=${opts.maxConnections ?? 200}`,
  ];
  const [pgCtl, ctlArgs] = asOwner(bin, 'pg_ctl', [
    '-D',
    data,
    '-l',
    path.join(target.dir, 'postgres.log'),
    '-o',
    options.join(' '),
    '-w',
    '-t',
    '60',
    'start',
  ]);
  await run(pgCtl, ctlArgs);
}

/** A streaming copy of `source` into `data`, set up to follow it (pg_basebackup -R -X stream). */
async function baseBackup(
  bin: string,
  source: { host: string; port: number },
  data: string,
): Promise<void> {
  const [cmd, args] = asOwner(bin, 'pg_basebackup', [
    '-h',
    source.host,
    '-p',
    String(source.port),
    '-U',
    'postgres',
    '-D',
    data,
    '-R',
    '-X',
    'stream',
    '--no-sync',
  ]);
  await run(cmd, args);
}
