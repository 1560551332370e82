import type { ErrorBody } from './types.js';

/** An error from the server (HTTP or WebSocket) with its stable code. */
export class ApiError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  constructor(body: ErrorBody) {
    super(body.message);
    this.name = 'ApiError';
    this.code = body.code;
    this.details = body.details;
  }
}

/**
 * Calls the HTTP API under /api/v1 with the bearer token; throws ApiError on failure. A `Blob`
 * body (a file) is sent raw as `application/octet-stream`, anything else as JSON. `server` is
 * another front end of the pool (`http://host:port`) or '' for the page's own.
 */
export async function api<T>(
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
  server = '',
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const raw = body instanceof Blob;
  if (body !== undefined)
    headers['content-type'] = raw ? 'application/octet-stream' : 'application/json';
  let res: Response;
  try {
    res = await fetch(`${server}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError({ code: 'network_error', message: 'the server cannot be reached' });
  }
  if (res.status === 204) return undefined as T;
  const data = (await res.json().catch(() => null)) as unknown;
  if (!res.ok) {
    const err = (data as { error?: ErrorBody } | null)?.error;
    throw new ApiError(err ?? { code: 'http_error', message: `HTTP ${res.status}` });
  }
  return data as T;
}

/**
 * The active front ends an idle one named when it refused us (`front_end_idle`), as base URLs;
 * empty for any other error.
 */
export function activeServers(err: unknown): string[] {
  if (!(err instanceof ApiError) || err.code !== 'front_end_idle') return [];
  const active = err.details?.active;
  if (!Array.isArray(active)) return [];
  return active.flatMap((a: unknown) => {
    const url = (a as { url?: unknown } | null)?.url;
    if (typeof url !== 'string') return [];
    try {
      const u = new URL(url);
      return u.protocol === 'http:' || u.protocol === 'https:' ? [u.origin] : [];
    } catch {
      return [];
    }
  });
}
