// The compliance worker thread of a real server process: it runs off the main thread, a thread
// that crashes mid-run is logged and restarted with nothing lost or repeated, kill -9 of the whole
// server loses nothing, and SIGTERM stops it cleanly.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminHttp, postMany } from '../e2e/helpers.js';
import type { Http, TestUser } from '../e2e/helpers.js';
import { cleanup, tempDir, type TestServer } from '../harness/server.js';
import { assertExactlyOnce, readJsonlOutput, startJsonlServer } from './helpers.js';

interface Status {
  backlog: number;
  lastRecordId: number | null;
  store: { available: boolean };
  adapters: { name: string; cursor: number | null; lastError: string | null }[];
  worker: { state: string; threadId: number | null; restarts: number; lastExit: string | null };
}

// A custom adapter that writes its batch, then, the first time only, kills its thread with an
// uncaught exception before the run is committed.
const crasher = `
import fs from 'node:fs';
import path from 'node:path';
export function createAdapter(settings) {
  return {
    async translate(batch, out) {
      await out.writeFile(batch.runId + '.ids', batch.records.map((r) => r.id).join('\\n') + '\\n');
      const marker = path.join(settings.outputDirectory, 'crashed.marker');
      if (!fs.existsSync(marker)) {
        fs.writeFileSync(marker, 'yes');
        setImmediate(() => { throw new Error('adapter blew up'); });
        await new Promise(() => {});
      }
    },
  };
}
`;

/** Polls the status until `ok` holds; the thread restarts after a backoff, with no event to await. */
async function statusUntil(admin: Http, ok: (s: Status) => boolean): Promise<Status> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await admin.ok<Status>('GET', '/api/v1/compliance/status');
    if (ok(s)) return s;
    if (Date.now() > deadline) assert.fail(`status never matched: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exportedIds(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ids'))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').trim().split('\n').map(Number));
}

describe('compliance worker thread', () => {
  let server: TestServer;
  let admin: Http;
  let alice: TestUser;
  let roomId: number;
  let dataDir: string;

  before(async () => {
    dataDir = await tempDir();
    fs.mkdirSync(path.join(dataDir, 'compliance-adapters'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'compliance-adapters', 'crasher.mjs'), crasher);
    ({ server, admin, alice, roomId } = await startJsonlServer({ dataDir }));
  });

  after(async () => {
    if (server) await cleanup(server);
  });

  test('it runs in a worker thread, not on the main thread', async () => {
    const s = await admin.ok<Status>('GET', '/api/v1/compliance/status');
    assert.equal(s.worker.state, 'running');
    assert.ok(s.worker.threadId !== null && s.worker.threadId > 0, JSON.stringify(s.worker));
    assert.equal(s.worker.restarts, 0);
  });

  test('a thread that crashes mid-run is logged and restarted; nothing lost or repeated', async () => {
    await postMany(alice.http, roomId, 12, (i) => `before crash ${i}`);
    // Its first run kills the thread after the crasher wrote its file, before its cursor moved.
    await admin.ok('PATCH', '/api/v1/compliance/config', {
      adapters: [
        { name: 'jsonl', type: 'jsonl' },
        { name: 'crasher', type: 'module', module: 'crasher' },
      ],
    });
    await admin.ok('POST', '/api/v1/compliance/run');
    const restarted = await statusUntil(
      admin,
      (s) => s.worker.restarts === 1 && s.worker.state === 'running',
    );
    assert.match(restarted.worker.lastExit ?? '', /adapter blew up/);
    assert.match(server.logs(), /compliance worker thread crashed/);
    await postMany(alice.http, roomId, 5, (i) => `after crash ${i}`);
    const s = await admin.ok<Status>('POST', '/api/v1/compliance/run');
    assert.equal(s.backlog, 0);
    assert.equal(s.worker.restarts, 1);
    for (const a of s.adapters) {
      assert.equal(a.cursor, s.lastRecordId, a.name);
      assert.equal(a.lastError, null, a.name);
    }
    const out = path.join(dataDir, 'compliance');
    assertExactlyOnce(
      readJsonlOutput(path.join(out, 'jsonl')).map((r) => r.recordId),
      s.lastRecordId!,
      'jsonl',
    );
    assertExactlyOnce(exportedIds(path.join(out, 'crasher')), s.lastRecordId!, 'crasher');
  });

  test('kill -9 of the server, then a restart: the outbox is delivered once', async () => {
    await postMany(alice.http, roomId, 10, (i) => `before kill ${i}`);
    await server.kill9();
    await server.restart();
    admin = await adminHttp(server);
    const s = await admin.ok<Status>('POST', '/api/v1/compliance/run');
    assert.equal(s.backlog, 0);
    const jsonl = readJsonlOutput(path.join(dataDir, 'compliance', 'jsonl'));
    assertExactlyOnce(
      jsonl.map((r) => r.recordId),
      s.lastRecordId!,
      'jsonl',
    );
    assert.equal(jsonl.filter((r) => r.type === 'CHAT').length, 27);
  });

  test('SIGTERM stops the thread and the server cleanly', async () => {
    await postMany(alice.http, roomId, 3);
    assert.equal(await server.stop('SIGTERM'), 0);
    assert.doesNotMatch(server.logs(), /did not stop in time/);
    // SQLite removes a WAL file when its last connection closes: the thread closed both of its own.
    assert.equal(fs.existsSync(path.join(dataDir, 'compliance.db-wal')), false);
    assert.equal(fs.existsSync(path.join(dataDir, 'perch.db-wal')), false);
  });
});
