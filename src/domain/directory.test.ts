import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildUsers,
  expectCode,
  useFakeClock,
  withDomain,
} from '../../test/harness/domain-factories.js';
import type { TestDomain } from '../../test/harness/domain.js';
import {
  authenticate,
  changeGroupMembers,
  createGroup,
  createUser,
  signIn,
  signOut,
  updateUser,
} from './directory/commands.js';

const signInAs = (t: TestDomain, login: string, password = `password-${login}`, from = 'ip-1') =>
  signIn(t.d, { login, password }, from);

describe('sign-in', () => {
  test('stores an argon2id hash and opens a session that authenticates', () =>
    withDomain(async (t) => {
      const user = await createUser(t.d, t.admin, {
        login: 'alice',
        password: 'correct horse',
        displayName: 'Alice',
      });
      const hash = await t.store.getPasswordHash(user.id);
      assert.match(hash!, /^\$argon2id\$/);
      assert.ok(!hash!.includes('correct horse'));
      const session = await signIn(t.d, { login: 'ALICE', password: 'correct horse' }, 'ip');
      assert.equal(session.user.name, 'alice');
      const actor = await authenticate(t.d, session.token);
      assert.deepEqual([actor.userId, actor.login, actor.chatEnabled], [user.id, 'alice', true]);
    }));

  test('answers invalid_credentials alike for a wrong password and an unknown login', () =>
    withDomain(async (t) => {
      await buildUsers(t, ['alice']);
      await t.buildGroup('staff');
      const wrong = await expectCode(signInAs(t, 'alice', 'nope'), 'invalid_credentials');
      const unknown = await expectCode(signInAs(t, 'nobody', 'nope'), 'invalid_credentials');
      const group = await expectCode(signInAs(t, 'staff', 'nope'), 'invalid_credentials');
      assert.equal(wrong.message, unknown.message);
      assert.equal(wrong.message, group.message);
      await expectCode(signIn(t.d, { login: 'alice' }, 'ip'), 'invalid_request');
    }));

  test('is throttled after repeated failures, per login and per client address', () =>
    withDomain(async (t) => {
      const clock = useFakeClock(t);
      await buildUsers(t, ['alice', 'bob']);
      for (let i = 0; i < 5; i += 1) {
        await expectCode(signInAs(t, 'alice', 'wrong', `ip-${i}`), 'invalid_credentials');
      }
      // Even the right password waits now.
      const err = await expectCode(signInAs(t, 'alice', undefined, 'ip-9'), 'too_many_attempts');
      assert.deepEqual(err.details, { retryAfterSeconds: 1 });
      // Another login from a fresh address is not affected.
      await signInAs(t, 'bob', undefined, 'ip-8');
      clock.now += 1000;
      await signInAs(t, 'alice', undefined, 'ip-9');
      // Per address: five failures on different logins block that address.
      for (const login of ['u1', 'u2', 'u3', 'u4', 'u5']) {
        await expectCode(signInAs(t, login, 'x', 'ip-evil'), 'invalid_credentials');
      }
      await expectCode(signInAs(t, 'bob', undefined, 'ip-evil'), 'too_many_attempts');
    }));

  test('refuses a disabled account that gives the right password', () =>
    withDomain(async (t) => {
      await buildUsers(t, ['alice']);
      await updateUser(t.d, t.admin, 'alice', { disabled: true });
      await expectCode(signInAs(t, 'alice'), 'account_disabled');
    }));
});

