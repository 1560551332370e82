import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../../store/store.js';

/**
 * Legal holds on a category: `compliance_holds.category_id`, and `compliance_records.category_id`
 * (the category of the record's room when it was captured, or of a category's own events) so
 * that a purge can tell which records such a hold covers. Existing records get it from their
 * captured room details and payloads.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema.alterTable('compliance_holds').addColumn('category_id', big).execute();
  await db.schema.alterTable('compliance_records').addColumn('category_id', big).execute();
  if (dialect === 'sqlite') {
    await sql`UPDATE compliance_records SET category_id = coalesce(
        CASE WHEN json_type(room, '$.categoryId') = 'integer' THEN json_extract(room, '$.categoryId') END,
        CASE WHEN json_type(payload, '$.categoryId') = 'integer' THEN json_extract(payload, '$.categoryId') END)`.execute(
      db,
    );
  } else {
    await sql`UPDATE compliance_records SET category_id = coalesce(
        CASE WHEN jsonb_typeof(room::jsonb -> 'categoryId') = 'number' THEN (room::jsonb ->> 'categoryId')::numeric::bigint END,
        CASE WHEN jsonb_typeof(payload::jsonb -> 'categoryId') = 'number' THEN (payload::jsonb ->> 'categoryId')::numeric::bigint END)`.execute(
      db,
    );
  }
  await db.schema
    .createIndex('compliance_records_category')
    .on('compliance_records')
    .columns(['category_id', 'occurred_at'])
    .execute();
}
