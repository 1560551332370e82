import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  activityRows,
  buildRoom,
  buildWorld,
  expectCode,
  withDomain,
} from '../../test/harness/domain-factories.js';
import { joinRooms, postMessage } from './messages/commands.js';
import { changeSettings } from './settings/change.js';
import { SettingsService } from './settings/commands.js';

describe('chat settings', () => {
  test('start at the Lync defaults', () =>
    withDomain(async (t) => {
      assert.deepEqual(await t.d.settings.get(), {
        defaultHistory: 30,
        maxFileSizeKb: 20_000,
        participantUpdateLimit: 75,
        maxMessageChars: 8_000,
        roomManagementUrl: '',
      });
    }));

  test('refuse out-of-range and unknown values with invalid_request, changing nothing', () =>
    withDomain(async (t) => {
      const bad = [
        { defaultHistory: 0 },
        { defaultHistory: 501 },
        { defaultHistory: 2.5 },
        { defaultHistory: '30' },
        { maxFileSizeKb: 0 },
        { participantUpdateLimit: 0 },
        { maxMessageChars: 15 },
        { roomManagementUrl: 'ftp://example.com' },
        { surprise: 1 },
        { defaultHistory: 40, maxMessageChars: 1 },
      ];
      for (const patch of bad) {
        const err = await expectCode(changeSettings(t.d, t.admin, patch), 'invalid_request');
        assert.ok(Array.isArray(err.details?.issues), JSON.stringify(patch));
      }
      assert.equal((await t.d.settings.get()).defaultHistory, 30);
      for (const defaultHistory of [1, 500]) {
        await changeSettings(t.d, t.admin, { defaultHistory });
        assert.equal((await t.d.settings.get()).defaultHistory, defaultHistory);
      }
    }));

  test('are changed by administrators only, persist, and are recorded', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice']);
      await expectCode(changeSettings(t.d, users.alice, { defaultHistory: 5 }), 'admin_required');
      const after = await changeSettings(t.d, t.admin, {
        defaultHistory: 5,
        roomManagementUrl: 'https://chat.example.com/rooms',
      });
      assert.equal(after.defaultHistory, 5);
      // A fresh service (another front end) reads the same values from the store.
      const fresh = await new SettingsService(t.store).get();
      assert.equal(fresh.defaultHistory, 5);
      assert.equal(fresh.roomManagementUrl, 'https://chat.example.com/rooms');
      const [record] = (await activityRows(t)).filter((r) => r.kind === 'SETTINGS_CHANGED');
      assert.deepEqual(record!.payload.changes, {
        defaultHistory: 5,
        roomManagementUrl: 'https://chat.example.com/rooms',
      });
    }));

  test('defaultHistory decides how many messages a join returns', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice']);
      const room = await buildRoom(t, { name: 'Lobby', category: 'General', privacy: 'open' });
      for (let i = 1; i <= 6; i += 1)
        await postMessage(t.d, users.alice, room.id, { text: `${i}` });
      await changeSettings(t.d, t.admin, { defaultHistory: 4 });
      const [joined] = await joinRooms(t.d, users.alice, [{ roomId: room.id }]);
      assert.ok(joined?.ok);
      assert.deepEqual(
        joined.result.messages.map((m) => m.seq),
        [3, 4, 5, 6],
      );
      assert.equal(joined.result.more, true);
    }));
});
