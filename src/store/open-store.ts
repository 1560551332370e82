import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';
import { parseStoreUrl, type StoreLocation } from './store-url.js';

export interface OpenStoreOptions {
  /** SQLite durability (see PERCH_SQLITE_SYNCHRONOUS). */
  sqliteSynchronous?: 'full' | 'normal';
  /** SQLite: who checkpoints the log (see SqliteStoreOptions.checkpoints). */
  sqliteCheckpoints?: 'auto' | 'background';
  /** Most PostgreSQL connections in the pool. */
  poolSize?: number;
  /** PostgreSQL: announce each post for the front ends of a pool (see SEQUENCE_CHANNEL). */
  notifySequences?: boolean;
}

/**
 * Opens the chat store named by a store URL (see parseStoreUrl) or location: SQLite for `sqlite://` URLs and
 * data folders, PostgreSQL for `postgres://`. Does not migrate. Callers that need a dialect's own
 * tools (SQLite's integrityCheck) test the result with `instanceof`.
 */
export function openStore(url: string | StoreLocation, opts: OpenStoreOptions = {}): Store {
  const location = typeof url === 'string' ? parseStoreUrl(url) : url;
  if (location.dialect === 'sqlite') {
    return SqliteStore.open({
      file: location.file,
      synchronous: opts.sqliteSynchronous,
      checkpoints: opts.sqliteCheckpoints,
    });
  }
  return PostgresStore.open({
    connectionString: location.connectionString,
    poolSize: opts.poolSize,
    notifySequences: opts.notifySequences,
  });
}
