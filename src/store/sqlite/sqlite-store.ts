import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { KyselyOps } from '../kysely-store.js';
import { runMigrations } from '../migrate.js';
import type { Database } from '../schema.js';
import type { Store, StoreOps } from '../store.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or ':memory:'. */
  file: string;
  synchronous?: 'full' | 'normal';
}

/**
 * The Standard Edition store: one SQLite file in WAL mode. better-sqlite3 is synchronous, so the
 * Kysely driver runs one statement at a time on one connection; a transaction holds that
 * connection until it commits, which makes SQLite's single-writer rule explicit.
 */
export class SqliteStore extends KyselyOps implements Store {
  private readonly kysely: Kysely<Database>;
  private readonly raw: BetterSqlite3.Database;

  private constructor(raw: BetterSqlite3.Database, kysely: Kysely<Database>) {
    super(kysely, 'sqlite');
    this.raw = raw;
    this.kysely = kysely;
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
    const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
    return new SqliteStore(raw, kysely);
  }

  async transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T> {
    return this.kysely.transaction().execute((trx) => fn(new KyselyOps(trx, 'sqlite')));
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
