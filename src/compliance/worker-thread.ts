// The compliance worker thread (started by ComplianceThread, never imported by the server): it
// opens its own chat store and compliance.db connections, so that better-sqlite3's synchronous
// work and fsyncs happen here instead of on the event loop that serves chat.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createLogger } from '../logger.js';
import { openStore } from '../store/open-store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { openPostgresComplianceStore } from './postgres-compliance-store.js';
import { openSqliteComplianceStore } from './sqlite-compliance-store.js';
import type { ComplianceThreadData, FromThread, ToThread } from './thread-protocol.js';
import type { NewHold, RecordQuery } from './types.js';
import { ComplianceWorker, LEASE_TTL_MS, type ComplianceChat } from './worker.js';

const data = workerData as ComplianceThreadData;
const port = parentPort!;
const log = createLogger(data.logLevel).child({ subsystem: 'compliance', threadId });
// Reads only, plus the outbox delete when it is not sent to the main thread: one connection
// (SQLite) or a small pool (PostgreSQL) is plenty.
const store = openStore(data.chat, { sqliteSynchronous: data.sqliteSynchronous, poolSize: 2 });

/** How often this thread checkpoints a SQLite chat store's log (the server's connection does not). */
const CHECKPOINT_INTERVAL_MS = 500;
// The server opens a SQLite chat store with `checkpoints: 'background'`: its log is copied into the
// database here, so that the copy and its fsyncs never stall the event loop that serves chat.
const checkpoints =
  store instanceof SqliteStore
    ? setInterval(() => {
        try {
          store.checkpoint();
        } catch (err) {
          log.warn({ err }, 'checkpointing the chat store failed; trying again');
        }
      }, CHECKPOINT_INTERVAL_MS)
    : undefined;
checkpoints?.unref();

const post = (m: FromThread) => port.postMessage(m);
let nextId = 1;
const onMain = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

/** Has the main thread's store make a write; its group commit takes it with the posts. */
function writeOnMain(m: Extract<FromThread, { type: 'chat' }>): Promise<void> {
  return new Promise((resolve, reject) => {
    onMain.set(m.id, { resolve, reject });
    post(m);
  });
}

const chat: ComplianceChat = {
  // Copied into the compliance store only once durable in the chat store (see flushLog).
  readActivity: async (afterId, limit) => {
    const rows = await store.readActivity(afterId, limit);
    if (rows.length > 0 && store instanceof SqliteStore) await store.flushLog();
    return rows;
  },
  countActivity: () => store.countActivity(),
  getPrincipals: (ids) => store.getPrincipals(ids),
  getRoom: (id) => store.getRoom(id),
  getCategory: (id) => store.getCategory(id),
  getSettings: () => store.getSettings(),
  deleteActivity: (ids) =>
    data.writeOnMain
      ? writeOnMain({ type: 'chat', id: nextId++, op: 'deleteActivity', args: [ids] })
      : store.deleteActivity(ids),
  recordActivity: (r) =>
    data.writeOnMain
      ? writeOnMain({ type: 'chat', id: nextId++, op: 'recordActivity', args: [r] })
      : store.recordActivity(r),
};

const worker = new ComplianceWorker({
  chat,
  openStore: async () =>
    data.compliance.dialect === 'sqlite'
      ? openSqliteComplianceStore({ file: data.compliance.file })
      : openPostgresComplianceStore({
          connectionString: data.compliance.connectionString,
          applicationName: `perch-compliance ${data.holder}`,
          // A transaction left open by a stalled worker would hold its locks (the lease row
          // among them) and stop the front end taking over: the server ends it after a lease.
          idleInTransactionTimeoutMs: data.leaseTtlMs ?? LEASE_TTL_MS,
        }),
  holder: data.holder,
  leaseTtlMs: data.leaseTtlMs,
  log,
  outputRoot: data.outputRoot,
  adapterDir: data.adapterDir,
  pollMs: data.pollMs,
  runIntervalSeconds: data.runIntervalSeconds,
});

/** What the main thread may ask for (ComplianceThread's methods of the same names). */
const ops: Record<string, (...args: never[]) => Promise<unknown>> = {
  status: () => worker.status(),
  runNow: () => worker.runNow(),
  purge: (actorId: number | null) => worker.purge(actorId),
  placeHold: (h: NewHold) => worker.placeHold(h),
  releaseHold: (id: number, by: string, at: number, reason: string | null) =>
    worker.releaseHold(id, by, at, reason),
  listHolds: (includeReleased: boolean) => worker.listHolds(includeReleased),
  search: (q: RecordQuery) => worker.search(q),
  exportRecords: (q: RecordQuery, format: 'xml' | 'jsonl') => worker.exportRecords(q, format),
};

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= (async () => {
    clearInterval(checkpoints);
    await worker.stop();
    await store.close();
    // Nothing else keeps the thread alive once the port is closed: it ends.
    port.close();
  })();
  return stopping;
}

port.on('message', (m: ToThread) => {
  if (m.type === 'chat-done') {
    const d = onMain.get(m.id);
    onMain.delete(m.id);
    if (m.error === undefined) d?.resolve();
    else d?.reject(new Error(m.error));
  } else if (m.type === 'call') {
    const op = ops[m.op];
    if (!op) {
      post({ type: 'result', id: m.id, error: `unknown compliance operation ${m.op}` });
      return;
    }
    op(...(m.args as never[])).then(
      (value) => post({ type: 'result', id: m.id, value }),
      (err: unknown) =>
        post({ type: 'result', id: m.id, error: err instanceof Error ? err.message : String(err) }),
    );
  } else if (m.type === 'stop') {
    stop().catch((err: unknown) => {
      log.error({ err }, 'compliance worker thread: stop failed');
      port.close();
    });
  }
});

worker.start();
