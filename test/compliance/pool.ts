// A two-front-end pool for the compliance tests: a PostgreSQL chat store, a PostgreSQL compliance
// store and one folder shared by both front ends (a network share in production), and a
// connection to the compliance store to watch the lease and the cursors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
import { readJsonlOutput } from './helpers.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds; fails with `what` once the (generous) deadline passes. */
export async function waitFor(what: string, check: () => Promise<boolean>, deadlineMs = 180_000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export interface CompliancePool {
  fe: Record<'fe1' | 'fe2', TestServer>;
  /** The shared folder: the compliance output folder, or the file store (see `shared`). */
  sharedDir: string;
  /** Where the adapters write (`jsonl` under it for the JSON-lines adapter named so). */
  outputDir: string;
  /** A client of the compliance store. */
  compliance: pg.Client;
  /** The front end holding the compliance worker lease, as the compliance store records it. */
  leaseHolder(): Promise<string | null>;
  /** An adapter's cursor and pending run start, as the compliance store records them. */
  adapterState(name: string): Promise<{ cursor: number; pendingEnd: number | null } | null>;
  close(): Promise<void>;
}

/**
 * Starts fe1 then fe2 (the first creates the administrator) with `env` added to each. `shared`:
 * the folder both name is PERCH_COMPLIANCE_OUTPUT_DIR (`output`), or PERCH_FILE_STORE_DIR
 * (`fileStore`), under which a pool keeps its compliance output by default.
 */
export async function startCompliancePool(
  env: Record<string, string>,
  shared: 'output' | 'fileStore' = 'output',
): Promise<CompliancePool> {
  const cluster: PostgresCluster = await testCluster();
  const chatDb = await cluster.createDatabase();
  // The compliance worker migrates its own (empty) database.
  const complianceDb = await cluster.createDatabase({ empty: true });
  const sharedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-pool-shared-'));
  const fe: Partial<Record<'fe1' | 'fe2', TestServer>> = {};
  const compliance = new pg.Client({ connectionString: complianceDb.url });
  const close = async () => {
    await compliance.end().catch(() => undefined);
    await Promise.all(Object.values(fe).map((s) => cleanup(s)));
    await cluster.dropDatabase(chatDb.name);
    await cluster.dropDatabase(complianceDb.name);
    fs.rmSync(sharedDir, { recursive: true, force: true });
  };
  try {
    for (const name of ['fe1', 'fe2'] as const) {
      fe[name] = await startServer({
        storeUrl: chatDb.url,
        adminPassword: 'Pw1!lease-admin-password',
        startDeadlineMs: 90_000,
        env: {
          PERCH_POOL: 'pool1',
          PERCH_FRONT_END: name,
          PERCH_COMPLIANCE_STORE_URL: complianceDb.url,
          ...(shared === 'output'
            ? { PERCH_COMPLIANCE_OUTPUT_DIR: sharedDir }
            : { PERCH_FILE_STORE_DIR: sharedDir }),
          PERCH_COMPLIANCE_RUN_INTERVAL_SECONDS: '1',
          PERCH_COMPLIANCE_POLL_MS: '100',
          ...env,
        },
      });
    }
    await compliance.connect();
  } catch (err) {
    await close();
    throw err;
  }
  const exists = async (table: string) =>
    (await compliance.query<{ t: string | null }>(`SELECT to_regclass($1)::text AS t`, [table]))
      .rows[0]?.t != null;
  return {
    fe: fe as Record<'fe1' | 'fe2', TestServer>,
    sharedDir,
    outputDir: shared === 'output' ? sharedDir : path.join(sharedDir, 'compliance'),
    compliance,
    close,
    async leaseHolder() {
      if (!(await exists('compliance_lease'))) return null;
      const r = await compliance.query<{ holder: string }>(
        `SELECT holder FROM compliance_lease WHERE name = 'worker'`,
      );
      return r.rows[0]?.holder ?? null;
    },
    async adapterState(name: string) {
      if (!(await exists('compliance_adapters'))) return null;
      const r = await compliance.query<{ cursor: string; pending_end: string | null }>(
        `SELECT cursor, pending_end FROM compliance_adapters WHERE name = $1`,
        [name],
      );
      const row = r.rows[0];
      if (!row) return null;
      return {
        cursor: Number(row.cursor),
        pendingEnd: row.pending_end === null ? null : Number(row.pending_end),
      };
    },
  };
}

type FrontEnd = 'fe1' | 'fe2';

/**
 * How both lease tests begin: alice and bob in open room `r`, the JSON-lines adapter `jsonl` in
 * small runs (5 records: many files, so that a stop or kill is likely to land inside one), 15
 * posts through each front end, and the lease holder (`victim`) exporting some of them.
 */
export async function exportingPool(pool: CompliancePool) {
  const { fe } = pool;
  const admin = await adminHttp(fe.fe1);
  const users = await buildUsers(fe.fe1, admin, ['alice', 'bob']);
  await buildCategory(admin, { name: 'c', allowed: ['alice', 'bob'] });
  const roomId = (await buildRoom(admin, { name: 'r', category: 'c', privacy: 'open' })).id;
  await admin.ok('PATCH', '/api/v1/compliance/config', {
    maxRecordsPerRun: 5,
    adapters: [{ name: 'jsonl', type: 'jsonl' }],
  });
  const on = (name: FrontEnd, user: TestUser) => new Http(fe[name].url, user.token);
  /** Every post acknowledged so far. */
  const posted: string[] = [];
  const post = async (http: Http, count: number, label: string) => {
    await postMany(http, roomId, count, (i) => `${label} ${i}`);
    for (let i = 0; i < count; i++) posted.push(`${label} ${i}`);
  };
  /** The texts of the CHAT records in the adapter's output. */
  const chatTexts = () =>
    readJsonlOutput(path.join(pool.outputDir, 'jsonl'))
      .filter((r) => r.type === 'CHAT')
      .map((r) => r.content);
  await Promise.all([
    post(on('fe1', users.alice), 15, 'before fe1'),
    post(on('fe2', users.bob), 15, 'before fe2'),
  ]);
  await waitFor('the lease holder to export some posts', async () => chatTexts().length > 0);
  const holder = await pool.leaseHolder();
  assert.ok(holder === 'fe1' || holder === 'fe2', `lease holder: ${holder}`);
  const victim: FrontEnd = holder;
  const survivor: FrontEnd = victim === 'fe1' ? 'fe2' : 'fe1';
  return { admin, users, roomId, on, posted, post, chatTexts, victim, survivor };
}
