// Per-category retention of the chat store, through real domain commands, a real chat store and a
// real compliance store (both on each dialect): the purge deletes only messages and files older
// than their category's period, never what a legal hold on the category or room covers, takes
// their search data and files with them, and compliance keeps the originals and records the purge.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ChatRetentionJob } from '../../src/compliance/chat-retention.js';
import type { ComplianceRecord, ComplianceStore } from '../../src/compliance/types.js';
import { openSqliteComplianceStore } from '../../src/compliance/sqlite-compliance-store.js';
import type { ComplianceWorker } from '../../src/compliance/worker.js';
import {
  createCategory,
  getCategory,
  updateCategory,
} from '../../src/domain/categories/commands.js';
import { purgeRetentionNow } from '../../src/domain/categories/retention.js';
import { placeHold, purgeNow, releaseHold } from '../../src/domain/compliance/commands.js';
import { setComplianceConfig } from '../../src/domain/compliance/config.js';
import { uploadFile } from '../../src/domain/files/commands.js';
import {
  joinRooms,
  postMessage,
  roomHistory,
  searchMessages,
} from '../../src/domain/messages/commands.js';
import type { DiskFileStore } from '../../src/files/disk-file-store.js';
import { createLogger } from '../../src/logger.js';
import { buildDomain, testDialects, type TestDomain } from '../harness/domain.js';
import { buildRoom, buildUsers, expectCode, useFakeClock } from '../harness/domain-factories.js';
import { allRecords, domainWorker, testComplianceStore } from './helpers.js';

const DAY = 86_400_000;
const day0 = Date.UTC(2024, 0, 1, 12);

