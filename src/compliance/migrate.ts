import { sql, type Kysely } from 'kysely';
import { StoreTooNewError } from '../errors.js';
import type { Dialect } from '../store/store.js';
import { complianceMigrations } from './migrations/index.js';

/**
 * Applies pending compliance-store migrations in key order, each in its own transaction, recorded
 * in `compliance_migrations`. Returns the keys applied by this call.
 */
export async function runComplianceMigrations(
  db: Kysely<unknown>,
  dialect: Dialect,
): Promise<string[]> {
  await db.schema
    .createTable('compliance_migrations')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('applied_at', dialect === 'sqlite' ? 'integer' : 'bigint', (c) => c.notNull())
    .execute();
  const { rows } = await sql<{ id: string }>`SELECT id FROM compliance_migrations`.execute(db);
  const done = new Set(rows.map((r) => r.id));
  const known = Object.keys(complianceMigrations).sort();
  const unknown = [...done].filter((id) => !known.includes(id));
  if (unknown.length > 0) {
    throw new StoreTooNewError('the compliance store', unknown);
  }
  const applied: string[] = [];
  for (const id of known) {
    if (done.has(id)) continue;
    await db.transaction().execute(async (trx) => {
      await complianceMigrations[id]!.up(trx, dialect);
      await sql`INSERT INTO compliance_migrations (id, applied_at) VALUES (${id}, ${Date.now()})`.execute(
        trx,
      );
    });
    applied.push(id);
  }
  return applied;
}
