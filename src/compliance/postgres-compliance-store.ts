import { Kysely, PostgresDialect } from 'kysely';
import { openPgPool } from '../store/postgres/connect.js';
import { KyselyComplianceStore } from './kysely-compliance-store.js';
import type { ComplianceDatabase } from './schema.js';

export interface PostgresComplianceStoreOptions {
  /** `postgres://user:password@host:port/database` of the compliance database. */
  connectionString: string;
  poolSize?: number;
  /** Shown in pg_stat_activity (default `perch-compliance`). */
  applicationName?: string;
  /** Sessions idle inside a transaction longer than this are ended by the server (ms). */
  idleInTransactionTimeoutMs?: number;
}

/**
 * The Enterprise Edition compliance store: a PostgreSQL database of its own (not the chat
 * store's), through the same Kysely implementation as compliance.db.
 */
export function openPostgresComplianceStore(
  opts: PostgresComplianceStoreOptions,
): KyselyComplianceStore {
  // Ids and millisecond timestamps are numbers; several hosts in the URL: the primary's.
  const pool = openPgPool(
    opts.connectionString,
    opts.poolSize ?? 2,
    opts.applicationName ?? 'perch-compliance',
    { idle_in_transaction_session_timeout: opts.idleInTransactionTimeoutMs },
  );
  return new KyselyComplianceStore(
    new Kysely<ComplianceDatabase>({ dialect: new PostgresDialect({ pool }) }),
    'postgres',
  );
}
