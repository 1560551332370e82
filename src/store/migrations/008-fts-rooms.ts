import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../store.js';

/**
 * Schema 8 (SQLite only): the full-text index also holds each message's room, as a third column
 * `room` (the room id as a token), so that a search within rooms is one FTS5 query
 * (`room : 12 AND {title body} : ...`) that walks only the rarer side's doclist, instead of a walk
 * over the rooms' messages probing the index once per message (about a second for a common word
 * in a room of 1,000 messages). The index's content comes from the view `messages_fts_source`.
 * It costs one token per message (a few bytes; see bench/README.md). The index is rebuilt from
 * the stored messages, which takes minutes at 10 million. PostgreSQL needs nothing: its planner
 * combines the room index and the tsvector index itself.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'sqlite') return;
  for (const trigger of ['messages_fts_ai', 'messages_fts_ad', 'messages_fts_au']) {
    await sql`DROP TRIGGER ${sql.id(trigger)}`.execute(db);
  }
  await sql`DROP TABLE messages_fts`.execute(db);
  await sql`CREATE VIEW messages_fts_source AS
    SELECT id, coalesce(title, '') AS title, body, room_id AS room FROM messages`.execute(db);
  await sql`CREATE VIRTUAL TABLE messages_fts USING fts5(
    title, body, room, content='messages_fts_source', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
  )`.execute(db);
  await sql`CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, title, body, room)
      VALUES (new.id, coalesce(new.title, ''), new.body, new.room_id);
  END`.execute(db);
  await sql`CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, title, body, room)
      VALUES ('delete', old.id, coalesce(old.title, ''), old.body, old.room_id);
  END`.execute(db);
  await sql`CREATE TRIGGER messages_fts_au AFTER UPDATE OF body, title, room_id ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, title, body, room)
      VALUES ('delete', old.id, coalesce(old.title, ''), old.body, old.room_id);
    INSERT INTO messages_fts(rowid, title, body, room)
      VALUES (new.id, coalesce(new.title, ''), new.body, new.room_id);
  END`.execute(db);
  await sql`INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')`.execute(db);
}
