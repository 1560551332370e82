// perch category, room, message, addin and principal, as child processes against one server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestServer } from '../harness/server.js';
import {
  expectExits,
  httpAs,
  tokenFor,
  startCliServer,
  type Cli,
  type CliServer,
} from './helpers.js';

let server: TestServer;
let env: CliServer;
let cli: Cli;
let aliceToken: string;
let alice: Awaited<ReturnType<typeof httpAs>>;

interface Room {
  id: number;
  name: string;
  disabled: boolean;
  privacy: string;
  addin: { name: string } | null;
  members?: { name: string }[];
  managers?: { name: string }[];
}

before(async () => {
  env = await startCliServer(['alice', 'bob', 'carol', 'mallory']);
  ({ server, cli } = env);
  await env.admin('POST', '/groups', { name: 'eng', members: ['alice', 'bob', 'mallory'] });
  aliceToken = await tokenFor(cli, 'alice', 'alice-password');
  alice = await httpAs(server, 'alice', 'alice-password');
});

after(() => env.stop());

describe('category', () => {
  test('new, get, set (lists replaced and changed) and remove', async () => {
    const c = await cli.json<{ name: string; allowed: { name: string }[]; history: boolean }>([
      'category',
      'new',
      'engineering',
      '--allowed',
      'eng',
      '--creators',
      'alice',
      '--description',
      'Engineering rooms',
    ]);
    assert.deepEqual(
      c.allowed.map((p) => p.name),
      ['eng'],
    );
    assert.equal(c.history, true);

    const list = await cli(['category', 'get']);
    assert.match(list.stdout, /^ID\s+NAME\s+UPLOAD/m);
    assert.match(list.stdout, /engineering/);

    const changed = await cli.json<{ denied: { name: string }[]; fileUpload: boolean }>([
      'category',
      'set',
      'engineering',
      '--add-denied',
      'mallory',
      '--file-upload',
      'true',
    ]);
    assert.deepEqual(
      changed.denied.map((p) => p.name),
      ['mallory'],
    );
    assert.equal(changed.fileUpload, true);

    await cli.json(['category', 'new', 'scratch']);
    const whatIf = await cli(['category', 'remove', 'scratch', '--what-if']);
    assert.equal(whatIf.code, 0);
    assert.match(whatIf.stdout, /^What if: remove category scratch/);
    const refused = await cli(['category', 'remove', 'scratch']);
    assert.equal(refused.code, 2, 'no terminal and no --force');
    assert.match(refused.stderr, /without --force/);
    const removed = await cli.json<{ removed: boolean }>([
      'category',
      'remove',
      'scratch',
      '--force',
    ]);
    assert.equal(removed.removed, true);
    const gone = await cli(['category', 'get', 'scratch']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^perch: category_not_found: /m);
  });
});

describe('room', () => {
  test('new, get by name and id, list with filters, set roles and settings', async () => {
    const r = await cli.json<Room>([
      'room',
      'new',
      'Release planning',
      '--category',
      'engineering',
      '--members',
      'alice,bob',
      '--managers',
      'alice',
    ]);
    assert.equal(r.privacy, 'closed');
    const byName = await cli.json<Room>(['room', 'get', 'release PLANNING']);
    assert.equal(byName.id, r.id);
    const text = await cli(['room', 'get', String(r.id)]);
    assert.match(text.stdout, /members:\s+alice, bob/);

    const set = await cli.json<Room>([
      'room',
      'set',
      'Release planning',
      '--remove-member',
      'bob',
      '--privacy',
      'open',
    ]);
    assert.equal(set.privacy, 'open');
    assert.deepEqual(
      set.members?.map((m) => m.name),
      ['alice'],
    );
  });

  test('roles outside the category scope are refused with the server code', async () => {
    const r = await cli(['room', 'set', 'Release planning', '--add-member', 'mallory']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^perch: principal_out_of_scope: /m);
    const granted = await cli.json<{ granted: boolean }>([
      'role',
      'grant',
      'manager',
      'bob',
      '--room',
      'Release planning',
    ]);
    assert.equal(granted.granted, true);
    const room = await cli.json<Room>(['room', 'get', 'Release planning']);
    assert.deepEqual(room.managers?.map((m) => m.name).sort(), ['alice', 'bob']);
  });

  test('disabled rooms are listed with --disabled; clear and remove need --force', async () => {
    const tmp = await cli.json<Room>([
      'room',
      'new',
      'Old project',
      '--category',
      'engineering',
      '--members',
      'alice',
    ]);
    await cli.json(['room', 'set', 'Old project', '--disabled', 'true']);
    const disabled = await cli.json<Room[]>(['room', 'get', '--disabled', 'true']);
    assert.deepEqual(
      disabled.map((x) => x.name),
      ['Old project'],
    );
    const table = await cli(['room', 'get']);
    assert.match(table.stdout, /^ID\s+NAME\s+CATEGORY/m);
    assert.match(table.stdout, /Old project/);

    const clearIf = await cli.json<{ whatIf: boolean }>([
      'room',
      'clear',
      'Release planning',
      '--end-date',
      '2999-12-31',
      '--what-if',
    ]);
    assert.equal(clearIf.whatIf, true);
    const removed = await cli(['room', 'remove', String(tmp.id), '--force']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /Removed room Old project/);
    const missing = await cli(['room', 'get', 'Old project']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /room_not_found/);
  });
});

