import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  activeFrontEnds,
  presentPool,
  type FrontEndRecord,
  type PoolRecord,
} from './pools/commands.js';

function frontEnd(name: string, registeredAt: number, extra: Partial<FrontEndRecord> = {}) {
  return {
    name,
    url: `http://${name}:8080`,
    version: '0.1.0',
    registeredAt,
    startedAt: registeredAt,
    heartbeatAt: 10_000,
    stoppedAt: null,
    connections: 3,
    users: 2,
    ...extra,
  };
}

describe('pool active sets and front-end states', () => {
  const pool: PoolRecord = {
    name: 'pool1',
    activeServers: null,
    frontEnds: ['e', 'a', 'd', 'b', 'c'].map((n, i) => frontEnd(n, 100 - i)),
  };

  test('until an active set is chosen, the first four front ends to register are active', () => {
    assert.deepEqual(activeFrontEnds(pool), ['c', 'b', 'd', 'a']);
    assert.deepEqual(activeFrontEnds({ ...pool, activeServers: [] }), []);
    assert.deepEqual(activeFrontEnds({ ...pool, activeServers: ['e'] }), ['e']);
  });

  test('states: active, idle, stopped (no load), unreachable after three missed heartbeats', () => {
    const view = presentPool(
      {
        name: 'p',
        activeServers: ['a', 'b', 'c'],
        frontEnds: [
          frontEnd('a', 1),
          frontEnd('b', 2, { heartbeatAt: 6_999 }),
          frontEnd('c', 3, { stoppedAt: 9_000 }),
          frontEnd('d', 4),
        ],
      },
      10_000,
      1000,
    );
    assert.deepEqual(
      view.frontEnds.map((f) => [f.name, f.active, f.state, f.users]),
      [
        ['a', true, 'active', 2],
        ['b', true, 'unreachable', 2],
        ['c', true, 'stopped', 0],
        ['d', false, 'idle', 2],
      ],
    );
  });
});
