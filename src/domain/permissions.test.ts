import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  activityRows,
  buildCategory,
  buildRoom,
  buildUsers,
  expectCode,
  withDomain,
} from '../../test/harness/domain-factories.js';
import { buildDomain, type TestDomain } from '../../test/harness/domain.js';
import { PerchError } from '../errors.js';
import { listCategories } from './categories/commands.js';
import {
  changeGroupMembers,
  grantPolicy,
  lookupPrincipals,
  upsertPolicy,
} from './directory/commands.js';
import { createDownloadToken, uploadFile } from './files/commands.js';
import { followRoom, listFollows, listInvitations, markRead } from './me/commands.js';
import { joinRooms, postMessage, roomHistory, searchMessages } from './messages/commands.js';
import { createRoom, getRoom, searchRooms, updateRoom } from './rooms/commands.js';
import type { Actor } from './types.js';

// ------------------------------------------------------------------------------------------
// The expected permission table. Rows are viewers, columns are actions; a letter means the
// action is allowed, a dot that it is refused. Columns: F find (room directory and getRoom),
// R read (history and join), P post, S search (full-text search finds the room's seeded
// message), M manage (change the description).
//
// Viewers, for every room (all rooms are in one category whose allowed list is the group
// `staff` and whose denied list is the user `denied` and the group `wall`):
//   nonMember      in scope, no role
//   member         room member
//   presenter      member and presenter (auditoriums only)
//   manager        room manager, not a member
//   creator        creator of the category, no role in the room
//   deniedDirect   in `staff`, and named on the denied list
//   deniedViaGroup on the room's member list, then put in the denied group `wall`
//   admin          chat administrator, in no list
//   outsider       not in the category's allowed list
// ------------------------------------------------------------------------------------------

type Viewer =
  | 'nonMember'
  | 'member'
  | 'presenter'
  | 'manager'
  | 'creator'
  | 'deniedDirect'
  | 'deniedViaGroup'
  | 'admin'
  | 'outsider';
type Kind = `${'open' | 'closed' | 'secret'}/${'normal' | 'auditorium'}`;

const EXPECTED: Record<Kind, Partial<Record<Viewer, string>>> = {
  'open/normal': {
    nonMember: 'FRPS.',
    member: 'FRPS.',
    manager: 'FRPSM', // open rooms let the whole scope read, managers included
    creator: 'FRPS.',
    deniedDirect: '.....',
    deniedViaGroup: '.....',
    admin: 'F...M',
    outsider: '.....',
  },
  'open/auditorium': {
    nonMember: 'FR.S.',
    member: 'FR.S.',
    presenter: 'FRPS.',
    manager: 'FR.SM',
    creator: 'FR.S.',
    deniedDirect: '.....',
    deniedViaGroup: '.....',
    admin: 'F...M',
    outsider: '.....',
  },
  'closed/normal': {
    nonMember: 'F....',
    member: 'FRPS.',
    manager: 'F...M',
    creator: 'F....',
    deniedDirect: '.....',
    deniedViaGroup: '.....',
    admin: 'F...M',
    outsider: '.....',
  },
  'closed/auditorium': {
    nonMember: 'F....',
    member: 'FR.S.',
    presenter: 'FRPS.',
    manager: 'F...M',
    creator: 'F....',
    deniedDirect: '.....',
    deniedViaGroup: '.....',
    admin: 'F...M',
    outsider: '.....',
  },
  'secret/normal': {
    nonMember: '.....',
    member: 'FRPS.',
    manager: 'F...M',
    creator: '.....',
    deniedDirect: '.....',
    deniedViaGroup: '.....',
    admin: 'F...M',
    outsider: '.....',
  },
  'secret/auditorium': {
    nonMember: '.....',
    member: 'FR.S.',
    presenter: 'FRPS.',
    manager: 'F...M',
    creator: '.....',
    deniedDirect: '.....',
    deniedViaGroup: '.....',
    admin: 'F...M',
    outsider: '.....',
  },
};

const ACTIONS = ['find', 'read', 'post', 'search', 'manage'] as const;
type Action = (typeof ACTIONS)[number];

function allowed(row: string, action: Action): boolean {
  return row[ACTIONS.indexOf(action)] !== '.';
}

/**
 * The error a refused action answers with: a room the viewer cannot find does not exist for
 * them; a found room they cannot read is forbidden; a readable auditorium refuses the post.
 */
function refusal(row: string, action: Action): string {
  if (!allowed(row, 'find')) return 'room_not_found';
  if (action === 'post' && allowed(row, 'read')) return 'post_not_allowed';
  return 'forbidden';
}

const seedToken = (kind: Kind) => `zq${kind.replace('/', 'x')}`;

interface World {
  t: TestDomain;
  viewers: Record<Viewer, Actor>;
  rooms: Record<Kind, number>;
}

