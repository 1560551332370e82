// Lease fencing in an Enterprise Edition pool: the compliance worker lease is short (2 s), and the
// lease holder is stopped with SIGSTOP in the middle of an adapter run (its range recorded, its
// cursor not yet moved) while posts flow. The other front end takes the lease over and exports,
// redoing the stopped run. Resumed with SIGCONT, the stale worker finds its commit refused by the
// lease check in the commit's own transaction, and exports nothing more while the other holds
// the lease. Every post's CHAT record is exported exactly once in the shared output folder.
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

interface LogLine {
  msg?: string;
  time?: number;
  to?: number;
  adapter?: string;
}

let pool: CompliancePool;

before(async () => {
  pool = await startCompliancePool({
    PERCH_COMPLIANCE_LEASE_MS: '2000',
    // The adapter runs' log lines show what each front end exported.
    PERCH_LOG_LEVEL: 'info',
  });
});

after(async () => {
  for (const s of Object.values(pool?.fe ?? {})) s.proc.kill('SIGCONT');
  await pool?.close();
});

function logLines(text: string): LogLine[] {
  return text.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

test('SIGSTOP of the lease holder mid-run: the other takes over; the resumed one is fenced off', async (t) => {
  const { fe } = pool;
  const { admin, users, roomId, on, posted, post, chatTexts, victim, survivor } =
    await exportingPool(pool);
  const through = on(survivor, users.bob);

  // Posts flow through the other front end while the holder is stopped.
  let stopped = false;
  let during = 0;
  const flow = (async () => {
    while (!stopped || during < 20) {
      await through.ok('POST', `/api/v1/rooms/${roomId}/messages`, { text: `during ${during}` });
      posted.push(`during ${during}`);
      during += 1;
    }
  })();
  // Stop it when a run is pending (begun, cursor not moved) and no statement of it is open; else
  // let it go on and try again.
  let attempts = 0;
  let atStop: Awaited<ReturnType<CompliancePool['adapterState']>> = null;
  for (;;) {
    attempts += 1;
    assert.ok(attempts <= 200, 'the stop never landed inside a run');
    await waitFor(
      'a pending run',
      async () => (await pool.adapterState('jsonl'))?.pendingEnd != null,
    );
    fe[victim].proc.kill('SIGSTOP');
    atStop = await pool.adapterState('jsonl');
    // Outside a transaction, so that its commit meets the fence (a transaction left open would
    // be ended by the server after a lease, and the resumed worker would only find its
    // connection gone).
    const busy = await pool.compliance.query(
      `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`,
      [`perch-compliance ${victim}`],
    );
    if (atStop?.pendingEnd != null && busy.rowCount === 0) break;
    fe[victim].proc.kill('SIGCONT');
  }
  stopped = true;
  t.diagnostic(`${victim} stopped after ${attempts} attempt(s): ${JSON.stringify(atStop)}`);
  await flow;

  await waitFor(
    `${survivor} to take the lease over`,
    async () => (await pool.leaseHolder()) === survivor,
  );
  // The survivor redoes the stopped run and exports past it.
  await waitFor(`${survivor} to export past the stopped run`, async () => {
    const s = await pool.adapterState('jsonl');
    return s !== null && s.cursor >= atStop!.pendingEnd!;
  });

  const resumedAt = Date.now();
  fe[victim].proc.kill('SIGCONT');
  // The resumed worker finishes writing the stopped run's files; its commit is refused. Or, when
  // the survivor has already cleared the stale run's temporary file from the shared folder, the
  // run fails at its rename, before the commit: stopped either way (checked below: no run of its
  // own committed, every record exported once).
  try {
    await waitFor(
      `${victim} to find its commit refused (or its stale run's file gone)`,
      async () =>
        logLines(fe[victim].logs()).some(
          (l) =>
            (l.msg ?? '').startsWith('compliance worker: lease lost') ||
            (l.msg === 'compliance adapter run failed' &&
              (l.time ?? 0) >= resumedAt &&
              /ENOENT.*rename/.test(JSON.stringify((l as { err?: unknown }).err ?? null))),
        ),
      60_000,
    );
  } catch (err) {
    const since = logLines(fe[victim].logs()).filter((l) => (l.time ?? 0) >= resumedAt);
    t.diagnostic(
      `${victim} log since the resume:\n${since.map((l) => JSON.stringify(l)).join('\n')}`,
    );
    throw err;
  }

  await post(through, 10, 'after survivor');
  await post(on(victim, users.alice), 10, 'after resumed');
  const adminOnSurvivor = new Http(fe[survivor].url, admin.token);
  let status: Status | undefined;
  await waitFor('everything captured and exported', async () => {
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
  assert.equal(await pool.leaseHolder(), survivor, 'the lease moved back while the survivor lived');
  assert.equal(status!.adapters[0]!.lastError, null);

  // Since it resumed, the stale worker committed no run: the only run that may be logged after the
  // resume is one it had committed before the stop (up to the pending end seen at the stop).
  const staleRuns = logLines(fe[victim].logs()).filter(
    (l) =>
      l.msg === 'compliance adapter run' &&
      (l.time ?? 0) >= resumedAt &&
      (l.to ?? 0) > atStop!.pendingEnd!,
  );
  assert.deepEqual(staleRuns, [], `${victim} exported after it lost the lease`);

  const ids = (
    await pool.compliance.query<{ id: string }>('SELECT id FROM compliance_records ORDER BY id')
  ).rows.map((r) => Number(r.id));
  assertExactlyOnce(
    readJsonlOutput(path.join(pool.outputDir, 'jsonl')).map((r) => r.recordId),
    ids,
    'jsonl',
  );
  assert.deepEqual([...chatTexts()].sort(), [...posted].sort());
});
