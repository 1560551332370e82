// Boots a real Perch server process for end-to-end tests: temp data dir, free port,
// generated admin password, and a wait on GET /healthz. Tests talk to it only through
// its public interfaces (HTTP, WebSocket).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { testCluster } from './postgres.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const defaultEntry = path.join(repoRoot, 'src', 'main.ts');

// Generous: a server start under load average 15 on two cores once took over 20 s (tsx, argon2).
const startDeadlineMs = 60_000;
const pollIntervalMs = 50;
const stopDeadlineMs = 15_000;
const closeGraceMs = 1_000;
const maxLogChars = 200 * 1024;

export interface TestServer {
  /** Base HTTP URL, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  url: string;
  /** WebSocket endpoint, e.g. `ws://127.0.0.1:41234/ws`. */
  wsUrl: string;
  host: string;
  port: number;
  dataDir: string;
  /** The chat store's dialect: SQLite in the data dir, or a PostgreSQL database. */
  dialect: 'sqlite' | 'postgres';
  /** PERCH_STORE_URL given to the server (PostgreSQL only). */
  storeUrl: string | undefined;
  /** Password of the `admin` user created on first start. */
  adminPassword: string;
  /** The current server process; replaced by restart(). */
  proc: ChildProcess;
  /** Sends the signal (SIGTERM by default) and resolves with the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Kills the process with SIGKILL, as a crash would, and waits for it to be gone. */
  kill9(): Promise<void>;
  /** Starts the server again on the same port and data dir (stopping it first if running). */
  restart(): Promise<void>;
  /** The last ~200 KB of the process's stdout and stderr, across restarts. */
  logs(): string;
}