async function buildMatrixWorld(): Promise<World> {
  const t = await buildDomain();
  const staff = [
    'nonMember',
    'member',
    'presenter',
    'manager',
    'creator',
    'deniedDirect',
    'deniedViaGroup',
  ] as const;
  const users = await buildUsers(t, [...staff, 'outsider']);
  await t.buildGroup('staff', [...staff]);
  await t.buildGroup('wall');
  await buildCategory(t, {
    name: 'Trading',
    allowed: ['staff'],
    denied: ['deniedDirect', 'wall'],
    creators: ['creator'],
  });
  const rooms = {} as Record<Kind, number>;
  for (const kind of Object.keys(EXPECTED) as Kind[]) {
    const [privacy, type] = kind.split('/') as [string, string];
    const auditorium = type === 'auditorium';
    const room = await buildRoom(t, {
      name: `${privacy} ${type} room`,
      category: 'Trading',
      privacy,
      type,
      members: ['member', 'presenter', 'deniedViaGroup'],
      managers: ['manager'],
      presenters: auditorium ? ['presenter'] : [],
    });
    rooms[kind] = room.id;
    const author = await t.refresh(auditorium ? users.presenter : users.member);
    await postMessage(t.d, author, room.id, { text: `seed ${seedToken(kind)}` });
  }
  // Put the member behind the ethical wall after the fact: roles stay, the deny must still win.
  await changeGroupMembers(t.d, t.admin, 'wall', { add: ['deniedViaGroup'] });
  const viewers: Partial<Record<Viewer, Actor>> = { admin: t.admin };
  for (const [login, actor] of Object.entries(users)) {
    viewers[login as Viewer] = await t.refresh(actor);
  }
  return { t, viewers: viewers as Record<Viewer, Actor>, rooms };
}

/** Resolves to true when `run` succeeds; when it fails, checks the code and resolves to false. */
async function attempt(run: () => Promise<unknown>, refusedWith: string): Promise<boolean> {
  try {
    await run();
    return true;
  } catch (err) {
    assert.ok(err instanceof PerchError, String(err));
    assert.equal(err.code, refusedWith, err.message);
    return false;
  }
}

const perform: Record<
  Action,
  (w: World, kind: Kind, viewer: Viewer, refusedWith: string) => Promise<boolean>
> = {
  async find({ t, viewers, rooms }, kind, viewer, refusedWith) {
    const actor = viewers[viewer];
    const listed = await searchRooms(t.d, actor, { text: kind.split('/')[0] });
    const inDirectory = listed.some((r) => r.id === rooms[kind]);
    const got = await attempt(() => getRoom(t.d, actor, rooms[kind]), refusedWith);
    assert.equal(inDirectory, got, 'the directory and getRoom disagree');
    return got;
  },
  async read({ t, viewers, rooms }, kind, viewer, refusedWith) {
    const actor = viewers[viewer];
    const seed = `seed ${seedToken(kind)}`;
    const viaHistory = await attempt(async () => {
      const page = await roomHistory(t.d, actor, rooms[kind], {});
      assert.ok(page.messages.some((m) => m.text === seed));
    }, refusedWith);
    const [joined] = await joinRooms(t.d, actor, [{ roomId: rooms[kind] }]);
    if (joined!.ok) {
      assert.ok(joined!.result.messages.some((m) => m.text === seed));
    } else {
      assert.equal((joined!.error as PerchError).code, refusedWith);
    }
    assert.equal(joined!.ok, viaHistory, 'history and join disagree');
    return viaHistory;
  },
  post({ t, viewers, rooms }, kind, viewer, refusedWith) {
    return attempt(
      () => postMessage(t.d, viewers[viewer], rooms[kind], { text: `posted by ${viewer}` }),
      refusedWith,
    );
  },
  async search({ t, viewers }, kind, viewer) {
    const found = await searchMessages(t.d, viewers[viewer], { query: seedToken(kind) });
    assert.ok(found.count <= 1);
    return found.count === 1;
  },
  manage({ t, viewers, rooms }, kind, viewer, refusedWith) {
    return attempt(
      () => updateRoom(t.d, viewers[viewer], rooms[kind], { description: `set by ${viewer}` }),
      refusedWith,
    );
  },
};

