import Database from 'better-sqlite3';

/** What a copy of a store holds, read in the same snapshot as the copy. */
export interface StoreSnapshot {
  schema: string[];
  counts: Record<string, number>;
  /** The chat store's files (whose bodies the backup copies), by id. */
  files: FileRow[];
}

export interface FileRow {
  id: number;
  key: string;
  size: number;
  sha256: string;
}

export type StoreRole = 'chat' | 'compliance';

/** The queries that describe a store, the same on SQLite and PostgreSQL. */
export const snapshotQueries: Record<
  StoreRole,
  { schema: string; counts: string; files?: string }
> = {
  chat: {
    schema: 'SELECT id FROM perch_migrations ORDER BY id',
    counts: `SELECT (SELECT count(*) FROM rooms) AS rooms,
                    (SELECT count(*) FROM messages) AS messages,
                    (SELECT count(*) FROM files) AS files,
                    (SELECT count(*) FROM principals WHERE kind = 'user') AS users`,
    files: 'SELECT id, storage_key AS key, size, sha256 FROM files ORDER BY id',
  },
  compliance: {
    schema: 'SELECT id FROM compliance_migrations ORDER BY id',
    counts: 'SELECT (SELECT count(*) FROM compliance_records) AS records',
  },
};

/** Numbers as numbers (PostgreSQL's count is a bigint, which pg returns as a string). */
export function numbers(row: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)]));
}

export function fileRows(rows: Record<string, unknown>[]): FileRow[] {
  return rows.map((r) => ({
    id: Number(r.id),
    key: String(r.key),
    size: Number(r.size),
    sha256: String(r.sha256),
  }));
}

/**
 * Describes a SQLite copy. With `seal`, first turns it from WAL into a single self-contained file
 * (journal_mode DELETE), so that reading it later leaves no -wal or -shm beside it; a server that
 * opens it switches it back to WAL.
 */
export function describeSqlite(file: string, role: StoreRole, seal: boolean): StoreSnapshot {
  const db = new Database(file, { readonly: !seal, fileMustExist: true });
  try {
    if (seal) db.pragma('journal_mode = DELETE');
    const q = snapshotQueries[role];
    const schema = (db.prepare(q.schema).all() as { id: string }[]).map((r) => r.id);
    const counts = numbers(db.prepare(q.counts).get() as Record<string, unknown>);
    const files = q.files ? fileRows(db.prepare(q.files).all() as Record<string, unknown>[]) : [];
    return { schema, counts, files };
  } finally {
    db.close();
  }
}

/**
 * Copies a live SQLite store through SQLite's online backup API while its server keeps writing:
 * the whole copy is one step, one read transaction, so it is one consistent snapshot (WAL mode
 * lets writers go on meanwhile; a copy in several steps would start over after every write by
 * another process, and never end under steady traffic). Returns what the copy holds.
 */
export async function backupSqlite(
  source: string,
  target: string,
  role: StoreRole,
  note: (line: string) => void,
): Promise<StoreSnapshot> {
  const db = new Database(source, { readonly: true, fileMustExist: true, timeout: 10_000 });
  try {
    await db.backup(target, {
      progress: ({ totalPages }) => {
        note(`${role} store: copying ${totalPages} pages in one read transaction`);
        return 0x7fffffff;
      },
    });
  } finally {
    db.close();
  }
  return describeSqlite(target, role, true);
}
