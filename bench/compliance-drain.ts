/**
 * How much the compliance worker stalls the server's event loop while it drains the outbox and
 * exports, on the main thread (as before) or in its worker thread:
 * `npm run bench:compliance-drain -- --records 20000 --rounds 3`.
 * Each round seeds the same outbox in a fresh SQLite store and drains it both ways, alternately;
 * the main thread's event-loop delay (perf_hooks) is recorded during each drain. Prints one JSON
 * line per drain and a summary with the ratios thread/main.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ComplianceThread } from '../src/compliance/compliance-thread.js';
import { openSqliteComplianceStore } from '../src/compliance/sqlite-compliance-store.js';
import { ComplianceWorker } from '../src/compliance/worker.js';
import { COMPLIANCE_SETTING } from '../src/domain/compliance/config.js';
import { createLogger } from '../src/logger.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
  },
});
const records = Number(values.records);
const rounds = Number(values.rounds);
const log = createLogger('silent');

async function seed(dir: string): Promise<SqliteStore> {
  const store = SqliteStore.open({ file: path.join(dir, 'perch.db'), synchronous: 'full' });
  await store.migrate();
  await store.setSetting(
    COMPLIANCE_SETTING,
    JSON.stringify({ adapters: [{ name: 'jsonl', type: 'jsonl' }] }),
  );
  for (let i = 0; i < records; i += 1000) {
    await store.transaction(async (tx) => {
      for (let j = i; j < Math.min(i + 1000, records); j++) {
        await tx.recordActivity({
          kind: 'CHAT',
          actorId: null,
          roomId: null,
          createdAt: Date.now(),
          payload: { text: `message ${j} `.padEnd(120, 'x'), seq: j },
        });
      }
    });
  }
  return store;
}

async function drain(mode: 'main' | 'thread'): Promise<Record<string, number | string>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-bench-drain-'));
  const store = await seed(dir);
  const common = {
    log,
    outputRoot: path.join(dir, 'out'),
    adapterDir: path.join(dir, 'adapters'),
    // Drained by runNow() only, so that both modes do the same work.
    pollMs: 3_600_000,
  };
  const worker =
    mode === 'main'
      ? new ComplianceWorker({
          ...common,
          chat: store,
          openStore: async () =>
            openSqliteComplianceStore({ file: path.join(dir, 'compliance.db') }),
        })
      : new ComplianceThread({
          ...common,
          chat: store,
          chatLocation: { dialect: 'sqlite', file: path.join(dir, 'perch.db') },
          complianceLocation: { dialect: 'sqlite', file: path.join(dir, 'compliance.db') },
        });
  const h = monitorEventLoopDelay({ resolution: 1 });
  const started = performance.now();
  h.enable();
  if (worker instanceof ComplianceThread) worker.start();
  await worker.runNow();
  h.disable();
  const elapsed = performance.now() - started;
  const status = await worker.status();
  if (status.backlog !== 0 || status.adapters[0]?.cursor !== status.lastRecordId) {
    throw new Error(`drain incomplete: ${JSON.stringify(status)}`);
  }
  await worker.stop();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return {
    mode,
    records,
    drain_ms: Math.round(elapsed),
    loop_delay_p50_ms: ms(h.percentile(50)),
    loop_delay_p99_ms: ms(h.percentile(99)),
    loop_delay_max_ms: ms(h.max),
  };
}

const results: Record<string, number | string>[] = [];
for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 === 0 ? (['main', 'thread'] as const) : (['thread', 'main'] as const)) {
    const res = { round: r + 1, load: os.loadavg()[0]!.toFixed(1), ...(await drain(mode)) };
    results.push(res);
    process.stdout.write(`${JSON.stringify(res)}\n`);
  }
}
const ratio = (key: string) =>
  Array.from({ length: rounds }, (_, r) => {
    const of = (mode: string) =>
      Number(results.find((x) => x.round === r + 1 && x.mode === mode)![key]);
    return Math.round((of('thread') / of('main')) * 1000) / 1000;
  });
process.stdout.write(
  `${JSON.stringify({
    bench: 'compliance-drain',
    records,
    rounds,
    ratio_thread_over_main: {
      loop_delay_p99: ratio('loop_delay_p99_ms'),
      loop_delay_max: ratio('loop_delay_max_ms'),
      drain_ms: ratio('drain_ms'),
    },
    machine: `${os.cpus().length} cores, node ${process.version}`,
  })}\n`,
);
