import type { Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 12: salted SCRAM credentials (RFC 5802) for the XMPP gateway's SCRAM-SHA-1, kept beside
 * the argon2 hash. A password is never stored: only the salt, the iteration count and the
 * StoredKey and ServerKey derived from it (base64). Written when a password is set or changed,
 * and on the next successful password sign-in of a user who has none yet.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === 'sqlite' ? 'integer' : 'bigint';
  await db.schema
    .createTable('scram_credentials')
    .addColumn('principal_id', id, (c) =>
      c.notNull().references('principals.id').onDelete('cascade'),
    )
    .addColumn('mechanism', 'text', (c) => c.notNull())
    .addColumn('salt', 'text', (c) => c.notNull())
    .addColumn('iterations', 'integer', (c) => c.notNull())
    .addColumn('stored_key', 'text', (c) => c.notNull())
    .addColumn('server_key', 'text', (c) => c.notNull())
    .addColumn('updated_at', id, (c) => c.notNull())
    .addPrimaryKeyConstraint('scram_credentials_pk', ['principal_id', 'mechanism'])
    .execute();
}
