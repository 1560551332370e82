import crypto from 'node:crypto';
import { z } from 'zod';
import { PoolLinkRefusedError, PoolUserUnknownError } from '../../errors.js';
import { actorFor } from '../directory/commands.js';
import type { Actor, Domain } from '../types.js';

/**
 * The pool link: a front end forwards a signed-in user's call for a room of another pool to a
 * front end of that pool, asserting who the user is. The assertion is an HMAC under a secret that
 * `perch topology publish` stores in every pool's chat store (`server_secrets`), over the pool it
 * comes from, the user's login, the time, the method, the URL and the body's SHA-256. The pool
 * that receives it resolves the login in its own directory and runs its ordinary command, so
 * authorization stays with the pool that owns the room.
 */
export const POOL_LINK_SECRET = 'pool-link';

/** How far an assertion's time may be from the receiver's clock (replays outside it fail). */
export const POOL_LINK_MAX_SKEW_MS = 60_000;

const SCHEME = 'PerchPool';

const claimsSchema = z
  .object({
    pool: z.string().min(1).max(64),
    login: z.string().min(1).max(256),
    ts: z.number().int(),
    method: z.string().min(1).max(10),
    url: z.string().min(1).max(8192),
    body: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();

export type PoolLinkClaims = z.infer<typeof claimsSchema>;

/**
 * SHA-256 (hex) of a forwarded body: of its bytes for a raw upload (a Buffer), else of its JSON;
 * an absent body is the empty string.
 */
export function bodyDigest(body: unknown): string {
  const data = Buffer.isBuffer(body) ? body : body === undefined ? '' : JSON.stringify(body);
  return crypto.createHash('sha256').update(data).digest('hex');
}

function mac(secret: Buffer, payload: string): string {
  return crypto.createHmac('sha256', secret).update(payload).digest('base64url');
}

/** The `Authorization` header value of a forwarded call. */
export function signPoolAssertion(secret: Buffer, claims: PoolLinkClaims): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${SCHEME} ${payload}.${mac(secret, payload)}`;
}

/** Whether an `Authorization` header is a pool-link assertion (rather than a bearer token). */
export function isPoolAssertion(header: string | undefined): header is string {
  return header !== undefined && header.startsWith(`${SCHEME} `);
}

/**
 * Checks a forwarded call's assertion against this pool's secret and the request it came with,
 * and returns the user as this pool's directory knows them. The caller still compares the body
 * with `claims.body` once it has been read.
 */
export async function authenticatePoolAssertion(
  d: Domain,
  ownPool: string,
  header: string,
  request: { method: string; url: string },
): Promise<{ actor: Actor & { chatEnabled: boolean }; claims: PoolLinkClaims }> {
  const token = header.slice(SCHEME.length + 1).trim();
  const dot = token.lastIndexOf('.');
  if (dot <= 0) throw new PoolLinkRefusedError('malformed pool assertion');
  const payload = token.slice(0, dot);
  const secret = await d.store.getSecret(POOL_LINK_SECRET);
  if (!secret) {
    throw new PoolLinkRefusedError(
      'no pool link is published in this pool (perch topology publish with several pools)',
    );
  }
  const given = Buffer.from(token.slice(dot + 1));
  const expected = Buffer.from(mac(secret, payload));
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    throw new PoolLinkRefusedError('the pool assertion is not signed with the pool-link secret');
  }
  let claims: PoolLinkClaims;
  try {
    claims = claimsSchema.parse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
  } catch {
    throw new PoolLinkRefusedError('malformed pool assertion');
  }
  if (claims.method !== request.method || claims.url !== request.url) {
    throw new PoolLinkRefusedError('the pool assertion was made for another request');
  }
  if (Math.abs(d.clock() - claims.ts) > POOL_LINK_MAX_SKEW_MS) {
    throw new PoolLinkRefusedError('the pool assertion has expired (or the clocks differ)');
  }
  const user = await d.store.getPrincipalByName(claims.login);
  if (!user || user.kind !== 'user' || user.disabled) {
    throw new PoolUserUnknownError(ownPool, claims.login);
  }
  // Administration stays with each pool's own sign-in: through the link an administrator is an
  // ordinary user, so a pool holding the secret cannot act with another pool's admin rights.
  return { actor: { ...(await actorFor(d, user)), isAdmin: false }, claims };
}
