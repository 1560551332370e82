// The compliance worker thread (started by ComplianceThread, never imported by the server): it
// opens its own chat store and compliance.db connections, so that better-sqlite3's synchronous
// work and fsyncs happen here instead of on the event loop that serves chat.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createLogger } from '../logger.js';
import { openStore } from '../store/open-store.js';
import { openSqliteComplianceStore } from './sqlite-compliance-store.js';
import type { ComplianceThreadData, FromThread, ToThread } from './thread-protocol.js';
import { ComplianceWorker, type ComplianceChat } from './worker.js';

const data = workerData as ComplianceThreadData;
const port = parentPort!;
const log = createLogger(data.logLevel).child({ subsystem: 'compliance', threadId });
// Reads only, plus the outbox delete when it is not sent to the main thread: one connection
// (SQLite) or a small pool (PostgreSQL) is plenty.
const store = openStore(data.chat, { sqliteSynchronous: data.sqliteSynchronous, poolSize: 2 });

const post = (m: FromThread) => port.postMessage(m);
let nextId = 1;
const deletes = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

/** Asks the main thread to delete drained rows; its store's group commit takes them. */
function deleteOnMain(ids: number[]): Promise<void> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    deletes.set(id, { resolve, reject });
    post({ type: 'delete', id, ids });
  });
}

const chat: ComplianceChat = {
  readActivity: (afterId, limit) => store.readActivity(afterId, limit),
  countActivity: () => store.countActivity(),
  getPrincipals: (ids) => store.getPrincipals(ids),
  getRoom: (id) => store.getRoom(id),
  getCategory: (id) => store.getCategory(id),
  getSettings: () => store.getSettings(),
  deleteActivity: data.deleteOnMain ? deleteOnMain : (ids) => store.deleteActivity(ids),
};

const worker = new ComplianceWorker({
  chat,
  openStore: async () => openSqliteComplianceStore({ file: data.complianceFile }),
  log,
  outputRoot: data.outputRoot,
  adapterDir: data.adapterDir,
  pollMs: data.pollMs,
  runIntervalSeconds: data.runIntervalSeconds,
});

/** What the main thread may ask for (ComplianceThread's methods). */
const ops: Record<string, (...args: never[]) => Promise<unknown>> = {
  status: () => worker.status(),
  runNow: () => worker.runNow(),
};

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= (async () => {
    await worker.stop();
    await store.close();
    // Nothing else keeps the thread alive once the port is closed: it ends.
    port.close();
  })();
  return stopping;
}

port.on('message', (m: ToThread) => {
  if (m.type === 'deleted') {
    const d = deletes.get(m.id);
    deletes.delete(m.id);
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
