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
import { createCategory } from './categories/commands.js';
import { listInvitations, markInvitationsSeen } from './me/commands.js';
import { associations, createRoom, deleteRoom, getRoom, updateRoom } from './rooms/commands.js';

const names = (refs: { name: string }[] | undefined) => (refs ?? []).map((r) => r.name).sort();

describe('room names', () => {
  test('are unique across rooms and categories, whatever the case', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice']);
      const { alice } = users;
      await createRoom(t.d, alice, { name: 'Lobby', category: 'General' });
      await expectCode(
        createRoom(t.d, alice, { name: 'LOBBY', category: 'General' }),
        'name_taken',
      );
      await expectCode(
        createRoom(t.d, alice, { name: ' general ', category: 'General' }),
        'name_taken',
      );
      await expectCode(createCategory(t.d, t.admin, { name: 'lobby' }), 'name_taken');
      const other = await createRoom(t.d, alice, { name: 'Other', category: 'General' });
      await expectCode(updateRoom(t.d, alice, other.id, { name: 'lObBy' }), 'name_taken');
      // Renaming a room to another case of its own name is allowed.
      assert.equal((await updateRoom(t.d, alice, other.id, { name: 'OTHER' })).name, 'OTHER');
      // A failed creation leaves nothing behind: no room, and the name is still free for later.
      assert.equal((await associations(t.d, alice)).manager.length, 2);
    }));

  test('a deleted room frees its name; renaming frees the old one', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice']);
      const room = await createRoom(t.d, users.alice, { name: 'Lobby', category: 'General' });
      await updateRoom(t.d, users.alice, room.id, { name: 'Hall' });
      await createRoom(t.d, users.alice, { name: 'lobby', category: 'General' });
      await deleteRoom(t.d, t.admin, room.id);
      await createRoom(t.d, users.alice, { name: 'HALL', category: 'General' });
    }));

  test('bad names and descriptions are refused with invalid_request', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice']);
      const create = (input: Record<string, unknown>) =>
        createRoom(t.d, users.alice, { category: 'General', ...input });
      const ok = await create({ name: 'x'.repeat(256), description: 'd'.repeat(256) });
      assert.equal(ok.name.length, 256);
      for (const name of ['x'.repeat(257), '', '   ', 'bell\u0007', 'tab\there', 'rtl\u202eevil']) {
        await expectCode(create({ name }), 'invalid_request');
      }
      await expectCode(create({ name: 'D', description: 'd'.repeat(257) }), 'invalid_request');
      await expectCode(create({ name: 'E', description: 'nul\u0000' }), 'invalid_request');
      await expectCode(create({ name: 'F', privacy: 'hidden' }), 'invalid_request');
      await expectCode(create({ name: 'G', surprise: true }), 'invalid_request');
      await expectCode(
        updateRoom(t.d, users.alice, ok.id, { name: 'y\u0001z' }),
        'invalid_request',
      );
    }));
});

describe('creating rooms', () => {
  test('the creator becomes a manager; the room starts closed, normal and without members', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice']);
      const room = await createRoom(t.d, users.alice, { name: 'Lobby', category: 'General' });
      assert.equal(room.privacy, 'closed');
      assert.equal(room.type, 'normal');
      assert.deepEqual(names(room.managers), ['alice']);
      assert.deepEqual(names(room.members), []);
      assert.equal(room.my.manager, true);
      assert.equal(room.my.canRead, false, 'a manager reads only as a member');
      const created = (await activityRows(t)).filter((r) => r.kind === 'ROOM_CREATED');
      assert.equal(created.length, 1);
      assert.equal(created[0]!.room_id, room.id);
      assert.equal(created[0]!.payload.name, 'Lobby');
    }));

  test('only creators of the category and administrators create rooms', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice', 'bob']);
      const { carol } = await buildUsers(t, ['carol']);
      await expectCode(createRoom(t.d, users.bob, { name: 'B', category: 'General' }), 'forbidden');
      // A category outside the actor's scope is as invisible as one that does not exist.
      await expectCode(
        createRoom(t.d, carol, { name: 'C', category: 'General' }),
        'category_not_found',
      );
      await expectCode(
        createRoom(t.d, users.alice, { name: 'D', category: 'Nowhere' }),
        'category_not_found',
      );
      // The administrator is in no scope, so it creates without becoming a manager.
      const byAdmin = await createRoom(t.d, t.admin, { name: 'E', category: 'General' });
      assert.deepEqual(names(byAdmin.managers), []);
      assert.equal(byAdmin.my.canManage, true);
    }));

  test('a creator on the denied list loses the creator right', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice'], { denied: ['alice'] });
      await expectCode(
        createRoom(t.d, users.alice, { name: 'Lobby', category: 'General' }),
        'category_not_found',
      );
    }));

  test('role principals must be in the category scope', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice', 'bob']);
      await buildUsers(t, ['carol', 'dave']);
      const err = await expectCode(
        createRoom(t.d, users.alice, {
          name: 'Lobby',
          category: 'General',
          members: ['bob', 'carol', 'dave'],
        }),
        'principal_out_of_scope',
      );
      assert.deepEqual(err.details, { principals: ['carol', 'dave'] });
      await expectCode(
        createRoom(t.d, users.alice, { name: 'Lobby', category: 'General', managers: ['ghost'] }),
        'principal_not_found',
      );
      const room = await createRoom(t.d, users.alice, { name: 'Lobby', category: 'General' });
      await expectCode(
        updateRoom(t.d, users.alice, room.id, { managers: { add: ['carol'] } }),
        'principal_out_of_scope',
      );
      assert.deepEqual(names((await getRoom(t.d, users.alice, room.id)).managers), ['alice']);
    }));
});

