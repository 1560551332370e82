import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { KyselyComplianceStore } from './kysely-compliance-store.js';
import type { ComplianceDatabase } from './schema.js';

const INT8_OID = 20;

export interface PostgresComplianceStoreOptions {
  /** `postgres://user:password@host:port/database` of the compliance database. */
  connectionString: string;
  poolSize?: number;
}

/**
 * The Enterprise Edition compliance store: a PostgreSQL database of its own (not the chat
 * store's), through the same Kysely implementation as compliance.db.
 */
export function openPostgresComplianceStore(
  opts: PostgresComplianceStoreOptions,
): KyselyComplianceStore {
  // Ids and millisecond timestamps are bigint columns far below 2^53: numbers, for this pool only.
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8_OID && format !== 'binary'
        ? (value: string) => Number(value)
        : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.poolSize ?? 2,
    application_name: 'perch-compliance',
    types,
  });
  // A lost idle connection is dropped by the pool and remade on the next query.
  pool.on('error', () => {});
  return new KyselyComplianceStore(
    new Kysely<ComplianceDatabase>({ dialect: new PostgresDialect({ pool }) }),
    'postgres',
  );
}
