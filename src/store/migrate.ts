import { sql, type Kysely } from 'kysely';
import { StoreTooNewError } from '../errors.js';
import { migrations } from './migrations/index.js';
import type { Dialect } from './store.js';

/**
 * Applies pending migrations in key order, each in its own transaction, and records it in
 * `perch_migrations`. Returns the keys applied by this call.
 */
export async function runMigrations(db: Kysely<unknown>, dialect: Dialect): Promise<string[]> {
  await db.schema
    .createTable('perch_migrations')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('applied_at', dialect === 'sqlite' ? 'integer' : 'bigint', (c) => c.notNull())
    .execute();
  const { rows } = await sql<{ id: string }>`SELECT id FROM perch_migrations`.execute(db);
  const done = new Set(rows.map((r) => r.id));
  const known = Object.keys(migrations).sort();
  const unknown = [...done].filter((id) => !known.includes(id));
  if (unknown.length > 0) {
    throw new StoreTooNewError('the chat store', unknown);
  }
  const applied: string[] = [];
  for (const id of known) {
    if (done.has(id)) continue;
    const migration = migrations[id]!;
    await db.transaction().execute(async (trx) => {
      await migration.up(trx, dialect);
      await sql`INSERT INTO perch_migrations (id, applied_at) VALUES (${id}, ${Date.now()})`.execute(
        trx,
      );
    });
    applied.push(id);
  }
  return applied;
}
