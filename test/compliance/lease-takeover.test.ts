// The compliance worker lease in an Enterprise Edition pool: two front ends share a PostgreSQL
// chat store, a PostgreSQL compliance store and one adapter output folder. Only the lease holder
// captures and exports; when it is killed with SIGKILL the survivor takes the lease over once it
// expires, and the JSON-lines output holds every post's CHAT record exactly once: posts made
// before, during and after the kill, through either front end.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import {
  adminHttp,
  buildCategory,
  buildRoom,
  buildUsers,
  Http,
  postMany,
  type TestUser,
} from '../e2e/helpers.js';
import { testCluster, type PostgresCluster } from '../harness/postgres.js';
import { cleanup, startServer, type TestServer } from '../harness/server.js';
import { assertExactlyOnce, readJsonlOutput } from './helpers.js';

interface Status {
  backlog: number;
  lastRecordId: number | null;
  adapters: { name: string; cursor: number | null; pending: unknown; lastError: string | null }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds; fails with `what` once the (generous) deadline passes. */
async function waitFor(what: string, check: () => Promise<boolean>, deadlineMs = 180_000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

let cluster: PostgresCluster;
let chatDb: { name: string; url: string } | undefined;
let complianceDb: { name: string; url: string } | undefined;
let outputDir: string;
let lease: pg.Client | undefined;
const fe: Record<string, TestServer> = {};

before(async () => {
  cluster = await testCluster();
  chatDb = await cluster.createDatabase();
  // The compliance worker migrates its own (empty) database.
  complianceDb = await cluster.createDatabase({ empty: true });
  outputDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-lease-out-'));
  // One after the other: the first creates the administrator, the second finds it.
  for (const name of ['fe1', 'fe2']) {
    fe[name] = await startServer({
      storeUrl: chatDb.url,
      adminPassword: 'Pw1!lease-admin-password',
      startDeadlineMs: 90_000,
      env: {
        PERCH_POOL: 'pool1',
        PERCH_FRONT_END: name,
        PERCH_COMPLIANCE_STORE_URL: complianceDb.url,
        // One folder for both (a network share in production).
        PERCH_COMPLIANCE_OUTPUT_DIR: outputDir,
        PERCH_COMPLIANCE_RUN_INTERVAL_SECONDS: '1',
        PERCH_COMPLIANCE_POLL_MS: '100',
      },
    });
  }
  lease = new pg.Client({ connectionString: complianceDb.url });
  await lease.connect();
});

after(async () => {
  await lease?.end();
  await Promise.all(Object.values(fe).map((s) => cleanup(s)));
  if (chatDb) await cluster.dropDatabase(chatDb.name);
  if (complianceDb) await cluster.dropDatabase(complianceDb.name);
  if (outputDir) fs.rmSync(outputDir, { recursive: true, force: true });
});

/** The front end holding the compliance worker lease, as the compliance store records it. */
async function leaseHolder(): Promise<string | null> {
  const table = await lease!.query<{ t: string | null }>(
    `SELECT to_regclass('compliance_lease')::text AS t`,
  );
  if (table.rows[0]?.t === null) return null;
  const r = await lease!.query<{ holder: string }>(
    `SELECT holder FROM compliance_lease WHERE name = 'worker'`,
  );
  return r.rows[0]?.holder ?? null;
}

function chatTexts(): string[] {
  return readJsonlOutput(path.join(outputDir, 'jsonl'))
    .filter((r) => r.type === 'CHAT')
    .map((r) => r.content);
}

test('SIGKILL of the lease holder: the survivor takes the lease over; every post exported once', async (t) => {
  const admin = await adminHttp(fe.fe1!);
  const users = await buildUsers(fe.fe1!, admin, ['alice', 'bob']);
  await buildCategory(admin, { name: 'c', allowed: ['alice', 'bob'] });
  const roomId = (await buildRoom(admin, { name: 'r', category: 'c', privacy: 'open' })).id;
  // Small runs: many files, so that the kill is likely to land in the middle of one.
  await admin.ok('PATCH', '/api/v1/compliance/config', {
    maxRecordsPerRun: 5,
    adapters: [{ name: 'jsonl', type: 'jsonl' }],
  });
  const on = (name: string, user: TestUser) => new Http(fe[name]!.url, user.token);
  const posted: string[] = [];
  const post = async (http: Http, count: number, label: string) => {
    await postMany(http, roomId, count, (i) => `${label} ${i}`);
    for (let i = 0; i < count; i++) posted.push(`${label} ${i}`);
  };

  // Before: posts through both front ends; the lease holder exports some of them.
  await Promise.all([
    post(on('fe1', users.alice), 15, 'before fe1'),
    post(on('fe2', users.bob), 15, 'before fe2'),
  ]);
  await waitFor('the lease holder to export some posts', async () => chatTexts().length > 0);
  const victim = await leaseHolder();
  assert.ok(victim === 'fe1' || victim === 'fe2', `lease holder: ${victim}`);
  const survivor = victim === 'fe1' ? 'fe2' : 'fe1';
  const through = on(survivor, users.bob);

  // During: posts through the survivor keep flowing while the holder is killed mid-work.
  let killed = false;
  let during = 0;
  const flow = (async () => {
    while (!killed || during < 20) {
      await through.ok('POST', `/api/v1/rooms/${roomId}/messages`, { text: `during ${during}` });
      posted.push(`during ${during}`);
      during += 1;
    }
  })();
  await waitFor('posts to flow through the survivor', async () => during >= 5);
  await fe[victim]!.kill9();
  killed = true;
  // Where the kill landed (reported, not asserted: either way nothing may be lost or repeated).
  const left = await lease!.query<{ cursor: string; pending_start: string | null }>(
    `SELECT cursor, pending_start FROM compliance_adapters WHERE name = 'jsonl'`,
  );
  t.diagnostic(`${victim} killed: jsonl adapter state ${JSON.stringify(left.rows[0] ?? null)}`);
  await flow;
  // Until the dead holder's lease expires nothing moves; then the survivor takes it over.
  await waitFor(
    `${survivor} to take the lease over`,
    async () => (await leaseHolder()) === survivor,
  );

  // After: posts through the survivor alone, exported by it.
  await post(through, 15, 'after');
  const adminOnSurvivor = new Http(fe[survivor]!.url, admin.token);
  let status: Status | undefined;
  await waitFor('the survivor to capture and export everything', async () => {
    status = await adminOnSurvivor.ok<Status>('GET', '/api/v1/compliance/status');
    const a = status.adapters.find((x) => x.name === 'jsonl');
    return (
      status.backlog === 0 &&
      a !== undefined &&
      a.pending === null &&
      a.cursor === status.lastRecordId &&
      chatTexts().length >= posted.length
    );
  });
  assert.equal(await leaseHolder(), survivor);
  assert.equal(status!.adapters[0]!.lastError, null);

  // Every record of the compliance store exported exactly once across both front ends' files.
  const ids = (
    await lease!.query<{ id: string }>('SELECT id FROM compliance_records ORDER BY id')
  ).rows.map((r) => Number(r.id));
  const outboxIds = (
    await lease!.query<{ outbox_id: string }>('SELECT outbox_id FROM compliance_records')
  ).rows.map((r) => r.outbox_id);
  assert.equal(new Set(outboxIds).size, outboxIds.length, 'an outbox row captured twice');
  assertExactlyOnce(
    readJsonlOutput(path.join(outputDir, 'jsonl')).map((r) => r.recordId),
    ids,
    'jsonl',
  );
  // Each post's CHAT record exactly once: no gap, no duplicate.
  assert.ok(during >= 20, `posts during the kill: ${during}`);
  assert.deepEqual([...chatTexts()].sort(), [...posted].sort());
});
