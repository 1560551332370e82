import { syncDirectory, type DirectorySyncSummary } from '../domain/directory/sync.js';
import type { Domain } from '../domain/types.js';
import type { Logger } from '../logger.js';

export interface DirectorySyncJobOptions {
  domain: Domain;
  /** How often it runs, in ms (PERCH_DIRECTORY_SYNC_INTERVAL_MS); 0: never on its own. */
  intervalMs: number;
  log: Logger;
}

/**
 * The scheduled directory sync: once when the server starts, then every `intervalMs`. A run that
 * cannot read the directory changes nothing, is logged, and is tried again at the next interval.
 */
export class DirectorySyncJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(private readonly o: DirectorySyncJobOptions) {}

  start(): void {
    if (this.timer || this.stopped || this.o.intervalMs === 0) return;
    void this.runOnce();
    this.timer = setInterval(() => {
      if (!this.running) void this.runOnce();
    }, this.o.intervalMs);
    this.timer.unref();
  }

  /** One run; failures are logged, never thrown. */
  async runOnce(): Promise<DirectorySyncSummary | undefined> {
    const log = this.o.log;
    const run = syncDirectory(this.o.domain, null);
    this.running = run;
    try {
      const r = await run;
      log.info(
        {
          read: { users: r.read.users, groups: r.read.groups, ous: r.read.ous },
          created: r.created.length,
          updated: r.updated.length + r.renamed.length,
          disabled: r.disabled.length,
          removed: r.removed.length,
          memberships: r.memberships.length,
          conflicts: r.conflicts,
        },
        'directory sync',
      );
      return r;
    } catch (err) {
      log.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'directory sync failed; nothing was changed; retrying next interval',
      );
      return undefined;
    } finally {
      this.running = undefined;
    }
  }

  /** Stops scheduling and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}
