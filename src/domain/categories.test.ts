import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  activityRows,
  buildCategory,
  buildRoom,
  buildUsers,
  buildWorld,
  expectCode,
  withDomain,
} from '../../test/harness/domain-factories.js';
import {
  createCategory,
  deleteCategory,
  getCategory,
  listCategories,
  updateCategory,
} from './categories/commands.js';
import { roomHistory } from './messages/commands.js';
import { createRoom, deleteRoom, getRoom, updateRoom } from './rooms/commands.js';

const names = (refs: { name: string }[] | undefined) => (refs ?? []).map((r) => r.name).sort();

describe('categories', () => {
  test('have Lync defaults: upload and invitations off, history on; lists as given', () =>
    withDomain(async (t) => {
      await buildUsers(t, ['alice', 'bob']);
      const c = await createCategory(t.d, t.admin, {
        name: 'General',
        allowed: ['alice', 'bob'],
        denied: ['bob'],
        creators: ['alice'],
      });
      assert.deepEqual([c.fileUpload, c.invitations, c.history], [false, false, true]);
      assert.deepEqual(names(c.allowed), ['alice', 'bob']);
      assert.deepEqual(names(c.denied), ['bob']);
      assert.deepEqual(names(c.creators), ['alice']);
      assert.equal((await activityRows(t)).filter((r) => r.kind === 'CATEGORY_CREATED').length, 1);
    }));

  test('are administered by administrators only', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice']);
      await expectCode(createCategory(t.d, users.alice, { name: 'Mine' }), 'admin_required');
      await expectCode(
        updateCategory(t.d, users.alice, 'General', { history: false }),
        'admin_required',
      );
      await expectCode(deleteCategory(t.d, users.alice, 'General'), 'admin_required');
    }));

  test('names are unique with rooms, case-insensitively, and validated', () =>
    withDomain(async (t) => {
      await buildCategory(t, { name: 'General' });
      await buildRoom(t, { name: 'Lobby', category: 'General' });
      await expectCode(createCategory(t.d, t.admin, { name: 'GENERAL' }), 'name_taken');
      await expectCode(createCategory(t.d, t.admin, { name: 'LoBbY' }), 'name_taken');
      const other = await buildCategory(t, { name: 'Other' });
      await expectCode(updateCategory(t.d, t.admin, other.id, { name: 'lobby' }), 'name_taken');
      for (const name of ['', 'x'.repeat(257), 'a\u0000b', 'a\u009fb']) {
        await expectCode(createCategory(t.d, t.admin, { name }), 'invalid_request');
      }
      await expectCode(
        createCategory(t.d, t.admin, { name: 'Z', allowed: ['ghost'] }),
        'principal_not_found',
      );
      const renamed = await updateCategory(t.d, t.admin, 'Other', { name: 'Renamed' });
      assert.equal(renamed.name, 'Renamed');
      await createCategory(t.d, t.admin, { name: 'other' });
    }));

  test('are deleted only when empty', () =>
    withDomain(async (t) => {
      await buildCategory(t, { name: 'General' });
      const room = await buildRoom(t, { name: 'Lobby', category: 'General' });
      const err = await expectCode(deleteCategory(t.d, t.admin, 'General'), 'category_not_empty');
      assert.deepEqual(err.details, { rooms: 1 });
      await deleteRoom(t.d, t.admin, room.id);
      await deleteCategory(t.d, t.admin, 'General');
      await expectCode(getCategory(t.d, t.admin, 'General'), 'category_not_found');
      await expectCode(deleteCategory(t.d, t.admin, 'General'), 'category_not_found');
      // The name is free again.
      await buildCategory(t, { name: 'general' });
    }));

  test('users see only the categories whose scope includes them', () =>
    withDomain(async (t) => {
      const { alice, bob } = await buildUsers(t, ['alice', 'bob']);
      await buildCategory(t, { name: 'Both', allowed: ['alice', 'bob'], creators: ['alice'] });
      await buildCategory(t, { name: 'Alice only', allowed: ['alice', 'bob'], denied: ['bob'] });
      const forAlice = await listCategories(t.d, alice);
      assert.deepEqual(
        forAlice.map((c) => [c.name, 'canCreate' in c && c.canCreate]),
        [
          ['Alice only', false],
          ['Both', true],
        ],
      );
      assert.ok(!('allowed' in forAlice[0]!), 'users do not see the lists');
      assert.deepEqual(
        (await listCategories(t.d, bob)).map((c) => c.name),
        ['Both'],
      );
      await expectCode(getCategory(t.d, bob, 'Alice only'), 'category_not_found');
      assert.equal((await listCategories(t.d, t.admin)).length, 2);
    }));
});

describe('narrowing a category scope', () => {
  test('prunes room roles that fall outside it, in every room of the category', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice', 'bob', 'carol']);
      const rooms = [];
      for (const name of ['One', 'Two']) {
        rooms.push(
          await createRoom(t.d, users.alice, {
            name,
            category: 'General',
            type: 'auditorium',
            members: ['bob', 'carol'],
            managers: ['bob'],
            presenters: ['bob'],
          }),
        );
      }
      t.events.length = 0;
      await updateCategory(t.d, t.admin, 'General', { denied: ['bob'] });
      for (const room of rooms) {
        const seen = await getRoom(t.d, t.admin, room.id);
        assert.deepEqual(names(seen.members), ['carol']);
        assert.deepEqual(names(seen.managers), ['alice']);
        assert.deepEqual(names(seen.presenters), []);
        assert.ok(t.events.some((e) => e.type === 'room.access_changed' && e.roomId === room.id));
      }
      await expectCode(getRoom(t.d, users.bob, rooms[0]!.id), 'room_not_found');
      // Lifting the deny does not bring pruned roles back.
      await updateCategory(t.d, t.admin, 'General', { denied: [] });
      const bob = await t.refresh(users.bob);
      assert.equal((await getRoom(t.d, bob, rooms[0]!.id)).my.member, false);
    }));

  test('takes effect at once for readers whose rights were cached', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice', 'bob']);
      const room = await createRoom(t.d, users.alice, {
        name: 'Lobby',
        category: 'General',
        privacy: 'open',
      });
      await roomHistory(t.d, users.bob, room.id, {});
      await updateCategory(t.d, t.admin, 'General', { allowed: ['alice'] });
      await expectCode(roomHistory(t.d, users.bob, room.id, {}), 'room_not_found');
      await expectCode(
        updateRoom(t.d, users.alice, room.id, { members: ['bob'] }),
        'principal_out_of_scope',
      );
    }));
});
