import type { Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 4: Enterprise Edition pools. `pools` holds each pool's chosen active set (Lync's
 * Set-CsPersistentChatActiveServer; NULL until one is chosen), `front_ends` one row per front-end
 * process that has registered in a pool, with its heartbeat and load (Lync's tblServerIdentity).
 * Standard Edition never writes them.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema
    .createTable('pools')
    .addColumn('name', 'text', (c) => c.primaryKey())
    // JSON array of front-end names; NULL: no active set chosen (the first four registered).
    .addColumn('active_servers', 'text')
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('front_ends')
    .addColumn('pool', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    // Where clients reach it (http://host:port), shown to clients that an idle one refuses.
    .addColumn('url', 'text', (c) => c.notNull())
    // A random id per process start: a restarted front end takes its row over.
    .addColumn('instance', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('registered_at', big, (c) => c.notNull())
    .addColumn('started_at', big, (c) => c.notNull())
    .addColumn('heartbeat_at', big, (c) => c.notNull())
    // Set by a clean shutdown; NULL while running (or after a crash).
    .addColumn('stopped_at', big)
    .addColumn('connections', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('users', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('front_ends_pk', ['pool', 'name'])
    .execute();
}
