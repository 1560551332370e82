import fs from 'node:fs/promises';
import path from 'node:path';
import { readComplianceConfig, type ComplianceConfig } from '../domain/compliance/config.js';
import type { Logger } from '../logger.js';
import type { ActivityRow, Store } from '../store/store.js';
import { DirectoryOutput, toConversations, type AdapterSettings } from './adapter.js';
import {
  exportRecords,
  searchRecords,
  type ExportResult,
  type SearchResult,
} from './ediscovery.js';
import { loadAdapter } from './load-adapter.js';
import type {
  AdapterState,
  Hold,
  LeaseFence,
  NewHold,
  RecordQuery,
  ComplianceRoom,
  ComplianceStore,
  ComplianceUser,
  NewComplianceRecord,
} from './types.js';

/** What the worker needs of the chat store: its outbox, and the names of users and rooms. */
export type ComplianceChat = Pick<
  Store,
  | 'readActivity'
  | 'deleteActivity'
  | 'recordActivity'
  | 'countActivity'
  | 'getPrincipals'
  | 'getRoom'
  | 'getCategory'
  | 'getSettings'
>;

export interface ComplianceWorkerOptions {
  /** The chat store, whose outbox is drained. */
  chat: ComplianceChat;
  /** Opens the compliance store; called again after a failure to open. */
  openStore: () => Promise<ComplianceStore>;
  log: Logger;
  /** Folder under which adapters' output directories are resolved. */
  outputRoot: string;
  /** Folder holding custom adapter modules. */
  adapterDir: string;
  /** How often the outbox is drained, in ms. */
  pollMs?: number;
  /** Overrides the configured RunInterval (seconds); for tests and operations. */
  runIntervalSeconds?: number;
  /** Outbox rows moved per step. */
  batchSize?: number;
  /** Compliance records deleted per purge transaction. */
  purgeBatchSize?: number;
  /** Who holds the worker lease: stable for a Standard Edition data dir. */
  holder?: string;
  /** How long the lease lasts unrenewed (PERCH_COMPLIANCE_LEASE_MS; default 30 s). */
  leaseTtlMs?: number;
  now?: () => number;
  /** Called at each step of a capture or run (tests stop the process at a chosen one). */
  onStep?: (step: string) => void;
}

export interface AdapterStatus {
  name: string;
  type: string;
  enabled: boolean;
  cursor: number | null;
  behind: number | null;
  pending: { start: number; end: number } | null;
  runs: number;
  recordsExported: number;
  lastRunAt: string | null;
  lastSuccessAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
}

export interface ComplianceStatus {
  /** Records waiting in the chat store's outbox. */
  backlog: number;
  store: { available: boolean; error: string | null };
  /** Records held by the compliance store and the newest record id (null when unavailable). */
  captured: number | null;
  lastRecordId: number | null;
  lastCaptureAt: string | null;
  lastError: string | null;
  runInterval: number;
  adapters: AdapterStatus[];
  /** The last retention purge since the worker started (null: none yet). */
  lastPurge?: PurgeResult | null;
  /** The worker thread that does all of the above (set by ComplianceThread). */
  worker?: WorkerThreadStatus;
}

export interface WorkerThreadStatus {
  /** `running`, `restarting` (it died; a new one starts after a backoff) or `stopped`. */
  state: 'running' | 'restarting' | 'stopped';
  /** The thread id of the running worker (never 0, the main thread's). */
  threadId: number | null;
  /** How many times the thread died and was started again. */
  restarts: number;
  lastExit: string | null;
  lastExitAt: string | null;
}

/** Folder under the compliance output folder where eDiscovery exports are written. */
export const EDISCOVERY_FOLDER = 'ediscovery';

/** How long the worker lease lasts unrenewed by default, in ms (PERCH_COMPLIANCE_LEASE_MS). */
export const LEASE_TTL_MS = 30_000;

/** How often the retention purge runs on its own (it also runs on POST /compliance/purge). */
const PURGE_EVERY_MS = 3_600_000;
/** Records deleted per purge transaction: short, so that capture and runs interleave. */
const PURGE_BATCH = 1000;

