/**
 * The pool registry on a real PostgreSQL store, through the domain's pool commands: front ends
 * register, beat and stop; administrators read the pool and choose its active set within the
 * rules (at most four, registered, no repeats).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectCode } from '../../test/harness/domain-factories.js';
import { buildDomain, type TestDomain } from '../../test/harness/domain.js';
import { getPool, setActiveServers } from '../domain/pools/commands.js';
import type { Actor } from '../domain/types.js';
import { openPgPool, PgPoolRegistry } from './registry.js';

describe('pool registry (PostgreSQL)', () => {
  let t: TestDomain;
  let registry: PgPoolRegistry;
  let alice: Actor;

  before(async () => {
    t = await buildDomain({ dialect: 'postgres' });
    alice = (await t.buildUser('alice')).actor;
    registry = new PgPoolRegistry(openPgPool(t.storeUrl, 2, 'perch-test'), 1000);
  });

  after(async () => {
    await registry?.close();
    await t?.close();
  });

  test('front ends register, beat and stop; a restart takes its row over', async () => {
    for (const [i, name] of ['e', 'a', 'd', 'b', 'c'].entries()) {
      await registry.register(
        'pool1',
        { name, url: `http://${name}:8080`, version: '0.1.0', instance: `${name}-1` },
        1000 + i,
      );
    }
    assert.equal(
      await registry.beat('pool1', 'a', 'a-1', 5000, { connections: 7, users: 5 }),
      true,
    );
    // Another process's beat under a name it no longer owns changes nothing.
    assert.equal(
      await registry.beat('pool1', 'a', 'a-0', 6000, { connections: 0, users: 0 }),
      false,
    );
    await registry.stopped('pool1', 'b', 'b-1', 5500);
    const view = await getPool(t.d, t.admin, registry, 'pool1');
    // No active set chosen: the first four to register.
    assert.deepEqual(view.activeSetChosen, false);
    assert.deepEqual(view.activeServers, ['e', 'a', 'd', 'b']);
    const a = view.frontEnds.find((f) => f.name === 'a')!;
    assert.deepEqual(
      [a.connections, a.users, a.lastHeartbeat],
      [7, 5, new Date(5000).toISOString()],
    );
    assert.equal(view.frontEnds.find((f) => f.name === 'b')!.state, 'stopped');

    await registry.register(
      'pool1',
      { name: 'b', url: 'http://b2:8080', version: '0.2.0', instance: 'b-2' },
      9000,
    );
    const again = await registry.get('pool1');
    const b = again!.frontEnds.find((f) => f.name === 'b')!;
    assert.deepEqual(
      [b.url, b.version, b.stoppedAt, b.registeredAt],
      ['http://b2:8080', '0.2.0', null, 1003],
    );
  });

  test('the active set: administrators only, at most four, each registered, none twice', async () => {
    const set = (servers: unknown, actor: Actor = t.admin) =>
      setActiveServers(t.d, actor, registry, 'pool1', { servers });
    await expectCode(getPool(t.d, alice, registry, 'pool1'), 'admin_required');
    await expectCode(set(['a'], alice), 'admin_required');
    await expectCode(getPool(t.d, t.admin, undefined, 'pool1'), 'pool_not_found');
    await expectCode(getPool(t.d, t.admin, registry, 'nowhere'), 'pool_not_found');
    await expectCode(getPool(t.d, t.admin, registry, 'bad name'), 'invalid_request');
    await expectCode(set(['a', 'b', 'c', 'd', 'e']), 'too_many_active_servers');
    await expectCode(set(['a', 'z']), 'front_end_not_found');
    await expectCode(set(['a', 'a']), 'invalid_request');
    assert.equal((await registry.get('pool1'))!.activeServers, null);

    assert.deepEqual((await set(['e', 'c'])).activeServers, ['e', 'c']);
    const view = await getPool(t.d, t.admin, registry, 'pool1');
    assert.deepEqual([view.activeSetChosen, view.activeServers], [true, ['e', 'c']]);
    // None: every front end idle, as before a failback.
    assert.deepEqual((await set(null)).activeServers, []);
    assert.deepEqual((await registry.get('pool1'))!.activeServers, []);
  });
});
