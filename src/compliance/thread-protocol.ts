/**
 * Messages between the server's main thread and the compliance worker thread
 * (src/compliance/compliance-thread.ts ↔ src/compliance/worker-thread.ts).
 */
import type { StoreLocation } from '../store/store-url.js';

/** What the worker thread is started with (`workerData`); plain data only. */
export interface ComplianceThreadData {
  /** The chat store, opened again by the thread on its own connection(s). */
  chat: StoreLocation;
  sqliteSynchronous?: 'full' | 'normal';
  /** Path of compliance.db. */
  complianceFile: string;
  outputRoot: string;
  adapterDir: string;
  pollMs?: number;
  runIntervalSeconds?: number;
  logLevel: string;
  /**
   * Drained outbox rows are deleted by the main thread's store (joining its SQLite group commit)
   * rather than by the thread's own connection.
   */
  deleteOnMain: boolean;
}

export type ToThread =
  | { type: 'call'; id: number; op: string; args: unknown[] }
  | { type: 'deleted'; id: number; error?: string }
  | { type: 'stop' };

export type FromThread =
  | { type: 'result'; id: number; value?: unknown; error?: string }
  | { type: 'delete'; id: number; ids: number[] };
