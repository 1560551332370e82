// perch policy, config, db install and test message, as child processes against one server.
import assert from 'node:assert/strict';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { after, before, describe, test } from 'node:test';
import { cleanup, tempDir } from '../harness/server.js';
import {
  expectExits,
  runPerch,
  tokenFor,
  startCliServer,
  type Cli,
  type CliServer,
} from './helpers.js';

let env: CliServer;
let cli: Cli;

before(async () => {
  env = await startCliServer(['alice', 'bob', 'carol']);
  ({ cli } = env);
  await env.admin('POST', '/groups', { name: 'contractors', members: ['carol'] });
});

after(() => env.stop());

describe('policy', () => {
  test('new, get, set, grant to a group and a user, effective, remove', async () => {
    const p = await cli.json<{ name: string; enabled: boolean }>([
      'policy',
      'new',
      'no-chat',
      '--description',
      'contractors',
    ]);
    assert.deepEqual([p.name, p.enabled], ['no-chat', false], 'off unless --enabled, as in Lync');
    const dup = await cli(['policy', 'new', 'no-chat']);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^perch: policy_exists: /m);

    await cli.json(['policy', 'grant', 'contractors', '--policy', 'no-chat']);
    const viaGroup = await cli(['policy', 'effective', '--user', 'carol']);
    assert.equal(viaGroup.code, 0, viaGroup.stderr);
    assert.match(
      viaGroup.stdout,
      /carol: persistent chat disabled by policy no-chat \(granted to group contractors\)/,
    );

    await cli.json(['policy', 'new', 'chat', '--enabled']);
    await cli.json(['policy', 'grant', 'carol', '--policy', 'chat']);
    const own = await cli.json<{ enabled: boolean; source: string }>([
      'policy',
      'effective',
      '--user',
      'carol',
    ]);
    assert.deepEqual([own.enabled, own.source], [true, 'user']);
    await cli.json(['policy', 'grant', 'carol', '--none']);

    const global = await cli.json<{ policy: string; source: string }>([
      'policy',
      'effective',
      '--user',
      'alice',
    ]);
    assert.deepEqual([global.policy, global.source], ['global', 'global']);

    const changed = await cli.json<{ description: string }>([
      'policy',
      'set',
      'chat',
      '--description',
      'everyone',
    ]);
    assert.equal(changed.description, 'everyone');
    const list = await cli(['policy', 'get']);
    assert.match(list.stdout, /^NAME\s+CHAT\s+DESCRIPTION/m);
    assert.match(list.stdout, /no-chat\s+disabled\s+contractors/);

    const removed = await cli(['policy', 'remove', 'chat', '--force']);
    assert.equal(removed.code, 0, removed.stderr);
    const missing = await cli(['policy', 'get', 'chat']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /policy_not_found/);
    await expectExits(
      cli,
      [
        ['policy', 'grant', 'carol'],
        ['policy', 'grant', 'carol', '--policy', 'x', '--none'],
        ['policy', 'set', 'no-chat', '--enabled', 'perhaps'],
        ['policy', 'effective'],
        ['policy', 'remove', 'no-chat'],
      ],
      2,
    );
  });
});

