import type { Domain } from '../domain/types.js';
import { activeFrontEnds } from '../domain/pools/commands.js';
import { FrontEndIdleError, type PerchError } from '../errors.js';
import type { EventBus } from '../events.js';
import type { Logger } from '../logger.js';
import { SEQUENCE_CHANNEL } from '../store/postgres/pg-tx-ops.js';
import { EVENT_CHANNEL, EVENT_RETENTION_MS, FanOut } from './fan-out.js';
import { PgListener } from './listener.js';
import { openPgPool, PgPoolRegistry, POOL_CHANNEL } from './registry.js';

export interface PoolFrontEndOptions {
  pool: string;
  name: string;
  /** A random id of this process (the domain's event log writes under it, see poolEventLog). */
  instance: string;
  version: string;
  /** The chat store shared by the pool (PostgreSQL). */
  connectionString: string;
  heartbeatMs: number;
  d: Domain;
  /** The bus the domain publishes to. */
  domainBus: EventBus;
  /** The bus the realtime hub listens to; the fan-out feeds it in order. */
  hubBus: EventBus;
  /** Whether a local connection has joined the room. */
  hasSubscribers(roomId: number): boolean;
  /** This front end's load, written with each heartbeat. */
  load(): { connections: number; users: number };
  log: Logger;
}

/**
 * This process as a front end of an Enterprise Edition pool: listens for the pool's
 * notifications and feeds the hub through the fan-out; registers itself in the store and beats;
 * follows the pool's active set and, when idle, refuses new client sessions.
 */
export class PoolFrontEnd {
  readonly registry: PgPoolRegistry;
  readonly pool: string;
  readonly name: string;
  private readonly instance: string;
  private prunedAt = 0;
  private readonly fanOut: FanOut;
  private readonly listener: PgListener;
  private readonly log: Logger;
  private url = '';
  private active: { names: string[]; urls: Map<string, string> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private registered = false;

  constructor(private readonly opts: PoolFrontEndOptions) {
    this.pool = opts.pool;
    this.name = opts.name;
    this.instance = opts.instance;
    this.log = opts.log;
    this.registry = new PgPoolRegistry(
      openPgPool(opts.connectionString, 3, 'perch-pool'),
      opts.heartbeatMs,
    );
    this.fanOut = new FanOut({
      d: opts.d,
      out: opts.hubBus,
      hasSubscribers: opts.hasSubscribers,
      origin: this.instance,
      log: opts.log,
    });
    this.listener = new PgListener({
      connectionString: opts.connectionString,
      channels: [SEQUENCE_CHANNEL, EVENT_CHANNEL, POOL_CHANNEL],
      log: opts.log,
      onNotification: (channel, payload) => {
        if (channel === SEQUENCE_CHANNEL) this.fanOut.sequence(payload);
        else if (channel === EVENT_CHANNEL) this.fanOut.event(payload);
        else if (channel === POOL_CHANNEL && payload === this.pool) void this.refreshActive();
      },
      onListening: async (reconnected) => {
        // Every post committed from here on is announced; what came before is read from rooms.
        this.fanOut.sync(await this.registry.roomSequences());
        // Likewise every other event: at start the log's end is the baseline; after a lost
        // connection, what was logged meanwhile is read and applied in order.
        const head = await opts.d.store.poolEventHead();
        if (reconnected) {
          await this.fanOut.catchUpEvents(head);
          await this.refreshActive();
        } else {
          this.fanOut.startEvents(head);
        }
      },
    });
  }

  /**
   * Starts listening and takes each room's position; call before the server accepts clients,
   * so that every later post reaches them.
   */
  async start(): Promise<void> {
    this.unsubscribe = this.opts.domainBus.subscribe((event) => this.fanOut.local(event));
    await this.listener.start();
  }

  /** Records this front end in the pool (once its address is known) and starts beating. */
  async register(url: string): Promise<void> {
    this.url = url;
    await this.registry.register(
      this.pool,
      { name: this.name, url, version: this.opts.version, instance: this.instance },
      Date.now(),
    );
    this.registered = true;
    await this.refreshActive();
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => (this.beating = undefined));
    }, this.opts.heartbeatMs);
    this.timer.unref();
    this.log.info(
      { pool: this.pool, frontEnd: this.name, url, active: this.isActive() },
      'front end registered in its pool',
    );
  }

  /** Whether this front end is in its pool's active set (serves new client sessions). */
  isActive(): boolean {
    return this.active?.names.includes(this.name) ?? false;
  }

  /** The error refusing a new client session while idle; undefined while active. */
  admission(): PerchError | undefined {
    if (this.isActive()) return undefined;
    const active = (this.active?.names ?? []).map((name) => ({
      name,
      url: this.active?.urls.get(name) ?? '',
    }));
    return new FrontEndIdleError(this.name, active);
  }

  /** The origins (scheme://host:port) of every front end registered in the pool. */
  origins(): string[] {
    const out = new Set<string>();
    for (const url of this.active?.urls.values() ?? []) {
      try {
        out.add(new URL(url).origin);
      } catch {
        // A malformed URL names no origin.
      }
    }
    return [...out];
  }

  private async beat(): Promise<void> {
    try {
      const mine = await this.registry.beat(
        this.pool,
        this.name,
        this.instance,
        Date.now(),
        this.opts.load(),
      );
      if (!mine) {
        this.log.error(
          { pool: this.pool, frontEnd: this.name },
          'another process registered under this front-end name; stop one of them',
        );
      }
      await this.refreshActive();
      await this.listener.check();
      // A lost notification only delays a post: rooms joined here are checked on every beat.
      const watched = this.fanOut.watchedRooms();
      if (watched.length > 0) this.fanOut.sync(await this.registry.roomSequences(watched));
      // Likewise a lost event notification: the log is read up to its end.
      await this.fanOut.catchUpEvents(await this.opts.d.store.poolEventHead());
      const now = Date.now();
      if (now - this.prunedAt >= 60_000) {
        this.prunedAt = now;
        await this.opts.d.store.prunePoolEvents(now - EVENT_RETENTION_MS);
      }
    } catch (err) {
      this.log.warn({ err }, 'pool heartbeat failed');
    }
  }

  private async refreshActive(): Promise<void> {
    if (!this.registered) return;
    try {
      const pool = await this.registry.get(this.pool);
      if (!pool) return;
      const was = this.isActive();
      this.active = {
        names: activeFrontEnds(pool),
        urls: new Map(pool.frontEnds.map((f) => [f.name, f.url])),
      };
      if (was !== this.isActive()) {
        this.log.info(
          { pool: this.pool, frontEnd: this.name, active: this.isActive() },
          this.isActive() ? 'front end is now active' : 'front end is now idle',
        );
      }
    } catch (err) {
      this.log.warn({ err }, 'reading the pool active set failed');
    }
  }

  /** Stops beating and listening and records a clean stop; the store closes after. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    this.unsubscribe?.();
    this.fanOut.close();
    await this.listener.close();
    if (this.registered) {
      await this.registry
        .stopped(this.pool, this.name, this.instance, Date.now())
        .catch((err: unknown) => this.log.warn({ err }, 'recording the stop failed'));
    }
    await this.registry.close();
  }

  get address(): string {
    return this.url;
  }
}
