/**
 * The compliance store: where captured chat actions live outside the chat store, and where each
 * adapter keeps its cursor. One interface for SQLite (Standard Edition, `compliance.db`) and
 * PostgreSQL (an Enterprise pool's separate database), like the chat store's.
 */
import type { Dialect } from '../store/store.js';

/** The acting user as captured (Lync's Sender, plus details for AddUserDetails). */
export interface ComplianceUser {
  id: number;
  name: string;
  displayName: string;
  email: string | null;
  isAdmin: boolean;
  disabled: boolean;
  source: string;
}

/** The room as captured (Lync's Channel, plus details for AddChatRoomDetails). */
export interface ComplianceRoom {
  id: number;
  name: string;
  description: string | null;
  categoryId: number | null;
  categoryName: string | null;
  privacy: string | null;
  type: string | null;
  disabled: boolean | null;
  /** Whether the room's category keeps history (Lync's `islogged`); null when unknown. */
  history: boolean | null;
}

/** A chat action on its way into the compliance store, keyed by its outbox id. */
export interface NewComplianceRecord {
  outboxId: number;
  kind: string;
  occurredAt: number;
  actorId: number | null;
  roomId: number | null;
  actor: ComplianceUser | null;
  room: ComplianceRoom | null;
  payload: Record<string, unknown>;
}

/** A captured chat action; `id` is the compliance sequence that adapter cursors follow. */
export interface ComplianceRecord extends NewComplianceRecord {
  id: number;
  capturedAt: number;
}

/** One adapter's progress: everything up to `cursor` has been delivered. */
export interface AdapterState {
  name: string;
  cursor: number;
  /** A run that was started and not committed: it is redone with exactly this range and config. */
  pending: { start: number; end: number; config: string } | null;
  runs: number;
  recordsExported: number;
  lastRunAt: number | null;
  lastSuccessAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
}

/** What a legal hold covers: records matching every criterion given (at least one is). */
export interface HoldScope {
  roomId: number | null;
  /** Every room of the category (records carry the category their room had when captured). */
  categoryId: number | null;
  /** The acting user of the records. */
  userId: number | null;
  /** Records that occurred at or after this time (ms). */
  from: number | null;
  /** Records that occurred at or before this time (ms). */
  to: number | null;
}

export interface NewHold extends HoldScope {
  reason: string;
  /** Login of the administrator who placed it. */
  placedBy: string;
  placedAt: number;
}

/** A legal hold: records it covers are never purged while it is active (not released). */
export interface Hold extends NewHold {
  id: number;
  releasedBy: string | null;
  releasedAt: number | null;
  releaseReason: string | null;
}

/** eDiscovery criteria; every one given must match. */
export interface RecordQuery {
  userId?: number;
  roomId?: number;
  /** occurred_at >= from (ms). */
  from?: number;
  /** occurred_at <= to (ms). */
  to?: number;
  kinds?: string[];
  /** Case-insensitive substring of the record's payload (text, original text, query, file name). */
  text?: string;
  /** Only records with a larger id (paging). */
  afterId?: number;
  limit: number;
}

/**
 * The lease a run's writes are fenced by: each is made only when `holder` holds the worker lease
 * and it has not expired, and renews it to `now + ttlMs` in the same transaction. A worker that
 * stalled past its lease (a GC pause, SIGSTOP, a frozen VM) and lost it to another front end
 * therefore cannot move an adapter's cursor or replace its pending run.
 */
export interface LeaseFence {
  holder: string;
  ttlMs: number;
}

export interface ComplianceStore {
  readonly dialect: Dialect;
  migrate(): Promise<string[]>;
  /** Inserts records; one whose outbox id is already stored is skipped. Returns how many were new. */
  insertRecords(records: NewComplianceRecord[], capturedAt: number): Promise<number>;
  /** Records with `afterId < id <= upToId`, oldest first. */
  readRecords(afterId: number, limit: number, upToId?: number): Promise<ComplianceRecord[]>;
  /** The id of the newest record (0 when empty) and how many there are. */
  stats(): Promise<{ lastId: number; count: number }>;
  getAdapterState(name: string): Promise<AdapterState | undefined>;
  listAdapterStates(): Promise<AdapterState[]>;
  /**
   * Remembers the range (and config) of a run before any of its output is written, in one
   * transaction with the lease check of `lease` (see LeaseFence). False, with nothing written,
   * when `lease.holder` does not hold an unexpired lease.
   */
  beginRun(
    name: string,
    start: number,
    end: number,
    config: string,
    now: number,
    lease: LeaseFence,
  ): Promise<boolean>;
  /**
   * Moves the cursor to `end` and clears the pending run, in one transaction with the lease check
   * of `lease`. False, with nothing written, when `lease.holder` does not hold an unexpired lease.
   */
  commitRun(
    name: string,
    end: number,
    exported: number,
    now: number,
    lease: LeaseFence,
  ): Promise<boolean>;
  /** Records that a run failed (the cursor stays where it was). */
  recordError(name: string, message: string, now: number): Promise<void>;
  /**
   * Takes or renews the pool-wide worker lease: true when `holder` holds it until `now + ttlMs`.
   * Another holder gets it only once it has expired.
   */
  acquireLease(holder: string, now: number, ttlMs: number): Promise<boolean>;
  placeHold(hold: NewHold): Promise<Hold>;
  /** Releases an active hold; undefined when there is no such hold. */
  releaseHold(id: number, by: string, at: number, reason: string | null): Promise<Hold | undefined>;
  getHold(id: number): Promise<Hold | undefined>;
  listHolds(includeReleased: boolean): Promise<Hold[]>;
  /**
   * Deletes at most `limit` records that occurred before `cutoff`, have `id <= upToId` and are
   * covered by no active hold, oldest first. Returns how many were deleted.
   */
  purgeRecords(cutoff: number, upToId: number, limit: number): Promise<number>;
  /** Records older than `cutoff` that a purge keeps: under an active hold, or past `upToId`. */
  countKept(cutoff: number, upToId: number): Promise<{ held: number; unexported: number }>;
  /** eDiscovery: records matching the query, oldest first. */
  searchRecords(q: RecordQuery): Promise<ComplianceRecord[]>;
  close(): Promise<void>;
}