describe('config', () => {
  test('get and set, with values checked against the server limits', async () => {
    const before = await cli.json<{ defaultHistory: number }>(['config', 'get']);
    assert.equal(before.defaultHistory, 30);
    const after = await cli.json<{
      defaultHistory: number;
      maxFileSizeKb: number;
      roomManagementUrl: string;
    }>([
      'config',
      'set',
      '--history-count',
      '50',
      '--max-file-size-kb',
      '10000',
      '--participant-update-limit',
      '100',
      '--max-message-chars',
      '4000',
      '--room-management-url',
      'https://rooms.example.org/manage',
    ]);
    assert.deepEqual(
      [after.defaultHistory, after.maxFileSizeKb, after.roomManagementUrl],
      [50, 10_000, 'https://rooms.example.org/manage'],
    );
    const text = await cli(['config', 'get']);
    assert.match(text.stdout, /history-count:\s+50/);
    await expectExits(
      cli,
      [
        ['config', 'set', '--history-count', '0'],
        ['config', 'set', '--history-count', '501'],
        ['config', 'set', '--history-count', '1e2'],
        ['config', 'set', '--max-file-size-kb', '-5'],
        ['config', 'set', '--participant-update-limit', '100001'],
        ['config', 'set', '--max-message-chars', '15'],
        ['config', 'set', '--room-management-url', 'ftp://rooms.example.org'],
        ['config', 'set'],
        ['config', 'get', '--verbose'],
      ],
      2,
    );
    const token = await tokenFor(cli, 'alice', 'alice-password');
    const refused = await cli(['config', 'set', '--history-count', '10'], {
      env: { PERCH_TOKEN: token },
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^perch: admin_required: /m);
  });
});

describe('test message', () => {
  test('passes: the receiver gets the message; reports latency', async () => {
    const r = await cli(
      ['test', 'message', '--sender', 'alice', '--receiver', 'bob', '--passwords-stdin', '--json'],
      {
        input: 'alice-password\nbob-password\n',
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; latencyMs: number; room: { name: string } };
    assert.equal(out.ok, true);
    assert.equal(out.room.name, 'perch-test-message');
    assert.ok(out.latencyMs >= 0);
    // Run twice: the set-up is idempotent.
    const again = await cli(['test', 'message', '--sender', 'alice', '--receiver', 'bob'], {
      env: { PERCH_SENDER_PASSWORD: 'alice-password', PERCH_RECEIVER_PASSWORD: 'bob-password' },
    });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^OK: bob received alice's message in room perch-test-message/);
  });

  test("fails with the reason when the receiver's policy has chat off", async () => {
    await cli.json(['policy', 'grant', 'bob', '--policy', 'no-chat']);
    const r = await cli(
      ['test', 'message', '--sender', 'alice', '--receiver', 'bob', '--passwords-stdin', '--json'],
      {
        input: 'alice-password\nbob-password\n',
      },
    );
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^perch: test_failed: policy: receiver bob may not use persistent chat \(policy no-chat/m,
    );
    const out = JSON.parse(r.stdout) as { ok: boolean; stage: string; code: string };
    assert.deepEqual([out.ok, out.stage, out.code], [false, 'policy', 'chat_disabled']);
    await cli.json(['policy', 'grant', 'bob', '--none']);
  });

  test('fails at sign-in with a wrong password, and without passwords is a usage error', async () => {
    const r = await cli(
      ['test', 'message', '--sender', 'alice', '--receiver', 'bob', '--passwords-stdin'],
      {
        input: 'alice-password\nwrong-password\n',
      },
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^perch: test_failed: sign-in: bob: invalid_credentials: /m);
    await expectExits(
      cli,
      [
        ['test', 'message', '--sender', 'alice', '--receiver', 'bob'],
        ['test', 'message', '--sender', 'alice', '--receiver', 'alice', '--passwords-stdin'],
        ['test', 'message', '--sender', 'alice', '--receiver', 'bob', '--timeout', '5'],
      ],
      2,
    );
  });
});

describe('db install (offline)', () => {
  test('creates, is idempotent, and refuses a store from a newer Perch', async () => {
    const dir = await tempDir('perch-cli-db-');
    try {
      const created = await runPerch(['db', 'install', '--data-dir', dir, '--json']);
      assert.equal(created.code, 0, created.stderr);
      assert.equal((JSON.parse(created.stdout) as { state: string }).state, 'created');
      const again = await runPerch(['db', 'install', '--data-dir', dir]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /is up to date/);

      const db = new BetterSqlite3(path.join(dir, 'perch.db'));
      db.prepare('INSERT INTO perch_migrations (id, applied_at) VALUES (?, ?)').run(
        '999',
        Date.now(),
      );
      db.close();
      const newer = await runPerch(['db', 'install', '--data-dir', dir]);
      assert.equal(newer.code, 1);
      assert.match(newer.stderr, /^perch: store_too_new: .*999/m);
    } finally {
      await cleanup(dir);
    }
  });
});