/** What a retention purge did. */
export interface PurgeResult {
  retentionDays: number | null;
  /** Records that occurred before this were eligible (null: no retention set, nothing purged). */
  cutoff: string | null;
  /** The lowest cursor of the enabled adapters: nothing past it is purged. */
  exportedUpTo: number;
  purged: number;
  /** Records past the retention period kept because a legal hold covers them. */
  keptUnderHold: number;
  /** Records past the retention period kept because an enabled adapter has not exported them. */
  keptUnexported: number;
  startedAt: string;
  finishedAt: string;
}

/** A run's write was refused: another worker holds the lease, or this one's has expired. */
class LeaseLostError extends Error {
  constructor(adapter: string, what: string) {
    super(`compliance worker lease lost: ${what} of adapter ${adapter} refused`);
  }
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Moves the chat store's activity outbox into the compliance store and runs the adapters every
 * RunInterval.
 *
 * Capture copies a batch into the compliance store (where the outbox id is unique, so a copy
 * repeated after a crash adds nothing) and only then deletes it from the outbox. When the
 * compliance store is unavailable, records wait in the outbox and the worker retries with
 * backoff; chat is unaffected.
 *
 * A run first records its range (and settings) in the compliance store, writes its files under
 * names derived from the range start (temp name, fsync, rename), then moves the cursor. A run cut
 * short is redone with the same range and settings, so it rewrites the same files: no gap, no
 * duplicate.
 */
export class ComplianceWorker {
  private readonly o: Required<Omit<ComplianceWorkerOptions, 'runIntervalSeconds' | 'onStep'>> &
    Pick<ComplianceWorkerOptions, 'runIntervalSeconds' | 'onStep'>;
  private store: ComplianceStore | undefined;
  private storeError: string | null = null;
  private lastCaptureAt: number | null = null;
  private lastError: string | null = null;
  private readonly adapterErrors = new Map<string, { message: string; at: number }>();
  private lastPurgeAt: number | null = null;
  private lastPurge: PurgeResult | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(opts: ComplianceWorkerOptions) {
    this.o = {
      pollMs: 1000,
      batchSize: 500,
      purgeBatchSize: PURGE_BATCH,
      holder: 'standard',
      leaseTtlMs: LEASE_TTL_MS,
      now: Date.now,
      ...opts,
    };
  }

  /** Starts the background loop (drain every pollMs, run adapters when due). */
  start(): void {
    this.loop ??= this.run();
  }

