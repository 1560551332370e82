/**
 * Slows down password guessing: after `freeAttempts` failures for one login (or one client
 * address) within the window, each further attempt must wait, doubling up to `maxDelayMs`.
 * Kept in memory: a restart forgets it, which only gives a guesser a few more tries.
 */
export class SignInThrottle {
  private readonly failures = new Map<string, { count: number; first: number; until: number }>();

  constructor(
    private readonly clock: () => number,
    private readonly freeAttempts = 5,
    private readonly windowMs = 15 * 60_000,
    private readonly maxDelayMs = 15 * 60_000,
  ) {}

  /** Milliseconds the caller must still wait before trying `key`; 0 when it may try now. */
  waitMs(key: string): number {
    const entry = this.failures.get(key);
    if (!entry) return 0;
    const now = this.clock();
    if (now - entry.first > this.windowMs && now >= entry.until) {
      this.failures.delete(key);
      return 0;
    }
    return Math.max(0, entry.until - now);
  }

  fail(key: string): void {
    const now = this.clock();
    const entry = this.failures.get(key) ?? { count: 0, first: now, until: 0 };
    entry.count += 1;
    if (entry.count >= this.freeAttempts) {
      const delay = Math.min(this.maxDelayMs, 1000 * 2 ** (entry.count - this.freeAttempts));
      entry.until = now + delay;
    }
    this.failures.set(key, entry);
    if (this.failures.size > 100_000) this.prune(now);
  }

  succeed(key: string): void {
    this.failures.delete(key);
  }

  private prune(now: number): void {
    for (const [key, entry] of this.failures) {
      if (now - entry.first > this.windowMs && now >= entry.until) this.failures.delete(key);
    }
  }
}
