import type { ColumnDefinitionBuilder, Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 3: topic feeds. A user's keyword filters across the rooms they follow, kept on the
 * server so that they follow the user from browser to browser. Keywords are a JSON array of
 * strings; `name_key` (the lower-cased name) keeps names unique per user.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === 'sqlite' ? 'integer' : 'bigint';
  const idCol = (c: ColumnDefinitionBuilder) =>
    dialect === 'sqlite'
      ? c.primaryKey().autoIncrement()
      : c.primaryKey().generatedByDefaultAsIdentity();
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';

  await db.schema
    .createTable('topic_feeds')
    .addColumn('id', id, idCol)
    .addColumn('user_id', id, (c) => c.notNull().references('principals.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('keywords', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .addUniqueConstraint('topic_feeds_user_name', ['user_id', 'name_key'])
    .execute();
}
