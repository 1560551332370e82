import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { readComplianceConfig } from '../domain/compliance/config.js';
import { ComplianceUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { StoreLocation } from '../store/store-url.js';
import type { ExportResult, SearchResult } from './ediscovery.js';
import type { ComplianceThreadData, FromThread, ToThread } from './thread-protocol.js';
import type { Hold, NewHold, RecordQuery } from './types.js';
import {
  EDISCOVERY_FOLDER,
  type ComplianceStatus,
  type PurgeResult,
  type WorkerThreadStatus,
} from './worker.js';

export interface ComplianceThreadOptions {
  /** The main thread's chat store: takes the outbox deletes, answers the status while the thread is down. */
  chat: Store;
  /** Where the thread opens the chat store again. */
  chatLocation: StoreLocation;
  sqliteSynchronous?: 'full' | 'normal';
  /** The compliance store: compliance.db, or a PostgreSQL database of its own. */
  complianceLocation: StoreLocation;
  /** Who holds the compliance worker lease; unique per front end in a pool (default `standard`). */
  holder?: string;
  /** How long the worker lease lasts unrenewed, in ms (PERCH_COMPLIANCE_LEASE_MS; default 30 s). */
  leaseTtlMs?: number;
  outputRoot: string;
  adapterDir: string;
  pollMs?: number;
  runIntervalSeconds?: number;
  log: Logger;
  /**
   * SQLite: the thread's writes to the chat store (deleting drained outbox rows, recording purges)
   * are made by the main thread's store, in its group commit (default), instead of by the
   * thread's own connection, which would contend for the write lock (bench/README.md has the
   * measurement). PostgreSQL: always made by the thread.
   */
  writeOnMain?: boolean;
  /** First restart delay after the thread dies, doubled at each death up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/** A thread that lived this long before it died restarts after the first delay again. */
const HEALTHY_MS = 60_000;
/** How long stop() lets the thread finish its step before it is terminated. */
const STOP_GRACE_MS = 15_000;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

const here = import.meta.url;
const fromSource = here.endsWith('.ts');

/**
 * The worker's entry: compiled JS next to this file, or (running from source through tsx) the
 * TypeScript file loaded with tsx registered in the thread first, since a worker thread does not
 * inherit the main thread's module hooks on Node 20.
 */
function spawnThread(data: ComplianceThreadData): Worker {
  const entry = new URL(fromSource ? './worker-thread.ts' : './worker-thread.js', here);
  if (!fromSource) return new Worker(entry, { workerData: data });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot =
    `import(${JSON.stringify(tsx)})` +
    `.then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * The compliance worker run in a `worker_threads` thread with its own SQLite connections, so that
 * draining the outbox and writing compliance.db never stalls the event loop that serves chat.
 * The admin routes reach it by messages. A thread that dies is logged and started again with
 * backoff; its progress lives in the stores (outbox, compliance.db, adapter cursors), so nothing
 * is lost or repeated.
 */
export class ComplianceThread {
  private thread: Worker | undefined;
  private exited: Promise<void> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private state: WorkerThreadStatus['state'] = 'stopped';
  private restarts = 0;
  private lastExit: string | null = null;
  private lastExitAt: number | null = null;
  private backoff: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly data: ComplianceThreadData;

  constructor(private readonly o: ComplianceThreadOptions) {
    this.backoff = o.backoffMs ?? 1000;
    this.data = {
      chat: o.chatLocation,
      sqliteSynchronous: o.sqliteSynchronous,
      compliance: o.complianceLocation,
      holder: o.holder ?? 'standard',
      leaseTtlMs: o.leaseTtlMs,
      outputRoot: o.outputRoot,
      adapterDir: o.adapterDir,
      pollMs: o.pollMs,
      runIntervalSeconds: o.runIntervalSeconds,
      logLevel: o.log.level,
      writeOnMain: o.chatLocation.dialect === 'sqlite' && (o.writeOnMain ?? true),
    };
  }

  /** Starts the thread (it drains every pollMs and runs adapters when due). */
  start(): void {
    if (this.thread || this.stopping) return;
    const startedAt = Date.now();
    const t = spawnThread(this.data);
    this.thread = t;
    this.state = 'running';
    let error: Error | undefined;
    t.on('message', (m: FromThread) => this.onMessage(t, m));
    t.on('error', (err) => {
      error = err;
      this.o.log.error({ err }, 'compliance worker thread crashed');
    });
    this.exited = new Promise((resolve) => {
      t.once('exit', (code) => {
        this.thread = undefined;
        const why = `exit code ${code}${error ? `: ${error.message}` : ''}`;
        for (const p of this.pending.values()) {
          p.reject(new ComplianceUnavailableError(`the compliance worker thread ended (${why})`));
        }
        this.pending.clear();
        if (this.stopping) {
          this.state = 'stopped';
        } else {
          this.restarts += 1;
          this.lastExit = why;
          this.lastExitAt = Date.now();
          if (Date.now() - startedAt >= HEALTHY_MS) this.backoff = this.o.backoffMs ?? 1000;
          const delay = this.backoff;
          this.backoff = Math.min(this.backoff * 2, this.o.maxBackoffMs ?? 60_000);
          this.state = 'restarting';
          this.o.log.error(
            { exit: why, restartInMs: delay, restarts: this.restarts },
            'compliance worker thread ended; restarting',
          );
          this.restartTimer = setTimeout(() => {
            this.restartTimer = undefined;
            this.start();
          }, delay);
        }
        resolve();
      });
    });
  }

  /** Lets the thread finish its step, close its stores and end (terminated after a grace). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const t = this.thread;
    if (t) {
      this.post(t, { type: 'stop' });
      const grace = setTimeout(() => {
        this.o.log.warn('compliance worker thread did not stop in time; terminating it');
        void t.terminate();
      }, STOP_GRACE_MS);
      await this.exited;
      clearTimeout(grace);
    }
    this.state = 'stopped';
  }

  /** Drains the outbox and runs every enabled adapter now, whatever the interval. */
  async runNow(): Promise<void> {
    await this.call('runNow');
  }

  /** Purges records past the retention period now (see ComplianceWorker.purge). */
  purge(actorId: number | null): Promise<PurgeResult> {
    return this.call('purge', actorId);
  }

  placeHold(hold: NewHold): Promise<Hold> {
    return this.call('placeHold', hold);
  }

  releaseHold(
    id: number,
    by: string,
    at: number,
    reason: string | null,
  ): Promise<Hold | undefined> {
    return this.call('releaseHold', id, by, at, reason);
  }

  listHolds(includeReleased: boolean): Promise<Hold[]> {
    return this.call('listHolds', includeReleased);
  }

  /** eDiscovery: one page of matching records. */
  search(q: RecordQuery): Promise<SearchResult> {
    return this.call('search', q);
  }

  /** eDiscovery: every matching record written to one file in the eDiscovery folder. */
  exportRecords(
    q: Omit<RecordQuery, 'limit' | 'afterId'>,
    format: 'xml' | 'jsonl',
  ): Promise<ExportResult> {
    return this.call('exportRecords', q, format);
  }

  /** Where an eDiscovery export file of this name is (whether or not it exists). */
  exportPath(file: string): string {
    return path.join(this.o.outputRoot, EDISCOVERY_FOLDER, file);
  }

  /** The worker's status, or (while the thread is restarting) what the main thread knows. */
  async status(): Promise<ComplianceStatus> {
    if (this.thread) {
      try {
        const s = await this.call<ComplianceStatus>('status');
        return { ...s, worker: this.threadStatus() };
      } catch (err) {
        if (!(err instanceof ComplianceUnavailableError)) throw err;
      }
    }
    const config = await readComplianceConfig(this.o.chat);
    const why = `the compliance worker thread is ${this.state}${this.lastExit ? ` (last exit: ${this.lastExit})` : ''}`;
    return {
      backlog: await this.o.chat.countActivity(),
      store: { available: false, error: why },
      captured: null,
      lastRecordId: null,
      lastCaptureAt: null,
      lastError: why,
      runInterval: this.o.runIntervalSeconds ?? config.runInterval,
      adapters: config.adapters.map((a) => ({
        name: a.name,
        type: a.type,
        enabled: a.enabled,
        cursor: null,
        behind: null,
        pending: null,
        runs: 0,
        recordsExported: 0,
        lastRunAt: null,
        lastSuccessAt: null,
        lastError: null,
        lastErrorAt: null,
      })),
      worker: this.threadStatus(),
    };
  }

  /** Calls an operation of the worker thread; fails with compliance_unavailable while it is down. */
  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const t = this.thread;
    if (!t) {
      return Promise.reject(
        new ComplianceUnavailableError(`the compliance worker thread is ${this.state}`),
      );
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post(t, { type: 'call', id, op, args });
    });
  }

  private threadStatus(): WorkerThreadStatus {
    return {
      state: this.state,
      threadId: this.thread?.threadId ?? null,
      restarts: this.restarts,
      lastExit: this.lastExit,
      lastExitAt: this.lastExitAt === null ? null : new Date(this.lastExitAt).toISOString(),
    };
  }

  private post(t: Worker, m: ToThread): void {
    t.postMessage(m);
  }

  private onMessage(t: Worker, m: FromThread): void {
    if (m.type === 'result') {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error === undefined) p?.resolve(m.value);
      else p?.reject(new Error(m.error));
    } else if (m.type === 'chat') {
      const done =
        m.op === 'deleteActivity'
          ? this.o.chat.deleteActivity(...m.args)
          : this.o.chat.recordActivity(...m.args);
      done.then(
        () => this.post(t, { type: 'chat-done', id: m.id }),
        (err: unknown) => this.post(t, { type: 'chat-done', id: m.id, error: message(err) }),
      );
    }
  }
}
