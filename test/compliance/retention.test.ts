// Retention and legal hold through real domain commands and a real compliance.db: a purge deletes
// only records past the retention period that every enabled adapter exported and no active hold
// covers, in batches, and is itself captured.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ComplianceStore } from '../../src/compliance/types.js';
import type { ComplianceWorker } from '../../src/compliance/worker.js';
import {
  listHolds,
  placeHold,
  purgeNow,
  releaseHold,
} from '../../src/domain/compliance/commands.js';
import { setComplianceConfig } from '../../src/domain/compliance/config.js';
import { joinRooms, postMessage } from '../../src/domain/messages/commands.js';
import { buildDomain, testDialects, type TestDomain } from '../harness/domain.js';
import {
  buildCategory,
  buildRoom,
  buildUsers,
  expectCode,
  useFakeClock,
} from '../harness/domain-factories.js';
import { allRecords, domainWorker, testComplianceStore } from './helpers.js';

const DAY = 86_400_000;
const day0 = Date.UTC(2024, 0, 1, 12);

for (const dialect of testDialects()) {
  describe(`compliance retention and legal hold (compliance store on ${dialect})`, () => {
    let t: TestDomain;
    let openCompliance: () => ComplianceStore;
    let dropCompliance = async () => {};
    let worker: ComplianceWorker;
    let clock: { now: number };
    let r1: number;
    let r2: number;
    let bobId: number;
    const steps: string[] = [];

    /** Texts of the CHAT records still in the compliance store. */
    async function chatsLeft(): Promise<string[]> {
      return (await allRecords(openCompliance))
        .filter((r) => r.kind === 'CHAT')
        .map((r) => String(r.payload.text))
        .sort();
    }

    before(async () => {
      t = await buildDomain();
      ({ open: openCompliance, drop: dropCompliance } = await testComplianceStore(dialect, t.dir));
      clock = useFakeClock(t, day0);
      const { alice, bob } = await buildUsers(t, ['alice', 'bob']);
      bobId = bob.userId;
      await buildCategory(t, { name: 'c', allowed: ['alice', 'bob'] });
      r1 = (await buildRoom(t, { name: 'r1', category: 'c', privacy: 'open' })).id;
      r2 = (await buildRoom(t, { name: 'r2', category: 'c', privacy: 'open' })).id;
      await joinRooms(t.d, alice, [{ roomId: r1 }, { roomId: r2 }]);
      await joinRooms(t.d, bob, [{ roomId: r2 }]);
      await postMessage(t.d, alice, r1, { text: 'day0 r1 alice' });
      await postMessage(t.d, alice, r2, { text: 'day0 r2 alice' });
      await postMessage(t.d, bob, r2, { text: 'day0 r2 bob' });
      clock.now = day0 + 5 * DAY;
      await postMessage(t.d, alice, r2, { text: 'day5 r2 alice' });
      clock.now = day0 + 40 * DAY;
      await postMessage(t.d, bob, r2, { text: 'day40 r2 bob' });
      await postMessage(t.d, alice, r2, { text: 'day40 r2 alice' });
      worker = domainWorker(t, openCompliance, clock, {
        purgeBatchSize: 2,
        onStep: (step) => steps.push(step),
      });
    });

    after(async () => {
      await worker.stop();
      await dropCompliance();
      await t.close();
    });

    test('without a retention period nothing is purged (the default keeps records forever)', async () => {
      await setComplianceConfig(t.d, t.admin, { adapters: [{ name: 'jsonl', type: 'jsonl' }] });
      await worker.runNow();
      const r = await purgeNow(t.admin, worker);
      assert.equal(r.retentionDays, null);
      assert.equal(r.purged, 0);
      assert.equal((await chatsLeft()).length, 6);
    });

    test('records an enabled adapter has not exported yet are kept', async () => {
      await setComplianceConfig(t.d, t.admin, {
        retentionDays: 30,
        adapters: [
          { name: 'jsonl', type: 'jsonl' },
          // Its module is missing: every run fails and its cursor stays at 0.
          { name: 'broken', type: 'module', module: 'missing' },
        ],
      });
      await worker.runNow();
      const r = await purgeNow(t.admin, worker);
      assert.equal(r.exportedUpTo, 0);
      assert.equal(r.purged, 0);
      assert.ok(r.keptUnexported > 0);
      assert.equal((await chatsLeft()).length, 6);
    });

    test('holds by room, by user and by date range keep what they cover; the rest is purged', async () => {
      // The failing adapter is switched off: only the enabled ones count.
      await setComplianceConfig(t.d, t.admin, {
        adapters: [
          { name: 'jsonl', type: 'jsonl' },
          { name: 'broken', type: 'module', module: 'missing', enabled: false },
        ],
      });
      await placeHold(t.d, t.admin, worker, { roomId: r1, reason: 'matter 1' });
      await placeHold(t.d, t.admin, worker, { user: 'bob', reason: 'matter 2' });
      const dated = await placeHold(t.d, t.admin, worker, {
        from: new Date(day0 + 4 * DAY).toISOString(),
        to: day0 + 6 * DAY,
        reason: 'matter 3',
      });
      assert.equal(dated.from, day0 + 4 * DAY);
      assert.equal(dated.placedBy, 'admin');
      await worker.runNow();
      steps.length = 0;
      const r = await purgeNow(t.admin, worker);
      assert.equal(r.cutoff, new Date(clock.now - 30 * DAY).toISOString());
      assert.ok(r.purged > 4);
      // In short transactions of at most purgeBatchSize records.
      assert.equal(steps.filter((s) => s === 'purge:batch').length, Math.floor(r.purged / 2) + 1);
      assert.ok(r.keptUnderHold > 0);
      assert.equal(r.keptUnexported, 0);
      assert.deepEqual(await chatsLeft(), [
        'day0 r1 alice', // room hold
        'day0 r2 bob', // user hold
        'day40 r2 alice', // not old enough
        'day40 r2 bob',
        'day5 r2 alice', // date-range hold
      ]);
    });

    test('a released hold stops protecting; holds are listed with who placed and released them', async () => {
      const active = await listHolds(t.admin, worker, false);
      assert.equal(active.length, 3);
      const roomHold = active.find((h) => h.roomId === r1)!;
      assert.equal(active.find((h) => h.reason === 'matter 2')?.userId, bobId);
      const released = await releaseHold(t.d, t.admin, worker, roomHold.id, { reason: 'closed' });
      assert.equal(released.releasedBy, 'admin');
      assert.equal(released.releaseReason, 'closed');
      await expectCode(releaseHold(t.d, t.admin, worker, roomHold.id, {}), 'hold_not_found');
      assert.equal((await listHolds(t.admin, worker, false)).length, 2);
      assert.equal((await listHolds(t.admin, worker, true)).length, 3);
      await worker.runNow();
      await purgeNow(t.admin, worker);
      assert.deepEqual(await chatsLeft(), [
        'day0 r2 bob',
        'day40 r2 alice',
        'day40 r2 bob',
        'day5 r2 alice',
      ]);
    });

    test('holds, releases and purges are captured as compliance events themselves', async () => {
      await worker.runNow();
      const { records } = await worker.search({
        kinds: ['LEGAL_HOLD_PLACED', 'LEGAL_HOLD_RELEASED', 'COMPLIANCE_PURGED'],
        limit: 100,
      });
      const kinds = records.map((r) => r.type);
      assert.equal(kinds.filter((k) => k === 'LEGAL_HOLD_PLACED').length, 3);
      assert.equal(kinds.filter((k) => k === 'LEGAL_HOLD_RELEASED').length, 1);
      assert.ok(kinds.filter((k) => k === 'COMPLIANCE_PURGED').length >= 2);
      const placed = records.find((r) => r.type === 'LEGAL_HOLD_PLACED')!;
      assert.equal((placed.payload as { reason: string }).reason, 'matter 1');
      assert.equal((placed.sender as { userName: string }).userName, 'admin');
      const purged = records.filter((r) => r.type === 'COMPLIANCE_PURGED').at(-1)!;
      assert.equal(typeof (purged.payload as { purged: number }).purged, 'number');
    });

    test('hold input is checked; only administrators manage holds and purge', async () => {
      await expectCode(
        placeHold(t.d, t.admin, worker, { reason: 'nothing held' }),
        'invalid_request',
      );
      await expectCode(placeHold(t.d, t.admin, worker, { roomId: r1 }), 'invalid_request');
      await expectCode(
        placeHold(t.d, t.admin, worker, { from: day0 + DAY, to: day0, reason: 'backwards' }),
        'invalid_request',
      );
      await expectCode(
        placeHold(t.d, t.admin, worker, { user: 'nobody', reason: 'x' }),
        'principal_not_found',
      );
      const { carol } = await buildUsers(t, ['carol']);
      await expectCode(
        placeHold(t.d, carol, worker, { roomId: r1, reason: 'x' }),
        'admin_required',
      );
      await expectCode(purgeNow(carol, worker), 'admin_required');
      await expectCode(listHolds(carol, worker, true), 'admin_required');
    });
  });
}
