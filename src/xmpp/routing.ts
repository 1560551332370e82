import type { MessageView } from '../domain/messages/present.js';
import { discoInfo, discoItems } from './disco.js';
import { parseJid, roomIdOf } from './jid.js';
import { mamQuery } from './mam.js';
import { groupchat, joinRoom, leaveRoom, liveMessage, rosterPresences } from './muc.js';
import { NS } from './ns.js';
import { errorFor, stanzaError } from './stanza-errors.js';
import type { XmppStream } from './stream.js';
import { x, type XmlElement } from './xml.js';

/**
 * Routes a stanza of a bound stream: iq to the server, the chat service or a room; presence to a
 * room (join, leave); groupchat messages to a room (a Perch post). Anything else gets the error
 * RFC 6120 prescribes (`service-unavailable`), so a client never waits for an answer.
 */
export async function routeStanza(s: XmppStream, el: XmlElement): Promise<void> {
  const to = parseJid(el.attrs.to ?? s.gw.domainName);
  switch (el.name) {
    case 'iq':
      return routeIq(s, el, to);
    case 'presence': {
      if (to.domain !== s.gw.mucDomain) return; // presence to the server or a contact: no roster
      const roomId = roomIdOf(to);
      if (roomId === undefined) return replyError(s, el, stanzaError('cancel', 'item-not-found'));
      if (el.attrs.type === 'unavailable') return leaveRoom(s, roomId);
      if (el.attrs.type === undefined) return joinRoom(s, roomId, to.resource, el);
      return;
    }
    case 'message': {
      if (el.attrs.type === 'error') return;
      const roomId = to.domain === s.gw.mucDomain ? roomIdOf(to) : undefined;
      if (roomId === undefined || to.resource !== '') {
        return replyError(
          s,
          el,
          stanzaError(
            'cancel',
            roomId === undefined ? 'service-unavailable' : 'not-allowed',
            roomId === undefined
              ? 'Perch relays room messages only'
              : 'private messages are not supported',
          ),
        );
      }
      if (el.attrs.type !== 'groupchat')
        return replyError(s, el, stanzaError('modify', 'bad-request', 'send type="groupchat"'));
      return groupchat(s, roomId, el);
    }
    default:
      return s.streamError('unsupported-stanza-type', `<${el.name}/> is not a stanza`);
  }
}

async function routeIq(
  s: XmppStream,
  el: XmlElement,
  to: ReturnType<typeof parseJid>,
): Promise<void> {
  const type = el.attrs.type;
  if (type === 'result' || type === 'error') return;
  if ((type !== 'get' && type !== 'set') || !el.attrs.id || el.elements().length !== 1)
    return replyError(s, el, stanzaError('modify', 'bad-request'));
  const payload = el.elements()[0]!;
  const ns = payload.attrs.xmlns;
  const result = (...children: XmlElement[]): void => {
    s.write(
      x('iq', { type: 'result', id: el.attrs.id, from: el.attrs.to, to: s.jid }, ...children),
    );
  };
  try {
    if (ns === NS.discoInfo && type === 'get') return result(await discoInfo(s, to, payload));
    if (ns === NS.discoItems && type === 'get') return result(await discoItems(s, to, payload));
    if (ns === NS.mam && type === 'set' && to.domain === s.gw.mucDomain)
      return result(await mamQuery(s, to, payload, el.attrs.to ?? ''));
    if (to.domain === s.gw.domainName && to.local === '') {
      if (ns === NS.ping) return result();
      if (ns === NS.session) return result();
    }
    if (ns === NS.roster && type === 'get' && (to.local === '' || to.local === s.actor!.login))
      // The roster is empty: Perch has rooms, not contacts (docs/xmpp.md).
      return result(x('query', { xmlns: NS.roster }));
    if (ns === NS.ping) return result();
    return replyError(s, el, stanzaError('cancel', 'service-unavailable'));
  } catch (err) {
    return replyError(s, el, errorFor(err));
  }
}

/** Answers a stanza with an error of the same kind, from where it was sent (RFC 6120 §8.3). */
export function replyError(s: XmppStream, el: XmlElement, error: XmlElement): void {
  s.write(
    x(
      el.name,
      { type: 'error', id: el.attrs.id, from: el.attrs.to, to: s.jid },
      ...el.elements().filter((c) => el.name !== 'iq' || c === el.elements()[0]),
      error,
    ),
  );
}

/** Turns a frame of the hub (the Perch protocol's live events) into stanzas for this stream. */
export function renderHubFrame(s: XmppStream, frame: Readonly<Record<string, unknown>>): void {
  switch (frame.type) {
    case 'message': {
      const roomId = frame.roomId as number;
      const room = s.muc.get(roomId);
      if (!room) return;
      s.emit(() => [liveMessage(s, roomId, frame.message as MessageView)]);
      return;
    }
    case 'roster': {
      const roomId = frame.roomId as number;
      if (!s.muc.has(roomId)) return;
      s.emit(() => rosterPresences(s, roomId, frame));
      return;
    }
    case 'removed': {
      const roomId = frame.roomId as number;
      const room = s.muc.get(roomId);
      if (!room) return;
      s.muc.delete(roomId);
      s.emit(() => [
        x(
          'presence',
          { from: `${roomId}@${s.gw.mucDomain}/${room.nick}`, to: s.jid, type: 'unavailable' },
          x(
            'x',
            { xmlns: NS.mucUser },
            x('item', { affiliation: 'none', role: 'none' }, x('reason', {}, String(frame.reason))),
            x('status', { code: 110 }),
            x('status', { code: 307 }),
          ),
        ),
      ]);
      return;
    }
    default:
      // Roster suppression, room changes, invitations, errors before a close: nothing to show.
      return;
  }
}
