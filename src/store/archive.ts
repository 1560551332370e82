/**
 * The Perch data archive (`perch data export|import`): a gzip-compressed JSON-lines stream of the
 * chat store's rows, ids included, so that room links, message sequences and every reference
 * stay valid in the store it is loaded into. docs/data-archive.md describes the format.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { once } from 'node:events';
import { createGunzip, createGzip } from 'node:zlib';
import type { ArchiveTable, Store } from './store.js';

export const ARCHIVE_FORMAT = 'perch-data-archive';
export const ARCHIVE_VERSION = 1;

export type ArchiveLevel = 'config' | 'full';

/** Every table in the archive with its columns, in the order they are written and loaded. */
export const archiveTables: readonly {
  table: ArchiveTable;
  columns: readonly string[];
  /** Sorts a table that has no `id` so that two exports of the same data are identical. */
  key?: readonly string[];
  level: ArchiveLevel;
}[] = [
  { table: 'settings', columns: ['key', 'value'], key: ['key'], level: 'config' },
  {
    table: 'policies',
    columns: ['name', 'enabled', 'description'],
    key: ['name'],
    level: 'config',
  },
  {
    table: 'principals',
    columns: [
      'id',
      'kind',
      'name',
      'name_key',
      'display_name',
      'email',
      'description',
      'disabled',
      'is_admin',
      'password_hash',
      'source',
      'created_at',
      'updated_at',
    ],
    level: 'config',
  },
  {
    table: 'group_members',
    columns: ['group_id', 'member_id'],
    key: ['group_id', 'member_id'],
    level: 'config',
  },
  {
    table: 'policy_grants',
    columns: ['principal_id', 'policy_name'],
    key: ['principal_id'],
    level: 'config',
  },
  {
    table: 'categories',
    columns: [
      'id',
      'name',
      'description',
      'file_upload',
      'invitations',
      'history',
      'retention_days',
      'created_at',
      'updated_at',
    ],
    level: 'config',
  },
  {
    table: 'category_principals',
    columns: ['category_id', 'list', 'principal_id'],
    key: ['category_id', 'list', 'principal_id'],
    level: 'config',
  },
  { table: 'addins', columns: ['id', 'name', 'name_key', 'url', 'created_at'], level: 'config' },
  {
    table: 'rooms',
    columns: [
      'id',
      'category_id',
      'name',
      'description',
      'privacy',
      'type',
      'disabled',
      'invitations',
      'addin_id',
      'last_seq',
      'created_by',
      'created_at',
      'updated_at',
    ],
    level: 'config',
  },
  { table: 'names', columns: ['name_key', 'kind', 'ref_id'], key: ['name_key'], level: 'config' },
  {
    table: 'room_roles',
    columns: ['room_id', 'role', 'principal_id'],
    key: ['room_id', 'role', 'principal_id'],
    level: 'config',
  },
  {
    table: 'files',
    columns: [
      'id',
      'room_id',
      'uploader_id',
      'name',
      'content_type',
      'size',
      'sha256',
      'storage_key',
      'created_at',
    ],
    level: 'full',
  },
  {
    table: 'messages',
    columns: [
      'id',
      'room_id',
      'seq',
      'author_id',
      'created_at',
      'body',
      'title',
      'alert',
      'file_id',
      'client_id',
      'state',
      'edited_at',
    ],
    level: 'full',
  },
];

export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: number;
  level: ArchiveLevel;
  /** The store's migrations when exported; an import needs the same. */
  schema: string[];
  exportedAt: string;
  /** Message and file date range (ms), when the export was limited to one. */
  from: number | null;
  to: number | null;
  passwordHashes: boolean;
}

/** Counts per table (and `file_bytes`), as the trailer records and the CLI reports. */
export type ArchiveCounts = Record<string, number>;

export class ArchiveError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ArchiveError';
  }
}

/** File bytes travel in chunks of this many bytes (base64 in the line), never a whole file. */
const CHUNK = 512 * 1024;
const PAGE = 1000;

type Progress = (counts: ArchiveCounts) => void;

