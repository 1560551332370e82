import type { Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 11: a pool's state (Lync's PoolState): `normal` while the pool runs on its own site's
 * chat store, `failed-over` after `perch pool failover` promoted the backup site's replica, back to
 * `normal` after `perch pool failback`. It lives in the pool's row of the chat store, so every
 * front end and every command reads the same value, and it moves with the store on a failover.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema
    .alterTable('pools')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('normal'))
    .execute();
  await db.schema.alterTable('pools').addColumn('state_changed_at', big).execute();
}
