import WebSocket, { type RawData } from 'ws';
import { z } from 'zod';
import { PerchError, PoolNotFoundError, PoolUnreachableError } from '../errors.js';
import { bodyDigest, POOL_LINK_SECRET, signPoolAssertion } from '../domain/pools/link.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';

/** The parts of a published topology the link reads (the document is JSON without passwords). */
const publishedSchema = z.object({
  pools: z.array(
    z.object({
      name: z.string(),
      edition: z.string(),
      tls: z.unknown().optional(),
      activeServers: z.array(z.string()).optional(),
      frontEnds: z.array(
        z.object({
          name: z.string(),
          host: z.string(),
          port: z.number(),
          publicUrl: z.string().optional(),
        }),
      ),
    }),
  ),
});

/** What a forwarded call answered: its status and its JSON body (undefined for none). */
export interface ForwardedAnswer {
  status: number;
  body: unknown;
}

/** How long one front end of another pool gets to answer before the next is tried. */
const FORWARD_TIMEOUT_MS = 15_000;

/**
 * This front end's side of the pool link (see src/domain/pools/link.ts): it learns the other
 * pools and their front ends from the topology published in its own chat store, and forwards a
 * user's call to one of them, signed with the pool-link secret. It never decides anything about
 * the call: the pool that receives it does.
 */
export class PoolLink {
  readonly pool: string;
  private readonly store: Store;
  private readonly log: Logger;

  constructor(opts: { pool: string; store: Store; log: Logger }) {
    this.pool = opts.pool;
    this.store = opts.store;
    this.log = opts.log;
  }

  /** Every pool of the published topology with its front ends' URLs, active ones first. */
  async pools(): Promise<Map<string, string[]>> {
    const published = await this.store.getPublishedTopology();
    const found = new Map<string, string[]>();
    if (!published) return found;
    const parsed = publishedSchema.safeParse(JSON.parse(published.document));
    if (!parsed.success) return found;
    for (const pool of parsed.data.pools) {
      if (pool.edition !== 'enterprise') continue;
      const scheme = pool.tls ? 'https' : 'http';
      const active = pool.activeServers ?? [];
      const ordered = [...pool.frontEnds].sort(
        (a, b) => Number(!active.includes(a.name)) - Number(!active.includes(b.name)),
      );
      found.set(
        pool.name,
        ordered.map((f) => {
          const host = f.host.includes(':') ? `[${f.host}]` : f.host;
          return (f.publicUrl ?? `${scheme}://${host}:${f.port}`).replace(/\/+$/, '');
        }),
      );
    }
    return found;
  }

  /** The front ends of `target`, and a signer of assertions for `login` under the link secret. */
  private async linkTo(
    target: string,
    login: string,
  ): Promise<{ urls: string[]; sign(method: string, url: string, body: unknown): string }> {
    const urls = (await this.pools()).get(target);
    if (!urls) throw new PoolNotFoundError(target);
    const secret = await this.store.getSecret(POOL_LINK_SECRET);
    if (!secret) throw new PoolUnreachableError(target, []);
    const sign = (method: string, url: string, body: unknown) =>
      signPoolAssertion(secret, {
        pool: this.pool,
        login,
        ts: Date.now(),
        method,
        url,
        body: bodyDigest(body),
      });
    return { urls, sign };
  }

  /** Names of the other pools this one links to. */
  async otherPools(): Promise<string[]> {
    return [...(await this.pools()).keys()].filter((name) => name !== this.pool);
  }

  /**
   * Sends `method /api/v1/{path}` to a front end of `target` as `login`, trying its front ends in
   * turn (an unreachable or idle one is skipped); returns what the first to take it answered.
   */
  async forward(
    target: string,
    login: string,
    call: { method: string; path: string; body?: unknown },
  ): Promise<ForwardedAnswer> {
    const { urls, sign } = await this.linkTo(target, login);
    const url = `/api/v1/${call.path}`;
    const tried: string[] = [];
    for (const base of urls) {
      tried.push(base);
      const authorization = sign(call.method, url, call.body);
      let res: Response;
      try {
        res = await fetch(`${base}${url}`, {
          method: call.method,
          headers: {
            authorization,
            accept: 'application/json',
            ...(call.body === undefined
              ? {}
              : {
                  'content-type': Buffer.isBuffer(call.body)
                    ? 'application/octet-stream'
                    : 'application/json',
                }),
          },
          body: forwardedBody(call.body),
          signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
        });
      } catch (err) {
        this.log.warn({ pool: target, url: base, err }, 'pool link: front end unreachable');
        continue;
      }
      const text = await res.text();
      let body: unknown;
      try {
        body = text === '' ? undefined : (JSON.parse(text) as unknown);
      } catch {
        body = undefined;
      }
      // An idle front end takes no calls; its pool's active ones will.
      const code = errorCode(body);
      if (res.status === 503 && (code === 'front_end_idle' || code === 'shutting_down')) continue;
      return { status: res.status, body };
    }
    throw new PoolUnreachableError(target, tried);
  }

