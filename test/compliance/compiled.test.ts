// The compliance worker thread from the compiled build: a server started as `npm start` starts it
// (plain node on the JavaScript tsc emits, no tsx loader anywhere) finds the thread's module
// (worker-thread.js next to compliance-thread.js), and the thread captures chat into compliance.db
// and runs the JSON-lines adapter on its own interval.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { compiledEntry } from '../cli/helpers.js';
import { postMany } from '../e2e/helpers.js';
import type { Http, TestUser } from '../e2e/helpers.js';
import { cleanup, type TestServer } from '../harness/server.js';
import { readJsonlOutput, startJsonlServer } from './helpers.js';

interface Status {
  worker: { state: string; threadId: number | null; restarts: number; lastExit: string | null };
}

const waitMs = 60_000;

/** The CHAT texts compliance.db holds (read-only: the server's thread is the writer). */
function capturedTexts(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  const db = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const hasTable = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'compliance_records'")
      .get();
    if (!hasTable) return [];
    const rows = db
      .prepare("SELECT payload FROM compliance_records WHERE kind = 'CHAT' ORDER BY id")
      .all() as { payload: string }[];
    return rows.map((r) => (JSON.parse(r.payload) as { text: string }).text);
  } finally {
    db.close();
  }
}

describe('compliance worker thread from the compiled build', () => {
  let server: TestServer;
  let admin: Http;
  let alice: TestUser;
  let roomId: number;

  before(async () => {
    ({ server, admin, alice, roomId } = await startJsonlServer({
      entry: compiledEntry(),
      plainNode: true,
      // SQLite whatever PERCH_TEST_DIALECT says: the test reads compliance.db in the data dir.
      dialect: 'sqlite',
      env: { PERCH_COMPLIANCE_RUN_INTERVAL_SECONDS: '1', PERCH_COMPLIANCE_POLL_MS: '50' },
    }));
  });

  after(async () => {
    if (server) await cleanup(server);
  });

  test('the server runs the compiled JavaScript with plain node, no tsx loader', () => {
    const pid = server.proc.pid!;
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.equal(argv[1], compiledEntry(), argv.join(' '));
    assert.ok(argv[1]!.endsWith('.js'), argv.join(' '));
    assert.deepEqual(
      argv.filter((a) => /tsx|--import|--loader|--require|^-r$/.test(a)),
      [],
      argv.join(' '),
    );
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const nodeOptions = env.find((e) => e.startsWith('NODE_OPTIONS=')) ?? '';
    assert.doesNotMatch(nodeOptions, /tsx|--import|--loader|--require/, nodeOptions);
  });

  test('the thread captures chat into compliance.db and the adapter writes it', async () => {
    const texts = Array.from({ length: 6 }, (_, i) => `compiled build ${i}`);
    await postMany(alice.http, roomId, texts.length, (i) => texts[i]!);
    const dbFile = path.join(server.dataDir, 'compliance.db');
    const outDir = path.join(server.dataDir, 'compliance', 'jsonl');
    // No POST /compliance/run: the thread drains the outbox and runs the adapter on its own.
    const deadline = Date.now() + waitMs;
    for (;;) {
      const captured = capturedTexts(dbFile);
      const exported = readJsonlOutput(outDir)
        .filter((r) => r.type === 'CHAT')
        .map((r) => r.content);
      if (texts.every((t) => captured.includes(t) && exported.includes(t))) break;
      const s = await admin.ok<Status>('GET', '/api/v1/compliance/status');
      // A thread that cannot start (its module not found) dies and is restarted with backoff.
      if (s.worker.restarts > 0 || Date.now() > deadline) {
        assert.fail(
          `compliance.db CHAT ${JSON.stringify(captured)}, ` +
            `adapter output CHAT ${JSON.stringify(exported)}; worker ${JSON.stringify(s.worker)}\n` +
            `--- server output ---\n${server.logs()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const s = await admin.ok<Status>('GET', '/api/v1/compliance/status');
    assert.equal(s.worker.state, 'running', JSON.stringify(s.worker));
    assert.ok(s.worker.threadId !== null && s.worker.threadId > 0, JSON.stringify(s.worker));
    assert.equal(s.worker.restarts, 0, JSON.stringify(s.worker));
    assert.doesNotMatch(server.logs(), /compliance worker thread crashed/);
  });
});
