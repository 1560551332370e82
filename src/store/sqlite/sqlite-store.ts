import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { KyselyOps } from '../kysely-store.js';
import { PostStatements, SqliteTxOps } from './sqlite-tx-ops.js';
import { runMigrations } from '../migrate.js';
import type { Database } from '../schema.js';
import type { ActivityRecord, Store, StoreOps } from '../store.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or ':memory:'. */
  file: string;
  synchronous?: 'full' | 'normal';
}

interface QueuedTransaction {
  fn: (tx: StoreOps) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Most transactions committed together by one group commit. */
const MAX_BATCH = 256;

/**
 * The Standard Edition store: one SQLite file in WAL mode. better-sqlite3 is synchronous, so the
 * Kysely driver runs one statement at a time on one connection.
 *
 * Transactions use group commit: those that arrive while one is being written wait, then run
 * together inside one SQLite transaction, each in its own savepoint (a failing one rolls back
 * alone), and share a single COMMIT, so that the fsync that makes them durable is paid once per
 * batch instead of once per post. Nobody is answered before that COMMIT, and other queries wait
 * for the connection meanwhile, so no reader ever sees uncommitted data.
 */
export class SqliteStore extends KyselyOps implements Store {
  private readonly kysely: Kysely<Database>;
  private readonly raw: BetterSqlite3.Database;

  private constructor(raw: BetterSqlite3.Database, kysely: Kysely<Database>) {
    super(kysely, 'sqlite');
    this.raw = raw;
    this.kysely = kysely;
  }

  // Single writes outside an explicit transaction would each commit (and fsync) on their own;
  // the frequent ones join the group commit instead, so that a thousand clients leaving at once
  // (a PART each) or marking rooms read cost a few commits, not a thousand.
  override recordActivity(r: ActivityRecord): Promise<void> {
    return this.transaction((tx) => tx.recordActivity(r));
  }
  override deleteActivity(ids: number[]): Promise<void> {
    return this.transaction((tx) => tx.deleteActivity(ids));
  }
  override follow(userId: number, roomId: number, lastReadSeq: number, now: number): Promise<void> {
    return this.transaction((tx) => tx.follow(userId, roomId, lastReadSeq, now));
  }
  override unfollow(userId: number, roomId: number): Promise<void> {
    return this.transaction((tx) => tx.unfollow(userId, roomId));
  }
  override markRead(userId: number, roomId: number, seq: number): Promise<void> {
    return this.transaction((tx) => tx.markRead(userId, roomId, seq));
  }
  override markInvitationsSeen(userId: number, ids: number[], now: number): Promise<number> {
    return this.transaction((tx) => tx.markInvitationsSeen(userId, ids, now));
  }
  override createSession(
    tokenHash: string,
    userId: number,
    now: number,
    expiresAt: number,
  ): Promise<void> {
    return this.transaction((tx) => tx.createSession(tokenHash, userId, now, expiresAt));
  }
  override revokeSession(tokenHash: string, now: number): Promise<void> {
    return this.transaction((tx) => tx.revokeSession(tokenHash, now));
  }

  static open(opts: SqliteStoreOptions): SqliteStore {
    if (opts.file !== ':memory:') {
      fs.mkdirSync(path.dirname(opts.file), { recursive: true, mode: 0o700 });
    }
    const raw = new BetterSqlite3(opts.file);
    raw.pragma('journal_mode = WAL');
    raw.pragma(`synchronous = ${opts.synchronous ?? 'full'}`);
    raw.pragma('foreign_keys = ON');
    raw.pragma('busy_timeout = 5000');
    raw.pragma('cache_size = -65536');
    raw.pragma('temp_store = MEMORY');
    if (opts.file !== ':memory:') {
      fs.chmodSync(opts.file, 0o600);
    }
    const kysely = new Kysely<Database>({
      dialect: new SqliteDialect({ database: withStatementCache(raw) }),
    });
    return new SqliteStore(raw, kysely);
  }

  private readonly queue: QueuedTransaction[] = [];
  private statements: PostStatements | undefined;
  private writing = false;

  transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.writing) void this.writeBatches();
    });
  }

  private async writeBatches(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
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
    try {
      await this.kysely.connection().execute(async (conn) => {
        await sql`BEGIN IMMEDIATE`.execute(conn);
        try {
          const ops = new SqliteTxOps(conn, (this.statements ??= new PostStatements(this.raw)));
          for (const item of batch) {
            await sql`SAVEPOINT perch_tx`.execute(conn);
            try {
              const value = await item.fn(ops);
              await sql`RELEASE perch_tx`.execute(conn);
              outcomes.push({ ok: true, value });
            } catch (err) {
              await sql`ROLLBACK TO perch_tx`.execute(conn);
              await sql`RELEASE perch_tx`.execute(conn);
              outcomes.push({ ok: false, value: err });
            }
          }
          await sql`COMMIT`.execute(conn);
        } catch (err) {
          if (this.raw.inTransaction) await sql`ROLLBACK`.execute(conn);
          throw err;
        }
      });
    } catch (err) {
      failure = err;
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i];
      if (failure !== undefined) item.reject(failure);
      else if (outcome?.ok) item.resolve(outcome.value);
      else item.reject(outcome?.value);
    });
  }

  migrate(): Promise<string[]> {
    return runMigrations(this.kysely as unknown as Kysely<unknown>, 'sqlite');
  }

  /** Runs SQLite's own consistency checks; returns the problems found (empty when healthy). */
  integrityCheck(): string[] {
    const rows = this.raw.pragma('integrity_check') as { integrity_check: string }[];
    const fk = this.raw.pragma('foreign_key_check') as unknown[];
    const problems = rows.map((r) => r.integrity_check).filter((v) => v !== 'ok');
    if (fk.length > 0) problems.push(`${fk.length} foreign key violation(s)`);
    return problems;
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }
}

/**
 * Kysely prepares every query anew; preparing costs more than running the small statements a
 * chat server issues, so prepared statements are kept by SQL text (bounded, oldest dropped).
 */
function withStatementCache(raw: BetterSqlite3.Database, limit = 500): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(raw, {
    get(target, prop) {
      if (prop !== 'prepare') {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        let fn = bound.get(prop);
        if (!fn) bound.set(prop, (fn = (value as (...a: unknown[]) => unknown).bind(target)));
        return fn;
      }
      return (source: string) => {
        let stmt = cache.get(source);
        if (stmt) {
          // Re-insert so that the Map's order is least recently used first.
          cache.delete(source);
        } else {
          stmt = target.prepare(source);
          if (cache.size >= limit) cache.delete(cache.keys().next().value!);
        }
        cache.set(source, stmt);
        return stmt;
      };
    },
  });
}
