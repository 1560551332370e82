import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { KyselyOps } from '../kysely-store.js';
import { PostStatements, SqliteTxOps } from './sqlite-tx-ops.js';
import { runMigrations } from '../migrate.js';
import type { Database } from '../schema.js';
import type { PostKey, Store, StoreOps } from '../store.js';
import { WalFlusher } from './wal-flusher.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or ':memory:'. */
  file: string;
  /**
   * `full` (the default): a transaction is answered once it is on stable storage (the log is
   * flushed off the event loop, see WalFlusher); `normal`: once written, which survives a
   * crash of the process but not of the machine.
   */
  synchronous?: 'full' | 'normal';
  /**
   * `auto` (the default): SQLite checkpoints the log into the database itself, inside the COMMIT
   * that takes it past 1,000 pages, on this connection's thread. `background`: another connection
   * calls `checkpoint()` regularly (the server's compliance thread does, see
   * src/compliance/worker-thread.ts), so that copying pages and the two fsyncs of a checkpoint
   * happen off the event loop; this connection only checkpoints if the log reaches 10,000 pages
   * (40 MB), in case that other connection stops.
   */
  checkpoints?: 'auto' | 'background';
}

/** Log pages at which a `background` store checkpoints on its own after all. */
const BACKGROUND_CHECKPOINT_FALLBACK_PAGES = 10_000;

/**
 * A batch's COMMIT reached the page cache but the flush that makes it durable failed: its
 * transactions are reported failed, though their changes may survive (a retried post is found by
 * its clientId).
 */
