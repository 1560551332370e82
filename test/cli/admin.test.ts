// perch audit, group set/remove and compliance, as child processes against one real server.
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

before(async () => {
  env = await startCliServer(['alice']);
  ({ server, cli } = env);
  aliceToken = await tokenFor(cli, 'alice', 'alice-password');
});

after(() => env.stop());

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

describe('group set and remove', () => {
  test('set renames and describes; remove shows what goes with --what-if, then removes', async () => {
    const admin = await httpAs(server, 'admin', server.adminPassword);
    await admin('POST', '/users', { login: 'erin', password: 'erin-password' });
    await admin('POST', '/groups', { name: 'paralegals', members: ['erin'] });
    await admin('POST', '/groups', { name: 'firm', members: ['paralegals'] });
    await admin('POST', '/categories', { name: 'Matters', allowed: ['paralegals', 'erin'] });
    await admin('POST', '/rooms', {
      name: 'Matter 7',
      category: 'Matters',
      members: ['paralegals'],
    });

    const set = await cli.json<{ name: string; displayName: string; description: string | null }>([
      'group',
      'set',
      'paralegals',
      '--name',
      'legal-staff',
      '--display-name',
      'Legal staff',
      '--description',
      'paralegals and clerks',
    ]);
    assert.deepEqual(
      [set.name, set.displayName, set.description],
      ['legal-staff', 'Legal staff', 'paralegals and clerks'],
    );
    const cleared = await cli.json<{ description: string | null }>([
      'group',
      'set',
      'legal-staff',
      '--no-description',
    ]);
    assert.equal(cleared.description, null);

    const whatIf = await cli(['group', 'remove', 'legal-staff', '--what-if']);
    assert.equal(whatIf.code, 0, whatIf.stderr);
    assert.match(whatIf.stdout, /What if: remove group legal-staff, taking away:/);
    assert.match(whatIf.stdout, /room roles: Matter 7 \(member\)/);
    assert.match(whatIf.stdout, /category lists: Matters \(allowed\)/);
    assert.match(whatIf.stdout, /member of: firm/);
    const still = await cli.json<{ name: string }>(['group', 'get', 'legal-staff']);
    assert.equal(still.name, 'legal-staff', '--what-if changed nothing');

    const noForce = await cli(['group', 'remove', 'legal-staff']);
    assert.equal(noForce.code, 2, 'no terminal and no --force');

    const removed = await cli.json<{ removed: boolean; rooms: { name: string }[] }>([
      'group',
      'remove',
      'legal-staff',
      '--force',
    ]);
    assert.equal(removed.removed, true);
    assert.deepEqual(
      removed.rooms.map((r) => r.name),
      ['Matter 7'],
    );
    const gone = await cli(['group', 'get', 'legal-staff']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^perch: principal_not_found: /m);
    const firm = await cli.json<{ members: unknown[] }>(['group', 'get', 'firm']);
    assert.deepEqual(firm.members, []);
    const erin = await cli.json<{ name: string }>(['user', 'get', 'erin']);
    assert.equal(erin.name, 'erin', 'the users stay');

    const { entries } = await cli.json<AuditPage>(['audit', 'get', '--action', 'group.*']);
    assert.deepEqual(
      entries.slice(0, 3).map((e) => [e.action, e.result]),
      [
        ['group.remove', 'ok'],
        ['group.set', 'ok'],
        ['group.set', 'ok'],
      ],
    );
  });

  test('a group on a denied list or holding a policy is refused; usage errors', async () => {
    const admin = await httpAs(server, 'admin', server.adminPassword);
    await admin('POST', '/groups', { name: 'walled' });
    await admin('POST', '/categories', { name: 'Deals', allowed: ['alice'], denied: ['walled'] });
    const whatIf = await cli(['group', 'remove', 'walled', '--what-if']);
    assert.equal(whatIf.code, 0, whatIf.stderr);
    assert.match(whatIf.stdout, /refused, it is on the denied list of category Deals/);
    const r = await cli(['group', 'remove', 'walled', '--force']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^perch: group_in_use: group walled cannot be removed: /m);
    await expectExits(
      cli,
      [
        ['group', 'set', 'walled'],
        ['group', 'set', 'walled', '--name', ''],
        ['group', 'set', 'walled', '--bogus'],
        ['group', 'remove'],
      ],
      2,
    );
    const refused = await cli(['group', 'set', 'walled', '--description', 'x'], {
      env: { PERCH_TOKEN: aliceToken },
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^perch: admin_required: /m);
  });
});

interface ComplianceView {
  config: {
    runInterval: number;
    retentionDays: number | null;
    adapters: {
      name: string;
      type: string;
      enabled: boolean;
      outputDirectory?: string;
      oneChatRoomPerOutputFile: boolean;
      addChatRoomDetails: boolean;
      addUserDetails: boolean;
      createFileAttachmentsManifest: boolean;
    }[];
  };
  status: { backlog: number; store: { available: boolean }; adapters: { name: string }[] } | null;
}

describe('compliance', () => {
  test('get shows configuration and status; set changes the interval and adapters', async () => {
    const start = await cli.json<ComplianceView>(['compliance', 'get']);
    assert.equal(start.config.runInterval, 900);
    assert.deepEqual(start.config.adapters, []);
    assert.equal(start.status?.store.available, true);
    assert.equal(typeof start.status?.backlog, 'number');

    const lync = await cli.json<ComplianceView['config']>([
      'compliance',
      'set',
      '--run-interval',
      '1.02:03:04',
      '--retention-days',
      '365',
      '--adapter',
      'lync',
      '--user-details',
      'true',
      '--room-details',
      'yes',
      '--one-room-per-file',
      'true',
      '--file-manifest',
      'true',
      '--output-dir',
      'exports/lync',
    ]);
    assert.equal(lync.runInterval, 86_400 + 2 * 3600 + 3 * 60 + 4);
    assert.equal(lync.retentionDays, 365);
    assert.deepEqual(lync.adapters, [
      {
        name: 'lync',
        type: 'xml',
        enabled: true,
        outputDirectory: 'exports/lync',
        oneChatRoomPerOutputFile: true,
        addChatRoomDetails: true,
        addUserDetails: true,
        createFileAttachmentsManifest: true,
        options: {},
      },
    ]);
    await cli.json(['compliance', 'set', '--adapter', 'lines', '--type', 'jsonl']);
    await cli.json(['compliance', 'set', '--adapter', 'lync', '--enabled', 'false']);
    await cli.json(['compliance', 'set', '--run-interval', '15m', '--retention-days', 'none']);
    const after = await cli.json<ComplianceView>(['compliance', 'get']);
    assert.equal(after.config.runInterval, 900);
    assert.equal(after.config.retentionDays, null);
    assert.deepEqual(
      after.config.adapters.map((a) => [a.name, a.type, a.enabled, a.addUserDetails]),
      [
        ['lync', 'xml', false, true],
        ['lines', 'jsonl', true, false],
      ],
      'one adapter changed, the others kept',
    );
    assert.deepEqual(after.status?.adapters.map((a) => a.name).sort(), ['lines', 'lync']);

    const text = await cli(['compliance', 'get']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^run interval:\s+00:15:00 \(900 s\)$/m);
    assert.match(text.stdout, /^lync\s+xml\s+no\s+exports\/lync\s+yes\s+yes\s+yes\s+yes$/m);
    assert.match(text.stdout, /^compliance store:\s+available$/m);

    const removed = await cli.json<ComplianceView['config']>([
      'compliance',
      'set',
      '--remove-adapter',
      'lines',
    ]);
    assert.deepEqual(
      removed.adapters.map((a) => a.name),
      ['lync'],
    );
    const { entries } = await cli.json<AuditPage>(['audit', 'get', '--action', 'compliance.set']);
    assert.equal(entries.length, 5);
  });

  test('out-of-range intervals and bad flags are usage errors; the server checks folders', async () => {
    await expectExits(
      cli,
      [
        ['compliance', 'set', '--run-interval', '59'],
        ['compliance', 'set', '--run-interval', '00:00:30'],
        ['compliance', 'set', '--run-interval', '30.00:00:01'],
        ['compliance', 'set', '--run-interval', '31d'],
        ['compliance', 'set', '--run-interval', 'often'],
        ['compliance', 'set', '--retention-days', '0'],
        ['compliance', 'set', '--user-details', 'true'],
        ['compliance', 'set', '--adapter', 'x', '--type', 'csv'],
        ['compliance', 'set', '--adapter', 'x', '--enabled', 'maybe'],
        ['compliance', 'set', '--remove-adapter', 'nope'],
        ['compliance', 'set'],
        ['compliance', 'get', '--bogus'],
      ],
      2,
    );
    const max = await cli.json<{ runInterval: number }>([
      'compliance',
      'set',
      '--run-interval',
      '30d',
    ]);
    assert.equal(max.runInterval, 30 * 86_400);
    const min = await cli.json<{ runInterval: number }>([
      'compliance',
      'set',
      '--run-interval',
      '00:01:00',
    ]);
    assert.equal(min.runInterval, 60);
    const escape = await cli(['compliance', 'set', '--adapter', 'x', '--output-dir', '../outside']);
    assert.equal(escape.code, 1);
    assert.match(escape.stderr, /^perch: invalid_request: /m);
    const refused = await cli(['compliance', 'get'], { env: { PERCH_TOKEN: aliceToken } });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^perch: admin_required: /m);
  });
});
