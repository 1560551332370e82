import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import { KyselyOps } from '../kysely-store.js';
import type { Database } from '../schema.js';
import type { ActivityRecord, AppendedMessage, NewMessage } from '../store.js';
import { messageSearchVector } from './text-search.js';

/**
 * The LISTEN/NOTIFY channel on which each committed post is announced as `<roomId>:<seq>`.
 * NOTIFY inside the posting transaction is delivered if and only if the post commits, and in
 * commit order, which for one room is sequence order (the room row lock orders the posts).
 * A post that is not stored (its category keeps no history) is announced with its content, as
 * JSON (see UnstoredPost), when that fits in a notification; other front ends cannot read it.
 */
export const SEQUENCE_CHANNEL = 'perch_seq';

/**
 * The LISTEN/NOTIFY channel on which each logged pool event is announced, by its id (see
 * appendPoolEvents): sent inside the logging transaction, so it is heard only once the event is
 * committed, and a front end that missed it reads the log by id.
 */
export const POOL_EVENT_CHANNEL = 'perch_events';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_900;

/** The payload announcing a post that is not stored. */
export interface UnstoredPost {
  r: number;
  s: number;
  m: Pick<
    NewMessage,
    'authorId' | 'createdAt' | 'body' | 'title' | 'alert' | 'fileId' | 'clientId'
  >;
}

/**
 * A whole post in one statement: the room's next sequence number (the UPDATE's row lock orders
 * concurrent posts to one room), the message row ($10: only when the category keeps history),
 * the clientId key that makes a retry idempotent (its primary key refuses a second post with the
 * same key, failing the statement as a whole), and the mentions. Foreign keys are checked at the
 * end of the statement, so the key may point at the message inserted beside it.
 */
const APPEND_CTES = `
WITH bump AS (
  UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1::bigint RETURNING last_seq
), msg AS (
  INSERT INTO messages
    (room_id, seq, author_id, created_at, body, title, alert, file_id, client_id, state, edited_at, search)
  SELECT $1::bigint, last_seq, $2::bigint, $3::bigint, $4::text, $5::text, $6::integer, $7::bigint,
         $8::text, 'normal', NULL, $9::tsvector
  FROM bump WHERE $10::boolean
  RETURNING id
), post_key AS (
  INSERT INTO post_keys (author_id, client_id, room_id, seq, message_id, created_at)
  SELECT $2::bigint, $8::text, $1::bigint, last_seq, (SELECT id FROM msg), $3::bigint
  FROM bump WHERE $8::text IS NOT NULL
), mention AS (
  INSERT INTO mentions (user_id, room_id, seq)
  SELECT u, $1::bigint, last_seq FROM bump, unnest($11::bigint[]) AS u
  ON CONFLICT DO NOTHING
)`;

/**
 * Named statements: PostgreSQL parses and plans each once per connection, and pg sends only its
 * name and parameters afterwards. The `_notify` variant also announces the post on
 * SEQUENCE_CHANNEL from the same statement.
 */
const APPEND = {
  name: 'perch_append_v1',
  text: `${APPEND_CTES} SELECT last_seq AS seq, (SELECT id FROM msg) AS id FROM bump`,
};
const APPEND_NOTIFY = {
  name: 'perch_append_notify_v1',
  text: `${APPEND_CTES}
SELECT last_seq AS seq, (SELECT id FROM msg) AS id,
       pg_notify('${SEQUENCE_CHANNEL}', concat($1::bigint, ':', last_seq)) AS notified
FROM bump`,
};
const RECORD_ACTIVITY = {
  name: 'perch_activity_v1',
  text: `INSERT INTO activity_outbox (kind, actor_id, room_id, created_at, payload)
         VALUES ($1, $2, $3, $4, $5)`,
};

/**
 * Operations inside one PostgreSQL transaction (see PostgresStore). The transaction holds one
 * connection, so the statements of a post and its compliance record run as named statements on
 * it instead of through the query builder: one round trip for the post, one for the record.
 * Everything else is inherited and runs through `db`, which is bound to the same connection.
 * With `notify`, every post and pool event is announced inside the transaction (front ends of a
 * pool listen; see src/cluster).
 */
export class PgTxOps extends KyselyOps {
  constructor(
    db: Kysely<Database>,
    private readonly client: pg.ClientBase,
    private readonly notify: boolean,
  ) {
    super(db, 'postgres');
  }

  override async appendMessage(m: NewMessage): Promise<AppendedMessage> {
    // An unstored post is announced with its content, which names its sequence: a second
    // statement once that is known.
    const announceHere = this.notify && m.store;
    const result = await this.client.query<{ seq: number; id: number | null }>({
      ...(announceHere ? APPEND_NOTIFY : APPEND),
      values: [
        m.roomId,
        m.authorId,
        m.createdAt,
        m.body,
        m.title,
        m.alert ? 1 : 0,
        m.fileId,
        m.clientId,
        m.store ? messageSearchVector(m.title, m.body) : null,
        m.store,
        m.mentionUserIds,
      ],
    });
    const row = result.rows[0];
    if (!row) throw new Error(`room ${m.roomId} does not exist`);
    const seq = Number(row.seq);
    if (this.notify && !m.store) await this.announceUnstored(m, seq);
    return { id: row.id === null ? null : Number(row.id), seq, createdAt: m.createdAt };
  }

  override async recordActivity(r: ActivityRecord): Promise<void> {
    await this.client.query({
      ...RECORD_ACTIVITY,
      values: [r.kind, r.actorId, r.roomId, r.createdAt, JSON.stringify(r.payload)],
    });
  }

  override async appendPoolEvents(
    origin: string,
    payloads: string[],
    now: number,
  ): Promise<number[]> {
    const ids = await super.appendPoolEvents(origin, payloads, now);
    const last = ids.at(-1);
    if (this.notify && last !== undefined) {
      await sql`SELECT pg_notify(${POOL_EVENT_CHANNEL}, ${String(last)})`.execute(this.db);
    }
    return ids;
  }

  private async announceUnstored(m: NewMessage, seq: number): Promise<void> {
    let payload = `${m.roomId}:${seq}`;
    const { authorId, createdAt, body, title, alert, fileId, clientId } = m;
    const post: UnstoredPost = {
      r: m.roomId,
      s: seq,
      m: { authorId, createdAt, body, title, alert, fileId, clientId },
    };
    const json = JSON.stringify(post);
    if (Buffer.byteLength(json) <= MAX_PAYLOAD_BYTES) payload = json;
    await sql`SELECT pg_notify(${SEQUENCE_CHANNEL}, ${payload})`.execute(this.db);
  }
}
