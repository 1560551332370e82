// Runs the `perch` CLI as a child process, exactly as an administrator would, with its own
// config directory (for the stored token) and the test server's URL.
//
// The child runs the CLI compiled to JavaScript (tsc -p tsconfig.build.json, as `npm start` runs
// it), built once per version of the sources into test-output/cli-build/<hash>/: loading the
// sources through tsx costs every invocation about two seconds of compiling. Set
// PERCH_CLI_FROM_SOURCE=1 to run src/main.ts through tsx instead.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanup, startServer, tempDir, type TestServer } from '../harness/server.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const deadlineMs = 60_000;
const buildRoot = path.join(repoRoot, 'test-output', 'cli-build');

/** Every file the build reads, with its size and modification time, in a stable order. */
function buildInputs(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs
      .readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (!e.name.endsWith('.test.ts')) {
        const st = fs.statSync(full);
        out.push(`${path.relative(repoRoot, full)}:${st.size}:${st.mtimeMs}`);
      }
    }
  };
  walk(path.join(repoRoot, 'src'));
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package.json']) {
    const st = fs.statSync(path.join(repoRoot, f));
    out.push(`${f}:${st.size}:${st.mtimeMs}`);
  }
  return out;
}

let built: string | undefined;

/**
 * The compiled entry point for the current sources, building it first when no build of exactly
 * these sources exists (also the entry of servers started from the compiled build). Builds go to a temporary folder renamed into place, so that test files
 * running at once never see half a build.
 */
export function compiledEntry(): string {
  if (built) return built;
  const key = createHash('sha256').update(buildInputs().join('\n')).digest('hex').slice(0, 16);
  const dir = path.join(buildRoot, key);
  const main = path.join(dir, 'main.js');
  // src/version.ts reads ../package.json, as dist/version.js does at the repository root.
  fs.mkdirSync(buildRoot, { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(buildRoot, 'package.json'));
  if (!fs.existsSync(main)) {
    const tmp = fs.mkdtempSync(path.join(buildRoot, `.${key}-`));
    const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    // Type errors do not stop the emit, as tsx would not stop on them either.
    const r = spawnSync(
      process.execPath,
      [tsc, '-p', 'tsconfig.build.json', '--outDir', tmp, '--sourceMap', 'false'],
      { cwd: repoRoot, encoding: 'utf8' },
    );
    if (!fs.existsSync(path.join(tmp, 'main.js'))) {
      throw new Error(`building the CLI failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    }
    try {
      fs.renameSync(tmp, dir);
    } catch {
      // Another test file built the same sources first; use that one.
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    // Builds of older sources are litter; one made in the last hour may still be in use.
    for (const old of fs.readdirSync(buildRoot)) {
      const p = path.join(buildRoot, old);
      if (
        old !== key &&
        old !== 'package.json' &&
        fs.statSync(p).mtimeMs < Date.now() - 3_600_000
      ) {
        fs.rmSync(p, { recursive: true, force: true });
      }
    }
  }
  built = main;
  return main;
}

/** How to start the CLI: node on the compiled entry, or node with tsx on the sources. */
function cliCommand(): string[] {
  if (process.env.PERCH_CLI_FROM_SOURCE === '1') {
    return ['--import', 'tsx', path.join(repoRoot, 'src', 'main.ts')];
  }
  return [compiledEntry()];
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Written to stdin, which is then closed (stdin is never a terminal here). */
  input?: string;
  /** Extra environment; wins over the defaults. */
  env?: Record<string, string | undefined>;
}

/** A CLI bound to one server and one config directory. */
export interface Cli {
  (args: string[], opts?: CliOptions): Promise<CliResult>;
  /** Runs and parses stdout as JSON, failing with the output when the exit code is not 0. */
  json<T = unknown>(args: string[], opts?: CliOptions): Promise<T>;
}

export function cliFor(server: TestServer | undefined, configHome: string): Cli {
  const run = (args: string[], opts: CliOptions = {}) =>
    runPerch(args, {
      ...opts,
      env: {
        XDG_CONFIG_HOME: configHome,
        ...(server ? { PERCH_SERVER: server.url } : {}),
        ...opts.env,
      },
    });
  const cli = run as Cli;
  cli.json = async <T>(args: string[], opts?: CliOptions): Promise<T> => {
    const r = await run([...args, '--json'], opts);
    if (r.code !== 0) throw new Error(`perch ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  return cli;
}

export function runPerch(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('PERCH_') || k === 'NODE_TEST_CONTEXT') continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...cliCommand(), ...args], {
      cwd: repoRoot,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`perch ${args.join(' ')} did not finish in ${deadlineMs} ms\n${stderr}`));
    }, deadlineMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Signs in through the CLI and returns a token for PERCH_TOKEN (for a second identity). */
export async function tokenFor(cli: Cli, login: string, password: string): Promise<string> {
  const r = await cli(['login', '--user', login, '--password-stdin', '--print-token'], {
    input: password,
  });
  if (r.code !== 0) throw new Error(`login as ${login} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs independent invocations at once and checks each one's exit code (and stderr). */
export async function expectExits(
  cli: Cli,
  cases: string[][],
  code: number,
  stderr?: RegExp,
  opts?: CliOptions,
): Promise<void> {
  const results = await Promise.all(cases.map((args) => cli(args, opts)));
  results.forEach((r, i) => {
    const what = `perch ${cases[i]!.join(' ')}`;
    assert.equal(r.code, code, `${what} exited ${r.code}: ${r.stderr}`);
    if (stderr) assert.match(r.stderr, stderr, what);
  });
}

export type HttpCaller = <T = unknown>(method: string, path: string, body?: unknown) => Promise<T>;

export interface CliServer {
  server: TestServer;
  /** The CLI's config folder, where `login` stored the administrator's token. */
  configHome: string;
  /** The CLI, signed in as the administrator. */
  cli: Cli;
  /** The administrator over HTTP, for set-up. */
  admin: HttpCaller;
  /** Stops the server and removes its folders and the config folder. */
  stop(): Promise<void>;
}

/**
 * A real server with the CLI signed in as its administrator, and the given users made (each with
 * the password `<login>-password`): the common set-up of the CLI suites.
 */
export async function startCliServer(logins: string[] = []): Promise<CliServer> {
  const server = await startServer();
  const configHome = await tempDir('perch-cli-config-');
  const cli = cliFor(server, configHome);
  const login = await cli(['login', '--password-stdin'], { input: server.adminPassword });
  assert.equal(login.code, 0, login.stderr);
  const admin = await httpAs(server, 'admin', server.adminPassword);
  for (const name of logins)
    await admin('POST', '/users', { login: name, password: `${name}-password` });
  return {
    server,
    configHome,
    cli,
    admin,
    async stop() {
      await cleanup(server);
      await cleanup(configHome);
    },
  };
}

/** Direct HTTP calls for test set-up (users, posts), so that only the CLI under test is spawned. */
export async function httpAs(
  server: TestServer,
  login: string,
  password: string,
): Promise<HttpCaller> {
  const call = async <T>(method: string, p: string, body?: unknown, token?: string): Promise<T> => {
    const res = await fetch(`${server.url}/api/v1${p}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  const { token } = await call<{ token: string }>('POST', '/sessions', { login, password });
  return (method, p, body) => call(method, p, body, token);
}
