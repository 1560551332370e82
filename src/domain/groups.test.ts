import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  activityRows,
  buildCategory,
  buildRoom,
  buildUsers,
  expectCode,
  lastActivityId,
  withDomain,
} from '../../test/harness/domain-factories.js';
import type { TestDomain } from '../../test/harness/domain.js';
import {
  grantPolicy,
  groupReferences,
  removeGroup,
  updateGroup,
  upsertPolicy,
} from './directory/commands.js';

/** alice in legal, legal in staff; legal allowed and creator in Legal, member and manager of a room. */
async function world(t: TestDomain) {
  const users = await buildUsers(t, ['alice', 'bob']);
  const legal = await t.buildGroup('legal', ['alice']);
  await t.buildGroup('staff', ['legal', 'bob']);
  await buildCategory(t, { name: 'Legal', allowed: ['legal', 'bob'], creators: ['legal'] });
  const room = await buildRoom(t, {
    name: 'Case 42',
    category: 'Legal',
    members: ['legal', 'bob'],
    managers: ['legal'],
  });
  return { users, legal, room };
}

describe('group set', () => {
  test('renames and describes a group; roles and lists follow it', () =>
    withDomain(async (t) => {
      const { legal, room } = await world(t);
      const from = await lastActivityId(t);
      const g = await updateGroup(t.d, t.admin, 'LEGAL', {
        name: 'legal-eu',
        displayName: 'Legal (EU)',
        description: 'counsel',
      });
      assert.deepEqual(
        [g.id, g.name, g.displayName, g.description],
        [legal.id, 'legal-eu', 'Legal (EU)', 'counsel'],
      );
      assert.equal(await t.store.getPrincipalByName('legal'), undefined);
      assert.equal((await t.store.getPrincipalByName('Legal-EU'))!.id, legal.id);
      assert.ok((await t.store.getRoomRoles(room.id)).managers.includes(legal.id));
      const cleared = await updateGroup(t.d, t.admin, 'legal-eu', { description: null });
      assert.equal(cleared.description, null);
      const rows = await activityRows(t, from);
      assert.deepEqual(
        rows.map((r) => [r.kind, r.payload.group, r.payload.renamedFrom]),
        [
          ['GROUP_CHANGED', 'legal-eu', 'legal'],
          ['GROUP_CHANGED', 'legal-eu', undefined],
        ],
      );
    }));

  test('refuses a taken name, a user, a non-administrator and bad input', () =>
    withDomain(async (t) => {
      const { users } = await world(t);
      await expectCode(updateGroup(t.d, t.admin, 'legal', { name: 'BOB' }), 'principal_exists');
      await expectCode(
        updateGroup(t.d, t.admin, 'alice', { description: 'x' }),
        'principal_not_found',
      );
      await expectCode(
        updateGroup(t.d, users.alice, 'legal', { description: 'x' }),
        'admin_required',
      );
      await expectCode(updateGroup(t.d, t.admin, 'legal', { colour: 'red' }), 'invalid_request');
      await expectCode(updateGroup(t.d, t.admin, 'legal', { name: '' }), 'invalid_request');
    }));
});

describe('group remove', () => {
  test('takes the group out of roles, lists and groups; its users stay and lose that access', () =>
    withDomain(async (t) => {
      const { users, legal, room } = await world(t);
      const alice = await t.refresh(users.alice);
      assert.ok(alice.principalIds.includes(legal.id));
      const refs = await groupReferences(t.d, t.admin, 'legal');
      assert.deepEqual(
        { ...refs, group: refs.group.name },
        {
          group: 'legal',
          members: 1,
          rooms: [{ id: room.id, name: 'Case 42', roles: ['manager', 'member'] }],
          categories: [
            { id: refs.categories[0]!.id, name: 'Legal', lists: ['allowed', 'creator'] },
          ],
          parentGroups: ['staff'],
          policy: null,
          blockers: [],
        },
      );
      const from = await lastActivityId(t);
      const removed = await removeGroup(t.d, t.admin, 'legal');
      assert.deepEqual(removed, refs);
      assert.equal(await t.store.getPrincipalByName('legal'), undefined);
      const roles = await t.store.getRoomRoles(room.id);
      assert.deepEqual(roles.managers, []);
      assert.deepEqual(roles.members, [users.bob.userId]);
      const lists = await t.store.getCategoryLists(refs.categories[0]!.id);
      assert.deepEqual([lists.allowed, lists.creators], [[users.bob.userId], []]);
      const staff = await t.store.getPrincipalByName('staff');
      assert.deepEqual(await t.store.listGroupMembers(staff!.id), [users.bob.userId]);
      assert.ok(await t.store.getPrincipalByName('alice'), 'the users stay');
      const after = await t.refresh(users.alice);
      assert.deepEqual(after.principalIds, [users.alice.userId]);
      assert.ok(t.events.some((e) => e.type === 'room.access_changed' && e.roomId === room.id));
      const rows = await activityRows(t, from);
      assert.deepEqual(
        rows.map((r) => [r.kind, r.payload.group]),
        [['GROUP_DELETED', 'legal']],
      );
      await expectCode(removeGroup(t.d, t.admin, 'legal'), 'principal_not_found');
    }));

  test('refuses a group on a denied list or with a policy grant, changing nothing', () =>
    withDomain(async (t) => {
      const { users } = await world(t);
      const walled = await t.buildGroup('walled', ['bob']);
      await buildCategory(t, { name: 'Deals', allowed: ['staff'], denied: ['walled'] });
      const refused = await expectCode(removeGroup(t.d, t.admin, 'walled'), 'group_in_use');
      assert.deepEqual(refused.details?.blockers, ['it is on the denied list of category Deals']);
      assert.equal((await t.store.getPrincipalByName('walled'))!.id, walled.id);

      await upsertPolicy(t.d, t.admin, { name: 'no-chat', enabled: false });
      await grantPolicy(t.d, t.admin, 'legal', 'no-chat');
      const refs = await groupReferences(t.d, t.admin, 'legal');
      assert.deepEqual(refs.blockers, ['it holds the policy no-chat']);
      await expectCode(removeGroup(t.d, t.admin, 'legal'), 'group_in_use');
      assert.ok(await t.store.getPrincipalByName('legal'));
      await expectCode(removeGroup(t.d, users.bob, 'staff'), 'admin_required');
      await expectCode(groupReferences(t.d, users.bob, 'staff'), 'admin_required');
      await expectCode(removeGroup(t.d, t.admin, 'alice'), 'principal_not_found');
    }));
});
