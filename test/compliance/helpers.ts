import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openPostgresComplianceStore } from '../../src/compliance/postgres-compliance-store.js';
import { openSqliteComplianceStore } from '../../src/compliance/sqlite-compliance-store.js';
import type { ComplianceRecord, ComplianceStore } from '../../src/compliance/types.js';
import { ComplianceWorker, type ComplianceWorkerOptions } from '../../src/compliance/worker.js';
import { createLogger } from '../../src/logger.js';
import {
  adminHttp,
  buildCategory,
  buildRoom,
  buildUsers,
  type Http,
  type TestUser,
} from '../e2e/helpers.js';
import type { TestDomain } from '../harness/domain.js';
import { testCluster } from '../harness/postgres.js';
import { startServer, type StartServerOptions, type TestServer } from '../harness/server.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const xsdPath = path.join(repoRoot, 'docs', 'compliance', 'perch-compliance.xsd');

/** Validates an XML file against the shipped XSD with xmllint; fails the test on any error. */
export function assertValidXml(file: string): void {
  try {
    execFileSync('xmllint', ['--noout', '--schema', xsdPath, file], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    assert.fail(`${file} does not validate: ${e.stderr?.toString() ?? String(err)}`);
  }
}

export interface ExportedRecord {
  recordId: number;
  type: string;
  content: string;
  file: string;
}

function unescapeXml(v: string): string {
  return v
    .replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Every <Message> of every .xml file in dir (FirstMessage excluded), validated against the XSD. */
export function readXmlOutput(dir: string, validate = true): ExportedRecord[] {
  const out: ExportedRecord[] = [];
  if (!fs.existsSync(dir)) return out;
  for (const name of fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.xml'))
    .sort()) {
    const file = path.join(dir, name);
    if (validate) assertValidXml(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(
      /<Message type="([A-Z_]+)" content="([^"]*)" id="\d+" recordId="(\d+)">/g,
    )) {
      out.push({ type: m[1]!, content: unescapeXml(m[2]!), recordId: Number(m[3]), file: name });
    }
  }
  return out;
}

/** Every line of every .jsonl file in dir. */
export function readJsonlOutput(dir: string): (ExportedRecord & Record<string, unknown>)[] {
  const out: (ExportedRecord & Record<string, unknown>)[] = [];
  if (!fs.existsSync(dir)) return out;
  for (const name of fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort()) {
    for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line) continue;
      const o = JSON.parse(line) as Record<string, unknown>;
      out.push({
        ...o,
        recordId: o.recordId as number,
        type: o.type as string,
        content: o.content as string,
        file: name,
      });
    }
  }
  return out;
}

/** Asserts that `ids` holds each expected id (1..n when a number is given) exactly once. */
export function assertExactlyOnce(ids: number[], expected: number | number[], what: string): void {
  const want =
    typeof expected === 'number' ? Array.from({ length: expected }, (_, i) => i + 1) : expected;
  const sorted = [...ids].sort((a, b) => a - b);
  const dupes = sorted.filter((v, i) => i > 0 && sorted[i - 1] === v);
  assert.deepEqual(dupes, [], `${what}: duplicated record ids`);
  const have = new Set(ids);
  assert.deepEqual(
    want.filter((id) => !have.has(id)),
    [],
    `${what}: missing record ids`,
  );
  assert.deepEqual(
    sorted,
    [...want].sort((a, b) => a - b),
    `${what}: unexpected record ids`,
  );
}

/**
 * The compliance store of a domain test: compliance.db in `dir` (SQLite), or an empty database of
 * the test PostgreSQL cluster, which `drop` removes. `open` opens a new connection each time.
 */
export async function testComplianceStore(
  dialect: 'sqlite' | 'postgres',
  dir: string,
): Promise<{ open: () => ComplianceStore; drop: () => Promise<void> }> {
  if (dialect === 'sqlite') {
    const file = path.join(dir, 'compliance.db');
    return { open: () => openSqliteComplianceStore({ file }), drop: async () => {} };
  }
  const cluster = await testCluster();
  const { name, url } = await cluster.createDatabase({ empty: true });
  return {
    open: () => openPostgresComplianceStore({ connectionString: url }),
    drop: () => cluster.dropDatabase(name),
  };
}

/** A silent compliance worker over a test domain's chat store, on its fake clock. */
export function domainWorker(
  t: TestDomain,
  open: () => ComplianceStore,
  clock: { now: number },
  more: Partial<ComplianceWorkerOptions> = {},
): ComplianceWorker {
  return new ComplianceWorker({
    chat: t.store,
    openStore: async () => open(),
    log: createLogger('silent'),
    outputRoot: path.join(t.dir, 'out'),
    adapterDir: path.join(t.dir, 'adapters'),
    now: () => clock.now,
    ...more,
  });
}

/** Every record the compliance store holds, oldest first (on a connection of its own). */
export async function allRecords(open: () => ComplianceStore): Promise<ComplianceRecord[]> {
  const cs = open();
  try {
    return await cs.readRecords(0, 100_000);
  } finally {
    await cs.close();
  }
}

/** A server with alice, category `c`, open room `r` and the JSON-lines adapter `jsonl`. */
export async function startJsonlServer(
  opts: StartServerOptions,
): Promise<{ server: TestServer; admin: Http; alice: TestUser; roomId: number }> {
  const server = await startServer(opts);
  const admin = await adminHttp(server);
  const { alice } = await buildUsers(server, admin, ['alice']);
  await buildCategory(admin, { name: 'c', allowed: ['alice'] });
  const roomId = (await buildRoom(admin, { name: 'r', category: 'c', privacy: 'open' })).id;
  await admin.ok('PATCH', '/api/v1/compliance/config', {
    adapters: [{ name: 'jsonl', type: 'jsonl' }],
  });
  return { server, admin, alice, roomId };
}