describe('permission matrix', () => {
  let world: World;
  before(async () => {
    world = await buildMatrixWorld();
  });
  after(() => world.t.close());

  for (const [kind, rows] of Object.entries(EXPECTED) as [Kind, Record<Viewer, string>][]) {
    for (const [viewer, row] of Object.entries(rows) as [Viewer, string][]) {
      for (const action of ACTIONS) {
        const yes = allowed(row, action);
        test(`${kind} · ${viewer} · ${action}: ${yes ? 'allowed' : 'refused'}`, async () => {
          const refusedWith = refusal(row, action);
          assert.equal(await perform[action](world, kind, viewer, refusedWith), yes);
        });
      }
    }
  }

  test('a secret room answers every command exactly like a room that does not exist', async () => {
    const { t, viewers, rooms } = world;
    const missing = 999_999;
    const calls: ((actor: Actor, roomId: number) => Promise<unknown>)[] = [
      (a, id) => getRoom(t.d, a, id),
      (a, id) => roomHistory(t.d, a, id, {}),
      (a, id) => postMessage(t.d, a, id, { text: 'probe' }),
      (a, id) => updateRoom(t.d, a, id, { description: 'probe' }),
      (a, id) => followRoom(t.d, a, id),
      (a, id) => searchMessages(t.d, a, { query: 'seed', rooms: [id] }),
      async (a, id) => {
        const [r] = await joinRooms(t.d, a, [{ roomId: id }]);
        throw r!.ok ? new Error('joined') : r!.error;
      },
    ];
    const describeError = (err: unknown) => {
      assert.ok(err instanceof PerchError, String(err));
      return {
        class: err.constructor.name,
        code: err.code,
        status: err.status,
        message: err.message,
        details: err.details,
      };
    };
    for (const viewer of ['nonMember', 'creator', 'deniedDirect', 'outsider'] as const) {
      for (const call of calls) {
        const secret = await call(viewers[viewer], rooms['secret/normal']).catch(describeError);
        const absent = await call(viewers[viewer], missing).catch(describeError);
        assert.deepEqual(secret, absent);
        assert.equal((secret as { code: string }).code, 'room_not_found');
      }
    }
  });
});

describe('a disabled room', () => {
  test('is found only by managers and administrators through getRoom, and nobody reads it', () =>
    withDomain(async (t) => {
      const { member, manager } = await buildUsers(t, ['member', 'manager']);
      await buildCategory(t, { name: 'Ops', allowed: ['member', 'manager'] });
      const room = await buildRoom(t, {
        name: 'Incidents',
        category: 'Ops',
        privacy: 'open',
        members: ['member'],
        managers: ['manager'],
      });
      await postMessage(t.d, member, room.id, { text: 'zqdisabled outage' });
      const view = await updateRoom(t.d, manager, room.id, { disabled: true });
      assert.equal(view.disabled, true);

      for (const actor of [member, manager, t.admin]) {
        assert.deepEqual(await searchRooms(t.d, actor, { text: 'Incidents' }), []);
        assert.equal((await searchMessages(t.d, actor, { query: 'zqdisabled' })).count, 0);
      }
      await expectCode(getRoom(t.d, member, room.id), 'room_not_found');
      await expectCode(roomHistory(t.d, member, room.id, {}), 'room_not_found');
      await expectCode(postMessage(t.d, member, room.id, { text: 'x' }), 'room_not_found');
      for (const actor of [manager, t.admin]) {
        assert.equal((await getRoom(t.d, actor, room.id)).disabled, true);
        await expectCode(roomHistory(t.d, actor, room.id, {}), 'forbidden');
        await expectCode(postMessage(t.d, actor, room.id, { text: 'x' }), 'forbidden');
      }

      // Re-enabling restores everything: directory, history, search.
      await updateRoom(t.d, manager, room.id, { disabled: false });
      assert.equal((await searchRooms(t.d, member, { text: 'Incidents' })).length, 1);
      assert.equal((await roomHistory(t.d, member, room.id, {})).messages.length, 1);
      assert.equal((await searchMessages(t.d, member, { query: 'zqdisabled' })).count, 1);
    }));
});

