import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCategory } from '../../src/domain/categories/commands.js';
import {
  joinRooms,
  postMessage,
  roomHistory,
  searchMessages,
} from '../../src/domain/messages/commands.js';
import { createRoom } from '../../src/domain/rooms/commands.js';
import { buildDomain } from './domain.js';

test('a creator makes a room, a member posts, history and search find the post', async () => {
  const t = await buildDomain();
  try {
    const { actor: alice } = await t.buildUser('alice');
    const { actor: bob } = await t.buildUser('bob');
    await createCategory(t.d, t.admin, {
      name: 'General',
      allowed: ['alice', 'bob'],
      creators: ['alice'],
    });
    const room = await createRoom(t.d, alice, {
      name: 'Lobby',
      category: 'General',
      members: ['alice', 'bob'],
    });
    const joined = await joinRooms(t.d, bob, [{ roomId: room.id }]);
    assert.equal(joined[0]!.ok, true);
    const posted = await postMessage(t.d, bob, room.id, {
      text: 'hello persistent world',
      clientId: 'c1',
    });
    assert.equal(posted.message.seq, 1);
    const again = await postMessage(t.d, bob, room.id, {
      text: 'hello persistent world',
      clientId: 'c1',
    });
    assert.equal(again.duplicate, true);
    assert.equal(again.message.seq, 1);
    const page = await roomHistory(t.d, alice, room.id, {});
    assert.deepEqual(
      page.messages.map((m) => m.text),
      ['hello persistent world'],
    );
    const found = await searchMessages(t.d, alice, { query: 'persistent' });
    assert.equal(found.count, 1);
  } finally {
    await t.close();
  }
});
