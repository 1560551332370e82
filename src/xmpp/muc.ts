import { roomRights } from '../domain/access.js';
import { joinRooms, partRoom, postMessage } from '../domain/messages/commands.js';
import type { MessageView } from '../domain/messages/present.js';
import { NotJoinedError, RateLimitedError, RoomNotFoundError, toPerchError } from '../errors.js';
import { roomJid } from './jid.js';
import { NS } from './ns.js';
import { replyError } from './routing.js';
import { errorFor } from './stanza-errors.js';
import type { MucRoom, XmppStream } from './stream.js';
import { x, type XmlElement } from './xml.js';

/**
 * Multi-user chat (XEP-0045) over Perch rooms: a room is `<room id>@<muc domain>`, an occupant's
 * nick is the user's login (the service sets it, status 210), rooms are persistent and
 * non-anonymous. Joining and leaving are the hub's and the domain's join and part, so the
 * participant-update limit, compliance capture and the permission rules are Perch's own.
 */

type Roles = Pick<MucRoom, 'role' | 'affiliation'>;

function rolesFrom(rights: { canPost: boolean; isManager: boolean; isMember: boolean }): Roles {
  return {
    // An auditorium's presenters have voice; everybody else listens.
    role: rights.canPost ? 'participant' : 'visitor',
    affiliation: rights.isManager ? 'admin' : rights.isMember ? 'member' : 'none',
  };
}

/** The role and affiliation another occupant holds, from the room's rules. */
async function rolesOf(s: XmppStream, roomId: number, userId: number): Promise<Roles> {
  const info = await s.gw.d.access.room(roomId);
  if (!info) return { role: 'none', affiliation: 'none' };
  const principalIds = await s.gw.d.access.principalIds(userId);
  return rolesFrom(roomRights(info, { principalIds, isAdmin: false }));
}

function occupantPresence(
  s: XmppStream,
  roomId: number,
  user: { name: string },
  roles: Roles,
  opts: { self?: boolean; unavailable?: boolean; codes?: number[] } = {},
): XmlElement {
  const room = roomJid(roomId, s.gw.mucDomain);
  return x(
    'presence',
    {
      from: `${room}/${user.name}`,
      to: s.jid,
      type: opts.unavailable ? 'unavailable' : undefined,
    },
    x(
      'x',
      { xmlns: NS.mucUser },
      x('item', {
        affiliation: roles.affiliation,
        role: opts.unavailable ? 'none' : roles.role,
        jid: `${user.name}@${s.gw.domainName}`,
      }),
      ...(opts.codes ?? []).map((code) => x('status', { code })),
    ),
  );
}

/** A Perch message as a groupchat message from its author's occupant JID. */
export function renderMessage(
  s: XmppStream,
  roomId: number,
  m: MessageView,
  history = false,
): XmlElement {
  return messageElement(s.gw.mucDomain, roomId, m, s.jid, history);
}

function messageElement(
  mucDomain: string,
  roomId: number,
  m: MessageView,
  to: string,
  history: boolean,
): XmlElement {
  const room = roomJid(roomId, mucDomain);
  return x(
    'message',
    {
      from: `${room}/${m.author.name}`,
      to,
      type: 'groupchat',
      id: m.clientId ?? `perch-${roomId}-${m.seq}`,
    },
    x('body', {}, m.text),
    x('stanza-id', { xmlns: NS.sid, by: room, id: String(m.seq) }),
    history && x('delay', { xmlns: NS.delay, from: room, stamp: new Date(m.ts).toISOString() }),
  );
}

/** A live message's stanza serialised once, split where the recipient's JID goes. */
interface SharedStanza {
  mucDomain: string;
  roomId: number;
  head: string;
  tail: string;
}

/**
 * The hub hands the same message object to every connection of a room (OutgoingFrame.source), so
 * its stanza is built and escaped once per message: each recipient only adds its own `to`.
 */
const shared = new WeakMap<MessageView, SharedStanza>();

/**
 * A live message for one recipient: the same bytes as `renderMessage(s, roomId, m).toString()`,
 * from parts serialised once per message.
 */
export function liveMessage(s: XmppStream, roomId: number, m: MessageView): string {
  let parts = shared.get(m);
  if (!parts || parts.mucDomain !== s.gw.mucDomain || parts.roomId !== roomId) {
    const whole = messageElement(s.gw.mucDomain, roomId, m, '', false).toString();
    // `from` comes first and is escaped (no raw quote in it), so this is the empty `to`.
    const at = whole.indexOf(' to=""') + ' to="'.length;
    parts = { mucDomain: s.gw.mucDomain, roomId, head: whole.slice(0, at), tail: whole.slice(at) };
    shared.set(m, parts);
  }
  return parts.head + s.jidXml + parts.tail;
}

/** The presences a roster event of the hub stands for. */
export async function rosterPresences(
  s: XmppStream,
  roomId: number,
  frame: Readonly<Record<string, unknown>>,
): Promise<XmlElement[]> {
  const self = s.actor!.userId;
  if (frame.event === 'join' || frame.event === 'part') {
    const user = frame.user as { id: number; name: string };
    if (user.id === self) return [];
    const roles = await rolesOf(s, roomId, user.id);
    return [occupantPresence(s, roomId, user, roles, { unavailable: frame.event === 'part' })];
  }
  if (frame.event === 'sync') {
    const users = (frame.users as { id: number; name: string }[]).filter((u) => u.id !== self);
    const out: XmlElement[] = [];
    for (const u of users) out.push(occupantPresence(s, roomId, u, await rolesOf(s, roomId, u.id)));
    return out;
  }
  return [];
}

