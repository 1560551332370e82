import crypto from 'node:crypto';
import { authenticate, hashToken } from '../domain/directory/commands.js';
import { finishScramSignIn, scramLookup, type ScramLookup } from '../domain/directory/scram.js';
import type { Domain } from '../domain/types.js';
import { SaslFailure, saslFailureFor, type SaslMechanism } from './sasl.js';

/** `a=1,b=2` into its attributes; undefined when malformed. */
function attributes(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const m = /^([A-Za-z])=(.*)$/s.exec(part);
    if (!m) return undefined;
    out.set(m[1]!, m[2]!);
  }
  return out;
}

/** RFC 5802 §5.1: `=2C` and `=3D` stand for `,` and `=` in a username. */
function saslName(text: string): string | undefined {
  if (/=(?!2C|3D)/.test(text)) return undefined;
  return text.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

const printable = /^[\x21-\x2B\x2D-\x7E]+$/;

/**
 * SCRAM-SHA-1 (RFC 5802) as the server: checks the client's proof against the salted
 * credentials Perch stores (migration 012), so the password never crosses the wire, and proves
 * the server knows them too (`v=` in the success). No channel binding (`p=` is refused).
 */
export function scramSha1Mechanism(d: Domain, clientKey: string): SaslMechanism {
  let stage: 'first' | 'final' | 'done' = 'first';
  let login = '';
  let lookup: ScramLookup | undefined;
  let clientFirstBare = '';
  let serverFirst = '';
  let gs2Header = '';
  let nonce = '';
  return {
    async step(data) {
      const text = data.toString('utf8');
      if (stage === 'first') {
        stage = 'final';
        const m = /^([ny]|p=[^,]*),(a=[^,]*)?,(.*)$/s.exec(text);
        if (!m) throw new SaslFailure('malformed-request', 'expected a SCRAM client-first message');
        if (m[1]!.startsWith('p='))
          throw new SaslFailure('malformed-request', 'channel binding is not supported');
        gs2Header = `${m[1]},${m[2] ?? ''},`;
        clientFirstBare = m[3]!;
        const attrs = attributes(clientFirstBare);
        const user = attrs && attrs.get('n') !== undefined ? saslName(attrs.get('n')!) : undefined;
        const cnonce = attrs?.get('r');
        if (!user || !cnonce || !printable.test(cnonce))
          throw new SaslFailure('malformed-request', 'the client-first message needs n= and r=');
        login = user;
        try {
          lookup = await scramLookup(d, login, clientKey);
        } catch (err) {
          throw saslFailureFor(err);
        }
        nonce = cnonce + crypto.randomBytes(18).toString('base64');
        const c = lookup.credentials;
        serverFirst = `r=${nonce},s=${c.salt.toString('base64')},i=${c.iterations}`;
        return { challenge: Buffer.from(serverFirst) };
      }
      if (stage !== 'final' || !lookup)
        throw new SaslFailure('malformed-request', 'unexpected SCRAM message');
      stage = 'done';
      const proofAt = text.lastIndexOf(',p=');
      const attrs = proofAt < 0 ? undefined : attributes(text);
      if (!attrs || proofAt < 0)
        throw new SaslFailure('malformed-request', 'the client-final message needs p=');
      const withoutProof = text.slice(0, proofAt);
      const proof = Buffer.from(attrs.get('p') ?? '', 'base64');
      const bindingOk = attrs.get('c') === Buffer.from(gs2Header).toString('base64');
      const nonceOk = attrs.get('r') === nonce;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const { storedKey, serverKey } = lookup.credentials;
      const signature = crypto.createHmac('sha1', storedKey).update(authMessage).digest();
      let proofOk = false;
      if (proof.length === signature.length) {
        const key = Buffer.alloc(proof.length);
        for (let i = 0; i < proof.length; i++) key[i] = proof[i]! ^ signature[i]!;
        const stored = crypto.createHash('sha1').update(key).digest();
        proofOk = crypto.timingSafeEqual(stored, storedKey);
      }
      let token: string;
      try {
        ({ token } = await finishScramSignIn(
          d,
          login,
          lookup.user,
          proofOk && bindingOk && nonceOk,
          clientKey,
        ));
      } catch (err) {
        throw saslFailureFor(err);
      }
      const actor = await authenticate(d, token);
      const verifier = crypto.createHmac('sha1', serverKey).update(authMessage).digest();
      return {
        success: { actor, token, tokenHash: hashToken(token) },
        additional: Buffer.from(`v=${verifier.toString('base64')}`),
      };
    },
  };
}