describe('chat policy', () => {
  test('a user whose policy has chat off gets chat_disabled from every chat command', () =>
    withDomain(async (t) => {
      const { alice } = await buildUsers(t, ['alice']);
      await buildCategory(t, {
        name: 'General',
        allowed: ['alice'],
        creators: ['alice'],
        fileUpload: true,
      });
      const room = await buildRoom(t, { name: 'Lobby', category: 'General', members: ['alice'] });
      const posted = await uploadFile(t.d, alice, room.id, { name: 'a.txt' }, Buffer.from('a'));
      await followRoom(t.d, alice, room.id);

      await upsertPolicy(t.d, t.admin, { name: 'nochat', enabled: false });
      await grantPolicy(t.d, t.admin, 'alice', 'nochat');
      const off = await t.refresh(alice);
      assert.equal(off.chatEnabled, false);
      const commands: [string, () => Promise<unknown>][] = [
        ['searchRooms', () => searchRooms(t.d, off, {})],
        ['getRoom', () => getRoom(t.d, off, room.id)],
        ['roomHistory', () => roomHistory(t.d, off, room.id, {})],
        ['joinRooms', () => joinRooms(t.d, off, [{ roomId: room.id }])],
        ['postMessage', () => postMessage(t.d, off, room.id, { text: 'hi' })],
        ['searchMessages', () => searchMessages(t.d, off, { query: 'hi' })],
        ['createRoom', () => createRoom(t.d, off, { name: 'Other', category: 'General' })],
        ['updateRoom', () => updateRoom(t.d, off, room.id, { description: 'x' })],
        ['followRoom', () => followRoom(t.d, off, room.id)],
        ['listFollows', () => listFollows(t.d, off)],
        ['markRead', () => markRead(t.d, off, { roomId: room.id, seq: 1 })],
        ['listInvitations', () => listInvitations(t.d, off, {})],
        ['listCategories', () => listCategories(t.d, off)],
        ['lookupPrincipals', () => lookupPrincipals(t.d, off, {})],
        ['uploadFile', () => uploadFile(t.d, off, room.id, { name: 'b.txt' }, Buffer.from('b'))],
        ['createDownloadToken', () => createDownloadToken(t.d, off, posted.message.file!.id)],
      ];
      for (const [name, run] of commands) {
        await expectCode(run(), 'chat_disabled').catch((err: unknown) => {
          throw new Error(`${name}: ${String(err)}`);
        });
      }

      await grantPolicy(t.d, t.admin, 'alice', null);
      const on = await t.refresh(alice);
      assert.equal(on.chatEnabled, true);
      assert.equal((await roomHistory(t.d, on, room.id, {})).messages.length, 1);
    }));

  test('a group grant turns chat off for its members; a user grant overrides it', () =>
    withDomain(async (t) => {
      const { alice, bob } = await buildUsers(t, ['alice', 'bob']);
      await t.buildGroup('contractors', ['alice', 'bob']);
      await upsertPolicy(t.d, t.admin, { name: 'nochat', enabled: false });
      await upsertPolicy(t.d, t.admin, { name: 'chat', enabled: true });
      await grantPolicy(t.d, t.admin, 'contractors', 'nochat');
      await grantPolicy(t.d, t.admin, 'bob', 'chat');
      assert.equal((await t.refresh(alice)).chatEnabled, false);
      assert.equal((await t.refresh(bob)).chatEnabled, true);
      await expectCode(searchRooms(t.d, await t.refresh(alice), {}), 'chat_disabled');
      // Turning the global policy off reaches everyone without a grant of their own.
      const { carol } = await buildUsers(t, ['carol']);
      await upsertPolicy(t.d, t.admin, { name: 'global', enabled: false });
      assert.equal((await t.refresh(carol)).chatEnabled, false);
      assert.equal((await t.refresh(bob)).chatEnabled, true);
    }));
});

describe('group-based membership', () => {
  test('a user who is a member through nested groups reads and posts until removed', () =>
    withDomain(async (t) => {
      const { dana, eve } = await buildUsers(t, ['dana', 'eve']);
      await t.buildGroup('desk', ['dana']);
      await t.buildGroup('floor', ['desk']);
      await buildCategory(t, { name: 'Research', allowed: ['floor', 'eve'] });
      const room = await buildRoom(t, {
        name: 'Analysts',
        category: 'Research',
        members: ['floor'],
      });
      const viaGroups = await t.refresh(dana);
      const view = await getRoom(t.d, viaGroups, room.id);
      assert.equal(view.my.member, true);
      await postMessage(t.d, viaGroups, room.id, { text: 'from the desk' });
      assert.equal((await roomHistory(t.d, viaGroups, room.id, {})).messages.length, 1);
      await expectCode(roomHistory(t.d, eve, room.id, {}), 'forbidden');

      await changeGroupMembers(t.d, t.admin, 'floor', { remove: ['desk'] });
      const removed = await t.refresh(dana);
      // Out of `floor`, dana is out of the scope too: the room no longer exists for her.
      await expectCode(roomHistory(t.d, removed, room.id, {}), 'room_not_found');
    }));

  test('joins are recorded for compliance only for rooms actually joined', () =>
    withDomain(async (t) => {
      const { dana } = await buildUsers(t, ['dana']);
      await buildCategory(t, { name: 'Research', allowed: ['dana'] });
      const open = await buildRoom(t, { name: 'Open', category: 'Research', privacy: 'open' });
      const closed = await buildRoom(t, { name: 'Closed', category: 'Research' });
      const results = await joinRooms(t.d, dana, [{ roomId: open.id }, { roomId: closed.id }]);
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, false],
      );
      const joins = (await activityRows(t)).filter((r) => r.kind === 'JOIN');
      assert.deepEqual(
        joins.map((r) => [r.actor_id, r.room_id]),
        [[dana.userId, open.id]],
      );
    }));
});
