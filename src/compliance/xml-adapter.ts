import type { ComplianceRecord, ComplianceRoom } from './types.js';
import {
  attachmentsManifest,
  contentId,
  contentOf,
  roomPart,
  type AdapterSettings,
  type ComplianceAdapter,
  type ComplianceBatch,
  type Conversation,
} from './adapter.js';

/** .NET ticks (100 ns since 0001-01-01) at the Unix epoch. */
const TICKS_AT_EPOCH = 621_355_968_000_000_000n;

function esc(v: string): string {
  return (
    v
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/\r/g, '&#13;')
      .replace(/\n/g, '&#10;')
      .replace(/\t/g, '&#9;')
      // Characters XML 1.0 cannot carry at all.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd')
  );
}

function attrs(a: Record<string, string | number | boolean | null | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => ` ${k}="${esc(String(v))}"`)
    .join('');
}

/** Lync's time element: ms since 1970, ISO-8601 with 7 decimals, and .NET ticks. */
export function timeAttrs(ms: number): string {
  const iso = new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
  const ticks = BigInt(ms) * 10_000n + TICKS_AT_EPOCH;
  return attrs({ since1970: ms, string: iso, long: ticks.toString() });
}

function sender(r: ComplianceRecord, s: AdapterSettings): string {
  const u = r.actor;
  const base = {
    UserName: u?.name ?? null,
    id: r.actorId ?? 0,
    email: u?.email ?? null,
    internal: true,
    uri: `${u?.name ?? 'system'}@${s.uriDomain}`,
  };
  const details =
    s.addUserDetails && u
      ? { displayName: u.displayName, isAdmin: u.isAdmin, disabled: u.disabled, source: u.source }
      : {};
  return `<Sender${attrs({ ...base, ...details })}/>`;
}

function message(tag: string, r: ComplianceRecord, s: AdapterSettings, indent: string): string {
  const head = `${indent}<${tag}${attrs({ type: r.kind, content: contentOf(r), id: contentId(r), recordId: r.id })}>`;
  const details = `${indent}  <Details>${esc(JSON.stringify(r.payload))}</Details>\n`;
  return (
    `${head}\n${indent}  ${sender(r, s)}\n${indent}  <DateTimeUTC${timeAttrs(r.occurredAt)}/>\n` +
    `${details}${indent}</${tag}>\n`
  );
}

function channel(c: Conversation, s: AdapterSettings): string {
  const room: ComplianceRoom | null = c.room;
  const uri =
    c.roomId === null
      ? `ma-chan://${s.uriDomain}/administration`
      : `ma-chan://${s.uriDomain}/room/${c.roomId}`;
  const a = attrs({
    uri,
    name: c.roomId === null ? '(administration)' : (room?.name ?? `room ${c.roomId}`),
    islogged: room?.history ?? true,
  });
  if (!s.addChatRoomDetails || !room) return `    <Channel${a}/>\n`;
  const d = attrs({
    id: room.id,
    description: room.description,
    categoryId: room.categoryId,
    category: room.categoryName,
    privacy: room.privacy,
    type: room.type,
    disabled: room.disabled,
  });
  return `    <Channel${a}>\n      <RoomDetails${d}/>\n    </Channel>\n`;
}

/** One Lync `Conversations` document for the given conversations. */
export function conversationsXml(conversations: Conversation[], s: AdapterSettings): string {
  let out = '<?xml version="1.0" encoding="utf-8"?>\n<Conversations>\n';
  for (const c of conversations) {
    const first = c.records[0]!;
    const last = c.records[c.records.length - 1]!;
    out += '  <Conversation>\n';
    out += channel(c, s);
    out += message('FirstMessage', first, s, '    ');
    out += '    <Messages>\n';
    for (const r of c.records) out += message('Message', r, s, '      ');
    out += '    </Messages>\n';
    out += `    <StartTimeUTC${timeAttrs(first.occurredAt)}/>\n`;
    out += `    <EndTimeUTC${timeAttrs(last.occurredAt)}/>\n`;
    out += '  </Conversation>\n';
  }
  return `${out}</Conversations>\n`;
}

/**
 * Lync's XmlAdapter format (docs/compliance/perch-compliance.xsd): one file per run, or one per
 * room and run, named after the run so that a redone run replaces the same files.
 */
export function createXmlAdapter(s: AdapterSettings): ComplianceAdapter {
  return {
    async translate(batch: ComplianceBatch, out) {
      if (s.createFileAttachmentsManifest) {
        const manifest = attachmentsManifest(batch.records);
        if (manifest) await out.writeFile(`${batch.runId}.ATTACH`, manifest);
      }
      if (s.oneChatRoomPerOutputFile) {
        for (const c of batch.conversations) {
          await out.writeFile(`${batch.runId}-${roomPart(c)}.xml`, conversationsXml([c], s));
        }
      } else {
        await out.writeFile(`${batch.runId}.xml`, conversationsXml(batch.conversations, s));
      }
    },
  };
}