/**
 * Joins a room (XEP-0045 §7.2): subscribe to live messages first, run the domain's join (rules,
 * compliance JOIN, history), then send the occupants, the joiner's own presence, the history
 * and the subject, and only then the live messages that arrived meanwhile, none twice.
 */
export async function joinRoom(
  s: XmppStream,
  roomId: number,
  nick: string,
  el: XmlElement,
): Promise<void> {
  const { d, hub } = s.gw;
  const actor = s.actor!;
  const room = roomJid(roomId, s.gw.mucDomain);
  const joined = s.muc.get(roomId);
  if (joined) {
    // Already in: a presence update; answer with the own presence as the service sees it.
    s.emit(() => [occupantPresence(s, roomId, { name: joined.nick }, joined, { codes: [110] })]);
    return;
  }
  const maxStanzas = el.child('x', NS.muc)?.child('history')?.attrs.maxstanzas;
  const wanted =
    maxStanzas === undefined || !/^\d+$/.test(maxStanzas)
      ? undefined
      : Math.min(Number(maxStanzas), 500);
  const refuse = (err: unknown) =>
    replyError(
      s,
      x('presence', { to: `${room}/${nick}` }, x('x', { xmlns: NS.muc })),
      errorFor(err),
    );
  hub.subscribe(s, roomId);
  const limit = (await d.settings.get()).participantUpdateLimit;
  s.gw.participantLimit = limit;
  let results;
  try {
    results = await joinRooms(d, actor, [{ roomId, limit: wanted === 0 ? 1 : wanted }]);
  } catch (err) {
    hub.leave(s, roomId, limit);
    return refuse(err);
  }
  if (s.closed) {
    hub.removeConnection(s, limit);
    return;
  }
  const r = results[0]!;
  if (!r.ok) {
    hub.leave(s, roomId, limit);
    return refuse(toPerchError(r.error));
  }
  if (!s.rooms.has(roomId)) return refuse(new RoomNotFoundError());
  const { messages, room: view } = r.result;
  hub.delivered(s, roomId, messages.at(-1)?.seq ?? 0);
  const roles = rolesFrom({
    canPost: view.my.canPost,
    isManager: view.my.manager,
    isMember: view.my.member,
  });
  s.muc.set(roomId, { nick: actor.login, ...roles });
  const roster = hub.enterRoster(s, roomId, limit);
  const codes = [110, 100, 170];
  if (nick !== actor.login) codes.push(210);
  const history = wanted === 0 ? [] : messages;
  s.emit(async () => {
    const out: XmlElement[] = [];
    for (const u of roster.users ?? []) {
      if (u.id === actor.userId) continue;
      out.push(occupantPresence(s, roomId, u, await rolesOf(s, roomId, u.id)));
    }
    out.push(occupantPresence(s, roomId, { name: actor.login }, roles, { codes }));
    for (const m of history) out.push(renderMessage(s, roomId, m, true));
    out.push(
      x(
        'message',
        { from: room, to: s.jid, type: 'groupchat' },
        x('subject', {}, view.description),
      ),
    );
    return out;
  });
  hub.goLive(s, roomId);
}

/** Leaves a room (XEP-0045 §7.14): the hub's part and the compliance PART. */
export async function leaveRoom(s: XmppStream, roomId: number): Promise<void> {
  const joined = s.muc.get(roomId);
  if (!joined) return;
  s.muc.delete(roomId);
  const limit = (await s.gw.d.settings.get()).participantUpdateLimit;
  if (s.gw.hub.leave(s, roomId, limit)) await partRoom(s.gw.d, s.actor!, roomId);
  s.emit(() => [
    occupantPresence(s, roomId, { name: joined.nick }, joined, { unavailable: true, codes: [110] }),
  ]);
}

/** A groupchat message to a room becomes a Perch post; the hub reflects it to every occupant. */
export async function groupchat(s: XmppStream, roomId: number, el: XmlElement): Promise<void> {
  const body = el.child('body')?.text();
  if (el.child('subject')) return replyError(s, el, forbiddenSubject());
  if (body === undefined || body === '') return; // chat states and receipts carry no post
  if (!s.muc.has(roomId)) return replyError(s, el, errorFor(new NotJoinedError()));
  if (!s.posts.take())
    return replyError(s, el, errorFor(new RateLimitedError('too many posts; slow down')));
  const id = el.attrs.id;
  try {
    await postMessage(s.gw.d, s.actor!, roomId, {
      text: body,
      clientId: id && id.length <= 64 ? id : undefined,
    });
  } catch (err) {
    replyError(s, el, errorFor(err));
  }
}

function forbiddenSubject(): XmlElement {
  return x(
    'error',
    { type: 'auth' },
    x('forbidden', { xmlns: NS.stanzas }),
    x('text', { xmlns: NS.stanzas }, 'the subject is the room description, changed in Perch'),
  );
}
