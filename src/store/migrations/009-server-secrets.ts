import type { Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 9: secrets shared by every front end of a pool, kept in the chat store so that they
 * all agree. One row per secret, written once with an insert that does nothing when the row is
 * already there: front ends starting together for the first time all read back the one that won.
 * `download-links` signs file download links (it used to live in each front end's
 * `secret.key`). The value is base64.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema
    .createTable('server_secrets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .execute();
}
