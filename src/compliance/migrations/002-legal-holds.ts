import type { Kysely } from 'kysely';
import type { Dialect } from '../../store/store.js';

/** Legal holds (by room, user and/or time range) that retention purges never touch. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema
    .createTable('compliance_holds')
    .addColumn('id', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) =>
      dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
    )
    .addColumn('room_id', big)
    .addColumn('user_id', big)
    .addColumn('from_at', big)
    .addColumn('to_at', big)
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('placed_by', 'text', (c) => c.notNull())
    .addColumn('placed_at', big, (c) => c.notNull())
    .addColumn('released_by', 'text')
    .addColumn('released_at', big)
    .addColumn('release_reason', 'text')
    .execute();
  // Retention purges scan by time.
  await db.schema
    .createIndex('compliance_records_occurred')
    .on('compliance_records')
    .column('occurred_at')
    .execute();
}
