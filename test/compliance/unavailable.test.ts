import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openSqliteComplianceStore } from '../../src/compliance/sqlite-compliance-store.js';
import { ComplianceWorker } from '../../src/compliance/worker.js';
import { setComplianceConfig } from '../../src/domain/compliance/config.js';
import { joinRooms, postMessage } from '../../src/domain/messages/commands.js';
import { createLogger } from '../../src/logger.js';
import { buildCategory, buildRoom, buildUsers, withDomain } from '../harness/domain-factories.js';
import { assertExactlyOnce, readJsonlOutput } from './helpers.js';

test('compliance store locked: chat goes on, records wait in the outbox, then arrive once', async () => {
  await withDomain(async (t) => {
    const { alice } = await buildUsers(t, ['alice']);
    await buildCategory(t, { name: 'c', allowed: ['alice'] });
    const room = await buildRoom(t, { name: 'r', category: 'c', privacy: 'open' });
    await setComplianceConfig(t.d, t.admin, { adapters: [{ name: 'jsonl', type: 'jsonl' }] });
    const file = path.join(t.dir, 'compliance.db');
    const worker = new ComplianceWorker({
      chat: t.store,
      openStore: async () => openSqliteComplianceStore({ file }),
      log: createLogger('silent'),
      outputRoot: path.join(t.dir, 'out'),
      adapterDir: path.join(t.dir, 'adapters'),
    });
    await worker.runNow();
    // Another process holds the write lock: the compliance store is unavailable.
    const locker = new BetterSqlite3(file);
    locker.exec('BEGIN IMMEDIATE');
    await joinRooms(t.d, alice, [{ roomId: room.id }]);
    for (let i = 1; i <= 20; i++) await postMessage(t.d, alice, room.id, { text: `m${i}` });
    await assert.rejects(worker.runNow());
    const down = await worker.status();
    assert.equal(down.backlog, 22); // JOIN, the history it returned (BACKCHAT), 20 posts
    assert.equal(down.store.available, false);
    assert.match(down.store.error ?? '', /locked|busy/i);
    locker.exec('COMMIT');
    locker.close();
    await worker.runNow();
    const up = await worker.status();
    assert.equal(up.backlog, 0);
    assert.equal(up.store.available, true);
    const out = readJsonlOutput(path.join(t.dir, 'out', 'jsonl'));
    assertExactlyOnce(
      out.map((r) => r.recordId),
      up.lastRecordId!,
      'jsonl',
    );
    assert.deepEqual(
      out.filter((r) => r.type === 'CHAT').map((r) => r.content),
      Array.from({ length: 20 }, (_, i) => `m${i + 1}`),
    );
    await worker.stop();
  });
});
