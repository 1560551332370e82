import {
  purgeExpiredMessages,
  type HoldSource,
  type RetentionResult,
} from '../domain/categories/retention.js';
import type { Domain } from '../domain/types.js';
import type { Logger } from '../logger.js';

export interface ChatRetentionJobOptions {
  domain: Domain;
  /** The active legal holds (the compliance store's, through the compliance worker). */
  holds: HoldSource;
  /** How often it runs, in ms (PERCH_RETENTION_INTERVAL_MS, hourly by default). */
  intervalMs: number;
  log: Logger;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * The scheduled purge of the chat store: every `intervalMs`, messages and files older than their
 * category's retention period go, except what a legal hold covers (see purgeExpiredMessages). It
 * runs on the server's main thread against its own store, so that on SQLite its short delete
 * transactions join the group commit with the posts. A run that cannot read the holds (the
 * compliance worker is down or its store unavailable) purges nothing and is tried again at the
 * next interval.
 */
export class ChatRetentionJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(private readonly o: ChatRetentionJobOptions) {}

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => {
      if (!this.running) void this.runOnce();
    }, this.o.intervalMs);
    this.timer.unref();
  }

  /** One scheduled run; failures are logged, never thrown. */
  async runOnce(): Promise<RetentionResult | undefined> {
    const log = this.o.log;
    let logged = 0;
    const run = purgeExpiredMessages(this.o.domain, this.o.holds, {
      actorId: null,
      signal: this.abort.signal,
      onProgress: (p) => {
        if (p.messages - logged >= 10_000) {
          logged = p.messages;
          log.info(p, 'chat retention purge: progress');
        }
      },
    });
    this.running = run;
    try {
      const r = await run;
      if (r.messages > 0 || r.files > 0 || r.categories.some((c) => c.held)) {
        log.info(
          {
            messages: r.messages,
            files: r.files,
            categories: r.categories.map((c) => ({
              category: c.category,
              cutoff: c.cutoff,
              held: c.held,
              messages: c.messages,
              files: c.files,
            })),
          },
          'chat retention purge',
        );
      }
      return r;
    } catch (err) {
      log.warn({ err: message(err) }, 'chat retention purge did not run; retrying next interval');
      return undefined;
    } finally {
      this.running = undefined;
    }
  }

  /** Stops scheduling and waits for a run in progress to finish its current batch. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}