describe('sessions', () => {
  test('are revoked when the account is disabled or its password changes', () =>
    withDomain(async (t) => {
      await buildUsers(t, ['alice', 'bob']);
      const a = await signInAs(t, 'alice');
      const b = await signInAs(t, 'bob');
      await updateUser(t.d, t.admin, 'alice', { disabled: true });
      await expectCode(authenticate(t.d, a.token), 'unauthenticated');
      await updateUser(t.d, t.admin, 'bob', { password: 'new password' });
      await expectCode(authenticate(t.d, b.token), 'unauthenticated');
      await expectCode(signInAs(t, 'bob'), 'invalid_credentials');
      await signInAs(t, 'bob', 'new password');
      assert.ok(
        t.events.some((e) => e.type === 'user.signed_out' && e.all && e.userId === a.user.id),
      );
    }));

  test('end on sign-out (one or all) and on expiry', () =>
    withDomain(async (t) => {
      const clock = useFakeClock(t);
      await buildUsers(t, ['alice']);
      const one = await signInAs(t, 'alice');
      const two = await signInAs(t, 'alice');
      const three = await signInAs(t, 'alice');
      await signOut(t.d, one.token, false);
      await expectCode(authenticate(t.d, one.token), 'unauthenticated');
      await authenticate(t.d, two.token);
      await signOut(t.d, two.token, true);
      await expectCode(authenticate(t.d, three.token), 'unauthenticated');
      const four = await signInAs(t, 'alice');
      clock.now = four.expiresAt;
      await expectCode(authenticate(t.d, four.token), 'unauthenticated');
      await expectCode(authenticate(t.d, 'made-up'), 'unauthenticated');
      await expectCode(authenticate(t.d, ''), 'unauthenticated');
    }));
});

describe('users and groups', () => {
  test('are created by administrators with validated, case-insensitively unique names', () =>
    withDomain(async (t) => {
      const { alice } = await buildUsers(t, ['alice']);
      await expectCode(
        createUser(t.d, alice, { login: 'bob', password: 'long enough' }),
        'admin_required',
      );
      await expectCode(
        createUser(t.d, t.admin, { login: 'ALICE', password: 'long enough' }),
        'principal_exists',
      );
      await expectCode(createGroup(t.d, t.admin, { name: 'Alice' }), 'principal_exists');
      for (const input of [
        { login: 'bob', password: 'short' },
        { login: 'has space', password: 'long enough' },
        { login: '', password: 'long enough' },
        { login: 'bob', password: 'long enough', email: 'not-an-email' },
      ]) {
        await expectCode(createUser(t.d, t.admin, input), 'invalid_request');
      }
      await expectCode(
        createGroup(t.d, t.admin, { name: 'team', members: ['ghost'] }),
        'principal_not_found',
      );
    }));

  test('administrators cannot disable or demote themselves', () =>
    withDomain(async (t) => {
      await expectCode(updateUser(t.d, t.admin, 'admin', { disabled: true }), 'cannot_demote_self');
      await expectCode(updateUser(t.d, t.admin, 'admin', { isAdmin: false }), 'cannot_demote_self');
    }));

  test('group nesting refuses cycles, direct or through other groups', () =>
    withDomain(async (t) => {
      await buildUsers(t, ['alice']);
      await t.buildGroup('inner', ['alice']);
      await t.buildGroup('middle', ['inner']);
      await t.buildGroup('outer', ['middle']);
      for (const [group, add] of [
        ['inner', 'inner'],
        ['inner', 'middle'],
        ['inner', 'outer'],
        ['middle', 'OUTER'],
      ] as const) {
        await expectCode(changeGroupMembers(t.d, t.admin, group, { add: [add] }), 'group_cycle');
      }
      const inner = (await t.store.getPrincipalByName('inner'))!;
      assert.equal((await t.store.listGroupMembers(inner.id)).length, 1, 'nothing was added');
      // A diamond is not a cycle.
      await changeGroupMembers(t.d, t.admin, 'outer', { add: ['inner'] });
      const alice = (await t.store.getPrincipalByName('alice'))!;
      assert.equal((await t.store.ancestry(alice.id)).length, 4, 'alice, inner, middle, outer');
      await expectCode(
        changeGroupMembers(t.d, t.admin, 'alice', { add: ['inner'] }),
        'principal_not_found',
      );
    }));
});
