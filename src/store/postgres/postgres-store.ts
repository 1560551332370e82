import { Kysely, PostgresDialect, sql } from 'kysely';
import type pg from 'pg';
import { KyselyOps } from '../kysely-store.js';
import { runMigrations } from '../migrate.js';
import { openPgPool } from './connect.js';
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

/**
 * The LISTEN/NOTIFY channel on which each committed post is announced as `<roomId>:<seq>`.
 * NOTIFY inside the posting transaction is delivered if and only if the post commits, and in
 * commit order, which for one room is sequence order (the room row lock orders the posts).
 * A post that is not stored (its category keeps no history) is announced with its content, as
 * JSON (see UnstoredPost), when that fits in a notification; other front ends cannot read it.
 */
export const SEQUENCE_CHANNEL = 'perch_seq';

/**
 * The LISTEN/NOTIFY channel on which each logged pool event is announced, by its id (see
 * appendPoolEvents): sent inside the logging transaction, so it is heard only once the event is
 * committed, and a front end that missed it reads the log by id.
 */
export const POOL_EVENT_CHANNEL = 'perch_events';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_900;

/** The payload announcing a post that is not stored. */
export interface UnstoredPost {
  r: number;
  s: number;
  m: Pick<
    NewMessage,
    'authorId' | 'createdAt' | 'body' | 'title' | 'alert' | 'fileId' | 'clientId'
  >;
}

async function notifySequence(db: Kysely<Database>, m: NewMessage, seq: number): Promise<void> {
  let payload = `${m.roomId}:${seq}`;
  if (!m.store) {
    const { authorId, createdAt, body, title, alert, fileId, clientId } = m;
    const post: UnstoredPost = {
      r: m.roomId,
      s: seq,
      m: { authorId, createdAt, body, title, alert, fileId, clientId },
    };
    const json = JSON.stringify(post);
    if (Buffer.byteLength(json) <= MAX_PAYLOAD_BYTES) payload = json;
  }
  await sql`SELECT pg_notify(${SEQUENCE_CHANNEL}, ${payload})`.execute(db);
}

/** Transaction operations that also announce each post and pool event (see notifySequences). */
class NotifyingOps extends KyselyOps {
  override async appendMessage(m: NewMessage): Promise<AppendedMessage> {
    const appended = await super.appendMessage(m);
    await notifySequence(this.db, m, appended.seq);
    return appended;
  }

  override async appendPoolEvents(
    origin: string,
    payloads: string[],
    now: number,
  ): Promise<number[]> {
    const ids = await super.appendPoolEvents(origin, payloads, now);
    const last = ids.at(-1);
    if (last !== undefined) {
      await sql`SELECT pg_notify(${POOL_EVENT_CHANNEL}, ${String(last)})`.execute(this.db);
    }
    return ids;
  }
}

/** Any number that names this application's migration lock among advisory locks. */
const MIGRATION_LOCK = 0x7065_7263; // 'perc'

/**
 * The Enterprise Edition store: PostgreSQL through a connection pool. Every query of
 * KyselyOps runs unchanged; transactions are real PostgreSQL transactions at READ COMMITTED,
 * which is enough because the per-room sequence is taken by `UPDATE rooms ... RETURNING`, whose
 * row lock orders concurrent posts to one room.
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
    const pool = openPgPool(
      opts.connectionString,
      opts.poolSize ?? 10,
      opts.applicationName ?? 'perch',
    );
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return new PostgresStore(pool, kysely, opts.notifySequences ?? false);
  }

  transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    const Ops = this.notifySequences ? NotifyingOps : KyselyOps;
    return this.kysely.transaction().execute((trx) => fn(new Ops(trx, 'postgres')));
  }

  override async appendMessage(m: NewMessage): Promise<AppendedMessage> {
    if (!this.notifySequences) return super.appendMessage(m);
    // Outside a caller's transaction: one of our own, so that the announcement is atomic too.
    return this.transaction((tx) => tx.appendMessage(m));
  }

  override appendPoolEvents(origin: string, payloads: string[], now: number): Promise<number[]> {
    if (!this.notifySequences) return super.appendPoolEvents(origin, payloads, now);
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
