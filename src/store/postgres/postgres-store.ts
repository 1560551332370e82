import { Kysely, PostgresDialect, sql, type PostgresPool, type PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import { KyselyOps } from '../kysely-store.js';
import { runMigrations } from '../migrate.js';
import { openPgPool } from './connect.js';
import { PgTxOps } from './pg-tx-ops.js';
import type { Database } from '../schema.js';
import type { AppendedMessage, NewMessage, Store, StoreOps } from '../store.js';

export interface PostgresStoreOptions {
  /** A libpq-style connection string: `postgres://user:password@host:port/database`. */
  connectionString: string;
  /** Most connections the pool opens (default 10). */
  poolSize?: number;
  /** Name reported in pg_stat_activity (default `perch`). */
  applicationName?: string;
  /**
   * Announce every post on SEQUENCE_CHANNEL inside its transaction (front ends of a pool listen;
   * see src/cluster). Off by default: a lone server has nobody to tell.
   */
  notifySequences?: boolean;
}

/** Any number that names this application's migration lock among advisory locks. */
const MIGRATION_LOCK = 0x7065_7263; // 'perc'

/** Lends one pooled connection to a transaction's query builder (which never releases it). */
class LentConnection implements PostgresPool {
  constructor(private readonly client: PostgresPoolClient) {}

  connect(): Promise<PostgresPoolClient> {
    return Promise.resolve(this.client);
  }

  end(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The Enterprise Edition store: PostgreSQL through a connection pool. Every query of KyselyOps
 * runs unchanged outside transactions; transactions are real PostgreSQL transactions at READ
 * COMMITTED, which is enough because the per-room sequence is taken by `UPDATE rooms ...
 * RETURNING`, whose row lock orders concurrent posts to one room. Inside a transaction the
 * statements of a post run as named statements (PgTxOps): one round trip for the post and one
 * for its compliance record.
 *
 * Concurrent transactions run on their own connections, each with its own COMMIT; PostgreSQL
 * flushes the WAL of commits that wait together once. (A group commit in the server, all of a
 * turn's transactions in one PostgreSQL transaction, ran their round trips one after another on
 * one connection and was slower on a loaded machine: see docs/performance.md.)
 */
export class PostgresStore extends KyselyOps implements Store {
  private readonly kysely: Kysely<Database>;
  private readonly pool: pg.Pool;
  private readonly notifySequences: boolean;

  private constructor(pool: pg.Pool, kysely: Kysely<Database>, notifySequences: boolean) {
    super(kysely, 'postgres');
    this.pool = pool;
    this.kysely = kysely;
    this.notifySequences = notifySequences;
  }

  /** Opens a pool; connections are made on first use, so a bad address fails the first query. */
  static open(opts: PostgresStoreOptions): PostgresStore {
    // Ids and millisecond timestamps are bigint columns read as numbers; with several hosts in
    // the URL every new connection finds the primary (connect.ts).
    // JIT off: PostgreSQL compiles a plan whose estimated cost passes jit_above_cost, and a word
    // search's first step (searchMessages) is planned for all of a common word's matches, 3 M
    // rows at 4 M messages, while it reads the first thousand: compiling doubled a 24 ms search.
    // The store's queries are short; none gains from compiling.
    const pool = openPgPool(
      opts.connectionString,
      opts.poolSize ?? 10,
      opts.applicationName ?? 'perch',
      { options: '-c jit=off' },
    );
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return new PostgresStore(pool, kysely, opts.notifySequences ?? false);
  }

  async transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // Back to the pool only once it has ended its transaction; else closed (a failed BEGIN,
    // COMMIT or ROLLBACK: the connection may be gone).
    let ended = false;
    try {
      const view = { query: client.query.bind(client), release() {} } as PostgresPoolClient;
      const db = new Kysely<Database>({
        dialect: new PostgresDialect({ pool: new LentConnection(view) }),
      });
      await client.query('BEGIN');
      let value: T;
      try {
        value = await fn(new PgTxOps(db, client, this.notifySequences));
      } catch (err) {
        await client.query('ROLLBACK');
        ended = true;
        throw err;
      }
      const committed = await client.query('COMMIT');
      ended = true;
      // PostgreSQL answers COMMIT with ROLLBACK when a statement of the transaction had failed.
      if (committed.command !== 'COMMIT') throw new Error('the transaction was rolled back');
      return value;
    } finally {
      client.release(!ended);
    }
  }

  /** A post outside a caller's transaction: one of its own, so that it is atomic. */
  override appendMessage(m: NewMessage): Promise<AppendedMessage> {
    return this.transaction((tx) => tx.appendMessage(m));
  }

  override appendPoolEvents(origin: string, payloads: string[], now: number): Promise<number[]> {
    if (!this.notifySequences) return super.appendPoolEvents(origin, payloads, now);
    // Outside a caller's transaction: one of our own, so that the announcement is atomic too.
    return this.transaction((tx) => tx.appendPoolEvents(origin, payloads, now));
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
