import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  activityRows,
  expectCode,
  lastActivityId,
  withDomain,
} from '../../test/harness/domain-factories.js';
import { PolicyNotFoundError } from '../errors.js';
import { audited, listAudit, redactSecrets } from './audit/commands.js';
import {
  createGroup,
  createUser,
  grantPolicy,
  removePolicy,
  upsertPolicy,
} from './directory/commands.js';

describe('admin audit', () => {
  test('redacts passwords, tokens and secrets at any depth', () => {
    assert.deepEqual(
      redactSecrets({
        login: 'a',
        password: 'p',
        adapters: [{ type: 'xml', apiKey: 'k', options: { clientSecret: 's', dir: '/x' } }],
        newPassword: 'n',
        token: 't',
      }),
      {
        login: 'a',
        password: '[redacted]',
        adapters: [
          { type: 'xml', apiKey: '[redacted]', options: { clientSecret: '[redacted]', dir: '/x' } },
        ],
        newPassword: '[redacted]',
        token: '[redacted]',
      },
    );
  });

  test('records the call before it runs and its result after; failures keep their code', () =>
    withDomain(async (t) => {
      const call = (action: string) => ({
        action,
        method: 'POST',
        path: '/api/v1/users',
        params: { body: { login: 'x', password: 'secret-pw' }, query: {} },
      });
      let seenWhileRunning: string | undefined;
      await audited(t.d, t.admin, call('user.new'), async () => {
        seenWhileRunning = (await t.store.listAudit({ limit: 1 }))[0]?.result;
      });
      assert.equal(seenWhileRunning, 'pending', 'written before the change runs');
      await assert.rejects(
        audited(t.d, t.admin, call('policy.remove'), () =>
          Promise.reject(new PolicyNotFoundError('nope')),
        ),
        PolicyNotFoundError,
      );
      const page = await listAudit(t.d, t.admin, {});
      assert.deepEqual(
        page.entries.map((e) => [e.action, e.actorName, e.result, e.errorCode]),
        [
          ['policy.remove', 'admin', 'error', 'policy_not_found'],
          ['user.new', 'admin', 'ok', null],
        ],
      );
      assert.deepEqual(page.entries[1]!.params, {
        body: { login: 'x', password: '[redacted]' },
      });
      assert.equal(page.next, null);
      const first = await listAudit(t.d, t.admin, { limit: 1 });
      assert.equal(first.entries.length, 1);
      assert.equal(first.next, first.entries[0]!.id);
      const second = await listAudit(t.d, t.admin, { limit: 1, before: first.next! });
      assert.equal(second.entries[0]!.action, 'user.new');
      assert.equal(second.next, null);
    }));

  test('only chat administrators read the trail; bad filters are invalid_request', () =>
    withDomain(async (t) => {
      const { actor } = await t.buildUser('alice');
      await expectCode(listAudit(t.d, actor, {}), 'admin_required');
      await expectCode(listAudit(t.d, t.admin, { limit: 0 }), 'invalid_request');
      await expectCode(listAudit(t.d, t.admin, { since: 'yesterday' }), 'invalid_request');
      await expectCode(listAudit(t.d, t.admin, { action: 'DROP TABLE' }), 'invalid_request');
    }));
});

describe('administration captured for compliance', () => {
  test('policy create, change, grant, reset and delete, user and group creation', () =>
    withDomain(async (t) => {
      const from = await lastActivityId(t);
      await createUser(t.d, t.admin, { login: 'carol', password: 'carol-password' });
      await createGroup(t.d, t.admin, { name: 'contractors', members: ['carol'] });
      await upsertPolicy(t.d, t.admin, { name: 'no-chat', enabled: false });
      await upsertPolicy(t.d, t.admin, { name: 'no-chat', enabled: false, description: 'x' });
      await grantPolicy(t.d, t.admin, 'contractors', 'no-chat');
      await grantPolicy(t.d, t.admin, 'contractors', null);
      await upsertPolicy(t.d, t.admin, { name: 'global', enabled: false });
      await removePolicy(t.d, t.admin, 'global');
      await removePolicy(t.d, t.admin, 'no-chat');
      await expectCode(removePolicy(t.d, t.admin, 'no-chat'), 'policy_not_found');
      await expectCode(grantPolicy(t.d, t.admin, 'carol', 'missing'), 'policy_not_found');
      const rows = await activityRows(t, from);
      assert.deepEqual(
        rows.map((r) => [r.kind, r.actor_id, r.room_id]),
        [
          ['USER_CREATED', t.admin.userId, null],
          ['GROUP_CREATED', t.admin.userId, null],
          ['POLICY_CHANGED', t.admin.userId, null],
          ['POLICY_CHANGED', t.admin.userId, null],
          ['POLICY_GRANTED', t.admin.userId, null],
          ['POLICY_GRANTED', t.admin.userId, null],
          ['POLICY_CHANGED', t.admin.userId, null],
          ['POLICY_CHANGED', t.admin.userId, null],
          ['POLICY_DELETED', t.admin.userId, null],
        ],
        'one record per committed change, none for refused ones',
      );
      assert.deepEqual(rows[1]!.payload, { group: 'contractors', members: ['carol'] });
      assert.deepEqual(rows[2]!.payload.created, true);
      assert.deepEqual(rows[3]!.payload.before, {
        name: 'no-chat',
        enabled: false,
        description: null,
      });
      assert.deepEqual(rows[4]!.payload, {
        principal: 'contractors',
        kind: 'group',
        policy: 'no-chat',
        previous: null,
      });
      assert.deepEqual([rows[5]!.payload.policy, rows[5]!.payload.previous], [null, 'no-chat']);
      assert.equal(rows[7]!.payload.reset, true);
      assert.equal(JSON.stringify(rows).includes('carol-password'), false);
    }));
});