describe('presenters', () => {
  test('exist only in auditoriums and must be members there (except in open rooms)', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice', 'bob']);
      const create = (input: Record<string, unknown>) =>
        createRoom(t.d, users.alice, { category: 'General', ...input });
      await expectCode(
        create({ name: 'A', members: ['bob'], presenters: ['bob'] }),
        'presenters_need_auditorium',
      );
      await expectCode(
        create({ name: 'B', type: 'auditorium', presenters: ['bob'] }),
        'presenter_not_member',
      );
      const open = await create({
        name: 'C',
        type: 'auditorium',
        privacy: 'open',
        presenters: ['bob'],
      });
      assert.deepEqual(names(open.presenters), ['bob']);
      const hall = await create({
        name: 'D',
        type: 'auditorium',
        members: ['bob'],
        presenters: ['bob'],
      });
      await expectCode(
        updateRoom(t.d, users.alice, hall.id, { members: { remove: ['bob'] } }),
        'presenter_not_member',
      );
      // Turning the auditorium into a normal room drops its presenters.
      const normal = await updateRoom(t.d, users.alice, hall.id, { type: 'normal' });
      assert.deepEqual(names(normal.presenters), []);
      assert.deepEqual(names(normal.members), ['bob']);
    }));
});

describe('managing rooms', () => {
  test('managers change settings and roles; members and others cannot', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice', 'bob', 'carol']);
      const room = await createRoom(t.d, users.alice, {
        name: 'Lobby',
        category: 'General',
        members: ['bob'],
      });
      await expectCode(updateRoom(t.d, users.bob, room.id, { description: 'x' }), 'forbidden');
      const changed = await updateRoom(t.d, users.alice, room.id, {
        description: 'Topic',
        privacy: 'secret',
        members: { add: ['carol'], remove: ['bob'] },
        managers: ['bob'],
      });
      assert.equal(changed.description, 'Topic');
      assert.equal(changed.privacy, 'secret');
      // alice replaced herself as manager: the room is now secret and hers no more.
      assert.equal(changed.members, undefined);
      await expectCode(getRoom(t.d, users.alice, room.id), 'room_not_found');
      const seen = await getRoom(t.d, t.admin, room.id);
      assert.deepEqual(names(seen.members), ['carol']);
      assert.deepEqual(names(seen.managers), ['bob']);
      assert.ok(t.events.some((e) => e.type === 'room.access_changed' && e.roomId === room.id));
      assert.equal((await activityRows(t)).filter((r) => r.kind === 'ROOM_CHANGED').length, 1);
    }));

  test('only administrators delete rooms', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice']);
      const room = await createRoom(t.d, users.alice, { name: 'Lobby', category: 'General' });
      await expectCode(deleteRoom(t.d, users.alice, room.id), 'admin_required');
      await deleteRoom(t.d, t.admin, room.id);
      await expectCode(getRoom(t.d, t.admin, room.id), 'room_not_found');
      assert.ok(t.events.some((e) => e.type === 'room.deleted' && e.roomId === room.id));
      assert.equal((await activityRows(t)).filter((r) => r.kind === 'ROOM_DELETED').length, 1);
    }));

  test('moving a room needs the creator role there and drops roles outside the new scope', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice', 'bob', 'carol']);
      await buildCategory(t, { name: 'Walled', allowed: ['alice', 'bob'] });
      const room = await createRoom(t.d, users.alice, {
        name: 'Lobby',
        category: 'General',
        members: ['bob', 'carol'],
        managers: ['carol'],
      });
      await expectCode(updateRoom(t.d, users.alice, room.id, { category: 'Walled' }), 'forbidden');
      const moved = await updateRoom(t.d, t.admin, room.id, { category: 'Walled' });
      assert.equal(moved.category.name, 'Walled');
      assert.deepEqual(names(moved.members), ['bob']);
      assert.deepEqual(names(moved.managers), ['alice']);
      await expectCode(getRoom(t.d, users.carol, room.id), 'room_not_found');
    }));

  test('a manager who is a creator in the target category may move the room', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice']);
      await buildCategory(t, { name: 'Second', allowed: ['alice'], creators: ['alice'] });
      const room = await createRoom(t.d, users.alice, { name: 'Lobby', category: 'General' });
      const moved = await updateRoom(t.d, users.alice, room.id, { category: 'Second' });
      assert.equal(moved.category.name, 'Second');
    }));
});

