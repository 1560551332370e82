import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { withStatementCache } from '../store/sqlite/sqlite-store.js';
import { KyselyComplianceStore } from './kysely-compliance-store.js';
import type { ComplianceDatabase } from './schema.js';

export interface SqliteComplianceStoreOptions {
  /** Path of compliance.db. */
  file: string;
  /**
   * How long a write waits for another process's lock, in ms. Kept short: better-sqlite3 waits
   * synchronously, which would stall chat; the worker retries with backoff instead.
   */
  busyTimeoutMs?: number;
}

/**
 * The Standard Edition compliance store: `compliance.db`, a second SQLite file in WAL mode,
 * owner-only, next to the chat store. Opening it creates the file when missing. Statements are
 * prepared once and kept (the worker drains the outbox every second under load).
 */
export function openSqliteComplianceStore(
  opts: SqliteComplianceStoreOptions,
): KyselyComplianceStore {
  fs.mkdirSync(path.dirname(opts.file), { recursive: true, mode: 0o700 });
  const raw = new BetterSqlite3(opts.file);
  try {
    raw.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 25}`);
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = full');
    fs.chmodSync(opts.file, 0o600);
  } catch (err) {
    raw.close();
    throw err;
  }
  return new KyselyComplianceStore(
    new Kysely<ComplianceDatabase>({
      dialect: new SqliteDialect({ database: withStatementCache(raw, () => true) }),
    }),
    'sqlite',
  );
}
