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
 * body (a file) is sent raw as `application/octet-stream`, anything else as JSON.
 */
export async function api<T>(
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const raw = body instanceof Blob;
  if (body !== undefined)
    headers['content-type'] = raw ? 'application/octet-stream' : 'application/json';
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, {
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
