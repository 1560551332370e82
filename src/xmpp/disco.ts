import { getRoom, searchRooms } from '../domain/rooms/commands.js';
import { RoomNotFoundError } from '../errors.js';
import { roomIdOf, roomJid, type Jid } from './jid.js';
import { NS } from './ns.js';
import type { XmppStream } from './stream.js';
import { x, type XmlElement } from './xml.js';

/** The rooms one disco#items answer lists at most (the room directory's own page limit). */
export const DISCO_ROOM_LIMIT = 500;

function feature(v: string): XmlElement {
  return x('feature', { var: v });
}

/**
 * Service discovery (XEP-0030) of the server, the chat service and each room. A room the user
 * may not find (a secret room of which they are no member) answers `item-not-found`, exactly as a
 * room that does not exist.
 */
export async function discoInfo(s: XmppStream, to: Jid, query: XmlElement): Promise<XmlElement> {
  const q = x('query', { xmlns: NS.discoInfo, node: query.attrs.node });
  if (to.domain === s.gw.domainName && to.local === '') {
    return q.c(
      x('identity', { category: 'server', type: 'im', name: 'Perch' }),
      ...[NS.discoInfo, NS.discoItems, NS.ping, NS.roster].map(feature),
    );
  }
  if (to.domain !== s.gw.mucDomain) throw new RoomNotFoundError();
  if (to.local === '') {
    return q.c(
      x('identity', { category: 'conference', type: 'text', name: 'Perch rooms' }),
      ...[NS.discoInfo, NS.discoItems, NS.muc, NS.mam].map(feature),
    );
  }
  const roomId = roomIdOf(to);
  if (roomId === undefined) throw new RoomNotFoundError();
  const room = await getRoom(s.gw.d, s.actor!, roomId);
  return q.c(
    x('identity', { category: 'conference', type: 'text', name: room.name }),
    ...[
      NS.discoInfo,
      NS.muc,
      NS.mam,
      'muc_persistent',
      'muc_nonanonymous',
      'muc_unsecured',
      room.privacy === 'open' ? 'muc_open' : 'muc_membersonly',
      room.privacy === 'secret' ? 'muc_hidden' : 'muc_public',
      room.type === 'auditorium' ? 'muc_moderated' : 'muc_unmoderated',
    ].map(feature),
    x(
      'x',
      { xmlns: NS.data, type: 'result' },
      x('field', { var: 'FORM_TYPE', type: 'hidden' }, x('value', {}, `${NS.muc}#roominfo`)),
      x('field', { var: 'muc#roominfo_description' }, x('value', {}, room.description)),
      x(
        'field',
        { var: 'muc#roominfo_occupants' },
        x('value', {}, String(s.gw.hub.roster(roomId)?.count ?? 0)),
      ),
    ),
  );
}

export async function discoItems(s: XmppStream, to: Jid, query: XmlElement): Promise<XmlElement> {
  const q = x('query', { xmlns: NS.discoItems, node: query.attrs.node });
  if (to.domain === s.gw.domainName && to.local === '')
    return q.c(x('item', { jid: s.gw.mucDomain, name: 'Perch rooms' }));
  if (to.domain !== s.gw.mucDomain) throw new RoomNotFoundError();
  if (to.local === '') {
    // The room directory: only rooms this user may find.
    const rooms = await searchRooms(s.gw.d, s.actor!, { limit: DISCO_ROOM_LIMIT });
    return q.c(
      ...rooms.map((r) => x('item', { jid: roomJid(r.id, s.gw.mucDomain), name: r.name })),
    );
  }
  const roomId = roomIdOf(to);
  if (roomId === undefined) throw new RoomNotFoundError();
  await getRoom(s.gw.d, s.actor!, roomId);
  // Occupants are not listed (XEP-0045 §6.5 allows it): join to see them.
  return q;
}