describe('message remove and room clear', () => {
  test('remove by sequence, replace by author, clear up to a date', async () => {
    const room = await cli.json<Room>(['room', 'get', 'Release planning']);
    for (const text of ['first', 'second', 'third']) {
      await alice('POST', `/rooms/${room.id}/messages`, { text });
    }
    const one = await cli.json<{ changed: number; action: string }>([
      'message',
      'remove',
      '--room',
      'Release planning',
      '--seq',
      '1',
      '--force',
    ]);
    assert.deepEqual([one.action, one.changed], ['remove', 1]);
    const replaced = await cli.json<{ changed: number }>([
      'message',
      'remove',
      '--room',
      String(room.id),
      '--author',
      'alice',
      '--replace',
      'redacted',
      '--force',
    ]);
    assert.equal(replaced.changed, 3);
    const page = await alice<{ messages: { seq: number; text: string; state: string }[] }>(
      'GET',
      `/rooms/${room.id}/messages`,
    );
    assert.deepEqual(
      page.messages.map((m) => [m.seq, m.state, m.text]),
      [
        [1, 'replaced', 'redacted'],
        [2, 'replaced', 'redacted'],
        [3, 'replaced', 'redacted'],
      ],
    );
    const whatIf = await cli([
      'message',
      'remove',
      '--room',
      String(room.id),
      '--all',
      '--what-if',
    ]);
    assert.match(whatIf.stdout, /^What if: remove every message in room Release planning/);
    const cleared = await cli.json<{ deleted: number }>([
      'room',
      'clear',
      String(room.id),
      '--end-date',
      '2999-12-31',
      '--force',
    ]);
    assert.equal(cleared.deleted, 3);
  });

  test('usage errors: no selector, --seq with others, bad dates', async () => {
    await expectExits(
      cli,
      [
        ['message', 'remove', '--room', '1', '--force'],
        ['message', 'remove', '--room', '1', '--seq', '1', '--author', 'alice', '--force'],
        ['message', 'remove', '--room', '1', '--from', 'yesterday', '--force'],
        ['message', 'remove', '--room', '1', '--seq', '0', '--force'],
        ['room', 'clear', '1', '--force'],
        ['room', 'new', 'x', '--category', 'engineering', '--privacy', 'hidden'],
        ['room', 'set', '1', '--disabled', 'maybe'],
        ['room', 'get', '--limit', '10001'],
      ],
      2,
    );
  });
});

