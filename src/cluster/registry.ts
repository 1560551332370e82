import type pg from 'pg';
import type { FrontEndRecord, PoolRecord, PoolRegistry } from '../domain/pools/commands.js';

/** The LISTEN/NOTIFY channel on which a pool's changed active set is announced (its name). */
export const POOL_CHANNEL = 'perch_pool';

/** A pg pool on the store URL (one host or several), int8 read as numbers. */
export { openPgPool } from '../store/postgres/connect.js';

interface FrontEndRow {
  name: string;
  url: string;
  version: string;
  registered_at: number;
  started_at: number;
  heartbeat_at: number;
  stopped_at: number | null;
  connections: number;
  users: number;
}

/**
 * The pool tables of the chat store (migration 004) on PostgreSQL: front ends register, beat,
 * and read their pool's active set here; `perch pool` reads and changes it. It has its own small
 * connection pool so that chat traffic never queues behind it, nor it behind chat traffic.
 */
export class PgPoolRegistry implements PoolRegistry {
  constructor(
    private readonly db: pg.Pool,
    readonly heartbeatMs: number,
  ) {}

  /** Creates the pool if new and takes over the front end's row (a restart keeps registered_at). */
  async register(
    pool: string,
    fe: { name: string; url: string; version: string; instance: string },
    now: number,
  ): Promise<void> {
    await this.db.query(
      'INSERT INTO pools (name, active_servers, updated_at) VALUES ($1, NULL, $2) ON CONFLICT (name) DO NOTHING',
      [pool, now],
    );
    await this.db.query(
      `INSERT INTO front_ends (pool, name, url, instance, version, registered_at, started_at,
         heartbeat_at, stopped_at, connections, users)
       VALUES ($1, $2, $3, $4, $5, $6, $6, $6, NULL, 0, 0)
       ON CONFLICT (pool, name) DO UPDATE SET url = EXCLUDED.url, instance = EXCLUDED.instance,
         version = EXCLUDED.version, started_at = EXCLUDED.started_at,
         heartbeat_at = EXCLUDED.heartbeat_at, stopped_at = NULL, connections = 0, users = 0`,
      [pool, fe.name, fe.url, fe.instance, fe.version, now],
    );
  }

  /** Creates a pool's row (no active set chosen) unless it exists: `perch topology publish`. */
  async define(pool: string, now: number): Promise<void> {
    await this.db.query(
      'INSERT INTO pools (name, active_servers, updated_at) VALUES ($1, NULL, $2) ON CONFLICT (name) DO NOTHING',
      [pool, now],
    );
  }

  /** Writes a heartbeat with the current load; false if another process took the name over. */
  async beat(
    pool: string,
    name: string,
    instance: string,
    now: number,
    load: { connections: number; users: number },
  ): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE front_ends SET heartbeat_at = $4, connections = $5, users = $6
       WHERE pool = $1 AND name = $2 AND instance = $3`,
      [pool, name, instance, now, load.connections, load.users],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async stopped(pool: string, name: string, instance: string, now: number): Promise<void> {
    await this.db.query(
      `UPDATE front_ends SET stopped_at = $4, heartbeat_at = $4, connections = 0, users = 0
       WHERE pool = $1 AND name = $2 AND instance = $3`,
      [pool, name, instance, now],
    );
  }

  async get(pool: string): Promise<PoolRecord | undefined> {
    const p = await this.db.query<{ name: string; active_servers: string | null }>(
      'SELECT name, active_servers FROM pools WHERE name = $1',
      [pool],
    );
    const row = p.rows[0];
    if (!row) return undefined;
    const fes = await this.db.query<FrontEndRow>(
      `SELECT name, url, version, registered_at, started_at, heartbeat_at, stopped_at,
         connections, users FROM front_ends WHERE pool = $1 ORDER BY name`,
      [pool],
    );
    return {
      name: row.name,
      activeServers:
        row.active_servers === null ? null : (JSON.parse(row.active_servers) as string[]),
      frontEnds: fes.rows.map((f): FrontEndRecord => ({
        name: f.name,
        url: f.url,
        version: f.version,
        registeredAt: f.registered_at,
        startedAt: f.started_at,
        heartbeatAt: f.heartbeat_at,
        stoppedAt: f.stopped_at,
        connections: f.connections,
        users: f.users,
      })),
    };
  }

  async setActiveServers(pool: string, names: string[] | null, now: number): Promise<void> {
    const client = await this.db.connect();
    try {
      await client.query('BEGIN');
      await client.query('UPDATE pools SET active_servers = $2, updated_at = $3 WHERE name = $1', [
        pool,
        names === null ? null : JSON.stringify(names),
        now,
      ]);
      // Delivered on commit: every front end re-reads the set at once, not at its next beat.
      await client.query('SELECT pg_notify($1, $2)', [POOL_CHANNEL, pool]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  /** Every room's last sequence: where the fan-out starts, and how it catches up. */
  async roomSequences(roomIds?: number[]): Promise<{ id: number; lastSeq: number }[]> {
    const r =
      roomIds === undefined
        ? await this.db.query<{ id: number; last_seq: number }>('SELECT id, last_seq FROM rooms')
        : await this.db.query<{ id: number; last_seq: number }>(
            'SELECT id, last_seq FROM rooms WHERE id = ANY($1::bigint[])',
            [roomIds],
          );
    return r.rows.map((x) => ({ id: x.id, lastSeq: x.last_seq }));
  }

  /** Sends a notification (after commit: the caller's change is already visible). */
  async notify(channel: string, payload: string): Promise<void> {
    await this.db.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  close(): Promise<void> {
    return this.db.end();
  }
}
