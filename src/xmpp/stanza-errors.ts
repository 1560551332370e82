import { PerchError } from '../errors.js';
import { NS } from './ns.js';
import { x, type XmlElement } from './xml.js';

export type StanzaErrorType = 'auth' | 'cancel' | 'modify' | 'wait';

/** An `<error/>` child (RFC 6120 §8.3) with a defined condition and Perch's error code as text. */
export function stanzaError(type: StanzaErrorType, condition: string, text?: string): XmlElement {
  return x(
    'error',
    { type },
    x(condition, { xmlns: NS.stanzas }),
    text ? x('text', { xmlns: NS.stanzas }, text) : undefined,
  );
}

/**
 * Maps a domain error to its stanza error: a room the user may not find is `item-not-found` (a
 * secret room stays unknown), a refusal of the rules is `forbidden`, bad input `bad-request`.
 */
export function errorFor(err: unknown): XmlElement {
  if (!(err instanceof PerchError)) return stanzaError('wait', 'internal-server-error');
  const text = `${err.code}: ${err.message}`;
  switch (err.code) {
    case 'room_not_found':
    case 'message_not_found':
      return stanzaError('cancel', 'item-not-found', text);
    case 'forbidden':
    case 'post_not_allowed':
    case 'room_disabled':
    case 'chat_disabled':
    case 'admin_required':
      return stanzaError('auth', 'forbidden', text);
    case 'rate_limited':
    case 'too_many_attempts':
      return stanzaError('wait', 'resource-constraint', text);
    case 'message_too_large':
      return stanzaError('modify', 'not-acceptable', text);
    case 'not_joined':
      return stanzaError('cancel', 'not-acceptable', text);
    case 'invalid_request':
    case 'invalid_cursor':
      return stanzaError('modify', 'bad-request', text);
    case 'shutting_down':
      return stanzaError('wait', 'service-unavailable', text);
    default:
      return err.status >= 500
        ? stanzaError('wait', 'internal-server-error', text)
        : stanzaError('cancel', 'not-allowed', text);
  }
}
