import { authenticate, hashToken, signIn } from '../domain/directory/commands.js';
import type { Actor, Domain } from '../domain/types.js';
import { PerchError } from '../errors.js';

/** Who a successful SASL exchange signed in: the actor and the Perch session opened for it. */
export interface SaslIdentity {
  actor: Actor & { chatEnabled: boolean };
  token: string;
  tokenHash: string;
}

/** A SASL `<failure/>` (RFC 6120 §6.5) with its condition. */
export class SaslFailure extends Error {
  constructor(
    readonly condition:
      | 'not-authorized'
      | 'malformed-request'
      | 'account-disabled'
      | 'temporary-auth-failure'
      | 'invalid-mechanism'
      | 'encryption-required'
      | 'aborted',
    message: string,
  ) {
    super(message);
  }
}

/** One step of a mechanism: a challenge to send, or the identity once it succeeded. */
export type SaslStep = { challenge: Buffer } | { success: SaslIdentity; additional?: Buffer };

export interface SaslMechanism {
  /** Takes the client's initial response or the response to the last challenge. */
  step(data: Buffer): Promise<SaslStep>;
}

/**
 * Signs a login in through the domain's own sign-in command (argon2 for local users, a bind for
 * directory users; throttled per login and per client) and opens a session for the stream.
 */
export async function signInWithPassword(
  d: Domain,
  login: string,
  password: string,
  clientKey: string,
): Promise<SaslIdentity> {
  let token: string;
  try {
    ({ token } = await signIn(d, { login, password }, clientKey));
  } catch (err) {
    throw saslFailureFor(err);
  }
  const actor = await authenticate(d, token);
  return { actor, token, tokenHash: hashToken(token) };
}

/** Maps a domain sign-in error to a SASL failure; the message never carries the password. */
export function saslFailureFor(err: unknown): SaslFailure {
  if (err instanceof SaslFailure) return err;
  if (err instanceof PerchError) {
    if (err.code === 'account_disabled') return new SaslFailure('account-disabled', err.message);
    if (err.code === 'too_many_attempts' || err.code === 'directory_unavailable')
      return new SaslFailure('temporary-auth-failure', err.message);
    if (err.code === 'invalid_request') return new SaslFailure('malformed-request', err.message);
  }
  return new SaslFailure('not-authorized', 'login or password is incorrect');
}

/**
 * SASL PLAIN (RFC 4616): `[authzid] NUL authcid NUL password`. The authorization identity, when
 * given, must be the user's own bare JID or login: nobody signs in as somebody else.
 */
export function plainMechanism(d: Domain, xmppDomain: string, clientKey: string): SaslMechanism {
  return {
    async step(data) {
      const parts = data.toString('utf8').split('\0');
      if (parts.length !== 3 || !parts[1] || !parts[2])
        throw new SaslFailure(
          'malformed-request',
          'PLAIN expects authzid NUL authcid NUL password',
        );
      const [authzid, login, password] = parts as [string, string, string];
      if (authzid !== '' && authzid !== login && authzid !== `${login}@${xmppDomain}`)
        throw new SaslFailure('not-authorized', 'the authorization identity must be your own');
      return { success: await signInWithPassword(d, login, password, clientKey) };
    },
  };
}
