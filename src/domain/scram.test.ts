import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expectCode, withDomain } from '../../test/harness/domain-factories.js';
import type { TestDomain } from '../../test/harness/domain.js';
import { createUser, signIn, updateUser } from './directory/commands.js';
import { finishScramSignIn, SCRAM_SHA1, scramCredentials, scramLookup } from './directory/scram.js';

/** Whether the stored credentials are the ones derived from this password. */
async function verifies(t: TestDomain, userId: number, password: string): Promise<boolean> {
  const stored = await t.store.getScramCredentials(userId, SCRAM_SHA1);
  assert.ok(stored, 'SCRAM credentials are stored');
  const again = await scramCredentials(password, stored.salt, stored.iterations);
  return again.storedKey.equals(stored.storedKey) && again.serverKey.equals(stored.serverKey);
}

describe('SCRAM credentials (migration 012)', () => {
  test('are derived when a password is set and again when it changes', () =>
    withDomain(async (t) => {
      const user = await createUser(t.d, t.admin, { login: 'alice', password: 'first password' });
      assert.ok(await verifies(t, user.id, 'first password'));
      const stored = (await t.store.getScramCredentials(user.id, SCRAM_SHA1))!;
      assert.ok(stored.iterations >= 4096);
      assert.ok(!JSON.stringify(stored).includes('first password'));
      await updateUser(t.d, t.admin, 'alice', { password: 'second password' });
      assert.ok(await verifies(t, user.id, 'second password'));
      assert.ok(!(await verifies(t, user.id, 'first password')));
    }));

  test('a user from before migration 012 gets them at the next password sign-in', () =>
    withDomain(async (t) => {
      const user = await t.store.createPrincipal(
        {
          kind: 'user',
          name: 'old',
          displayName: 'Old user',
          passwordHash: await t.d.hasher.hash('old password'),
        },
        t.d.clock(),
      );
      assert.equal(await t.store.getScramCredentials(user.id, SCRAM_SHA1), undefined);
      const decoy = await scramLookup(t.d, 'old', 'ip-1');
      assert.equal(decoy.user, undefined, 'without credentials SCRAM cannot succeed yet');
      await expectCode(
        signIn(t.d, { login: 'old', password: 'wrong' }, 'ip-1'),
        'invalid_credentials',
      );
      assert.equal(await t.store.getScramCredentials(user.id, SCRAM_SHA1), undefined);
      await signIn(t.d, { login: 'old', password: 'old password' }, 'ip-1');
      assert.ok(await verifies(t, user.id, 'old password'));
      const lookup = await scramLookup(t.d, 'old', 'ip-1');
      assert.equal(lookup.user?.id, user.id);
    }));

  test('an unknown login gets a stable decoy, and a failed proof is throttled like a wrong password', () =>
    withDomain(async (t) => {
      const a = await scramLookup(t.d, 'nobody', 'ip-2');
      const b = await scramLookup(t.d, 'NOBODY', 'ip-2');
      assert.equal(a.user, undefined);
      assert.ok(a.credentials.salt.equals(b.credentials.salt), 'the same salt on every attempt');
      await createUser(t.d, t.admin, { login: 'bob', password: 'bob password' });
      const bob = await scramLookup(t.d, 'bob', 'ip-2');
      let code = '';
      for (let i = 0; i < 20 && code === ''; i++) {
        await expectCode(
          finishScramSignIn(t.d, 'bob', bob.user, false, 'ip-2'),
          'invalid_credentials',
        );
        code = await scramLookup(t.d, 'bob', 'ip-2').then(
          () => '',
          (err: { code: string }) => err.code,
        );
      }
      assert.equal(code, 'too_many_attempts');
      const session = await finishScramSignIn(t.d, 'bob', bob.user, true, 'ip-3');
      assert.equal(session.user.name, 'bob');
    }));
});
