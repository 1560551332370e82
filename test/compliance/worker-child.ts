// A compliance worker in its own process, for crash tests: `worker-child.ts <dataDir> <crashAt>`.
// At its crashAt-th step it prints `CRASH <step>` and freezes until the parent kills it with
// SIGKILL; with crashAt 0 it runs to the end and prints `DONE`.
import fs from 'node:fs';
import path from 'node:path';
import { openSqliteComplianceStore } from '../../src/compliance/sqlite-compliance-store.js';
import { ComplianceWorker } from '../../src/compliance/worker.js';
import { createLogger } from '../../src/logger.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const [dataDir, crashAtArg] = process.argv.slice(2) as [string, string];
const crashAt = Number(crashAtArg);
let steps = 0;
const chat = SqliteStore.open({ file: path.join(dataDir, 'perch.db') });
const worker = new ComplianceWorker({
  chat,
  openStore: async () => openSqliteComplianceStore({ file: path.join(dataDir, 'compliance.db') }),
  log: createLogger('silent'),
  outputRoot: path.join(dataDir, 'compliance'),
  adapterDir: path.join(dataDir, 'adapters'),
  batchSize: 4,
  onStep(step) {
    steps += 1;
    if (steps === crashAt) {
      fs.writeSync(1, `CRASH ${step}\n`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
  },
});
await worker.runNow();
await worker.stop();
await chat.close();
fs.writeSync(1, `DONE ${steps}\n`);
