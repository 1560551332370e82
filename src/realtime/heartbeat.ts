/** What the heartbeat needs of a connection: its socket, and whether it answered the last ping. */
export interface Beating {
  /** Set when a pong arrives; the heartbeat clears it when it pings. */
  alive: boolean;
  ws: { ping(): void; terminate(): void };
}

/** How often the heartbeat wakes up at most: it serves one slot of connections each time. */
const TICK_MS = 100;
/** Most slots (30 s / 100 ms): 19,500 connections make 65 pings a tick. */
const MAX_SLOTS = 300;

/**
 * Pings every connection once per period and ends those that did not answer the previous ping.
 * The connections are spread over slots, one slot served per tick (every period / slots ms), so
 * a front end with 20,000 sockets writes a few dozen pings at a time instead of 20,000 in one
 * turn of the event loop (about a second of writes, during which no message was delivered: that
 * was the p99 of bench:load's 19,500 users). Each connection is still pinged once per period.
 */
export class Heartbeat<C extends Beating> {
  private readonly slots: Set<C>[];
  private readonly slotOf = new Map<C, number>();
  private nextSlot = 0;
  private cursor = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    periodMs: number,
    slots = Math.min(MAX_SLOTS, Math.max(1, Math.floor(periodMs / TICK_MS))),
  ) {
    this.slots = Array.from({ length: slots }, () => new Set<C>());
    this.timer = setInterval(() => this.tick(), periodMs / slots);
    this.timer.unref();
  }

  add(conn: C): void {
    const slot = this.nextSlot;
    this.nextSlot = (slot + 1) % this.slots.length;
    this.slots[slot]!.add(conn);
    this.slotOf.set(conn, slot);
  }

  delete(conn: C): void {
    const slot = this.slotOf.get(conn);
    if (slot === undefined) return;
    this.slots[slot]!.delete(conn);
    this.slotOf.delete(conn);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Serves the next slot: ends the connections that missed their last ping, pings the others. */
  tick(): void {
    const slot = this.slots[this.cursor]!;
    this.cursor = (this.cursor + 1) % this.slots.length;
    for (const conn of slot) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      try {
        conn.ws.ping();
      } catch {
        conn.ws.terminate();
      }
    }
  }
}
