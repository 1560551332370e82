// perch login/logout, user, group and role, run as child processes against one real server.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanup, startServer, tempDir, type TestServer } from '../harness/server.js';
import { cliFor, expectExits, tokenFor, type Cli } from './helpers.js';

let server: TestServer;
let configHome: string;
let cli: Cli;

before(async () => {
  server = await startServer();
  configHome = await tempDir('perch-cli-config-');
  cli = cliFor(server, configHome);
});

after(async () => {
  await cleanup(server);
  await cleanup(configHome);
});

describe('login and logout', () => {
  test('login stores an owner-only token; commands use it; logout revokes it', async () => {
    const bad = await cli(['login', '--password-stdin'], { input: 'wrong-password' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^perch: invalid_credentials: /m);

    const ok = await cli(['login', '--password-stdin', '--json'], { input: server.adminPassword });
    assert.equal(ok.code, 0, ok.stderr);
    const out = JSON.parse(ok.stdout) as {
      user: { name: string; isAdmin: boolean };
      credentials: string;
    };
    assert.equal(out.user.name, 'admin');
    assert.equal(out.user.isAdmin, true);
    assert.equal(ok.stdout.includes('token'), false, 'the token is never printed');
    const file = path.join(configHome, 'perch', 'credentials.json');
    assert.equal(out.credentials, file);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);

    const me = await cli.json<{ name: string }[]>(['user', 'get']);
    assert.ok(me.some((u) => u.name === 'admin'));

    const token = await tokenFor(cli, 'admin', server.adminPassword);
    const out2 = await cli(['logout', '--json'], { env: { PERCH_TOKEN: token } });
    assert.equal(out2.code, 0, out2.stderr);
    const revoked = await cli(['user', 'get'], { env: { PERCH_TOKEN: token } });
    assert.equal(revoked.code, 1);
    assert.match(revoked.stderr, /^perch: unauthenticated: /m);
    // The stored token was not the one revoked.
    const still = await cli(['user', 'get']);
    assert.equal(still.code, 0, still.stderr);

    const lo = await cli(['logout']);
    assert.equal(lo.code, 0, lo.stderr);
    assert.match(lo.stdout, /Signed out of /);
    const gone = await cli(['user', 'get']);
    assert.match(gone.stderr, /perch: not_signed_in: /);
  });

  test('without a token, commands say how to sign in', async () => {
    const other = cliFor(server, await tempDir('perch-cli-empty-'));
    const r = await other(['user', 'get']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /perch: not_signed_in: .*perch login/);
  });

  test('no terminal and no --password-stdin is a usage error', async () => {
    const r = await cli(['login']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--password-stdin/);
  });

  test('a server that is not there is an error, a bad --server a usage error', async () => {
    const down = await cli(['user', 'get', '--server', 'http://127.0.0.1:1'], {
      env: { PERCH_TOKEN: 'x' },
    });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /perch: unreachable: /);
    const bad = await cli(['user', 'get', '--server', 'ftp://example.org']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /http:\/\/ or https:\/\//);
  });
});

