import type { Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 7: the durable log of an Enterprise Edition pool's non-post events (room, access,
 * directory, settings, invitation and sign-out changes). A command writes its events here in the
 * same transaction as its change, so a front end killed after the commit cannot lose them; the
 * other front ends read them by id. `pool_event_head` is one row holding the last id given out:
 * taking the next ids updates it, and that row lock, held until commit, makes ids commit in
 * order, with no gap (a reader that sees an id has seen every smaller one). Standard Edition
 * never writes them.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema
    .createTable('pool_events')
    .addColumn('id', big, (c) => c.primaryKey())
    // The process that wrote it (its instance id): it applied the event itself already.
    .addColumn('origin', 'text', (c) => c.notNull())
    // The event as JSON (src/cluster/fan-out.ts, relayedSchema).
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('pool_event_head')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('last_id', big, (c) => c.notNull())
    .execute();
  await db
    .insertInto('pool_event_head' as never)
    .values({ id: 1, last_id: 0 } as never)
    .execute();
}
