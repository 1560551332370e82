import type { Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 6: the published topology (`perch topology publish`, Lync's Publish-CsTopology). One row
 * per published document: the newest is what `perch topology get` shows. The document is JSON
 * with store passwords removed; `digest` (SHA-256 of that JSON) tells a publish of the same
 * topology, which changes nothing.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema
    .createTable('topology')
    .addColumn('revision', 'integer', (c) => c.primaryKey())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('document', 'text', (c) => c.notNull())
    .addColumn('published_at', big, (c) => c.notNull())
    .execute();
}
