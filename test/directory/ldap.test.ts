// Directory integration end to end: a Perch server configured with PERCH_DIRECTORY_FILE
// (ldaps://, the bind secret in a file) against a real slapd, driven by `perch directory sync`,
// HTTP and WebSocket clients. The directory is changed with ldapmodify between syncs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cliFor, type Cli } from '../cli/helpers.js';
import { Http, adminHttp, buildCategory, buildRoom, openClient, signIn } from '../e2e/helpers.js';
import { startLdap, writeDirectoryFile, type LdapServer } from '../harness/ldap.js';
import { cleanup, startServer, tempDir, type TestServer } from '../harness/server.js';
import { addUser, FIXTURE, groupDn, passwordOf, userDn } from './fixture.js';

interface Summary {
  dryRun: boolean;
  read: { users: number; groups: number; ous: number };
  created: string[];
  renamed: { from: string; to: string }[];
  disabled: string[];
  memberships: { group: string; added: string[]; removed: string[] }[];
  signedOut: string[];
}

async function session(server: TestServer, login: string, password: string) {
  const res = await fetch(`${server.url}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login, password }),
  });
  const body = (await res.json()) as { token?: string; error?: { code: string } };
  return { status: res.status, body: { token: body.token, code: body.error?.code } };
}

describe('directory integration with OpenLDAP', () => {
  let ldap: LdapServer;
  let server: TestServer;
  let dir: string;
  let cli: Cli;
  let admin: Http;
  let roomId: number;
  let bobToken: string;

  before(async () => {
    ldap = await startLdap(FIXTURE);
    dir = await tempDir('perch-directory-');
    const file = writeDirectoryFile(ldap, dir);
    server = await startServer({
      env: { PERCH_DIRECTORY_FILE: file, PERCH_DIRECTORY_SYNC_INTERVAL_MS: '0' },
    });
    admin = await adminHttp(server);
    cli = cliFor(server, dir);
    const login = await cli(['login', '--user', 'admin', '--password-stdin'], {
      input: server.adminPassword,
    });
    assert.equal(login.code, 0, login.stderr);
    // A local user, who must keep working beside the directory's.
    await admin.ok('POST', '/api/v1/users', { login: 'dave', password: 'password-dave' });
  });

  after(async () => {
    if (server) await cleanup(server);
    await ldap?.destroy();
    if (dir) await cleanup(dir);
  });

  it('perch directory sync --dry-run shows what would come and changes nothing', async () => {
    const r = await cli(['directory', 'sync', '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /reading the directory \(dry run\)/);
    assert.match(r.stderr, /read 3 users, 3 groups, 3 organisational units/);
    assert.match(r.stdout, /^would sync: 3 users, 3 groups, 3 organisational units read$/m);
    assert.match(r.stdout, /created \(9\): .*alice/);
    assert.equal((await admin.call('GET', '/api/v1/users/alice')).status, 404);
  });

  it('the initial sync imports users, nested groups and OUs; directory users sign in by bind', async () => {
    const r = await cli.json<Summary>(['directory', 'sync']);
    assert.equal(r.dryRun, false);
    assert.equal(r.created.length, 9);
    const alice = await admin.ok<{ source: string; displayName: string }>(
      'GET',
      '/api/v1/users/alice',
    );
    assert.equal(alice.source, 'ldap');
    assert.equal(alice.displayName, 'Alice Archer');
    const staff = await admin.ok<{ members: { name: string }[] }>('GET', '/api/v1/groups/staff');
    assert.deepEqual(staff.members.map((m) => m.name).sort(), ['carol', 'engineering-all']);

    // Sign-in: the directory password through a bind; nothing else works for them.
    assert.equal((await session(server, 'alice', passwordOf('alice'))).status, 201);
    const wrong = await session(server, 'alice', 'not-her-password');
    assert.deepEqual([wrong.status, wrong.body.code], [401, 'invalid_credentials']);
    assert.equal((await session(server, 'dave', 'password-dave')).status, 201, 'local user');
    const change = await admin.call('PATCH', '/api/v1/users/alice', { password: 'new-password-1' });
    assert.equal(change.status, 409);
    assert.deepEqual((change.body.error as { code: string }).code, 'directory_managed');
  });

  it('scopes and roles follow nested directory groups and OUs, and change with the directory', async () => {
    // Scope: the staff group (nested: backend ⊂ engineering-all ⊂ staff) and the sales OU.
    await buildCategory(admin, { name: 'Projects', allowed: ['staff'] });
    await buildCategory(admin, { name: 'Deals', allowed: ['sales'] });
    const room = await buildRoom(admin, {
      name: 'Backend',
      category: 'Projects',
      privacy: 'closed',
      members: ['engineering-all'],
    });
    roomId = room.id;
    const eligible = async (category: string) =>
      (
        await cli.json<{ users: { name: string }[] }>([
          'principal',
          'eligible',
          '--category',
          category,
        ])
      ).users.map((u) => u.name);
    assert.deepEqual(await eligible('Projects'), ['alice', 'carol']);
    assert.deepEqual(await eligible('Deals'), ['carol']);

    const alice = new Http(server.url, await signIn(server, 'alice', passwordOf('alice')));
    await alice.ok('POST', `/api/v1/rooms/${roomId}/messages`, { text: 'from alice' });
    const carol = new Http(server.url, await signIn(server, 'carol', passwordOf('carol')));
    // carol is in scope (staff) but no member of the closed room.
    assert.equal((await carol.call('GET', `/api/v1/rooms/${roomId}/messages`)).status, 403);
    // bob is in no group of the scope yet.
    bobToken = await signIn(server, 'bob', passwordOf('bob'));
    const bob = new Http(server.url, bobToken);
    assert.notEqual((await bob.call('GET', `/api/v1/rooms/${roomId}/messages`)).status, 200);

    // The directory changes: bob joins backend (so staff), alice leaves it, erin arrives in sales
    // and in engineering-all, and backend is renamed platform (same entryUUID).
    await ldap.modify(
      [
        `dn: ${groupDn('backend')}`,
        'changetype: modify',
        'add: member',
        `member: ${userDn('bob', 'engineering')}`,
        '-',
        'delete: member',
        `member: ${userDn('alice', 'engineering')}`,
        '',
        addUser('erin', 'sales', 'Erin Evans'),
        `dn: ${groupDn('engineering-all')}`,
        'changetype: modify',
        'add: member',
        `member: ${userDn('erin', 'sales')}`,
        '',
        `dn: ${groupDn('backend')}`,
        'changetype: modrdn',
        'newrdn: cn=platform',
        'deleteoldrdn: 1',
        '',
      ].join('\n'),
    );
    // Nothing moves until the next sync.
    assert.equal((await alice.call('GET', `/api/v1/rooms/${roomId}/messages`)).status, 200);
    const r = await cli.json<Summary>(['directory', 'sync']);
    assert.deepEqual(r.created, ['erin']);
    assert.deepEqual(r.renamed, [{ from: 'backend', to: 'platform' }]);
    assert.deepEqual(
      r.memberships.find((m) => m.group === 'platform'),
      { group: 'platform', added: ['bob'], removed: ['alice'] },
    );
    assert.deepEqual(await eligible('Projects'), ['bob', 'carol', 'erin']);
    assert.deepEqual(await eligible('Deals'), ['carol', 'erin']);
    assert.notEqual((await alice.call('GET', `/api/v1/rooms/${roomId}/messages`)).status, 200);
    const history = await bob.ok<{ messages: { text?: string; body?: string }[] }>(
      'GET',
      `/api/v1/rooms/${roomId}/messages`,
    );
    assert.equal(history.messages.length, 1);
    const erin = new Http(server.url, await signIn(server, 'erin', passwordOf('erin')));
    assert.equal((await erin.call('GET', `/api/v1/rooms/${roomId}/messages`)).status, 200);
    // The renamed group keeps its place in the room's roles.
    const roomView = await admin.ok<{ members: { name: string }[] }>(
      'GET',
      `/api/v1/rooms/${roomId}`,
    );
    assert.ok(JSON.stringify(roomView).includes('engineering-all'));
  });

  it('a user disabled in the directory is signed out at the sync and their messages stay', async () => {
    const bob = new Http(server.url, bobToken);
    await bob.ok('POST', `/api/v1/rooms/${roomId}/messages`, { text: 'from bob' });
    const ws = await openClient(server, bobToken);
    await ldap.modify(
      `dn: ${userDn('bob', 'engineering')}\nchangetype: modify\nreplace: employeeType\nemployeeType: disabled\n`,
    );
    const r = await cli.json<Summary>(['directory', 'sync']);
    assert.deepEqual(r.disabled, ['bob']);
    assert.deepEqual(r.signedOut, ['bob']);
    const closed = await ws.closed;
    assert.equal(closed.reason, 'signed_out');
    assert.equal((await bob.call('GET', '/api/v1/me')).status, 401);
    const again = await session(server, 'bob', passwordOf('bob'));
    assert.deepEqual([again.status, again.body.code], [403, 'account_disabled']);
    const erin = new Http(server.url, await signIn(server, 'erin', passwordOf('erin')));
    const history = await erin.ok<{ messages: { authorId?: number; author?: unknown }[] }>(
      'GET',
      `/api/v1/rooms/${roomId}/messages`,
    );
    assert.ok(JSON.stringify(history.messages).includes('from bob'), 'his messages remain');
  });

  it('a directory outage: the sync fails with directory_unavailable and changes nothing', async () => {
    const users = await admin.ok('GET', '/api/v1/users');
    const groups = await admin.ok('GET', '/api/v1/groups');
    await ldap.stop();
    const r = await cli(['directory', 'sync']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /perch: directory_unavailable: the directory is unavailable: ldaps:/);
    assert.deepEqual(await admin.ok('GET', '/api/v1/users'), users);
    assert.deepEqual(await admin.ok('GET', '/api/v1/groups'), groups);
    // Sign-in of a directory user says the directory is down; local users are unaffected.
    const down = await session(server, 'carol', passwordOf('carol'));
    assert.deepEqual([down.status, down.body.code], [503, 'directory_unavailable']);
    assert.equal((await session(server, 'dave', 'password-dave')).status, 201);
    await ldap.start();
  });

  it('the sign-in throttle applies to directory users too', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await session(server, 'carol', `wrong-${i}`)).status, 401);
    }
    const r = await session(server, 'carol', passwordOf('carol'));
    assert.deepEqual([r.status, r.body.code], [429, 'too_many_attempts']);
  });
});
