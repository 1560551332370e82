import type { Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 10: principals synced from an LDAP directory (Lync's cached AD principals). Each links a
 * principal (source `ldap`) to its directory entry by a stable id (entryUUID, objectGUID), so a
 * rename or move in the directory renames the principal instead of making a new one; `dn` is
 * where the entry was last seen (sign-in binds as it); `entry_kind` tells users, groups and
 * organisational units apart (OUs are groups in Perch, containing the users under them).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema
    .createTable('directory_links')
    .addColumn('principal_id', id, (c) =>
      c.primaryKey().references('principals.id').onDelete('cascade'),
    )
    .addColumn('external_id', 'text', (c) => c.notNull().unique())
    .addColumn('dn', 'text', (c) => c.notNull())
    .addColumn('entry_kind', 'text', (c) => c.notNull())
    .addColumn('synced_at', id, (c) => c.notNull())
    .execute();
}
