import crypto from 'node:crypto';
import { promisify } from 'node:util';
import {
  AccountDisabledError,
  InvalidCredentialsError,
  TooManyAttemptsError,
} from '../../errors.js';
import type { Principal, ScramCredentials } from '../../store/store.js';
import type { Domain } from '../types.js';
import { openSession, type SignInResult } from './commands.js';

export const SCRAM_SHA1 = 'SCRAM-SHA-1';
/** RFC 5802 §5.1 asks for at least 4096; clients compute the same count on every sign-in. */
export const SCRAM_ITERATIONS = 4096;

function hmac(key: Buffer, text: string | Buffer): Buffer {
  return crypto.createHmac('sha1', key).update(text).digest();
}

const pbkdf2 = promisify(crypto.pbkdf2);

/**
 * Derives SCRAM-SHA-1 credentials from a password (RFC 5802 §3; PBKDF2 in libuv's thread pool,
 * off the event loop): the password is not kept.
 */
export async function scramCredentials(
  password: string,
  salt: Buffer = crypto.randomBytes(16),
  iterations = SCRAM_ITERATIONS,
): Promise<ScramCredentials> {
  const salted = await pbkdf2(password.normalize('NFKC'), salt, iterations, 20, 'sha1');
  const clientKey = hmac(salted, 'Client Key');
  return {
    mechanism: SCRAM_SHA1,
    salt,
    iterations,
    storedKey: crypto.createHash('sha1').update(clientKey).digest(),
    serverKey: hmac(salted, 'Server Key'),
  };
}

/**
 * After a successful password sign-in: a local user who has no SCRAM credentials yet (made
 * before migration 012) gets them now, so that SCRAM works from the next sign-in on.
 */
export async function ensureScramCredentials(
  d: Domain,
  user: Principal,
  password: string,
): Promise<void> {
  if (user.source === 'ldap') return;
  if (await d.store.getScramCredentials(user.id, SCRAM_SHA1)) return;
  await d.store.saveScramCredentials(user.id, await scramCredentials(password), d.clock());
}

/** What the server needs for one SCRAM exchange: the login's credentials, or a decoy's. */
export interface ScramLookup {
  user: Principal | undefined;
  credentials: ScramCredentials;
}

/**
 * Starts a SCRAM sign-in: the user's salted credentials. An unknown login, a group, a directory
 * user (whose password only the directory can check: PLAIN over TLS) or a user without
 * credentials yet gets a decoy derived from the login, the same on every attempt, so the answer
 * does not tell which logins exist; the proof then fails as a wrong password does.
 */
export async function scramLookup(
  d: Domain,
  login: string,
  clientKey: string,
): Promise<ScramLookup> {
  const keys = throttleKeys(login, clientKey);
  const wait = Math.max(...keys.map((k) => d.throttle.waitMs(k)));
  if (wait > 0) throw new TooManyAttemptsError(Math.ceil(wait / 1000));
  const user = await d.store.getPrincipalByName(login);
  const real =
    user?.kind === 'user' && user.source !== 'ldap'
      ? await d.store.getScramCredentials(user.id, SCRAM_SHA1)
      : undefined;
  if (real && user) return { user, credentials: real };
  const salt = hmac(d.secret, `scram-decoy:${login.toLowerCase()}`).subarray(0, 16);
  return {
    user: undefined,
    credentials: {
      mechanism: SCRAM_SHA1,
      salt,
      iterations: SCRAM_ITERATIONS,
      storedKey: crypto.randomBytes(20),
      serverKey: crypto.randomBytes(20),
    },
  };
}

function throttleKeys(login: string, clientKey: string): string[] {
  return [`login:${login.toLowerCase()}`, `client:${clientKey}`];
}

/**
 * Ends a SCRAM sign-in whose proof the transport checked against the stored key: a failure
 * counts against the login and the client like a wrong password; a success opens a session.
 */
export async function finishScramSignIn(
  d: Domain,
  login: string,
  user: Principal | undefined,
  proofOk: boolean,
  clientKey: string,
): Promise<SignInResult> {
  const keys = throttleKeys(login, clientKey);
  if (!user || !proofOk) {
    for (const k of keys) d.throttle.fail(k);
    throw new InvalidCredentialsError();
  }
  if (user.disabled) throw new AccountDisabledError();
  for (const k of keys) d.throttle.succeed(k);
  return openSession(d, user);
}
