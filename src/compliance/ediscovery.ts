import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ComplianceConfig } from '../domain/compliance/config.js';
import { DirectoryOutput, toConversations, type AdapterSettings } from './adapter.js';
import { recordJson } from './jsonl-adapter.js';
import type { ComplianceRecord, ComplianceStore, RecordQuery } from './types.js';
import { conversationsXml } from './xml-adapter.js';

/** Most records one export file holds. */
export const MAX_EXPORT_RECORDS = 1_000_000;
const PAGE = 1000;

/** How eDiscovery presents records: the JSON-lines adapter's shape with every detail. */
function settingsFor(config: ComplianceConfig, outputDirectory: string): AdapterSettings {
  return {
    name: 'ediscovery',
    type: 'jsonl',
    enabled: true,
    oneChatRoomPerOutputFile: false,
    addChatRoomDetails: true,
    addUserDetails: true,
    createFileAttachmentsManifest: false,
    options: {},
    uriDomain: config.uriDomain,
    outputDirectory,
  };
}

export interface SearchResult {
  /** Records as the JSON-lines adapter writes them (with user and room details), oldest first. */
  records: Record<string, unknown>[];
  /** Pass as `afterId` for the next page; null when this page was the last. */
  nextAfterId: number | null;
}

/** One page of the records matching the query. */
export async function searchRecords(
  cs: ComplianceStore,
  config: ComplianceConfig,
  q: RecordQuery,
): Promise<SearchResult> {
  const rows = await cs.searchRecords({ ...q, limit: q.limit + 1 });
  const page = rows.slice(0, q.limit);
  const s = settingsFor(config, '');
  return {
    records: page.map((r) => recordJson(r, s)),
    nextAfterId: rows.length > q.limit ? page[page.length - 1]!.id : null,
  };
}

export interface ExportResult {
  format: 'xml' | 'jsonl';
  /** File name inside the eDiscovery folder. */
  file: string;
  /** Absolute path of the file on the server. */
  path: string;
  records: number;
  firstRecordId: number | null;
  lastRecordId: number | null;
  sha256: string;
}

/**
 * Writes every record matching the query (up to MAX_EXPORT_RECORDS) to one file in `directory`,
 * in the XML adapter's Lync format or the JSON-lines adapter's, with user and room details; the
 * file appears whole (temp name, fsync, rename) or not at all.
 */
export async function exportRecords(
  cs: ComplianceStore,
  config: ComplianceConfig,
  q: Omit<RecordQuery, 'limit' | 'afterId'>,
  format: 'xml' | 'jsonl',
  directory: string,
  now: number,
): Promise<ExportResult> {
  const records: ComplianceRecord[] = [];
  for (let afterId = 0; records.length < MAX_EXPORT_RECORDS;) {
    const page = await cs.searchRecords({
      ...q,
      afterId,
      limit: Math.min(PAGE, MAX_EXPORT_RECORDS - records.length),
    });
    records.push(...page);
    if (page.length < PAGE) break;
    afterId = page[page.length - 1]!.id;
  }
  const s = settingsFor(config, directory);
  const data =
    format === 'xml'
      ? conversationsXml(toConversations(records), s)
      : records.map((r) => `${JSON.stringify(recordJson(r, s))}\n`).join('');
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const file = `ediscovery-${stamp}-${crypto.randomBytes(4).toString('hex')}.${format}`;
  // No prepare(): in a pool the folder is shared, and another front end's export may be writing
  // its temporary file there right now.
  await fs.mkdir(directory, { recursive: true, mode: 0o700 });
  await new DirectoryOutput(directory).writeFile(file, data);
  return {
    format,
    file,
    path: path.join(directory, file),
    records: records.length,
    firstRecordId: records[0]?.id ?? null,
    lastRecordId: records[records.length - 1]?.id ?? null,
    sha256: crypto.createHash('sha256').update(data).digest('hex'),
  };
}
