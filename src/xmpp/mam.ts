import { roomHistory } from '../domain/messages/commands.js';
import { RoomNotFoundError, ValidationError } from '../errors.js';
import { roomIdOf, type Jid } from './jid.js';
import { renderMessage } from './muc.js';
import { NS } from './ns.js';
import type { XmppStream } from './stream.js';
import { x, type XmlElement } from './xml.js';

/** Page size of an archive query without `<max/>`, and the largest one accepted. */
export const MAM_DEFAULT_PAGE = 50;
export const MAM_MAX_PAGE = 500;

function seqOf(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text))
    throw new ValidationError(`${what} must be a message id (a room sequence number)`);
  return Number(text);
}

/**
 * A message archive query (XEP-0313) over a room's history, paged with result set management
 * (XEP-0059): the ids are the room's sequence numbers. `<after/>` pages forward, `<before/>`
 * back, an empty `<before/>` gives the last page; no `<set/>` starts at the oldest message. The
 * domain's history command decides who may read (a room the user may not find is
 * `item-not-found`) and records the read for compliance. Filters (start, end, with) are not
 * supported and answer `feature-not-implemented`.
 */
export async function mamQuery(
  s: XmppStream,
  to: Jid,
  query: XmlElement,
  from: string,
): Promise<XmlElement> {
  const roomId = roomIdOf(to);
  if (roomId === undefined || to.resource !== '') throw new RoomNotFoundError();
  const form = query.child('x', NS.data);
  for (const field of form?.elements() ?? []) {
    const v = field.attrs.var;
    if (v && v !== 'FORM_TYPE' && field.child('value')?.text())
      throw new ValidationError(`the archive filter ${v} is not supported; page with RSM instead`);
  }
  const set = query.child('set', NS.rsm);
  const maxText = set?.child('max')?.text();
  const max = Math.min(seqOf(maxText, 'max') ?? MAM_DEFAULT_PAGE, MAM_MAX_PAGE);
  const after = seqOf(set?.child('after')?.text(), 'after');
  const beforeEl = set?.child('before');
  const before = beforeEl && beforeEl.text() !== '' ? seqOf(beforeEl.text(), 'before') : undefined;
  const page = await roomHistory(s.gw.d, s.actor!, roomId, {
    limit: Math.max(max, 1),
    ...(after !== undefined
      ? { after }
      : before !== undefined
        ? { before }
        : beforeEl
          ? {}
          : { after: 0 }),
  });
  const messages = max === 0 ? [] : page.messages;
  const queryid = query.attrs.queryid;
  for (const m of messages) {
    const inner = renderMessage(s, roomId, m);
    delete inner.attrs.to;
    inner.attrs.xmlns = NS.client;
    s.write(
      x(
        'message',
        { to: s.jid, from },
        x(
          'result',
          { xmlns: NS.mam, queryid, id: String(m.seq) },
          x(
            'forwarded',
            { xmlns: NS.forward },
            x('delay', { xmlns: NS.delay, stamp: new Date(m.ts).toISOString() }),
            inner,
          ),
        ),
      ),
    );
  }
  const rsm = x('set', { xmlns: NS.rsm });
  if (messages.length > 0)
    rsm.c(x('first', {}, String(messages[0]!.seq)), x('last', {}, String(messages.at(-1)!.seq)));
  return x('fin', { xmlns: NS.mam, complete: page.more && max > 0 ? 'false' : 'true' }, rsm);
}