describe('user, group and role', () => {
  let aliceToken: string;

  before(async () => {
    const r = await cli(['login', '--password-stdin'], { input: server.adminPassword });
    assert.equal(r.code, 0, r.stderr);
  });

  test('user new, get, set, disable and reset-password', async () => {
    const alice = await cli.json<{ name: string; password: string; displayName: string }>([
      'user',
      'new',
      'alice',
      '--display-name',
      'Alice Liddell',
      '--email',
      'alice@example.org',
      '--generate-password',
    ]);
    assert.equal(alice.name, 'alice');
    assert.ok(alice.password.length >= 16);
    aliceToken = await tokenFor(cli, 'alice', alice.password);

    const bob = await cli(['user', 'new', 'bob', '--password-stdin'], { input: 'bob-password-1' });
    assert.equal(bob.code, 0, bob.stderr);
    assert.match(bob.stdout, /Created user bob/);

    const list = await cli(['user', 'get', '--filter', 'ali']);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^LOGIN\s+DISPLAY NAME/m);
    assert.match(list.stdout, /alice\s+Alice Liddell/);
    assert.doesNotMatch(list.stdout, /bob/);

    const changed = await cli.json<{ displayName: string; email: string | null }>([
      'user',
      'set',
      'alice',
      '--display-name',
      'Alice L.',
      '--no-email',
    ]);
    assert.equal(changed.displayName, 'Alice L.');
    assert.equal(changed.email, null);

    const reset = await cli.json<{ password: string }>([
      'user',
      'reset-password',
      'bob',
      '--generate-password',
    ]);
    const bobToken = await tokenFor(cli, 'bob', reset.password);
    assert.ok(bobToken);

    const disabled = await cli.json<{ disabled: boolean }>(['user', 'disable', 'bob']);
    assert.equal(disabled.disabled, true);
    const denied = await cli(['login', '--user', 'bob', '--password-stdin'], {
      input: reset.password,
    });
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /perch: account_disabled: /);
    const enabled = await cli.json<{ disabled: boolean }>([
      'user',
      'set',
      'bob',
      '--enabled',
      'true',
    ]);
    assert.equal(enabled.disabled, false);
  });

  test('group new, get, add-member and remove-member', async () => {
    const g = await cli.json<{ name: string; members: { name: string }[] }>([
      'group',
      'new',
      'legal',
      '--member',
      'alice',
      '--description',
      'Legal team',
    ]);
    assert.deepEqual(
      g.members.map((m) => m.name),
      ['alice'],
    );
    const added = await cli(['group', 'add-member', 'legal', 'bob']);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /legal now has: .*alice.*bob|legal now has: .*bob.*alice/);
    const removed = await cli.json<{ members: { name: string }[] }>([
      'group',
      'remove-member',
      'legal',
      'alice',
    ]);
    assert.deepEqual(
      removed.members.map((m) => m.name),
      ['bob'],
    );
    const shown = await cli(['group', 'get', 'legal']);
    assert.match(shown.stdout, /description:\s+Legal team/);
    const missing = await cli(['group', 'add-member', 'legal', 'nobody']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /perch: principal_not_found: /);
  });

  test('role grant and revoke chat-admin', async () => {
    const granted = await cli.json<{ granted: boolean }>(['role', 'grant', 'chat-admin', 'bob']);
    assert.equal(granted.granted, true);
    assert.equal((await cli.json<{ isAdmin: boolean }>(['user', 'get', 'bob'])).isAdmin, true);
    const revoked = await cli(['role', 'revoke', 'chat-admin', 'bob']);
    assert.equal(revoked.code, 0);
    assert.match(revoked.stdout, /bob is no longer a chat administrator/);
    const self = await cli(['role', 'revoke', 'chat-admin', 'admin']);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /perch: cannot_demote_self: /);
    const unknown = await cli(['role', 'grant', 'emperor', 'bob']);
    assert.equal(unknown.code, 2);
    const noRoom = await cli(['role', 'grant', 'manager', 'bob']);
    assert.equal(noRoom.code, 2);
    assert.match(noRoom.stderr, /give --room/);
  });

  test('a non-administrator is refused with the server code and exit 1', async () => {
    await expectExits(
      cli,
      [
        ['user', 'get'],
        ['user', 'new', 'carol', '--generate-password'],
        ['group', 'new', 'sneaky'],
        ['role', 'grant', 'chat-admin', 'alice'],
      ],
      1,
      /^perch: admin_required: /m,
      { env: { PERCH_TOKEN: aliceToken } },
    );
  });

  test('bad arguments are usage errors (exit 2)', async () => {
    await expectExits(
      cli,
      [
        ['user', 'get', '--bogus'],
        ['user', 'get', '--limit', '0'],
        ['user', 'get', '--limit', '501'],
        ['user', 'get', '--limit', 'ten'],
        ['user', 'new', 'dave', '--email', 'not-an-address', '--generate-password'],
        ['user', 'set', 'alice'],
        ['user', 'get', 'a', 'b'],
        ['group'],
        ['user', 'new', 'dave', '--password-stdin', '--generate-password'],
      ],
      2,
    );
  });

  test('every command has --help', async () => {
    const r = await cli(['user', 'new', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--generate-password/);
    assert.match(r.stdout, /--json/);
    assert.match(r.stdout, /--server <url>/);
  });
});
