import fs from 'node:fs';
import nodePath from 'node:path';
import { ApiError, CliError, UsageError } from './errors.js';
import { credentialsPath, readCredentials } from './credentials.js';
import { stdio } from './output.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** The options every server command takes. */
export interface ServerOptions {
  server?: string;
  json?: boolean;
}

/** Checks a server base URL (http or https, no query) and returns it without a trailing slash. */
export function normalizeServer(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`the server URL must be http:// or https://, not ${url.protocol}`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new UsageError('the server URL must not carry a query, fragment or credentials');
  }
  return url.href.replace(/\/+$/, '');
}

/** `--server`, else PERCH_SERVER, else http://127.0.0.1:8080. */
export function resolveServer(opts: ServerOptions, env: NodeJS.ProcessEnv = process.env): string {
  if (opts.server !== undefined) return opts.server;
  if (env.PERCH_SERVER) {
    try {
      return normalizeServer(env.PERCH_SERVER);
    } catch (err) {
      throw new UsageError(`PERCH_SERVER: ${(err as Error).message}`);
    }
  }
  return DEFAULT_SERVER;
}

/** PERCH_TOKEN, else the token `perch login` stored for this server. */
export async function resolveToken(
  server: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (env.PERCH_TOKEN) return env.PERCH_TOKEN;
  const entry = (await readCredentials(credentialsPath(env))).servers[server];
  if (!entry) {
    throw new CliError(
      'not_signed_in',
      `not signed in to ${server}; run \`perch login\` or set PERCH_TOKEN`,
    );
  }
  return entry.token;
}

export type Query = Record<string, string | number | boolean | undefined>;

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The active front ends an idle one named in its `front_end_idle` refusal. */
function activeFrontEnds(err: ApiError): { name: string; url: string }[] {
  const active = err.details?.active;
  if (!Array.isArray(active)) return [];
  return active.flatMap((a: unknown) => {
    const { name, url } = (a ?? {}) as { name?: unknown; url?: unknown };
    if (typeof name !== 'string' || typeof url !== 'string') return [];
    try {
      return [{ name, url: normalizeServer(url) }];
    } catch {
      return [];
    }
  });
}

/** fetch, with a network failure as CliError `unreachable`. */
async function reach(server: string, url: URL, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new CliError('unreachable', `cannot reach ${server}: ${why}`);
  }
}

/** The ApiError of a failed answer whose (JSON) body was `body`. */
function apiError(res: Response, body: unknown): ApiError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } })?.error;
  if (e && typeof e.code === 'string') {
    return new ApiError(
      e.code,
      typeof e.message === 'string' ? e.message : res.statusText,
      res.status,
      e.details && typeof e.details === 'object'
        ? (e.details as Record<string, unknown>)
        : undefined,
    );
  }
  return new ApiError('http_error', `HTTP ${res.status} ${res.statusText}`, res.status);
}

/**
 * A small JSON client for the HTTP API; every failure becomes an ApiError or a CliError. Turned
 * away by an idle front end of a pool, it retries against the active front ends it named (saying
 * so on stderr) and keeps using the one that answered.
 */
export class ApiClient {
  private current: string;

  constructor(
    server: string,
    private readonly token?: string,
  ) {
    this.current = server;
  }

  /** The server this client talks to (an active front end once an idle one turned it away). */
  get server(): string {
    return this.current;
  }

  async request<T = unknown>(
    method: Method,
    path: string,
    opts: { query?: Query; body?: unknown; token?: string } = {},
  ): Promise<T> {
    return this.onActive((server) => this.send<T>(server, method, path, opts));
  }

  /**
   * Runs `call` against the current server; turned away by an idle front end, against each
   * active front end it named until one answers (saying so on stderr), which becomes current.
   */
  private async onActive<T>(call: (server: string) => Promise<T>): Promise<T> {
    try {
      return await call(this.current);
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 'front_end_idle') throw err;
      const idle = this.current;
      const candidates = activeFrontEnds(err).filter((a) => a.url !== idle);
      let last: unknown = err;
      for (const a of candidates) {
        stdio.err(
          `perch: ${idle} is an idle front end of its pool; retrying against the active front end ${a.name} (${a.url})`,
        );
        try {
          const answer = await call(a.url);
          this.current = a.url;
          return answer;
        } catch (again) {
          // Unreachable or idle too: try the next one it named.
          if (
            !(again instanceof CliError && again.code === 'unreachable') &&
            !(again instanceof ApiError && again.code === 'front_end_idle')
          ) {
            this.current = a.url;
            throw again;
          }
          last = again;
        }
      }
      throw last;
    }
  }

  private async send<T>(
    server: string,
    method: Method,
    path: string,
    opts: { query?: Query; body?: unknown; token?: string },
  ): Promise<T> {
    const url = new URL(`${server}/api/v1${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = opts.token ?? this.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await reach(server, url, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (!res.ok) throw apiError(res, body);
    return body as T;
  }

  /**
   * GETs a file and writes it to `file` (temp name, then renamed); API errors as request's, and
   * like a request it moves on from an idle front end to an active one.
   */
  async download(path: string, file: string): Promise<void> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await this.onActive(async (server) => {
      const r = await reach(server, new URL(`${server}/api/v1${path}`), {
        headers,
        signal: AbortSignal.timeout(600_000),
      });
      if (!r.ok) throw apiError(r, await r.json().catch(() => undefined));
      return r;
    });
    await fs.promises.mkdir(nodePath.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.part`;
    await fs.promises.writeFile(tmp, Buffer.from(await res.arrayBuffer()), { mode: 0o600 });
    await fs.promises.rename(tmp, file);
  }

  get<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }
}

/** A client for the server named by the options, signed in with the stored token. */
export async function signedInClient(opts: ServerOptions): Promise<ApiClient> {
  const server = resolveServer(opts);
  return new ApiClient(server, await resolveToken(server));
}

/** Encodes one path segment (names may contain spaces and slashes). */
export function seg(value: string | number): string {
  return encodeURIComponent(String(value));
}