  /** Stops the loop after the step in progress and closes the compliance store. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.exclusive(async () => {
      await this.store?.close().catch(() => undefined);
      this.store = undefined;
    });
  }

  /** Drains the outbox and runs every enabled adapter now, whatever the interval. */
  runNow(): Promise<void> {
    return this.exclusive(() => this.tick(true));
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async run(): Promise<void> {
    const log = this.o.log;
    let delay = this.o.pollMs;
    while (!this.abort.signal.aborted) {
      try {
        await this.exclusive(() => this.tick(false));
        delay = this.o.pollMs;
      } catch (err) {
        delay = Math.min(Math.max(delay * 2, 1000), 60_000);
        log.warn({ err: message(err), retryInMs: delay }, 'compliance worker: step failed');
      }
      // Each wait removes its abort listener when it ends, so that listeners do not pile up.
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          this.abort.signal.removeEventListener('abort', onAbort);
          resolve();
        }, delay);
        this.abort.signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  private step(name: string): void {
    this.o.onStep?.(name);
  }

  private async openStore(): Promise<ComplianceStore> {
    if (this.store) return this.store;
    try {
      const s = await this.o.openStore();
      const applied = await s.migrate();
      if (applied.length > 0) this.o.log.info({ migrations: applied }, 'compliance store migrated');
      this.store = s;
      this.storeError = null;
      return s;
    } catch (err) {
      this.storeError = message(err);
      throw err;
    }
  }

  private async tick(force: boolean): Promise<void> {
    let cs: ComplianceStore;
    try {
      cs = await this.openStore();
      if (!(await cs.acquireLease(this.o.holder, this.o.now(), this.o.leaseTtlMs))) return;
      await this.capture(cs);
      this.storeError = null;
    } catch (err) {
      this.storeError = this.lastError = message(err);
      throw err;
    }
    try {
      await this.runAdapters(cs, force);
    } catch (err) {
      // Stalled past the lease and fenced off: nothing more until the lease is held again.
      if (err instanceof LeaseLostError) return;
      throw err;
    }
    const config = await readComplianceConfig(this.o.chat);
    const now = this.o.now();
    if (
      config.retentionDays !== null &&
      (this.lastPurgeAt === null || now - this.lastPurgeAt >= PURGE_EVERY_MS)
    ) {
      this.lastPurgeAt = now;
      try {
        await this.purgeExpired(cs, config, null);
      } catch (err) {
        this.o.log.error({ err: message(err) }, 'compliance retention purge failed');
      }
    }
  }

  /**
   * Purges the records older than the retention period (none when it is not set), now, and
   * records the purge as a COMPLIANCE_PURGED event. `actorId`: the administrator who asked.
   */
  purge(actorId: number | null): Promise<PurgeResult> {
    return this.exclusive(async () => {
      const cs = await this.openStore();
      return this.purgeExpired(cs, await readComplianceConfig(this.o.chat), actorId);
    });
  }

  /** Runs `fn` with the compliance store, between the worker's own steps. */
  private withStore<T>(fn: (cs: ComplianceStore) => Promise<T>): Promise<T> {
    return this.exclusive(async () => fn(await this.openStore()));
  }

  placeHold(hold: NewHold): Promise<Hold> {
    return this.withStore((cs) => cs.placeHold(hold));
  }

  releaseHold(
    id: number,
    by: string,
    at: number,
    reason: string | null,
  ): Promise<Hold | undefined> {
    return this.withStore((cs) => cs.releaseHold(id, by, at, reason));
  }

  listHolds(includeReleased: boolean): Promise<Hold[]> {
    return this.withStore((cs) => cs.listHolds(includeReleased));
  }

  /** eDiscovery: one page of matching records. */
  async search(q: RecordQuery): Promise<SearchResult> {
    const config = await readComplianceConfig(this.o.chat);
    return this.withStore((cs) => searchRecords(cs, config, q));
  }

  /** eDiscovery: every matching record in one file under `<outputRoot>/ediscovery`. */
  async exportRecords(
    q: Omit<RecordQuery, 'limit' | 'afterId'>,
    format: 'xml' | 'jsonl',
  ): Promise<ExportResult> {
    const config = await readComplianceConfig(this.o.chat);
    const dir = path.join(this.o.outputRoot, EDISCOVERY_FOLDER);
    return this.withStore((cs) => exportRecords(cs, config, q, format, dir, this.o.now()));
  }

  /**
   * Deletes, a batch at a time, records older than the retention period that every enabled
   * adapter has exported and no active legal hold covers.
   */
  private async purgeExpired(
    cs: ComplianceStore,
    config: ComplianceConfig,
    actorId: number | null,
  ): Promise<PurgeResult> {
    const startedAt = this.o.now();
    const days = config.retentionDays;
    const cutoff = days === null ? null : startedAt - days * 86_400_000;
    // Never past what every enabled adapter has exported (a pending run's range included).
    let upToId = (await cs.stats()).lastId;
    for (const a of config.adapters) {
      if (a.enabled) upToId = Math.min(upToId, (await cs.getAdapterState(a.name))?.cursor ?? 0);
    }
    let purged = 0;
    let logged = 0;
    if (cutoff !== null) {
      for (;;) {
        const batch = this.o.purgeBatchSize;
        const n = await cs.purgeRecords(cutoff, upToId, batch);
        purged += n;
        this.step('purge:batch');
        if (purged - logged >= 10_000) {
          logged = purged;
          this.o.log.info({ purged, cutoff: iso(cutoff) }, 'compliance retention purge: progress');
        }
        if (n < batch) break;
      }
    }
    const kept = cutoff === null ? { held: 0, unexported: 0 } : await cs.countKept(cutoff, upToId);
    const result: PurgeResult = {
      retentionDays: days,
      cutoff: iso(cutoff),
      exportedUpTo: upToId,
      purged,
      keptUnderHold: kept.held,
      keptUnexported: kept.unexported,
      startedAt: iso(startedAt)!,
      finishedAt: iso(this.o.now())!,
    };
    this.lastPurge = result;
    if (purged > 0 || actorId !== null) {
      this.o.log.info(result, 'compliance retention purge');
      await this.o.chat.recordActivity({
        kind: 'COMPLIANCE_PURGED',
        actorId,
        roomId: null,
        createdAt: this.o.now(),
        payload: { ...result },
      });
    }
    return result;
  }

  /** Moves every outbox row into the compliance store, a batch at a time. */
  private async capture(cs: ComplianceStore): Promise<void> {
    for (;;) {
      const rows = await this.o.chat.readActivity(0, this.o.batchSize);
      if (rows.length === 0) break;
      const records = await this.enrich(rows);
      await cs.insertRecords(records, this.o.now());
      this.step('capture:copied');
      await this.o.chat.deleteActivity(rows.map((r) => r.id));
      this.step('capture:deleted');
      this.lastCaptureAt = this.o.now();
      if (rows.length < this.o.batchSize) break;
    }
  }

  /** Adds the user and room details that Lync's format and the adapter options need. */
  private async enrich(rows: ActivityRow[]): Promise<NewComplianceRecord[]> {
    const chat = this.o.chat;
    const actorIds = [...new Set(rows.flatMap((r) => (r.actorId === null ? [] : [r.actorId])))];
    const users = new Map<number, ComplianceUser>();
    for (const p of await chat.getPrincipals(actorIds)) {
      users.set(p.id, {
        id: p.id,
        name: p.name,
        displayName: p.displayName,
        email: p.email,
        isAdmin: p.isAdmin,
        disabled: p.disabled,
        source: p.source,
      });
    }
    const rooms = new Map<number, ComplianceRoom | null>();
    const categories = new Map<number, { name: string; history: boolean } | undefined>();
    // A room deleted before its records were moved is known from its own events' payloads.
    const fromPayload = new Map<number, ComplianceRoom>();
    for (const r of rows) {
      if (r.roomId !== null && typeof r.payload.name === 'string' && r.kind.startsWith('ROOM_')) {
        fromPayload.set(r.roomId, {
          id: r.roomId,
          name: r.payload.name,
          description: null,
          categoryId: null,
          categoryName: typeof r.payload.category === 'string' ? r.payload.category : null,
          privacy: typeof r.payload.privacy === 'string' ? r.payload.privacy : null,
          type: typeof r.payload.type === 'string' ? r.payload.type : null,
          disabled: null,
          history: null,
        });
      }
    }
    const roomOf = async (id: number): Promise<ComplianceRoom | null> => {
      if (rooms.has(id)) return rooms.get(id)!;
      const room = await chat.getRoom(id);
      let out: ComplianceRoom | null = fromPayload.get(id) ?? null;
      if (room) {
        if (!categories.has(room.categoryId)) {
          const c = await chat.getCategory(room.categoryId);
          categories.set(room.categoryId, c && { name: c.name, history: c.history });
        }
        const c = categories.get(room.categoryId);
        out = {
          id: room.id,
          name: room.name,
          description: room.description,
          categoryId: room.categoryId,
          categoryName: c?.name ?? null,
          privacy: room.privacy,
          type: room.type,
          disabled: room.disabled,
          history: c?.history ?? null,
        };
      }
      rooms.set(id, out);
      return out;
    };
    const out: NewComplianceRecord[] = [];
    for (const r of rows) {
      out.push({
        outboxId: r.id,
        kind: r.kind,
        occurredAt: r.createdAt,
        actorId: r.actorId,
        roomId: r.roomId,
        actor: r.actorId === null ? null : (users.get(r.actorId) ?? null),
        room: r.roomId === null ? null : await roomOf(r.roomId),
        payload: r.payload,
      });
    }
    return out;
  }

  private settings(a: ComplianceConfig['adapters'][number], c: ComplianceConfig): AdapterSettings {
    return {
      ...a,
      uriDomain: c.uriDomain,
      outputDirectory: path.resolve(this.o.outputRoot, a.outputDirectory ?? a.name),
    };
  }

  private intervalMs(c: ComplianceConfig): number {
    return (this.o.runIntervalSeconds ?? c.runInterval) * 1000;
  }

  private async runAdapters(cs: ComplianceStore, force: boolean): Promise<void> {
    const config = await readComplianceConfig(this.o.chat);
    const now = this.o.now();
    for (const a of config.adapters) {
      if (!a.enabled) continue;
      const state = await cs.getAdapterState(a.name);
      const failed = this.adapterErrors.get(a.name);
      const due =
        force ||
        state === undefined ||
        state.pending !== null ||
        state.lastRunAt === null ||
        now - state.lastRunAt >= this.intervalMs(config) ||
        // A failed run is retried sooner than a whole interval, with backoff up to a minute.
        (failed !== undefined && now - failed.at >= Math.min(this.intervalMs(config), 60_000));
      if (!due) continue;
      try {
        await this.runAdapter(cs, this.settings(a, config), config.maxRecordsPerRun, state);
        this.adapterErrors.delete(a.name);
      } catch (err) {
        if (err instanceof LeaseLostError) {
          this.o.log.warn(
            { holder: this.o.holder, err: err.message },
            'compliance worker: lease lost; it stops until it holds the lease again',
          );
          throw err;
        }
        const msg = message(err);
        this.adapterErrors.set(a.name, { message: msg, at: now });
        this.o.log.error({ adapter: a.name, err: msg }, 'compliance adapter run failed');
        await cs.recordError(a.name, msg, now).catch(() => undefined);
      }
    }
  }

  private get fence(): LeaseFence {
    return { holder: this.o.holder, ttlMs: this.o.leaseTtlMs };
  }

  /**
   * After a commit refused by the lease fence: the files this worker renamed for the run
   * `start..end` are removed unless the compliance store records exactly that run as pending or
   * exported. It normally does: a run is begun under the lease (fenced too), and the worker that
   * takes over redoes a pending run with its range and settings, so it writes the same names with
   * the same content, and removing them could remove that worker's output (a gap).
   */
  private async dropStaleOutput(
    cs: ComplianceStore,
    name: string,
    start: number,
    end: number,
    renamed: string[],
  ): Promise<void> {
    const state = await cs.getAdapterState(name);
    const owned =
      state !== undefined &&
      ((state.pending?.start === start && state.pending.end === end) || state.cursor >= end);
    if (owned) return;
    for (const file of renamed) await fs.rm(file, { force: true });
    this.o.log.warn(
      { adapter: name, files: renamed.map((f) => path.basename(f)) },
      'compliance worker: removed the output of a run refused by the lease fence',
    );
  }

  /** Exports everything past the adapter's cursor, one batch of at most `max` records at a time. */
  private async runAdapter(
    cs: ComplianceStore,
    configured: AdapterSettings,
    max: number,
    initial: AdapterState | undefined,
  ): Promise<void> {
    let state = initial;
    const fence = this.fence;
    const now = () => this.o.now();
    for (;;) {
      let start: number;
      let end: number;
      let settings: AdapterSettings;
      const redo = state?.pending != null;
      if (state?.pending) {
        // Redo the interrupted run exactly: same range, same settings, so the same file names.
        ({ start, end } = state.pending);
        settings = JSON.parse(state.pending.config) as AdapterSettings;
        // Still ours? (Fenced like a new run, before any file is written.)
        if (!(await cs.beginRun(settings.name, start, end, state.pending.config, now(), fence))) {
          throw new LeaseLostError(settings.name, 'the redo');
        }
      } else {
        start = state?.cursor ?? 0;
        const next = await cs.readRecords(start, max);
        if (next.length === 0) {
          if (!(await cs.commitRun(configured.name, start, 0, now(), fence))) {
            throw new LeaseLostError(configured.name, 'the commit');
          }
          return;
        }
        end = next[next.length - 1]!.id;
        settings = configured;
        if (
          !(await cs.beginRun(settings.name, start, end, JSON.stringify(settings), now(), fence))
        ) {
          throw new LeaseLostError(settings.name, 'the start of a run');
        }
        this.step('run:begun');
      }
      const records = await cs.readRecords(start, Math.max(end - start, 1), end);
      const runId = `${settings.name}-${String(start + 1).padStart(12, '0')}`;
      const adapter = await loadAdapter(settings, this.o.adapterDir);
      const out = new DirectoryOutput(settings.outputDirectory, {
        afterWrite: () => this.step('run:file-written'),
      });
      await out.prepare();
      const renamed: string[] = [];
      const writer = {
        directory: out.directory,
        writeFile: async (name: string, data: string | Buffer) => {
          await out.writeFile(name, data);
          renamed.push(path.join(out.directory, name));
          this.step('run:file-renamed');
        },
      };
      await adapter.translate(
        {
          runId,
          firstId: records[0]?.id ?? start + 1,
          lastId: end,
          records,
          conversations: toConversations(records),
        },
        writer,
      );
      this.step('run:translated');
      if (!(await cs.commitRun(settings.name, end, records.length, now(), fence))) {
        await this.dropStaleOutput(cs, settings.name, start, end, renamed);
        throw new LeaseLostError(settings.name, 'the commit');
      }
      this.step('run:committed');
      this.o.log.info(
        { adapter: settings.name, records: records.length, from: start + 1, to: end },
        'compliance adapter run',
      );
      state = await cs.getAdapterState(settings.name);
      if (!redo && records.length < max) return;
    }
  }

  /** Backlog, store health, last run, and each adapter's cursor and errors. */
  async status(): Promise<ComplianceStatus> {
    const backlog = await this.o.chat.countActivity();
    const config = await readComplianceConfig(this.o.chat);
    let stats: { lastId: number; count: number } | null = null;
    let states: AdapterState[] = [];
    let available = false;
    try {
      await this.exclusive(async () => {
        const cs = await this.openStore();
        stats = await cs.stats();
        states = await cs.listAdapterStates();
      });
      available = this.storeError === null;
    } catch (err) {
      this.storeError = message(err);
    }
    const last = (stats as { lastId: number; count: number } | null)?.lastId ?? null;
    return {
      backlog,
      store: { available, error: this.storeError },
      captured: (stats as { lastId: number; count: number } | null)?.count ?? null,
      lastRecordId: last,
      lastCaptureAt: iso(this.lastCaptureAt),
      lastError: this.lastError,
      runInterval: this.o.runIntervalSeconds ?? config.runInterval,
      lastPurge: this.lastPurge,
      adapters: config.adapters.map((a) => {
        const s = states.find((x) => x.name === a.name);
        const err = this.adapterErrors.get(a.name);
        return {
          name: a.name,
          type: a.type,
          enabled: a.enabled,
          cursor: s?.cursor ?? (available ? 0 : null),
          behind: last === null ? null : last - (s?.cursor ?? 0),
          pending: s?.pending ? { start: s.pending.start, end: s.pending.end } : null,
          runs: s?.runs ?? 0,
          recordsExported: s?.recordsExported ?? 0,
          lastRunAt: iso(s?.lastRunAt ?? null),
          lastSuccessAt: iso(s?.lastSuccessAt ?? null),
          lastError: err?.message ?? s?.lastError ?? null,
          lastErrorAt: iso(err?.at ?? s?.lastErrorAt ?? null),
        };
      }),
    };
  }
}