  /**
   * Fetches a file of `target` by its download-link token (the token is the credential, so no
   * assertion is needed); returns the first answer from a front end that took the call.
   */
  async download(target: string, token: string): Promise<Response> {
    const urls = (await this.pools()).get(target);
    if (!urls) throw new PoolNotFoundError(target);
    const tried: string[] = [];
    for (const base of urls) {
      tried.push(base);
      let res: Response;
      try {
        res = await fetch(`${base}/api/v1/files/download/${encodeURIComponent(token)}`, {
          signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
        });
      } catch (err) {
        this.log.warn({ pool: target, url: base, err }, 'pool link: front end unreachable');
        continue;
      }
      if (res.status === 503) {
        await res.body?.cancel();
        continue;
      }
      return res;
    }
    throw new PoolUnreachableError(target, tried);
  }

  /**
   * Opens a WebSocket to an active front end of `target` as `login` (the upgrade carries the
   * assertion) and sends the client's `auth` frame there; returns the socket and that frame's
   * reply. A front end that cannot be reached, is idle or is shutting down is skipped; a refusal
   * of the user (`pool_user_unknown`, `pool_link_refused`) is thrown as it came.
   */
  async openSocket(
    target: string,
    login: string,
    authFrame: string,
  ): Promise<{ upstream: WebSocket; firstReply: RawData }> {
    const { urls, sign } = await this.linkTo(target, login);
    const tried: string[] = [];
    for (const base of urls) {
      tried.push(base);
      const authorization = sign('GET', '/ws', undefined);
      const attempt = await openOne(`${base.replace(/^http/, 'ws')}/ws`, authorization, authFrame);
      if ('upstream' in attempt) return attempt;
      if (attempt.refusal) throw attempt.refusal;
      this.log.warn(
        { pool: target, url: base, reason: attempt.reason },
        'pool relay: front end skipped',
      );
    }
    throw new PoolUnreachableError(target, tried);
  }
}

type Attempt =
  { upstream: WebSocket; firstReply: RawData } | { reason: string; refusal?: PerchError };

/** One front end: open, send `auth`, and wait for its reply (or learn why not). */
function openOne(url: string, authorization: string, authFrame: string): Promise<Attempt> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, {
      headers: { authorization },
      handshakeTimeout: FORWARD_TIMEOUT_MS,
      perMessageDeflate: false,
    });
    const timer = setTimeout(() => done({ reason: 'no reply to auth' }), FORWARD_TIMEOUT_MS);
    let settled = false;
    function done(a: Attempt): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners('message');
      if (!('upstream' in a)) {
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
      }
      resolve(a);
    }
    ws.on('error', (err) => done({ reason: err.message }));
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c.slice(0, 4096)));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(text) as unknown;
        } catch {
          body = undefined;
        }
        const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } })
          ?.error;
        const code = typeof error?.code === 'string' ? error.code : undefined;
        if (code === undefined || res.statusCode === undefined || res.statusCode >= 500) {
          return done({ reason: `HTTP ${res.statusCode ?? '?'} ${code ?? ''}`.trim() });
        }
        done({
          reason: code,
          refusal: new PerchError(
            code,
            res.statusCode,
            typeof error?.message === 'string' ? error.message : code,
            error?.details as Record<string, unknown> | undefined,
          ),
        });
      });
    });
    ws.on('open', () => ws.send(authFrame));
    ws.once('message', (data: RawData) => {
      // An idle front end refuses the session naming the active ones: try the next.
      const reply = safeJson(data.toString()) as { type?: unknown; code?: unknown } | undefined;
      const code = reply?.type === 'error' ? reply.code : undefined;
      if (code === 'front_end_idle' || code === 'shutting_down') return done({ reason: code });
      done({ upstream: ws, firstReply: data });
    });
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A forwarded body on the wire: raw bytes as they are, anything else as JSON. */
function forwardedBody(body: unknown): string | Buffer | undefined {
  if (body === undefined) return undefined;
  return Buffer.isBuffer(body) ? body : JSON.stringify(body);
}

function errorCode(body: unknown): string | undefined {
  const error = (body as { error?: { code?: unknown } } | undefined)?.error;
  return typeof error?.code === 'string' ? error.code : undefined;
}
