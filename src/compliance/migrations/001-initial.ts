import type { Kysely } from 'kysely';
import type { Dialect } from '../../store/store.js';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema
    .createTable('compliance_records')
    .addColumn('id', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) =>
      dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
    )
    .addColumn('outbox_id', big, (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('occurred_at', big, (c) => c.notNull())
    .addColumn('captured_at', big, (c) => c.notNull())
    .addColumn('actor_id', big)
    .addColumn('room_id', big)
    .addColumn('actor', 'text')
    .addColumn('room', 'text')
    .addColumn('payload', 'text', (c) => c.notNull())
    .execute();
  // eDiscovery searches by user, room and time.
  await db.schema
    .createIndex('compliance_records_room')
    .on('compliance_records')
    .columns(['room_id', 'occurred_at'])
    .execute();
  await db.schema
    .createIndex('compliance_records_actor')
    .on('compliance_records')
    .columns(['actor_id', 'occurred_at'])
    .execute();
  await db.schema
    .createTable('compliance_adapters')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('cursor', big, (c) => c.notNull())
    .addColumn('pending_start', big)
    .addColumn('pending_end', big)
    .addColumn('pending_config', 'text')
    .addColumn('runs', big, (c) => c.notNull().defaultTo(0))
    .addColumn('records_exported', big, (c) => c.notNull().defaultTo(0))
    .addColumn('last_run_at', big)
    .addColumn('last_success_at', big)
    .addColumn('last_error', 'text')
    .addColumn('last_error_at', big)
    .execute();
  await db.schema
    .createTable('compliance_lease')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', big, (c) => c.notNull())
    .execute();
}
