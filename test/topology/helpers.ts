// Front ends started the way an operator starts them from a topology (`perch serve --topology F
// --host H`), a self-signed certificate made with openssl, and HTTPS requests that trust it.
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const startDeadlineMs = 90_000;

export { selfSignedCertificate } from '../harness/tls.js';

export interface HttpsAnswer {
  status: number;
  body: unknown;
}

/** One HTTPS request that trusts `ca` (and nothing else), with an optional JSON body and token. */
export function httpsJson(
  url: string,
  ca: string | Buffer,
  opts: { method?: string; body?: unknown; token?: string } = {},
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = https.request(
      url,
      {
        method: opts.method ?? 'GET',
        ca,
        headers: {
          ...(data === undefined ? {} : { 'content-type': 'application/json' }),
          ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
        },
        timeout: 15_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // Not JSON: keep the text.
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer in 15 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

export interface TopologyFrontEnd {
  proc: ChildProcess;
  logs(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/**
 * Runs `perch serve` with `args` (e.g. --topology F --host H) and resolves once `healthUrl`
 * answers 200 over HTTPS trusting `ca`. PERCH_* variables of this process are not passed on.
 */
export async function startFromTopology(
  args: string[],
  healthUrl: string,
  ca: string | Buffer,
  env: Record<string, string> = {},
): Promise<TopologyFrontEnd> {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PERCH_') && k !== 'NODE_TEST_CONTEXT') childEnv[k] = v;
  }
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src', 'main.ts'), 'serve', ...args],
    { cwd: repoRoot, env: { ...childEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  live.add(proc);
  let log = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (log += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (log += c));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      live.delete(proc);
      resolve(code);
    }),
  );
  const end = Date.now() + startDeadlineMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`perch serve exited ${proc.exitCode}:\n${log}`);
    try {
      const r = await httpsJson(healthUrl, ca);
      if (r.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > end) {
      proc.kill('SIGKILL');
      throw new Error(`${healthUrl} did not answer 200 within ${startDeadlineMs} ms:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    proc,
    logs: () => log,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}
