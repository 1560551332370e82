import type { ColumnDefinitionBuilder, Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 2: the admin audit trail. One row per call to the admin API: who, which action, when,
 * its parameters (secrets removed) and how it ended. The row is written before the change runs
 * (`result` = 'pending') and finished after it, so a change can never happen unrecorded.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === 'sqlite' ? 'integer' : 'bigint';
  const idCol = (c: ColumnDefinitionBuilder) =>
    dialect === 'sqlite'
      ? c.primaryKey().autoIncrement()
      : c.primaryKey().generatedByDefaultAsIdentity();
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';

  await db.schema
    .createTable('admin_audit')
    .addColumn('id', id, idCol)
    // No foreign key: the trail outlives the accounts it names (hence also actor_name).
    .addColumn('actor_id', id)
    .addColumn('actor_name', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('result', 'text', (c) => c.notNull())
    .addColumn('error_code', 'text')
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('finished_at', big)
    .execute();
  await db.schema.createIndex('admin_audit_time').on('admin_audit').column('created_at').execute();
  await db.schema
    .createIndex('admin_audit_actor')
    .on('admin_audit')
    .columns(['actor_name', 'id'])
    .execute();
  await db.schema
    .createIndex('admin_audit_action')
    .on('admin_audit')
    .columns(['action', 'id'])
    .execute();
}
