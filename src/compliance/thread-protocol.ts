/**
 * Messages between the server's main thread and the compliance worker thread
 * (src/compliance/compliance-thread.ts ↔ src/compliance/worker-thread.ts).
 */
import type { ActivityRecord } from '../store/store.js';
import type { StoreLocation } from '../store/store-url.js';

/** What the worker thread is started with (`workerData`); plain data only. */
export interface ComplianceThreadData {
  /** The chat store, opened again by the thread on its own connection(s). */
  chat: StoreLocation;
  sqliteSynchronous?: 'full' | 'normal';
  /** The compliance store: compliance.db, or a PostgreSQL database of its own. */
  compliance: StoreLocation;
  /** Who holds the compliance worker lease (unique per front end in a pool). */
  holder: string;
  /** How long the lease lasts unrenewed, in ms. */
  leaseTtlMs?: number;
  outputRoot: string;
  adapterDir: string;
  pollMs?: number;
  runIntervalSeconds?: number;
  logLevel: string;
  /**
   * The thread's writes to the chat store (deleting drained outbox rows, recording purges) are
   * made by the main thread's store (joining its SQLite group commit) rather than by the thread's
   * own connection.
   */
  writeOnMain: boolean;
}

export type ToThread =
  | { type: 'call'; id: number; op: string; args: unknown[] }
  | { type: 'chat-done'; id: number; error?: string }
  | { type: 'stop' };

export type FromThread =
  | { type: 'result'; id: number; value?: unknown; error?: string }
  | { type: 'chat'; id: number; op: 'deleteActivity'; args: [ids: number[]] }
  | { type: 'chat'; id: number; op: 'recordActivity'; args: [record: ActivityRecord] };