describe('invitations', () => {
  test('go to initial and added members when the category has them on and the room inherits', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice', 'bob', 'carol'], {
        invitations: true,
      });
      const room = await createRoom(t.d, users.alice, {
        name: 'Lobby',
        category: 'General',
        members: ['alice', 'bob'],
      });
      assert.equal(room.invitationsEnabled, true);
      assert.deepEqual(await listInvitations(t.d, users.alice, {}), [], 'no self-invitation');
      const bobs = await listInvitations(t.d, users.bob, {});
      assert.deepEqual(
        bobs.map((i) => [i.room.name, i.invitedBy]),
        [['Lobby', users.alice.userId]],
      );
      assert.ok(t.events.some((e) => e.type === 'invitation' && e.userId === users.bob.userId));

      await updateRoom(t.d, users.alice, room.id, { members: { add: ['carol'] } });
      assert.equal((await listInvitations(t.d, users.carol, {})).length, 1);
      assert.equal((await listInvitations(t.d, users.bob, {})).length, 1, 'only added members');

      assert.deepEqual(await markInvitationsSeen(t.d, users.bob, { ids: [bobs[0]!.id] }), {
        updated: 1,
      });
      assert.deepEqual(await listInvitations(t.d, users.bob, {}), []);
      const all = await listInvitations(t.d, users.bob, { all: true });
      assert.equal(all.length, 1);
      assert.notEqual(all[0]!.seenAt, null);
      // Someone else's invitation cannot be marked.
      const carols = await listInvitations(t.d, users.carol, {});
      assert.deepEqual(await markInvitationsSeen(t.d, users.bob, { ids: [carols[0]!.id] }), {
        updated: 0,
      });
    }));

  test('are not sent when the room turns them off or the category has them off', () =>
    withDomain(async (t) => {
      const { users } = await buildWorld(t, ['alice', 'bob'], { invitations: true });
      await buildCategory(t, {
        name: 'Quiet',
        allowed: ['alice', 'bob'],
        creators: ['alice'],
      });
      const off = await createRoom(t.d, users.alice, {
        name: 'Off',
        category: 'General',
        invitations: 'off',
        members: ['bob'],
      });
      assert.equal(off.invitationsEnabled, false);
      const quiet = await createRoom(t.d, users.alice, {
        name: 'Quiet room',
        category: 'Quiet',
        members: ['bob'],
      });
      assert.equal(quiet.invitationsEnabled, false);
      assert.deepEqual(await listInvitations(t.d, users.bob, {}), []);
    }));

  test('to a group expand to its users', () =>
    withDomain(async (t) => {
      const { bob, carol } = await buildUsers(t, ['bob', 'carol']);
      await t.buildGroup('team', ['bob', 'carol']);
      await buildCategory(t, { name: 'General', allowed: ['team'], invitations: true });
      await buildRoom(t, { name: 'Lobby', category: 'General', members: ['team'] });
      for (const user of [bob, carol]) {
        assert.equal((await listInvitations(t.d, await t.refresh(user), {})).length, 1);
      }
    }));
});
