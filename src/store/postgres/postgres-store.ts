import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { KyselyOps } from '../kysely-store.js';
import { runMigrations } from '../migrate.js';
import type { Database } from '../schema.js';
import type { Store, StoreOps } from '../store.js';

export interface PostgresStoreOptions {
  /** A libpq-style connection string: `postgres://user:password@host:port/database`. */
  connectionString: string;
  /** Most connections the pool opens (default 10). */
  poolSize?: number;
  /** Name reported in pg_stat_activity (default `perch`). */
  applicationName?: string;
}

/** Any number that names this application's migration lock among advisory locks. */
const MIGRATION_LOCK = 0x7065_7263; // 'perc'

const INT8_OID = 20;

/**
 * The Enterprise Edition store: PostgreSQL through a connection pool. Every query of
 * KyselyOps runs unchanged; transactions are real PostgreSQL transactions at READ COMMITTED,
 * which is enough because the per-room sequence is taken by `UPDATE rooms ... RETURNING`, whose
 * row lock orders concurrent posts to one room.
 */
export class PostgresStore extends KyselyOps implements Store {
  private readonly kysely: Kysely<Database>;
  private readonly pool: pg.Pool;

  private constructor(pool: pg.Pool, kysely: Kysely<Database>) {
    super(kysely, 'postgres');
    this.pool = pool;
    this.kysely = kysely;
  }

  /** Opens a pool; connections are made on first use, so a bad address fails the first query. */
  static open(opts: PostgresStoreOptions): PostgresStore {
    // Timestamps and ids are bigint columns; millisecond timestamps and ids stay far below 2^53,
    // so they are parsed as numbers, for this pool only (not pg's global type table).
    const types = {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID && format !== 'binary'
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    };
    const pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.poolSize ?? 10,
      application_name: opts.applicationName ?? 'perch',
      types,
    });
    // An idle client that loses its connection (server restart) emits 'error' on the pool; the
    // pool drops it and the next query reconnects, so this must not crash the process.
    pool.on('error', () => {});
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return new PostgresStore(pool, kysely);
  }

  transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    return this.kysely.transaction().execute((trx) => fn(new KyselyOps(trx, 'postgres')));
  }

  /** Migrates under an advisory lock, so that front ends starting together migrate once. */
  migrate(): Promise<string[]> {
    return this.kysely.connection().execute(async (conn) => {
      await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK})`.execute(conn);
      try {
        return await runMigrations(conn as unknown as Kysely<unknown>, 'postgres');
      } finally {
        await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`.execute(conn);
      }
    });
  }

  /** Connections open now and how many callers wait for one; for health checks and tests. */
  poolStats(): { total: number; idle: number; waiting: number } {
    return {
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
    };
  }

  async close(): Promise<void> {
    // Destroying Kysely ends the pool.
    await this.kysely.destroy();
  }
}
