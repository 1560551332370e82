import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ComplianceAdapterConfig } from '../domain/compliance/config.js';
import type { ComplianceRecord, ComplianceRoom } from './types.js';

/** The records of one room (or of no room: administration) within a batch, in order. */
export interface Conversation {
  roomId: number | null;
  room: ComplianceRoom | null;
  records: ComplianceRecord[];
}

/**
 * What an adapter receives every RunInterval (Lync's ConversationCollection). A batch is the
 * records with ids `firstId..lastId`; after a crash the same batch (same `runId`, same records,
 * same settings) is handed over again, so an adapter that writes the same file names for the
 * same batch never duplicates anything.
 */
export interface ComplianceBatch {
  /** Stable name of this run: `<adapter>-<firstId, 12 digits>`. */
  runId: string;
  firstId: number;
  lastId: number;
  records: ComplianceRecord[];
  /** The records grouped by room, rooms in order of first appearance. */
  conversations: Conversation[];
}

/** Where an adapter writes: each file appears whole (temp name, fsync, rename) or not at all. */
export interface ComplianceOutput {
  readonly directory: string;
  /** Writes `name` (a plain file name) atomically and durably, replacing any file of that name. */
  writeFile(name: string, data: string | Buffer): Promise<void>;
}

/** Settings an adapter is created with (Lync's SetConfig). */
export interface AdapterSettings extends ComplianceAdapterConfig {
  uriDomain: string;
  outputDirectory: string;
}

/**
 * A compliance adapter (Lync's IComplianceAdapter). A custom adapter is an ES module in the
 * compliance adapter folder exporting `createAdapter(settings)`; `translate` is called with each
 * batch and must finish (or throw) before the cursor moves. Throwing leaves the cursor where it
 * was: the same batch comes again at the next run.
 */
export interface ComplianceAdapter {
  translate(batch: ComplianceBatch, out: ComplianceOutput): Promise<void>;
}

export type AdapterFactory = (
  settings: AdapterSettings,
) => ComplianceAdapter | Promise<ComplianceAdapter>;

/** Groups records by room in order of first appearance. */
export function toConversations(records: ComplianceRecord[]): Conversation[] {
  const byRoom = new Map<string, Conversation>();
  for (const r of records) {
    const key = r.roomId === null ? 'admin' : String(r.roomId);
    let c = byRoom.get(key);
    if (!c) byRoom.set(key, (c = { roomId: r.roomId, room: r.room, records: [] }));
    c.room ??= r.room;
    c.records.push(r);
  }
  return [...byRoom.values()];
}

/** The file-name part for a conversation in one-room-per-file mode. */
export function roomPart(c: Conversation): string {
  return c.roomId === null ? 'admin' : `room-${c.roomId}`;
}

/** A folder whose files are written to a temp name, fsynced, renamed, and the folder fsynced. */
export class DirectoryOutput implements ComplianceOutput {
  constructor(
    readonly directory: string,
    private readonly hooks: { afterWrite?: (name: string) => void } = {},
  ) {}

  async prepare(): Promise<void> {
    await fs.mkdir(this.directory, { recursive: true, mode: 0o700 });
    // Temp files of a run that died; their run is redone from the start.
    for (const name of await fs.readdir(this.directory)) {
      if (name.startsWith('.') && name.endsWith('.tmp')) {
        await fs.rm(path.join(this.directory, name), { force: true });
      }
    }
  }

  async writeFile(name: string, data: string | Buffer): Promise<void> {
    if (name !== path.basename(name) || name.startsWith('.')) {
      throw new Error(`adapter output name must be a plain file name: ${name}`);
    }
    const target = path.join(this.directory, name);
    // A name of its own: a stalled worker and the one that took over may write the same file.
    const tmp = path.join(this.directory, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    this.hooks.afterWrite?.(name);
    await fs.rename(tmp, target);
    const dir = await fs.open(this.directory, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/** The content of a record as Lync's `content` attribute has it (text, file name, ...). */
export function contentOf(r: ComplianceRecord): string {
  const p = r.payload;
  const s = (v: unknown) => (typeof v === 'string' ? v : '');
  switch (r.kind) {
    case 'CHAT':
      return s(p.text);
    case 'FILEUPLOAD':
    case 'FILEDOWNLOAD':
      return s(p.name);
    case 'BACKCHAT':
      return Array.isArray(p.returned) ? p.returned.join(',') : '';
    case 'MESSAGE_REMOVED':
    case 'MESSAGE_REPLACED':
      return s(p.originalText);
    case 'SEARCH':
      return s(p.query);
    default:
      return '';
  }
}

/** Lync's content id: the message id for CHAT (0 when the category keeps no history), else 0. */
export function contentId(r: ComplianceRecord): number {
  return r.kind === 'CHAT' && typeof r.payload.messageId === 'number' ? r.payload.messageId : 0;
}

/** Lines of a `.ATTACH` manifest: one JSON object per file transfer in the batch. */
export function attachmentsManifest(records: ComplianceRecord[]): string {
  return records
    .filter((r) => r.kind === 'FILEUPLOAD' || r.kind === 'FILEDOWNLOAD')
    .map(
      (r) =>
        `${JSON.stringify({
          recordId: r.id,
          type: r.kind,
          at: new Date(r.occurredAt).toISOString(),
          user: r.actor?.name ?? null,
          roomId: r.roomId,
          room: r.room?.name ?? null,
          fileId: r.payload.fileId ?? null,
          name: r.payload.name ?? null,
          size: r.payload.size ?? null,
          sha256: r.payload.sha256 ?? null,
          contentType: r.payload.contentType ?? null,
        })}\n`,
    )
    .join('');
}