for (const dialect of testDialects()) {
  describe(`chat-store retention and legal holds (${dialect})`, () => {
    let t: TestDomain;
    let openCompliance: () => ComplianceStore;
    let dropCompliance = async () => {};
    let worker: ComplianceWorker;
    let clock: { now: number };
    let alice: Awaited<ReturnType<typeof buildUsers<'alice'>>>['alice'];
    const rooms: Record<string, number> = {};
    let fileKey: string;
    let fileId: number;
    const holds = () => worker.listHolds(false);

    async function texts(room: string): Promise<string[]> {
      const page = await roomHistory(t.d, alice, rooms[room]!, { limit: 100 });
      return page.messages.map((m) => m.text);
    }

    async function records(): Promise<ComplianceRecord[]> {
      await worker.runNow();
      return allRecords(openCompliance);
    }

    before(async () => {
      t = await buildDomain({ dialect });
      ({ open: openCompliance, drop: dropCompliance } = await testComplianceStore(dialect, t.dir));
      clock = useFakeClock(t, day0);
      ({ alice } = await buildUsers(t, ['alice']));
      for (const [name, retentionDays] of [
        ['short', 30],
        ['keep', null],
        ['other', 30],
      ] as const) {
        await createCategory(t.d, t.admin, {
          name,
          allowed: ['alice'],
          fileUpload: true,
          retentionDays,
        });
      }
      for (const [room, category] of [
        ['s1', 'short'],
        ['s2', 'short'],
        ['k1', 'keep'],
        ['o1', 'other'],
      ] as const) {
        rooms[room] = (await buildRoom(t, { name: room, category, privacy: 'open' })).id;
      }
      await joinRooms(
        t.d,
        alice,
        Object.values(rooms).map((roomId) => ({ roomId })),
      );
      for (const room of ['s1', 's2', 'k1', 'o1']) {
        await postMessage(t.d, alice, rooms[room]!, { text: `zebra old ${room}` });
      }
      const upload = await uploadFile(
        t.d,
        alice,
        rooms.s2!,
        { name: 'old.txt', contentType: 'text/plain' },
        Buffer.from('an old file'),
      );
      fileId = upload.message.file!.id;
      fileKey = (await t.store.getFile(fileId))!.storageKey;
      clock.now = day0 + 29 * DAY;
      await postMessage(t.d, alice, rooms.s1!, { text: 'zebra young s1' });
      clock.now = day0 + 31 * DAY;
      worker = domainWorker(t, openCompliance, clock);
    });

    after(async () => {
      await worker.stop();
      await dropCompliance();
      await t.close();
    });

    test('retention days are validated, stored and shown; changes are captured', async () => {
      await expectCode(
        createCategory(t.d, t.admin, { name: 'bad', retentionDays: 0 }),
        'invalid_request',
      );
      await expectCode(
        updateCategory(t.d, t.admin, 'keep', { retentionDays: 36_501 }),
        'invalid_request',
      );
      await expectCode(
        updateCategory(t.d, t.admin, 'keep', { retentionDays: 1.5 }),
        'invalid_request',
      );
      await expectCode(updateCategory(t.d, alice, 'keep', { retentionDays: 5 }), 'admin_required');
      assert.equal((await getCategory(t.d, t.admin, 'short')).retentionDays, 30);
      assert.equal((await getCategory(t.d, t.admin, 'keep')).retentionDays, null);
      const changed = await updateCategory(t.d, t.admin, 'keep', { retentionDays: 365 });
      assert.equal(changed.retentionDays, 365);
      assert.equal(
        (await updateCategory(t.d, t.admin, 'keep', { retentionDays: null })).retentionDays,
        null,
      );
      const captured = (await records()).filter((r) => r.kind === 'CATEGORY_CHANGED');
      assert.deepEqual(
        captured.map((r) => (r.payload.changes as { retentionDays?: unknown }).retentionDays),
        [365, null],
      );
    });

    test('only administrators purge, and a hold needs an existing category', async () => {
      await expectCode(purgeRetentionNow(t.d, alice, holds, {}), 'admin_required');
      await expectCode(
        purgeRetentionNow(t.d, t.admin, holds, { category: 'nope' }),
        'category_not_found',
      );
      await expectCode(
        placeHold(t.d, t.admin, worker, { category: 'nope', reason: 'x' }),
        'category_not_found',
      );
    });

    test('a hold on the category stops all purging there; other categories are purged', async () => {
      const hold = await placeHold(t.d, t.admin, worker, { category: 'short', reason: 'matter 1' });
      assert.equal(hold.categoryId, (await getCategory(t.d, t.admin, 'short')).id);
      const r = await purgeRetentionNow(t.d, t.admin, holds, {});
      const short = r.categories.find((c) => c.category === 'short')!;
      assert.equal(short.held, true);
      assert.equal(short.messages, 0);
      const other = r.categories.find((c) => c.category === 'other')!;
      assert.deepEqual([other.held, other.messages], [false, 1]);
      assert.equal(
        r.categories.find((c) => c.category === 'keep'),
        undefined,
      );
      assert.deepEqual(await texts('s1'), ['zebra old s1', 'zebra young s1']);
      assert.deepEqual(await texts('s2'), ['zebra old s2', 'old.txt']);
      assert.deepEqual(await texts('o1'), []);
      assert.deepEqual(await texts('k1'), ['zebra old k1']);
      assert.ok(fs.existsSync((t.d.files as DiskFileStore).path(fileKey)));
      await releaseHold(t.d, t.admin, worker, hold.id, { reason: 'settled' });
    });

    test('a hold on a room keeps that room; the rest of the category is purged', async () => {
      const hold = await placeHold(t.d, t.admin, worker, { roomId: rooms.s1, reason: 'matter 2' });
      const r = await purgeRetentionNow(t.d, t.admin, holds, { category: 'short' });
      assert.equal(r.categories.length, 1);
      assert.deepEqual(r.categories[0]!.rooms, [{ roomId: rooms.s2!, messages: 2, files: 1 }]);
      assert.deepEqual(await texts('s1'), ['zebra old s1', 'zebra young s1']);
      assert.deepEqual(await texts('s2'), []);
      // The file went with its row: no download, nothing on disk.
      assert.equal(await t.store.getFile(fileId), undefined);
      assert.equal(fs.existsSync((t.d.files as DiskFileStore).path(fileKey)), false);
      await releaseHold(t.d, t.admin, worker, hold.id, {});
    });

    test('released holds let the purge proceed: only messages past the period go', async () => {
      const before = (await roomHistory(t.d, alice, rooms.s1!, { limit: 100 })).lastSeq;
      const r = await purgeRetentionNow(t.d, t.admin, holds, {});
      assert.equal(r.messages, 1);
      assert.deepEqual(await texts('s1'), ['zebra young s1']);
      assert.deepEqual(await texts('k1'), ['zebra old k1']);
      // Sequence numbers are never reused: the next post continues after the purged ones.
      const next = await postMessage(t.d, alice, rooms.s1!, { text: 'after the purge' });
      assert.equal(next.message.seq, before + 1);
      const again = await purgeRetentionNow(t.d, t.admin, holds, {});
      assert.equal(again.messages, 0);
    });

    test('search no longer finds purged text', async () => {
      const found = await searchMessages(t.d, alice, { query: 'zebra' });
      assert.deepEqual(found.messages.map((m) => m.text).sort(), [
        'zebra old k1',
        'zebra young s1',
      ]);
    });

    test('compliance keeps the originals and records each purge by category and room', async () => {
      const all = await records();
      const chats = all.filter((r) => r.kind === 'CHAT').map((r) => String(r.payload.text));
      for (const room of ['s1', 's2', 'k1', 'o1']) assert.ok(chats.includes(`zebra old ${room}`));
      const purges = all
        .filter((r) => r.kind === 'MESSAGES_PURGED')
        .map((r) => ({
          category: r.payload.category,
          roomId: r.roomId,
          messages: r.payload.messages,
          files: r.payload.files,
          cutoff: r.payload.cutoff,
          admin: r.actorId === t.admin.userId,
        }));
      const cutoff = day0 + 31 * DAY - 30 * DAY;
      assert.deepEqual(purges, [
        { category: 'other', roomId: rooms.o1, messages: 1, files: 0, cutoff, admin: true },
        { category: 'short', roomId: rooms.s2, messages: 2, files: 1, cutoff, admin: true },
        { category: 'short', roomId: rooms.s1, messages: 1, files: 0, cutoff, admin: true },
      ]);
    });

    test('the scheduled job purges on its own and never without the holds', async () => {
      const categoryId = (await getCategory(t.d, t.admin, 'other')).id;
      clock.now = day0;
      const old = await postMessage(t.d, alice, rooms.o1!, { text: 'zebra for the job' });
      clock.now = day0 + 31 * DAY;
      // Holds unreadable (a compliance store that cannot be opened: its folder is a file).
      fs.writeFileSync(path.join(t.dir, 'not-a-folder'), '');
      const blind = domainWorker(
        t,
        () =>
          openSqliteComplianceStore({ file: path.join(t.dir, 'not-a-folder', 'compliance.db') }),
        clock,
      );
      const log = createLogger('silent');
      const failing = new ChatRetentionJob({
        domain: t.d,
        holds: () => blind.listHolds(false),
        intervalMs: 60_000,
        log,
      });
      assert.equal(await failing.runOnce(), undefined);
      assert.ok(await t.store.getMessage(old.message.id!));
      await blind.stop();
      const job = new ChatRetentionJob({ domain: t.d, holds, intervalMs: 100, log });
      job.start();
      try {
        const deadline = Date.now() + 30_000;
        while (await t.store.getMessage(old.message.id!)) {
          assert.ok(Date.now() < deadline, 'the job did not purge within 30 s');
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await job.stop();
      }
      const purged = (await records()).filter(
        (r) => r.kind === 'MESSAGES_PURGED' && r.payload.categoryId === categoryId,
      );
      assert.equal(purged.at(-1)!.actorId, null);
    });

    test('a category hold also keeps the compliance store purge off its records', async () => {
      await setComplianceConfig(t.d, t.admin, { retentionDays: 30 });
      const hold = await placeHold(t.d, t.admin, worker, { category: 'short', reason: 'matter 3' });
      const shortId = (await getCategory(t.d, t.admin, 'short')).id;
      const r = await purgeNow(t.admin, worker);
      assert.ok(r.purged > 0);
      assert.ok(r.keptUnderHold > 0);
      const left = await records();
      const chats = left.filter((x) => x.kind === 'CHAT').map((x) => String(x.payload.text));
      assert.ok(chats.includes('zebra old s1') && chats.includes('zebra old s2'));
      assert.ok(!chats.includes('zebra old k1') && !chats.includes('zebra old o1'));
      assert.ok(left.filter((x) => x.room?.categoryId === shortId).length > 0);
      await releaseHold(t.d, t.admin, worker, hold.id, {});
      await purgeNow(t.admin, worker);
      const after = (await records()).filter((x) => x.kind === 'CHAT');
      assert.ok(!after.some((x) => String(x.payload.text).startsWith('zebra old')));
    });
  });
}
