import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { KyselyOps } from '../kysely-store.js';
import type { Database } from '../schema.js';
import type { ActivityRecord, AppendedMessage, NewMessage } from '../store.js';

/** The statements of a post, prepared once per store (on first use, after migrations). */
export class PostStatements {
  readonly bump: BetterSqlite3.Statement<[number], { last_seq: number }>;
  readonly insertMessage: BetterSqlite3.Statement<unknown[], { id: number }>;
  readonly insertKey: BetterSqlite3.Statement;
  readonly insertMention: BetterSqlite3.Statement;
  readonly insertActivity: BetterSqlite3.Statement;
  readonly savepoint: BetterSqlite3.Statement;
  readonly release: BetterSqlite3.Statement;
  readonly rollbackTo: BetterSqlite3.Statement;
  /** The clientId replay lookup, run outside batches when the connection is free. */
  readonly getPostKey: BetterSqlite3.Statement<
    [number, string],
    { room_id: number; seq: number; message_id: number | null; created_at: number }
  >;

  constructor(raw: BetterSqlite3.Database) {
    this.bump = raw.prepare(
      'UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq',
    );
    this.insertMessage = raw.prepare(
      `INSERT INTO messages (room_id, seq, author_id, created_at, body, title, alert, file_id, client_id, state, edited_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'normal', NULL) RETURNING id`,
    );
    this.insertKey = raw.prepare(
      'INSERT INTO post_keys (author_id, client_id, room_id, seq, message_id, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.insertMention = raw.prepare(
      'INSERT INTO mentions (user_id, room_id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.insertActivity = raw.prepare(
      'INSERT INTO activity_outbox (kind, actor_id, room_id, created_at, payload) VALUES (?, ?, ?, ?, ?)',
    );
    // Each transaction of a batch runs in a savepoint: two statements per post, prepared once
    // instead of built and compiled by the query builder every time.
    this.savepoint = raw.prepare('SAVEPOINT perch_tx');
    this.release = raw.prepare('RELEASE perch_tx');
    this.rollbackTo = raw.prepare('ROLLBACK TO perch_tx');
    this.getPostKey = raw.prepare(
      'SELECT room_id, seq, message_id, created_at FROM post_keys WHERE author_id = ? AND client_id = ?',
    );
  }
}

/**
 * Operations inside a SQLite group-commit batch. The batch holds the store's only connection
 * (better-sqlite3 is synchronous), so the hottest statements (a post and its compliance record)
 * run directly as prepared statements instead of through the query builder, with the same SQL
 * the builder would produce. Everything else is inherited.
 */
export class SqliteTxOps extends KyselyOps {
  constructor(
    db: Kysely<Database>,
    private readonly statements: PostStatements,
  ) {
    super(db, 'sqlite');
  }

  override appendMessage(m: NewMessage): Promise<AppendedMessage> {
    try {
      const s = this.statements;
      const bumped = s.bump.get(m.roomId);
      if (!bumped) throw new Error(`room ${m.roomId} does not exist`);
      const seq = bumped.last_seq;
      let id: number | null = null;
      if (m.store) {
        id = s.insertMessage.get(
          m.roomId,
          seq,
          m.authorId,
          m.createdAt,
          m.body,
          m.title,
          m.alert ? 1 : 0,
          m.fileId,
          m.clientId,
        )!.id;
      }
      if (m.clientId !== null)
        s.insertKey.run(m.authorId, m.clientId, m.roomId, seq, id, m.createdAt);
      for (const userId of m.mentionUserIds) s.insertMention.run(userId, m.roomId, seq);
      return Promise.resolve({ id, seq, createdAt: m.createdAt });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  override recordActivity(r: ActivityRecord): Promise<void> {
    try {
      this.statements.insertActivity.run(
        r.kind,
        r.actorId,
        r.roomId,
        r.createdAt,
        JSON.stringify(r.payload),
      );
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
}