describe('addin', () => {
  test('new, get, set, attach to a room, remove', async () => {
    const a = await cli.json<{ id: number; name: string; url: string }>([
      'addin',
      'new',
      'wiki',
      '--url',
      'https://wiki.example.org/chat',
    ]);
    assert.equal(a.url, 'https://wiki.example.org/chat');
    const dup = await cli(['addin', 'new', 'WIKI', '--url', 'https://other.example.org']);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^perch: addin_exists: /m);
    const changed = await cli.json<{ url: string }>([
      'addin',
      'set',
      'wiki',
      '--url',
      'http://wiki.example.org/v2',
    ]);
    assert.equal(changed.url, 'http://wiki.example.org/v2');
    const listed = await cli(['addin', 'get']);
    assert.match(listed.stdout, /wiki\s+http:\/\/wiki\.example\.org\/v2/);

    const room = await cli.json<Room>(['room', 'set', 'Release planning', '--addin', 'wiki']);
    assert.equal(room.addin?.name, 'wiki');
    const using = await cli.json<Room[]>(['room', 'get', '--addin', 'wiki']);
    assert.deepEqual(
      using.map((r) => r.name),
      ['Release planning'],
    );
    const detached = await cli.json<Room>(['room', 'set', 'Release planning', '--no-addin']);
    assert.equal(detached.addin, null);

    await cli.json(['room', 'set', 'Release planning', '--addin', 'wiki']);
    const removed = await cli(['addin', 'remove', 'wiki', '--force']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await cli.json<Room>(['room', 'get', 'Release planning'])).addin, null);
  });

  test('names over 50 characters and non-http URLs are usage errors', async () => {
    await expectExits(
      cli,
      [
        ['addin', 'new', 'x'.repeat(51), '--url', 'https://example.org'],
        ['addin', 'new', 'files', '--url', 'file:///etc/passwd'],
        ['addin', 'new', 'js', '--url', 'javascript:alert(1)'],
        ['addin', 'new', 'rel', '--url', '/relative'],
        ['addin', 'set', 'wiki'],
      ],
      2,
    );
  });
});

describe('principal eligible', () => {
  test('expands groups, applies deny, filters and presenters', async () => {
    const c = await cli.json<{ scope: string; users: { name: string }[] }>([
      'principal',
      'eligible',
      '--category',
      'engineering',
    ]);
    assert.equal(c.scope, 'category:engineering');
    assert.deepEqual(
      c.users.map((u) => u.name),
      ['alice', 'bob'],
      'eng expanded, mallory denied',
    );
    const filtered = await cli.json<{ users: { name: string }[] }>([
      'principal',
      'eligible',
      '--room',
      'Release planning',
      '--filter',
      'b*',
    ]);
    assert.deepEqual(
      filtered.users.map((u) => u.name),
      ['bob'],
    );
    await cli.json([
      'room',
      'new',
      'All hands',
      '--category',
      'engineering',
      '--type',
      'auditorium',
      '--members',
      'alice',
    ]);
    const presenters = await cli.json<{ users: { name: string }[] }>([
      'principal',
      'eligible',
      '--room',
      'All hands',
      '--presenters',
    ]);
    assert.deepEqual(
      presenters.users.map((u) => u.name),
      ['alice'],
    );
    const notAuditorium = await cli([
      'principal',
      'eligible',
      '--room',
      'Release planning',
      '--presenters',
    ]);
    assert.equal(notAuditorium.code, 1);
    assert.match(notAuditorium.stderr, /presenters_need_auditorium/);
    await expectExits(
      cli,
      [
        ['principal', 'eligible'],
        ['principal', 'eligible', '--category', 'engineering', '--room', '1'],
        ['principal', 'eligible', '--category', 'engineering', '--presenters'],
        ['principal', 'eligible', '--category', 'engineering', '--limit', '0'],
      ],
      2,
    );
  });
});

describe('non-administrators', () => {
  test('are refused with the server code and exit 1', async () => {
    await expectExits(
      cli,
      [
        ['category', 'new', 'sneaky'],
        ['room', 'get'],
        ['room', 'remove', 'Release planning', '--force'],
        ['message', 'remove', '--room', 'Release planning', '--all', '--force'],
        ['addin', 'get'],
        ['principal', 'eligible', '--category', 'engineering'],
      ],
      1,
      /^perch: admin_required: /m,
      { env: { PERCH_TOKEN: aliceToken } },
    );
  });

  test('a manager changes their own room through room set', async () => {
    const r = await cli(['room', 'set', 'Release planning', '--description', 'Q3 release'], {
      env: { PERCH_TOKEN: aliceToken },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /description:\s+Q3 release/);
  });
});
