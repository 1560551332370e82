import pg from 'pg';
import type { Logger } from '../logger.js';
import { pgClient } from '../store/postgres/connect.js';

export interface ListenerOptions {
  connectionString: string;
  channels: string[];
  log: Logger;
  onNotification(channel: string, payload: string): void;
  /**
   * Runs after every successful LISTEN (the first and each reconnect), before notifications are
   * trusted again: the caller catches up on what it may have missed while not listening.
   */
  onListening(reconnected: boolean): Promise<void>;
  /** First retry delay after a lost connection; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
}

/**
 * One dedicated PostgreSQL connection that LISTENs on the pool's channels and reconnects, with
 * back-off, whenever it is lost (server restart, `pg_terminate_backend`, network). Notifications
 * sent while it is down are lost by PostgreSQL's design; onListening makes up for them.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private delay: number;
  private connecting: Promise<void> | undefined;

  constructor(private readonly opts: ListenerOptions) {
    this.delay = opts.retryMs ?? 100;
  }

  /** Connects and listens; rejects if the first attempt fails (a bad store URL fails start-up). */
  async start(): Promise<void> {
    await this.connect(false);
  }

  /** Whether the LISTEN connection is up now. */
  get listening(): boolean {
    return this.client !== undefined;
  }

  /**
   * Checks the connection with a round trip; a dead one (a silently dropped TCP connection) is
   * then noticed and replaced. Called on every heartbeat.
   */
  async check(): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await client.query('SELECT 1');
    } catch {
      this.lost(client, 'check failed');
    }
  }

  private async connect(reconnected: boolean): Promise<void> {
    const client = pgClient(this.opts.connectionString, {
      application_name: 'perch-listen',
      keepAlive: true,
    });
    client.on('notification', (n) => {
      if (this.client === client) this.opts.onNotification(n.channel, n.payload ?? '');
    });
    client.on('error', (err) => this.lost(client, err.message));
    client.on('end', () => this.lost(client, 'connection ended'));
    await client.connect();
    try {
      for (const channel of this.opts.channels) {
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      }
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.delay = this.opts.retryMs ?? 100;
    await this.opts.onListening(reconnected);
  }

  private lost(client: pg.Client, why: string): void {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => {});
    this.opts.log.warn({ why }, 'pool notification connection lost; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer || this.connecting) return;
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.opts.maxRetryMs ?? 5_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connecting = this.connect(true)
        .then(() => this.opts.log.info('pool notification connection restored'))
        .catch((err: unknown) => {
          this.opts.log.warn({ err }, 'pool notification connection still down');
          if (this.client) this.lost(this.client, 'catch-up failed');
        })
        .finally(() => {
          this.connecting = undefined;
          if (!this.client) this.scheduleReconnect();
        });
    }, wait);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.connecting?.catch(() => {});
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
