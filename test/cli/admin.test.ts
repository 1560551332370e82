// perch audit, group set/remove and compliance, as child processes against one real server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanup, startServer, tempDir, type TestServer } from '../harness/server.js';
import { cliFor, expectExits, httpAs, tokenFor, type Cli } from './helpers.js';

let server: TestServer;
let configHome: string;
let cli: Cli;
let aliceToken: string;

before(async () => {
  server = await startServer();
  configHome = await tempDir('perch-cli-config-');
  cli = cliFor(server, configHome);
  const login = await cli(['login', '--password-stdin'], { input: server.adminPassword });
  assert.equal(login.code, 0, login.stderr);
  const admin = await httpAs(server, 'admin', server.adminPassword);
  await admin('POST', '/users', { login: 'alice', password: 'alice-password' });
  aliceToken = await tokenFor(cli, 'alice', 'alice-password');
});

after(async () => {
  await cleanup(server);
  await cleanup(configHome);
});

interface AuditEntry {
  id: number;
  actorName: string;
  action: string;
  method: string;
  path: string;
  params: { path?: Record<string, unknown>; body?: Record<string, unknown> };
  result: string;
  errorCode: string | null;
  createdAt: number;
  finishedAt: number | null;
}
type AuditPage = { entries: AuditEntry[]; next: number | null };

describe('audit', () => {
  test('every admin call is recorded with its actor, parameters (no secrets) and result', async () => {
    const startedAt = Date.now();
    const made = await cli(
      ['user', 'new', 'dave', '--password-stdin', '--email', 'd@example.com'],
      {
        input: 'dave-secret-pw',
      },
    );
    assert.equal(made.code, 0, made.stderr);
    const refused = await cli(['config', 'set', '--history-count', '40'], {
      env: { PERCH_TOKEN: aliceToken },
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^perch: admin_required: /m);
    const failed = await cli(['group', 'add-member', 'no-such-group', 'alice']);
    assert.equal(failed.code, 1);

    const { entries } = await cli.json<AuditPage>(['audit', 'get', '--since', String(startedAt)]);
    assert.deepEqual(
      entries.map((e) => [e.actorName, e.action, e.result, e.errorCode]),
      [
        ['admin', 'group.members', 'error', 'principal_not_found'],
        ['alice', 'config.set', 'error', 'admin_required'],
        ['admin', 'user.new', 'ok', null],
      ],
      'newest first; refusals included',
    );
    const userNew = entries[2]!;
    assert.deepEqual([userNew.method, userNew.path], ['POST', '/api/v1/users']);
    assert.equal(userNew.params.body?.login, 'dave');
    assert.equal(userNew.params.body?.email, 'd@example.com');
    assert.equal(userNew.params.body?.password, '[redacted]');
    assert.ok(!JSON.stringify(entries).includes('dave-secret-pw'), 'no password anywhere');
    assert.ok(userNew.createdAt >= startedAt && userNew.finishedAt! >= userNew.createdAt);
    // A refusal happens before the body is read, so only the path and query are recorded.
    assert.deepEqual([entries[1]!.path, entries[1]!.params], ['/api/v1/settings', {}]);
    assert.deepEqual(entries[0]!.params.path, { name: 'no-such-group' });

    // Reads are not audited: the listing itself left no entry.
    const again = await cli.json<AuditPage>(['audit', 'get', '--since', String(startedAt)]);
    assert.equal(again.entries.length, 3);

    const text = await cli(['audit', 'get', '--actor', 'alice']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ID\s+TIME\s+ACTOR\s+ACTION\s+RESULT\s+PARAMETERS$/m);
    assert.match(text.stdout, /alice\s+config\.set\s+error: admin_required\s+\{\}$/m);
  });

  test('filters by actor, action prefix, result and dates, and pages with --before', async () => {
    const byAlice = await cli.json<AuditPage>(['audit', 'get', '--actor', 'ALICE']);
    assert.ok(byAlice.entries.length >= 1);
    assert.ok(byAlice.entries.every((e) => e.actorName === 'alice'));
    const policies = await cli.json<AuditPage>(['audit', 'get', '--action', 'group.*']);
    assert.ok(policies.entries.length >= 1);
    assert.ok(policies.entries.every((e) => e.action.startsWith('group.')));
    const errors = await cli.json<AuditPage>(['audit', 'get', '--result', 'error']);
    assert.ok(errors.entries.every((e) => e.result === 'error'));
    const future = await cli.json<AuditPage>(['audit', 'get', '--since', '2999-01-01']);
    assert.deepEqual(future, { entries: [], next: null });
    const past = await cli.json<AuditPage>(['audit', 'get', '--until', '2000-01-01']);
    assert.deepEqual(past.entries, []);

    const all = await cli.json<AuditPage>(['audit', 'get']);
    const first = await cli.json<AuditPage>(['audit', 'get', '--limit', '2']);
    assert.deepEqual(
      first.entries.map((e) => e.id),
      all.entries.slice(0, 2).map((e) => e.id),
    );
    assert.equal(first.next, first.entries[1]!.id);
    const second = await cli.json<AuditPage>([
      'audit',
      'get',
      '--limit',
      '2',
      '--before',
      String(first.next),
    ]);
    assert.deepEqual(
      second.entries.map((e) => e.id),
      all.entries.slice(2, 4).map((e) => e.id),
    );
    const more = await cli(['audit', 'get', '--limit', '1']);
    assert.match(more.stdout, /\(more: add --before \d+\)/);
  });

  test('only administrators read it; bad filters are usage errors', async () => {
    const r = await cli(['audit', 'get'], { env: { PERCH_TOKEN: aliceToken } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^perch: admin_required: /m);
    await expectExits(
      cli,
      [
        ['audit', 'get', '--limit', '0'],
        ['audit', 'get', '--limit', '1001'],
        ['audit', 'get', '--since', 'yesterday'],
        ['audit', 'get', '--result', 'maybe'],
        ['audit', 'get', '--bogus'],
        ['audit', 'get', 'extra'],
      ],
      2,
    );
  });
});