export class WalFlushError extends Error {
  constructor(cause: unknown) {
    super(`the commit could not be made durable: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
    });
    this.name = 'WalFlushError';
  }
}

interface QueuedTransaction {
  fn: (tx: StoreOps) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Most transactions committed together by one group commit. */
const MAX_BATCH = 256;

/**
 * The operations that only read. Outside a transaction they run directly on the connection;
 * every other operation, including any added later, joins the group commit. The list is a
 * performance hint, not a safety net: a read-listed operation that tries to write is stopped
 * before its first write statement and run again inside the group commit.
 */
const READS: ReadonlySet<keyof StoreOps> = new Set<keyof StoreOps>([
  'getPrincipal',
  'getPrincipalByName',
  'getPrincipalsByNames',
  'getPrincipals',
  'getPasswordHash',
  'getScramCredentials',
  'listPrincipals',
  'listGroupMembers',
  'ancestry',
  'expandToUsers',
  'getSession',
  'listPolicies',
  'getPolicy',
  'getGrants',
  'getSettings',
  'getCategory',
  'getCategoryByName',
  'listCategories',
  'countRooms',
  'getCategoryLists',
  'categoriesWithCreator',
  'getAddin',
  'getAddinByName',
  'listAddins',
  'getRoom',
  'getRoomByName',
  'listRooms',
  'getRoomRoles',
  'searchRooms',
  'roomsWithRole',
  'getPostKey',
  'getMessage',
  'getMessageBySeq',
  'history',
  'searchMessages',
  'findMessages',
  'listInvitations',
  'listFollows',
  'getFile',
  'listFileKeys',
  'countActivity',
  'readActivity',
  'listTopicFeeds',
]);

/** A statement that writes was prepared outside a group-commit batch (and not run). */
export class WriteOutsideGroupCommitError extends Error {
  constructor(readonly statement: string) {
    super(`write outside the group commit: ${statement.slice(0, 80)}`);
    this.name = 'WriteOutsideGroupCommitError';
  }
}

/**
 * The Standard Edition store: one SQLite file in WAL mode. better-sqlite3 is synchronous, so the
 * Kysely driver runs one statement at a time on one connection.
 *
 * Transactions use group commit: those begun in the same turn of the event loop (the frames read
 * in one poll phase), or while a batch is being written, wait, then run together inside one
 * SQLite transaction, each in its own savepoint (a failing one rolls back
 * alone), and share a single COMMIT, so that the fsync that makes them durable is paid once per
 * batch instead of once per post. Nobody is answered before that COMMIT, and other queries wait
 * for the connection meanwhile, so no reader ever sees uncommitted data.
 *
 * Every operation called outside `transaction()` that writes joins the group commit too, as a
 * transaction of its own (installed by the static block below): a thousand clients leaving at once (a
 * PART each) or marking rooms read cost a few commits, not a thousand fsyncs. The connection
 * refuses to prepare a writing statement outside a batch, so no write can bypass it.
 */
export class SqliteStore extends KyselyOps implements Store {
  private readonly kysely: Kysely<Database>;
  private readonly raw: BetterSqlite3.Database;

  /** Runs read operations outside a batch; `this`-calls inside them stay unrouted. */
  private readonly direct: KyselyOps;
  /** Above zero while a batch or a migration holds the connection and may write. */
  private readonly writers: { count: number };

  /** Flushes the log after each batch when the store is durable (`synchronous: 'full'`). */
  private readonly flusher: WalFlusher | undefined;

  private constructor(
    raw: BetterSqlite3.Database,
    kysely: Kysely<Database>,
    writers: { count: number },
    flusher: WalFlusher | undefined,
  ) {
    super(kysely, 'sqlite');
    this.raw = raw;
    this.kysely = kysely;
    this.writers = writers;
    this.flusher = flusher;
    this.direct = new KyselyOps(kysely, 'sqlite');
  }

  static open(opts: SqliteStoreOptions): SqliteStore {
    if (opts.file !== ':memory:') {
      fs.mkdirSync(path.dirname(opts.file), { recursive: true, mode: 0o700 });
    }
    const raw = new BetterSqlite3(opts.file);
    raw.pragma('journal_mode = WAL');
    // Durable without an fsync on the event loop: COMMIT writes the log, WalFlusher flushes it.
    const flushed = (opts.synchronous ?? 'full') === 'full' && opts.file !== ':memory:';
    raw.pragma(`synchronous = ${flushed ? 'normal' : (opts.synchronous ?? 'full')}`);
    raw.pragma('foreign_keys = ON');
    raw.pragma('busy_timeout = 5000');
    raw.pragma('cache_size = -65536');
    raw.pragma('temp_store = MEMORY');
    if (opts.checkpoints === 'background') {
      raw.pragma(`wal_autocheckpoint = ${BACKGROUND_CHECKPOINT_FALLBACK_PAGES}`);
    }
    if (opts.file !== ':memory:') {
      fs.chmodSync(opts.file, 0o600);
    }
    const writers = { count: 0 };
    const kysely = new Kysely<Database>({
      dialect: new SqliteDialect({
        database: withStatementCache(raw, () => writers.count > 0),
      }),
    });
    const flusher = flushed ? new WalFlusher(`${opts.file}-wal`) : undefined;
    return new SqliteStore(raw, kysely, writers, flusher);
  }

  /** A read-listed operation outside a transaction; rerun in the group commit if it writes. */
  private async readOutside(name: keyof StoreOps, args: unknown[]): Promise<unknown> {
    try {
      return await callOp(this.direct, name, args);
    } catch (err) {
      if (!(err instanceof WriteOutsideGroupCommitError)) throw err;
      return this.transaction((tx) => callOp(tx, name, args));
    }
  }

  // Installs every store operation inherited from KyselyOps, present and future, on the prototype:
  // reads run directly, everything else as a group-commit transaction of its own. The store's
  // own methods (transaction, migrate, close, ...) are left alone.
  static {
    for (const name of Object.getOwnPropertyNames(KyselyOps.prototype)) {
      if (name === 'constructor' || Object.hasOwn(SqliteStore.prototype, name)) continue;
      const op = name as keyof StoreOps;
      const routed = READS.has(op)
        ? function (this: SqliteStore, ...args: unknown[]) {
            return this.readOutside(op, args);
          }
        : function (this: SqliteStore, ...args: unknown[]) {
            return this.transaction((tx) => callOp(tx, op, args));
          };
      Object.defineProperty(SqliteStore.prototype, name, {
        value: routed,
        writable: true,
        configurable: true,
      });
    }
  }

  private readonly queue: QueuedTransaction[] = [];
  private statements: PostStatements | undefined;
  private writing = false;

  private get prepared(): PostStatements {
    return (this.statements ??= new PostStatements(this.raw));
  }

  /**
   * The clientId replay lookup, read before every post that carries a clientId: a prepared
   * statement run directly when no batch or migration holds the connection (the query builder
   * otherwise builds and compiles it for every post). While one does, it waits its turn through
   * the query builder like every other read, so it never sees a batch's uncommitted rows.
   */
  override getPostKey(authorId: number, clientId: string): Promise<PostKey | undefined> {
    if (this.writers.count > 0 || this.raw.inTransaction) {
      return this.readOutside('getPostKey', [authorId, clientId]) as Promise<PostKey | undefined>;
    }
    try {
      const r = this.prepared.getPostKey.get(authorId, clientId);
      return Promise.resolve(
        r && {
          roomId: r.room_id,
          seq: r.seq,
          messageId: r.message_id,
          createdAt: r.created_at,
        },
      );
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

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
        // Wait for the end of this turn of the event loop before taking the batch. A batch runs
        // synchronously (better-sqlite3) from a microtask of whatever called transaction() first:
        // started at once, it would commit that caller alone, and every frame read in the same
        // poll phase would each pay its own COMMIT and fsync after it. setImmediate runs after
        // the poll phase, so every transaction begun by this turn's input joins this batch.
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
    try {
      await this.kysely.connection().execute(async (conn) => {
        this.writers.count++;
        await sql`BEGIN IMMEDIATE`.execute(conn);
        try {
          const s = this.prepared;
          const ops = new SqliteTxOps(conn, s);
          for (const item of batch) {
            s.savepoint.run();
            try {
              const value = await item.fn(ops);
              s.release.run();
              outcomes.push({ ok: true, value });
            } catch (err) {
              s.rollbackTo.run();
              s.release.run();
              outcomes.push({ ok: false, value: err });
            }
          }
          await sql`COMMIT`.execute(conn);
        } catch (err) {
          if (this.raw.inTransaction) await sql`ROLLBACK`.execute(conn);
          throw err;
        } finally {
          this.writers.count--;
        }
      });
    } catch (err) {
      failure = err;
    }
    const settle = (flushFailure?: unknown) =>
      batch.forEach((item, i) => {
        const outcome = outcomes[i];
        if (failure !== undefined) item.reject(failure);
        else if (!outcome?.ok) item.reject(outcome?.value);
        else if (flushFailure !== undefined) item.reject(new WalFlushError(flushFailure));
        else item.resolve(outcome.value);
      });
    if (failure !== undefined || !this.flusher) return settle();
    // Answered once durable; the next batch runs meanwhile (see WalFlusher).
    this.flusher.flush().then(
      () => settle(),
      (err: unknown) => settle(err),
    );
  }

  async migrate(): Promise<string[]> {
    this.writers.count++;
    try {
      const applied = await runMigrations(this.kysely as unknown as Kysely<unknown>, 'sqlite');
      await this.flushLog();
      return applied;
    } finally {
      this.writers.count--;
    }
  }

  /**
   * Resolves once every transaction committed so far, by any connection, is on stable storage.
   * A reader that copies committed rows elsewhere (the compliance worker) calls it first: a
   * batch is readable as soon as its COMMIT returns, before the flush that makes it durable.
   */
  flushLog(): Promise<void> {
    return this.flusher?.flush() ?? Promise.resolve();
  }

  /**
   * Copies what it can of the log into the database without waiting for readers or the writer
   * (`wal_checkpoint(PASSIVE)`); the writer then starts the log over once all of it is copied.
   * Synchronous, with the checkpoint's fsyncs: call it from a thread that serves no one.
   */
  checkpoint(): { busy: boolean; logPages: number; checkpointedPages: number } {
    const [row] = this.raw.pragma('wal_checkpoint(PASSIVE)') as {
      busy: number;
      log: number;
      checkpointed: number;
    }[];
    return {
      busy: row!.busy !== 0,
      logPages: row!.log,
      checkpointedPages: row!.checkpointed,
    };
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
    // Every batch written is answered (flushed) before the connection goes.
    await this.flusher?.close();
    await this.kysely.destroy();
  }
}

function callOp(ops: StoreOps, name: keyof StoreOps, args: unknown[]): Promise<unknown> {
  return (ops[name] as (...a: unknown[]) => Promise<unknown>).apply(ops, args);
}

/**
 * Kysely prepares every query anew; preparing costs more than running the small statements a
 * chat server issues, so prepared statements are kept by SQL text (bounded, oldest dropped).
 * A statement that writes is refused (before it runs) unless `mayWrite()`: outside a batch.
 */
export function withStatementCache(
  raw: BetterSqlite3.Database,
  mayWrite: () => boolean,
  limit = 500,
): BetterSqlite3.Database {
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
        if (!stmt.readonly && !mayWrite()) throw new WriteOutsideGroupCommitError(source);
        return stmt;
      };
    },
  });
}