function compare(a: Record<string, unknown>, b: Record<string, unknown>, key: readonly string[]) {
  for (const k of key) {
    const x = a[k];
    const y = b[k];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    // Code-unit order, the same whatever the database's collation.
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

/** Numbers as numbers on every dialect (PostgreSQL's count and bigint may come as strings). */
function normalize(row: Record<string, unknown>, columns: readonly string[]) {
  const out: Record<string, unknown> = {};
  for (const c of columns) {
    const v = row[c];
    out[c] = typeof v === 'bigint' ? Number(v) : (v ?? null);
  }
  return out;
}

/** A gzip JSON-lines writer that waits when the disk is slower than the store. */
class LineWriter {
  private readonly gzip = createGzip();
  private readonly file: fs.WriteStream;
  private readonly done: Promise<void>;

  constructor(target: string) {
    // Owner-only: at any level the archive holds password hashes and private chat data.
    this.file = fs.createWriteStream(target, { mode: 0o600, flags: 'wx' });
    this.gzip.pipe(this.file);
    this.done = new Promise((resolve, reject) => {
      this.file.once('finish', resolve);
      this.file.once('error', reject);
      this.gzip.once('error', reject);
    });
  }

  async write(value: unknown): Promise<void> {
    if (!this.gzip.write(`${JSON.stringify(value)}\n`)) await once(this.gzip, 'drain');
  }

  async end(): Promise<void> {
    this.gzip.end();
    await this.done;
  }
}

export interface ExportOptions {
  level: ArchiveLevel;
  from?: number;
  to?: number;
  /** Leave password hashes out (users then need a password reset after an import). */
  passwordHashes: boolean;
  schema: string[];
  /** Where file bodies are, by storage key (a data dir's `files` folder). */
  filesDir: string;
  now?: Date;
  progress?: Progress;
}

/** Writes the archive of `store` to `target` (which must not exist yet); returns the counts. */
export async function exportArchive(
  store: Store,
  target: string,
  opts: ExportOptions,
): Promise<ArchiveCounts> {
  const out = new LineWriter(target);
  const counts: ArchiveCounts = {};
  try {
    const header: ArchiveHeader = {
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_VERSION,
      level: opts.level,
      schema: opts.schema,
      exportedAt: (opts.now ?? new Date()).toISOString(),
      from: opts.from ?? null,
      to: opts.to ?? null,
      passwordHashes: opts.passwordHashes,
    };
    await out.write(header);
    const exportedFiles = new Set<number>();
    for (const t of archiveTables) {
      if (t.level === 'full' && opts.level !== 'full') continue;
      counts[t.table] = 0;
      const emit = async (row: Record<string, unknown>) => {
        const r = normalize(row, t.columns);
        if (t.table === 'principals' && !opts.passwordHashes) r.password_hash = null;
        // A message keeps its file link only when the file is in the archive too.
        if (
          t.table === 'messages' &&
          r.file_id !== null &&
          !exportedFiles.has(r.file_id as number)
        ) {
          r.file_id = null;
        }
        await out.write({ t: t.table, r });
        counts[t.table]! += 1;
        if (t.table === 'files') {
          exportedFiles.add(r.id as number);
          counts.file_bytes =
            (counts.file_bytes ?? 0) + (await writeFileBody(out, opts.filesDir, r));
        }
        if (counts[t.table]! % 10_000 === 0) opts.progress?.(counts);
      };
      if (!t.columns.includes('id')) {
        const rows = await store.readArchiveRows(t.table, t.columns);
        rows.sort((a, b) => compare(a, b, t.key!));
        for (const row of rows) await emit(row);
        continue;
      }
      const range = t.level === 'full' ? { from: opts.from, to: opts.to } : {};
      let afterId = 0;
      for (;;) {
        const rows = await store.readArchiveRows(t.table, t.columns, {
          afterId,
          limit: PAGE,
          ...range,
        });
        for (const row of rows) await emit(row);
        if (rows.length < PAGE) break;
        afterId = Number(rows.at(-1)!.id);
      }
    }
    await out.write({ t: 'end', counts });
    await out.end();
    opts.progress?.(counts);
    return counts;
  } catch (err) {
    await out.end().catch(() => undefined);
    await fs.promises.rm(target, { force: true });
    throw err;
  }
}

async function writeFileBody(
  out: LineWriter,
  filesDir: string,
  file: Record<string, unknown>,
): Promise<number> {
  const key = String(file.storage_key);
  if (!/^[0-9a-f]{32}$/.test(key))
    throw new ArchiveError('archive_bad_file', `bad file key ${key}`);
  let bytes = 0;
  let chunk = 0;
  try {
    const handle = await fs.promises.open(path.join(filesDir, key), 'r');
    try {
      const buf = Buffer.alloc(CHUNK);
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, CHUNK, bytes);
        if (bytesRead === 0) break;
        await out.write({
          t: 'file_data',
          id: file.id,
          chunk,
          data: buf.subarray(0, bytesRead).toString('base64'),
        });
        bytes += bytesRead;
        chunk += 1;
      }
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new ArchiveError(
      'file_missing',
      `file ${String(file.id)} (${String(file.name)}): ${(err as Error).message}; give --files-dir`,
    );
  }
  return bytes;
}

export interface ImportOptions {
  schema: string[];
  filesDir: string;
  progress?: Progress;
}

/**
 * Loads an archive into an empty store, in one transaction (all of it or nothing), with the ids
 * it carries; file bodies go to `filesDir` under their storage keys and are checked against their
 * SHA-256. Returns the header and the counts.
 */
export async function importArchive(
  store: Store,
  source: string,
  opts: ImportOptions,
): Promise<{ header: ArchiveHeader; counts: ArchiveCounts }> {
  if ((await store.countArchiveRows()) > 0) {
    throw new ArchiveError(
      'store_not_empty',
      'the target store already holds data; import only into an empty store (perch db install on a new data dir or database)',
    );
  }
  const input = fs.createReadStream(source).pipe(createGunzip());
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  const columns = new Map(archiveTables.map((t) => [t.table, t.columns]));
  const written: string[] = [];
  let header: ArchiveHeader | undefined;
  let trailer: ArchiveCounts | undefined;
  const counts: ArchiveCounts = {};
  try {
    await store.transaction(async (tx) => {
      let batch: Record<string, unknown>[] = [];
      let batchTable: ArchiveTable | undefined;
      const files = new Map<number, { key: string; sha256: string; size: number; got: number }>();
      let open: { id: number; handle: fs.promises.FileHandle } | undefined;
      const flush = async () => {
        if (batchTable && batch.length > 0) {
          await tx.writeArchiveRows(batchTable, columns.get(batchTable)!, batch);
        }
        batch = [];
      };
      const closeFile = async () => {
        if (!open) return;
        await open.handle.sync();
        await open.handle.close();
        open = undefined;
      };
      for await (const line of lines) {
        if (line === '') continue;
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new ArchiveError('archive_corrupt', 'a line of the archive is not JSON');
        }
        if (!header) {
          header = checkHeader(rec, opts.schema);
          continue;
        }
        if (trailer) throw new ArchiveError('archive_corrupt', 'data after the end record');
        if (rec.t === 'end') {
          trailer = rec.counts as ArchiveCounts;
          continue;
        }
        if (rec.t === 'file_data') {
          const id = Number(rec.id);
          const f = files.get(id);
          if (!f) throw new ArchiveError('archive_corrupt', `file data for unknown file ${id}`);
          if (open?.id !== id) {
            await closeFile();
            const target = path.join(opts.filesDir, f.key);
            written.push(target);
            open = { id, handle: await fs.promises.open(target, 'wx', 0o600) };
          }
          const data = Buffer.from(String(rec.data), 'base64');
          await open.handle.write(data);
          f.got += data.length;
          counts.file_bytes = (counts.file_bytes ?? 0) + data.length;
          continue;
        }
        const table = rec.t as ArchiveTable;
        const cols = columns.get(table);
        if (!cols || typeof rec.r !== 'object' || rec.r === null) {
          throw new ArchiveError('archive_corrupt', `unknown record type ${JSON.stringify(rec.t)}`);
        }
        if (table !== batchTable || batch.length >= 200) {
          await flush();
          batchTable = table;
        }
        const row = rec.r as Record<string, unknown>;
        batch.push(row);
        counts[table] = (counts[table] ?? 0) + 1;
        if (table === 'files') {
          const key = String(row.storage_key);
          if (!/^[0-9a-f]{32}$/.test(key))
            throw new ArchiveError('archive_corrupt', 'bad file key');
          files.set(Number(row.id), {
            key,
            sha256: String(row.sha256),
            size: Number(row.size),
            got: 0,
          });
        }
        if (counts[table]! % 10_000 === 0) opts.progress?.(counts);
      }
      await flush();
      await closeFile();
      if (!header) throw new ArchiveError('archive_corrupt', 'the archive is empty');
      if (!trailer)
        throw new ArchiveError('archive_truncated', 'the archive ends before its end record');
      for (const [table, n] of Object.entries(trailer)) {
        if ((counts[table] ?? 0) !== n) {
          throw new ArchiveError(
            'archive_corrupt',
            `${table}: ${counts[table] ?? 0} records, the end record says ${n}`,
          );
        }
      }
      for (const [id, f] of files) {
        if (f.got !== f.size)
          throw new ArchiveError('archive_corrupt', `file ${id}: ${f.got} of ${f.size} bytes`);
        const hash = createHash('sha256');
        for await (const chunk of fs.createReadStream(path.join(opts.filesDir, f.key)))
          hash.update(chunk as Buffer);
        if (hash.digest('hex') !== f.sha256) {
          throw new ArchiveError(
            'archive_corrupt',
            `file ${id}: contents do not match its SHA-256`,
          );
        }
      }
      await tx.resetIdSequences();
    });
  } catch (err) {
    // The transaction rolled back; file bodies written for it go too.
    for (const f of written) await fs.promises.rm(f, { force: true });
    if (err instanceof Error && /zlib|incorrect header|unexpected end/i.test(err.message)) {
      throw new ArchiveError('archive_corrupt', `not a readable archive: ${err.message}`);
    }
    throw err;
  }
  opts.progress?.(counts);
  return { header: header!, counts };
}

function checkHeader(rec: Record<string, unknown>, schema: string[]): ArchiveHeader {
  if (rec.format !== ARCHIVE_FORMAT) {
    throw new ArchiveError('archive_corrupt', 'not a Perch data archive');
  }
  if (rec.version !== ARCHIVE_VERSION) {
    throw new ArchiveError(
      'archive_version',
      `archive format version ${String(rec.version)}; this Perch reads version ${ARCHIVE_VERSION}`,
    );
  }
  const theirs = Array.isArray(rec.schema) ? (rec.schema as string[]) : [];
  if (theirs.join(',') !== schema.join(',')) {
    throw new ArchiveError(
      'archive_schema',
      `the archive was exported from schema ${theirs.join(',')}, this store has ${schema.join(',')}; export and import with the same Perch version`,
    );
  }
  return rec as unknown as ArchiveHeader;
}
