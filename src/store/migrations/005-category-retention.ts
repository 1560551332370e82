import type { Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 5: per-category retention. `retention_days` is how long messages (and files) posted in
 * the category's rooms are kept before the retention job purges them; NULL keeps them forever.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('categories').addColumn('retention_days', 'integer').execute();
}
