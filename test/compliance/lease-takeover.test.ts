// The compliance worker lease in an Enterprise Edition pool: two front ends share a PostgreSQL
// chat store, a PostgreSQL compliance store and one adapter output folder. Only the lease holder
// captures and exports; when it is killed with SIGKILL the survivor takes the lease over once it
// expires, and the JSON-lines output holds every post's CHAT record exactly once: posts made
// before, during and after the kill, through either front end.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Http } from '../e2e/helpers.js';
import { assertExactlyOnce, readJsonlOutput } from './helpers.js';
import { exportingPool, startCompliancePool, waitFor, type CompliancePool } from './pool.js';

interface Status {
  backlog: number;
  lastRecordId: number | null;
  adapters: { name: string; cursor: number | null; pending: unknown; lastError: string | null }[];
}

let pool: CompliancePool;
let fe: CompliancePool['fe'];
let lease: CompliancePool['compliance'];
let outputDir: string;
const leaseHolder = () => pool.leaseHolder();

before(async () => {
  pool = await startCompliancePool({});
  ({ fe, compliance: lease, outputDir } = pool);
});

after(async () => {
  await pool?.close();
});

test('SIGKILL of the lease holder: the survivor takes the lease over; every post exported once', async (t) => {
  // Before: posts through both front ends; the lease holder exports some of them.
  const { admin, users, roomId, on, posted, post, chatTexts, victim, survivor } =
    await exportingPool(pool);
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
  await fe[victim].kill9();
  killed = true;
  // Where the kill landed (reported, not asserted: either way nothing may be lost or repeated).
  const left = await lease.query<{ cursor: string; pending_start: string | null }>(
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
  const adminOnSurvivor = new Http(fe[survivor].url, admin.token);
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
    await lease.query<{ id: string }>('SELECT id FROM compliance_records ORDER BY id')
  ).rows.map((r) => Number(r.id));
  const outboxIds = (
    await lease.query<{ outbox_id: string }>('SELECT outbox_id FROM compliance_records')
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
