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

/**
 * The advisory lock every group-commit batch holds until its COMMIT (any number; 'pgc1'). A
 * batch holds the row locks of all its transactions' writes (rooms, the pool event head) until
 * it commits, in no particular order; two batches of different front ends taking them in
 * opposite orders would deadlock, and PostgreSQL would break that only after deadlock_timeout
 * by failing a post. Taken first, this lock orders whole batches instead.
 */
const BATCH_LOCK = 0x7067_6331;

/**
 * Most transactions committed together. Each runs in a savepoint, a subtransaction with an XID
 * of its own once it writes; a transaction with more than 64 of them overflows PostgreSQL's
 * per-backend subtransaction cache, which slows every other session's snapshots while it runs.
 */
const MAX_BATCH = 64;

/** SQLSTATE of a statement refused because an earlier one failed in the transaction. */
const IN_FAILED_TRANSACTION = '25P02';

/** The results of a query string holding one statement or several. */
function asResults(r: pg.QueryResult | pg.QueryResult[]): pg.QueryResult[] {
  return Array.isArray(r) ? r : [r];
}

interface QueuedTransaction {
  fn: (tx: StoreOps) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** The connection a batch holds, lent to the batch's query builder (which never releases it). */
class BatchConnection implements PostgresPool {
  client: PostgresPoolClient | undefined;

  connect(): Promise<PostgresPoolClient> {
    if (!this.client) return Promise.reject(new Error('no group-commit batch is running'));
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
 * RETURNING`, whose row lock orders concurrent posts to one room.
 *
 * Transactions use group commit, as on SQLite: those begun in the same turn of the event loop,
 * or while a batch is being written, run together on one connection inside one PostgreSQL
 * transaction, each in its own savepoint (a failing one rolls back alone), and share a single
 * COMMIT and WAL flush. Nobody is answered before that COMMIT. The statements of a post run as
 * named statements (PgTxOps), one round trip for the post and one for its compliance record.
 */
export class PostgresStore extends KyselyOps implements Store {
  private readonly kysely: Kysely<Database>;
  private readonly pool: pg.Pool;
  private readonly notifySequences: boolean;
  /** Runs KyselyOps queries of a batch on the batch's connection. */
  private readonly batchKysely: Kysely<Database>;
  private readonly batchConnection: BatchConnection;

  private constructor(pool: pg.Pool, kysely: Kysely<Database>, notifySequences: boolean) {
    super(kysely, 'postgres');
    this.pool = pool;
    this.kysely = kysely;
    this.notifySequences = notifySequences;
    this.batchConnection = new BatchConnection();
    this.batchKysely = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: this.batchConnection }),
    });
  }

  /** Opens a pool; connections are made on first use, so a bad address fails the first query. */
  static open(opts: PostgresStoreOptions): PostgresStore {
    // Ids and millisecond timestamps are bigint columns read as numbers; with several hosts in
    // the URL every new connection finds the primary (connect.ts).
    const pool = openPgPool(
      opts.connectionString,
      opts.poolSize ?? 10,
      opts.applicationName ?? 'perch',
    );
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return new PostgresStore(pool, kysely, opts.notifySequences ?? false);
  }

  private readonly queue: QueuedTransaction[] = [];
  private writing = false;

  transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.writing) void this.writeBatches();
    });
  }

  /** A post outside a caller's transaction: one of its own, so that it is atomic and batched. */
  override appendMessage(m: NewMessage): Promise<AppendedMessage> {
    return this.transaction((tx) => tx.appendMessage(m));
  }

  override appendPoolEvents(origin: string, payloads: string[], now: number): Promise<number[]> {
    if (!this.notifySequences) return super.appendPoolEvents(origin, payloads, now);
    // Outside a caller's transaction: one of our own, so that the announcement is atomic too.
    return this.transaction((tx) => tx.appendPoolEvents(origin, payloads, now));
  }

  private async writeBatches(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        // Take the batch after this turn's poll phase (see SqliteStore.writeBatches): every
        // transaction begun by the frames read in this turn joins it. Under load the next batch
        // gathers while this one is written and committed.
        await new Promise((resolve) => setImmediate(resolve));
        const batch = this.queue.splice(0, MAX_BATCH);
        await this.writeBatch(batch);
      }
    } finally {
      this.writing = false;
    }
  }

  private async writeBatch(batch: QueuedTransaction[]): Promise<void> {
    const outcomes: { ok: boolean; value: unknown }[] = [];
    let failure: unknown;
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      const c = client;
      this.batchConnection.client = { query: c.query.bind(c), release() {} } as PostgresPoolClient;
      const ops = new PgTxOps(this.batchKysely, c, this.notifySequences);
      // One round trip opens the transaction and the first savepoint; between transactions one
      // more closes a savepoint and opens the next.
      await c.query(`BEGIN; SELECT pg_advisory_xact_lock(${BATCH_LOCK}); SAVEPOINT perch_tx`);
      for (const [i, item] of batch.entries()) {
        if (i > 0) await this.endSavepoint(c, outcomes, 'SAVEPOINT perch_tx');
        try {
          outcomes.push({ ok: true, value: await item.fn(ops) });
        } catch (err) {
          await c.query('ROLLBACK TO SAVEPOINT perch_tx');
          outcomes.push({ ok: false, value: err });
        }
      }
      const results = await this.endSavepoint(c, outcomes, 'COMMIT');
      // PostgreSQL answers COMMIT with ROLLBACK when the transaction had failed.
      if (results.at(-1)?.command !== 'COMMIT') {
        throw new Error('the group-commit batch was rolled back');
      }
    } catch (err) {
      failure = err;
    } finally {
      this.batchConnection.client = undefined;
      // A connection left in a failed state is closed rather than reused.
      client?.release(failure === undefined ? undefined : (failure as Error));
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i];
      if (failure !== undefined) item.reject(failure);
      else if (outcome?.ok) item.resolve(outcome.value);
      else item.reject(outcome?.value);
    });
  }

  /**
   * Releases the savepoint of the transaction just run and sends `then` (the next savepoint, or
   * COMMIT) in the same round trip. A transaction that caught a failed statement and returned
   * anyway left PostgreSQL's transaction aborted: RELEASE is refused then (and `then` skipped),
   * so that transaction is rolled back to its savepoint and fails, and the batch goes on.
   */
  private async endSavepoint(
    c: pg.PoolClient,
    outcomes: { ok: boolean; value: unknown }[],
    then: string,
  ): Promise<pg.QueryResult[]> {
    try {
      return asResults(await c.query(`RELEASE SAVEPOINT perch_tx; ${then}`));
    } catch (err) {
      if ((err as { code?: string }).code !== IN_FAILED_TRANSACTION) throw err;
      const last = outcomes.at(-1);
      if (last) Object.assign(last, { ok: false, value: err });
      // The rolled-back savepoint stays open for the next transaction.
      const sql =
        then === 'COMMIT'
          ? 'ROLLBACK TO SAVEPOINT perch_tx; COMMIT'
          : 'ROLLBACK TO SAVEPOINT perch_tx';
      return asResults(await c.query(sql));
    }
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
    await this.batchKysely.destroy();
    await this.kysely.destroy();
  }
}
