/**
 * The result math of bench:xmpp, kept apart from the sockets so that it can be tested on its own
 * terms. XMPP multi-user chat has no room sequence numbers, so each message body carries
 * `<sent-at ms> <sender index> <sender's counter>`; a server delivers one sender's messages to a
 * room in order, so per receiver and sender a counter at or below the last one seen is a
 * duplicate. Loss is counted against what was sent: every occupant (the sender included, who gets
 * its message reflected, XEP-0045 §7.4) should receive every message sent to its room after all
 * joined; what it did not receive (counted once) is lost.
 */

/** The body of a benchmark message. */
export function messageBody(sentAt: number, sender: number, counter: number): string {
  return `${sentAt.toFixed(1)} ${sender} ${counter}`;
}

/** The fields of a benchmark message body, or undefined for any other text. */
export function parseBody(
  body: string,
): { sentAt: number; sender: number; counter: number } | undefined {
  const parts = body.split(' ');
  if (parts.length !== 3) return undefined;
  const [sentAt, sender, counter] = parts.map(Number) as [number, number, number];
  if (![sentAt, sender, counter].every(Number.isFinite)) return undefined;
  return { sentAt, sender, counter };
}

/** What one occupant (one connection) received in its room. */
export class ReceiverTally {
  /** Distinct messages received. */
  distinct = 0;
  duplicated = 0;
  private readonly last = new Map<number, number>();

  /** Records one received message; false when it repeats one already received. */
  record(sender: number, counter: number): boolean {
    const last = this.last.get(sender) ?? 0;
    if (counter <= last) {
      this.duplicated += 1;
      return false;
    }
    this.last.set(sender, counter);
    this.distinct += 1;
    return true;
  }

  /** Messages sent to the room that this occupant never received. */
  lost(sentToRoom: number): number {
    return Math.max(0, sentToRoom - this.distinct);
  }
}

/** Adds per-room counts of several generators together. */
export function sumCounts(parts: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Rooms of the given sizes, cycled, filled with user indexes in order: [[0..19], [20..39], ...]. */
export function roomLayout(users: number, sizes: number[]): number[][] {
  const rooms: number[][] = [];
  let next = 0;
  while (next < users) {
    const size = sizes[rooms.length % sizes.length]!;
    const members: number[] = [];
    for (let i = 0; i < size && next < users; i++) members.push(next++);
    rooms.push(members);
  }
  return rooms;
}

/** `b` as a multiple of `a` (two decimals), or undefined when either is missing or `a` is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || a === 0) return undefined;
  return +(b / a).toFixed(2);
}

/**
 * Server memory per connection from RSS readings (MB) taken before the first connection, once a
 * first part of the connections was up, and once all were. `kib_per_connection` is the marginal
 * cost, measured over the connections made after the first part: it leaves out what a server
 * spends once, on its first sign-ins (thread pools, caches, a managed heap sizing itself), which
 * the whole growth divided by the connection count spreads over them and so overstates at small
 * counts. `rss_growth_kib_per_connection` is that whole growth per connection.
 */
export function memoryPerConnection(m: {
  baselineMb: number;
  midMb: number;
  afterMb: number;
  midConnections: number;
  connections: number;
}): { kib_per_connection: number; rss_growth_kib_per_connection: number } {
  const kib = (mb: number, n: number) => +((mb * 1024) / Math.max(1, n)).toFixed(1);
  return {
    kib_per_connection: kib(m.afterMb - m.midMb, m.connections - m.midConnections),
    rss_growth_kib_per_connection: kib(m.afterMb - m.baselineMb, m.connections),
  };
}
