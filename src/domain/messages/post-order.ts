/**
 * Publishes each room's posts in sequence order, whatever order their transactions end in.
 *
 * Two posts to one room take their sequence numbers one after the other (on PostgreSQL the row
 * lock of `UPDATE rooms ... RETURNING` holds the second until the first commits), but each
 * transaction runs on its own connection, and on a busy machine the answer to the first COMMIT
 * can be read after the second transaction has ended. The hub never sends a connection a
 * message at or below the last one it sent it (that is how it avoids duplicates after a join's
 * backfill), so a post published after a later one of its room would be lost to live readers.
 *
 * A post takes a turn as soon as its sequence number is known (inside its transaction), waits
 * after its commit for the room's turns with lower numbers to end, publishes, and ends its turn.
 * A post whose transaction fails ends its turn without publishing. Only posts made by this
 * process take turns; posts of other front ends of a pool reach the hub through the pool's
 * fan-out, which orders by sequence itself (src/cluster/fan-out.ts).
 */
export class PostOrder {
  private readonly rooms = new Map<number, Set<PostTurn>>();

  /** The turn of the post that took `seq` in the room. */
  take(roomId: number, seq: number): PostTurn {
    let turns = this.rooms.get(roomId);
    if (!turns) this.rooms.set(roomId, (turns = new Set()));
    const turn = new PostTurn(seq, () => {
      turns.delete(turn);
      if (turns.size === 0 && this.rooms.get(roomId) === turns) this.rooms.delete(roomId);
    });
    turns.add(turn);
    return turn;
  }

  /**
   * What a turn must wait for: undefined when no post of the room with a lower number is still
   * under way here (the usual case, which costs no extra turn of the event loop).
   */
  earlier(roomId: number, turn: PostTurn): Promise<unknown> | undefined {
    const turns = this.rooms.get(roomId);
    if (!turns) return undefined;
    let waits: Promise<void>[] | undefined;
    for (const other of turns) {
      // A rolled-back post's number is taken again by the next post: equal numbers do not wait.
      if (other.seq < turn.seq) (waits ??= []).push(other.ended);
    }
    return waits && Promise.all(waits);
  }

  /** Posts under way in every room (for tests and diagnostics). */
  pending(): number {
    let n = 0;
    for (const turns of this.rooms.values()) n += turns.size;
    return n;
  }
}

export class PostTurn {
  /** Settles when the turn ends: its post was published, or failed. */
  readonly ended: Promise<void>;
  private finish!: () => void;
  private done = false;

  constructor(
    readonly seq: number,
    private readonly forget: () => void,
  ) {
    this.ended = new Promise((resolve) => (this.finish = resolve));
  }

  /** Ends the turn; later calls do nothing. */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.forget();
    this.finish();
  }
}
