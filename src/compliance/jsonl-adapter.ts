import {
  attachmentsManifest,
  contentId,
  contentOf,
  roomPart,
  type AdapterSettings,
  type ComplianceAdapter,
} from './adapter.js';
import type { ComplianceRecord } from './types.js';

/** One JSON object per captured record (docs/compliance.md lists the fields). */
export function recordJson(r: ComplianceRecord, s: AdapterSettings): Record<string, unknown> {
  const u = r.actor;
  const room = r.room;
  return {
    recordId: r.id,
    outboxId: r.outboxId,
    type: r.kind,
    at: new Date(r.occurredAt).toISOString(),
    since1970: r.occurredAt,
    content: contentOf(r),
    id: contentId(r),
    sender:
      r.actorId === null
        ? null
        : {
            id: r.actorId,
            userName: u?.name ?? null,
            email: u?.email ?? null,
            uri: `${u?.name ?? 'system'}@${s.uriDomain}`,
            ...(s.addUserDetails && u
              ? {
                  displayName: u.displayName,
                  isAdmin: u.isAdmin,
                  disabled: u.disabled,
                  source: u.source,
                }
              : {}),
          },
    room:
      r.roomId === null
        ? null
        : s.addChatRoomDetails && room
          ? room
          : { id: r.roomId, name: room?.name ?? null, islogged: room?.history ?? null },
    payload: r.payload,
  };
}

/** JSON lines: one file per run (or per room and run), one line per record. */
export function createJsonlAdapter(s: AdapterSettings): ComplianceAdapter {
  const lines = (records: ComplianceRecord[]) =>
    records.map((r) => `${JSON.stringify(recordJson(r, s))}\n`).join('');
  return {
    async translate(batch, out) {
      if (s.createFileAttachmentsManifest) {
        const manifest = attachmentsManifest(batch.records);
        if (manifest) await out.writeFile(`${batch.runId}.ATTACH`, manifest);
      }
      if (s.oneChatRoomPerOutputFile) {
        for (const c of batch.conversations) {
          await out.writeFile(`${batch.runId}-${roomPart(c)}.jsonl`, lines(c.records));
        }
      } else {
        await out.writeFile(`${batch.runId}.jsonl`, lines(batch.records));
      }
    },
  };
}
