import { sql, type ColumnDefinitionBuilder, type Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/** Schema 1: directory, policies, settings, categories, rooms, messages, follows, files, outbox. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  // SQLite's INTEGER PRIMARY KEY is the rowid; PostgreSQL gets an identity column.
  const id = dialect === 'sqlite' ? 'integer' : 'bigint';
  const idCol = (c: ColumnDefinitionBuilder) =>
    dialect === 'sqlite'
      ? c.primaryKey().autoIncrement()
      : c.primaryKey().generatedByDefaultAsIdentity();
  const big = dialect === 'sqlite' ? 'integer' : 'bigint';

  await db.schema
    .createTable('principals')
    .addColumn('id', id, idCol)
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull().unique())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('description', 'text')
    .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('password_hash', 'text')
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('local'))
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('group_members')
    .addColumn('group_id', id, (c) => c.notNull().references('principals.id').onDelete('cascade'))
    .addColumn('member_id', id, (c) => c.notNull().references('principals.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'member_id'])
    .execute();
  await db.schema
    .createIndex('group_members_member')
    .on('group_members')
    .column('member_id')
    .execute();

  await db.schema
    .createTable('sessions')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', id, (c) => c.notNull().references('principals.id').onDelete('cascade'))
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('expires_at', big, (c) => c.notNull())
    .addColumn('revoked_at', big)
    .execute();
  await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();

  await db.schema
    .createTable('policies')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('description', 'text')
    .execute();
  await db.schema
    .createTable('policy_grants')
    .addColumn('principal_id', id, (c) =>
      c.primaryKey().references('principals.id').onDelete('cascade'),
    )
    .addColumn('policy_name', 'text', (c) => c.notNull().references('policies.name'))
    .execute();

  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();

  // Rooms and categories share one name space (Lync: a room cannot be named like a category).
  await db.schema
    .createTable('names')
    .addColumn('name_key', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('ref_id', id, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('categories')
    .addColumn('id', id, idCol)
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('file_upload', 'integer', (c) => c.notNull())
    .addColumn('invitations', 'integer', (c) => c.notNull())
    .addColumn('history', 'integer', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('category_principals')
    .addColumn('category_id', id, (c) =>
      c.notNull().references('categories.id').onDelete('cascade'),
    )
    .addColumn('list', 'text', (c) => c.notNull())
    .addColumn('principal_id', id, (c) =>
      c.notNull().references('principals.id').onDelete('cascade'),
    )
    .addPrimaryKeyConstraint('category_principals_pk', ['category_id', 'list', 'principal_id'])
    .execute();
  await db.schema
    .createIndex('category_principals_principal')
    .on('category_principals')
    .columns(['principal_id', 'list'])
    .execute();

  await db.schema
    .createTable('addins')
    .addColumn('id', id, idCol)
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull().unique())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('rooms')
    .addColumn('id', id, idCol)
    .addColumn('category_id', id, (c) => c.notNull().references('categories.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('privacy', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('invitations', 'text', (c) => c.notNull().defaultTo('inherit'))
    .addColumn('addin_id', id, (c) => c.references('addins.id').onDelete('set null'))
    .addColumn('last_seq', big, (c) => c.notNull().defaultTo(0))
    .addColumn('created_by', id, (c) => c.references('principals.id').onDelete('set null'))
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('rooms_category').on('rooms').column('category_id').execute();

  await db.schema
    .createTable('room_roles')
    .addColumn('room_id', id, (c) => c.notNull().references('rooms.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('principal_id', id, (c) =>
      c.notNull().references('principals.id').onDelete('cascade'),
    )
    .addPrimaryKeyConstraint('room_roles_pk', ['room_id', 'role', 'principal_id'])
    .execute();
  await db.schema
    .createIndex('room_roles_principal')
    .on('room_roles')
    .columns(['principal_id', 'role'])
    .execute();

  await db.schema
    .createTable('files')
    .addColumn('id', id, idCol)
    .addColumn('room_id', id, (c) => c.notNull().references('rooms.id').onDelete('cascade'))
    .addColumn('uploader_id', id, (c) => c.notNull().references('principals.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('size', big, (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('storage_key', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', id, idCol)
    .addColumn('room_id', id, (c) => c.notNull().references('rooms.id').onDelete('cascade'))
    .addColumn('seq', big, (c) => c.notNull())
    .addColumn('author_id', id, (c) => c.notNull().references('principals.id'))
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('title', 'text')
    .addColumn('alert', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('file_id', id, (c) => c.references('files.id').onDelete('set null'))
    .addColumn('client_id', 'text')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('normal'))
    .addColumn('edited_at', big)
    .execute();
  await db.schema
    .createIndex('messages_room_seq')
    .on('messages')
    .columns(['room_id', 'seq'])
    .unique()
    .execute();
  await db.schema
    .createIndex('messages_author')
    .on('messages')
    .columns(['author_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('messages_room_time')
    .on('messages')
    .columns(['room_id', 'created_at'])
    .execute();

  await db.schema
    .createTable('post_keys')
    .addColumn('author_id', id, (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('room_id', id, (c) => c.notNull())
    .addColumn('seq', big, (c) => c.notNull())
    .addColumn('message_id', id)
    .addColumn('created_at', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('post_keys_pk', ['author_id', 'client_id'])
    .execute();

  await db.schema
    .createTable('mentions')
    .addColumn('user_id', id, (c) => c.notNull())
    .addColumn('room_id', id, (c) => c.notNull().references('rooms.id').onDelete('cascade'))
    .addColumn('seq', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('mentions_pk', ['user_id', 'room_id', 'seq'])
    .execute();

  await db.schema
    .createTable('invitations')
    .addColumn('id', id, idCol)
    .addColumn('user_id', id, (c) => c.notNull().references('principals.id').onDelete('cascade'))
    .addColumn('room_id', id, (c) => c.notNull().references('rooms.id').onDelete('cascade'))
    .addColumn('invited_by', id, (c) => c.references('principals.id').onDelete('set null'))
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('seen_at', big)
    .execute();
  await db.schema
    .createIndex('invitations_user')
    .on('invitations')
    .columns(['user_id', 'seen_at'])
    .execute();

  await db.schema
    .createTable('follows')
    .addColumn('user_id', id, (c) => c.notNull().references('principals.id').onDelete('cascade'))
    .addColumn('room_id', id, (c) => c.notNull().references('rooms.id').onDelete('cascade'))
    .addColumn('last_read_seq', big, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('follows_pk', ['user_id', 'room_id'])
    .execute();

  await db.schema
    .createTable('activity_outbox')
    .addColumn('id', id, idCol)
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('actor_id', id)
    .addColumn('room_id', id)
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .execute();

  if (dialect === 'sqlite') {
    // External-content FTS5 index over stored messages, kept in step by triggers.
    await sql`CREATE VIRTUAL TABLE messages_fts USING fts5(
      title, body, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    )`.execute(db);
    await sql`CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
      INSERT INTO messages_fts(rowid, title, body) VALUES (new.id, coalesce(new.title, ''), new.body);
    END`.execute(db);
    await sql`CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
      INSERT INTO messages_fts(messages_fts, rowid, title, body)
        VALUES ('delete', old.id, coalesce(old.title, ''), old.body);
    END`.execute(db);
    await sql`CREATE TRIGGER messages_fts_au AFTER UPDATE OF body, title ON messages BEGIN
      INSERT INTO messages_fts(messages_fts, rowid, title, body)
        VALUES ('delete', old.id, coalesce(old.title, ''), old.body);
      INSERT INTO messages_fts(rowid, title, body) VALUES (new.id, coalesce(new.title, ''), new.body);
    END`.execute(db);
  } else {
    // The store writes this with every insert and edit, tokenized in JavaScript exactly as FTS5
    // tokenizes (see store/postgres/text-search.ts); PostgreSQL's parser would split differently.
    await sql`ALTER TABLE messages ADD COLUMN search tsvector NOT NULL`.execute(db);
    await sql`CREATE INDEX messages_search ON messages USING gin (search)`.execute(db);
  }
}