export interface StartServerOptions {
  /** Use this data dir instead of a fresh temp one (e.g. to start on existing data). */
  dataDir?: string;
  /** Extra environment for the server; wins over the harness's PERCH_* defaults. */
  env?: Record<string, string>;
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Script to run instead of src/main.ts (for the harness's own tests, or a compiled build). */
  entry?: string;
  /**
   * Runs `entry` with plain `node`, without the tsx loader: a compiled build (dist/main.js, as
   * `npm start` runs it). Default false: the entry is loaded through tsx.
   */
  plainNode?: boolean;
  /**
   * The chat store: `sqlite` (a file in the data dir) or `postgres` (a fresh database in this
   * test process's cluster, dropped by cleanup()). Default: PERCH_TEST_DIALECT, else sqlite.
   */
  dialect?: 'sqlite' | 'postgres';
  /**
   * An existing PostgreSQL store to share (front ends of one pool); cleanup() leaves it. Implies
   * dialect postgres.
   */
  storeUrl?: string;
  /** The `admin` password; servers sharing a store must share it. Default: generated. */
  adminPassword?: string;
  /** How long to wait for GET /healthz to answer 200 (default 20 s). */
  startDeadlineMs?: number;
  /** Extra options for node itself, e.g. `--cpu-prof` (benchmarks' profiles). */
  nodeOptions?: string[];
}

/** The dialect end-to-end servers use when a test does not say: PERCH_TEST_DIALECT, else sqlite. */
export function serverDialect(): 'sqlite' | 'postgres' {
  const value = process.env.PERCH_TEST_DIALECT;
  if (value === undefined || value === '' || value === 'sqlite') return 'sqlite';
  if (value === 'postgres') return value;
  throw new Error(`PERCH_TEST_DIALECT must be sqlite or postgres, not "${value}"`);
}

/** Creates a fresh temp directory under the OS temp dir. */
export async function tempDir(prefix = 'perch-test-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/**
 * Removes a temp directory; given a TestServer, stops it first (if running) and
 * removes its data dir. Safe to call twice.
 */
export async function cleanup(target: string | TestServer): Promise<void> {
  if (typeof target === 'string') {
    await rm(target, { recursive: true, force: true });
    return;
  }
  if (isRunning(target.proc)) await target.stop();
  await rm(target.dataDir, { recursive: true, force: true });
  await (target as ServerProcess).dropOwnDatabase();
}

/** Finds a port that is free on host right now by binding port 0 and releasing it. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address() as AddressInfo;
      server.close((error) => (error ? reject(error) : resolve(port)));
    });
  });
}

/** Starts a Perch server and resolves once GET /healthz answers 200. */
export async function startServer(opts: StartServerOptions = {}): Promise<TestServer> {
  const host = opts.host ?? '127.0.0.1';
  const dataDir = opts.dataDir ?? (await tempDir());
  const port = await freePort(host);
  const dialect = opts.storeUrl !== undefined ? 'postgres' : (opts.dialect ?? serverDialect());
  let storeUrl = opts.storeUrl;
  let ownDatabase: string | undefined;
  if (dialect === 'postgres' && storeUrl === undefined) {
    // A copy of the migrated template: the server bootstraps its administrator itself.
    const db = await (await testCluster()).createDatabase();
    storeUrl = db.url;
    ownDatabase = db.name;
  }
  const server = new ServerProcess({
    host,
    port,
    dataDir,
    dialect,
    storeUrl,
    ownDatabase,
    adminPassword: opts.adminPassword ?? generatePassword(),
    extraEnv: {
      ...(storeUrl === undefined ? {} : { PERCH_STORE_URL: storeUrl }),
      ...opts.env,
    },
    entry: opts.entry ?? defaultEntry,
    plainNode: opts.plainNode ?? false,
    startDeadlineMs: opts.startDeadlineMs ?? startDeadlineMs,
    nodeOptions: opts.nodeOptions ?? [],
  });
  try {
    await server.launch();
  } catch (error) {
    // The error carries the output; a temp dir the caller never saw is just litter.
    if (opts.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    await server.dropOwnDatabase();
    throw error;
  }
  return server;
}

interface ServerSettings {
  host: string;
  port: number;
  dataDir: string;
  dialect: 'sqlite' | 'postgres';
  storeUrl: string | undefined;
  /** A database made for this server alone, dropped by cleanup(). */
  ownDatabase: string | undefined;
  adminPassword: string;
  extraEnv: Record<string, string>;
  entry: string;
  plainNode: boolean;
  startDeadlineMs: number;
  nodeOptions: string[];
}

// Servers still running when the test file's process exits (or is told to stop) are
// killed, so a test that fails before stopping its server leaves nothing behind.
const live = new Set<ChildProcess>();
let exitHooksInstalled = false;

function killLive(): void {
  for (const proc of live) proc.kill('SIGKILL');
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killLive);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killLive();
      // Unless someone else handles the signal, die of it as we would have.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

class ServerProcess implements TestServer {
  readonly url: string;
  readonly wsUrl: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly dialect: 'sqlite' | 'postgres';
  readonly storeUrl: string | undefined;
  readonly adminPassword: string;
  proc!: ChildProcess;

  readonly #settings: ServerSettings;
  readonly #log = new LogTail(maxLogChars);
  #exited!: Promise<void>;
  #starts = 0;

  constructor(settings: ServerSettings) {
    this.#settings = settings;
    this.host = settings.host;
    this.port = settings.port;
    this.dataDir = settings.dataDir;
    this.dialect = settings.dialect;
    this.storeUrl = settings.storeUrl;
    this.adminPassword = settings.adminPassword;
    const hostInUrl = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
    this.url = `http://${hostInUrl}:${settings.port}`;
    this.wsUrl = `ws://${hostInUrl}:${settings.port}/ws`;
  }

  async launch(): Promise<void> {
    installExitHooks();
    this.#starts += 1;
    if (this.#starts > 1) this.#log.append(`\n--- harness: restart #${this.#starts - 1} ---\n`);

    const loader = this.#settings.plainNode ? [] : ['--import', 'tsx'];
    const args = [...this.#settings.nodeOptions, ...loader, this.#settings.entry, 'serve'];
    const proc = spawn(process.execPath, args, {
      cwd: repoRoot,
      env: this.#env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    live.add(proc);
    proc.stdout?.setEncoding('utf8');
    proc.stderr?.setEncoding('utf8');
    proc.stdout?.on('data', (chunk: string) => this.#log.append(chunk));
    proc.stderr?.on('data', (chunk: string) => this.#log.append(chunk));

    let spawnError: Error | undefined;
    this.#exited = new Promise((resolve) => {
      proc.once('error', (error) => {
        spawnError = error;
        // 'exit' does not follow when the process never started.
        if (proc.pid === undefined) {
          live.delete(proc);
          resolve();
        }
      });
      proc.once('exit', () => {
        live.delete(proc);
        // Wait for 'close' too, so that logs() has the last output, but not forever:
        // a grandchild could hold the pipes open.
        const timer = setTimeout(resolve, closeGraceMs);
        proc.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    });

    const deadline = Date.now() + this.#settings.startDeadlineMs;
    for (;;) {
      if (!isRunning(proc) || spawnError) {
        await this.#exited;
        throw new Error(
          `perch server exited before it was healthy (${describeExit(proc, spawnError)}).\n` +
            `--- output ---\n${this.logs()}`,
        );
      }
      if (await this.#healthy(deadline)) {
        // An idle server must not keep the test process alive (the exit hook kills it);
        // waiting for its exit refs it again.
        unrefProcess(proc);
        return;
      }
      if (Date.now() >= deadline) break;
      await Promise.race([delay(pollIntervalMs), this.#exited]);
    }
    proc.kill('SIGKILL');
    await this.#waitExit();
    throw new Error(
      `perch server did not answer 200 on ${this.url}/healthz within ${this.#settings.startDeadlineMs} ms; ` +
        `killed it.\n--- output ---\n${this.logs()}`,
    );
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const proc = this.proc;
    if (isRunning(proc)) {
      proc.kill(signal);
      const exitedInTime = await this.#waitExit(stopDeadlineMs);
      if (!exitedInTime) {
        proc.kill('SIGKILL');
        await this.#waitExit();
        throw new Error(
          `perch server did not exit within ${stopDeadlineMs} ms of ${signal}; killed it.\n` +
            `--- output ---\n${this.logs()}`,
        );
      }
    } else {
      await this.#waitExit();
    }
    return proc.exitCode;
  }

  async kill9(): Promise<void> {
    if (isRunning(this.proc)) this.proc.kill('SIGKILL');
    await this.#waitExit();
  }

  async restart(): Promise<void> {
    if (isRunning(this.proc)) await this.stop();
    await this.launch();
  }

  logs(): string {
    return this.#log.text();
  }

  /** Drops the PostgreSQL database made for this server, if any; safe to call twice. */
  async dropOwnDatabase(): Promise<void> {
    const name = this.#settings.ownDatabase;
    if (name === undefined) return;
    this.#settings.ownDatabase = undefined;
    await (await testCluster()).dropDatabase(name);
  }

  #env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      // Settings from the developer's shell must not leak into a test server, and the
      // server is not itself a test-runner child.
      if (key.startsWith('PERCH_') || key === 'NODE_TEST_CONTEXT') continue;
      env[key] = value;
    }
    return {
      ...env,
      PERCH_HOST: this.#settings.host,
      PERCH_PORT: String(this.#settings.port),
      PERCH_DATA_DIR: this.#settings.dataDir,
      PERCH_ADMIN_PASSWORD: this.#settings.adminPassword,
      PERCH_LOG_LEVEL: 'warn',
      ...this.#settings.extraEnv,
    };
  }

  async #healthy(deadline: number): Promise<boolean> {
    const timeout = Math.max(1, Math.min(2_000, deadline - Date.now()));
    try {
      const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(timeout) });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      // Not listening yet, or the request timed out: poll again.
      return false;
    }
  }

  /** Waits for the current process to be gone; false if timeoutMs passed first. */
  async #waitExit(timeoutMs?: number): Promise<boolean> {
    const proc = this.proc;
    refProcess(proc);
    try {
      if (timeoutMs === undefined) {
        await this.#exited;
        return true;
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      try {
        return await Promise.race([this.#exited.then(() => true as const), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    } finally {
      unrefProcess(proc);
    }
  }
}

function isRunning(proc: ChildProcess): boolean {
  return proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null;
}

function describeExit(proc: ChildProcess, spawnError: Error | undefined): string {
  if (spawnError) return `spawn failed: ${spawnError.message}`;
  if (proc.signalCode !== null) return `killed by ${proc.signalCode}`;
  return `exit code ${proc.exitCode}`;
}

function refProcess(proc: ChildProcess): void {
  proc.ref();
  for (const stream of [proc.stdout, proc.stderr]) (stream as Refable | null)?.ref?.();
}

function unrefProcess(proc: ChildProcess): void {
  proc.unref();
  for (const stream of [proc.stdout, proc.stderr]) (stream as Refable | null)?.unref?.();
}

interface Refable {
  ref?(): void;
  unref?(): void;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function generatePassword(): string {
  // Mixed classes so it satisfies any reasonable password policy.
  return `Pw1!${randomBytes(18).toString('base64url')}`;
}

/** Keeps the last maxChars characters appended. */
class LogTail {
  readonly #maxChars: number;
  #chunks: string[] = [];
  #length = 0;

  constructor(maxChars: number) {
    this.#maxChars = maxChars;
  }

  append(chunk: string): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    while (this.#length > this.#maxChars && this.#chunks.length > 1) {
      this.#length -= this.#chunks.shift()?.length ?? 0;
    }
  }

  text(): string {
    const all = this.#chunks.join('');
    return all.length > this.#maxChars ? all.slice(all.length - this.#maxChars) : all;
  }
}
