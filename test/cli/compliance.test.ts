// perch compliance status, search/export, hold and purge, as child processes against a real server.
import crypto from 'node:crypto';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { cleanup, startServer, tempDir, type TestServer } from '../harness/server.js';
import { cliFor, expectExits, httpAs, tokenFor, type Cli } from './helpers.js';

let server: TestServer;
let configHome: string;
let cli: Cli;
let aliceToken: string;
let roomId: number;

before(async () => {
  server = await startServer();
  configHome = await tempDir('perch-cli-config-');
  cli = cliFor(server, configHome);
  const login = await cli(['login', '--password-stdin'], { input: server.adminPassword });
  assert.equal(login.code, 0, login.stderr);
  const admin = await httpAs(server, 'admin', server.adminPassword);
  await admin('POST', '/users', { login: 'alice', password: 'alice-password' });
  await admin('POST', '/categories', { name: 'Matters', allowed: ['alice'] });
  roomId = (
    await admin<{ id: number }>('POST', '/rooms', {
      name: 'Plans',
      category: 'Matters',
      members: ['alice'],
    })
  ).id;
  await admin('PATCH', '/compliance/config', {
    adapters: [{ name: 'lines', type: 'jsonl', enabled: true }],
  });
  const alice = await httpAs(server, 'alice', 'alice-password');
  await alice('POST', `/rooms/${roomId}/messages`, {
    text: 'the zqwidget invoice',
    clientId: 'c-1',
  });
  await alice('POST', `/rooms/${roomId}/messages`, { text: 'something else', clientId: 'c-2' });
  // Drains the outbox into the compliance store and runs the adapter.
  await admin('POST', '/compliance/run');
  aliceToken = await tokenFor(cli, 'alice', 'alice-password');
});

after(async () => {
  await cleanup(server);
  await cleanup(configHome);
});

interface Hold {
  id: number;
  roomId: number | null;
  reason: string;
  releasedBy: string | null;
  releaseReason: string | null;
}

test('status, search, export, holds and purge; refusals and usage errors', async () => {
  const status = await cli.json<{ backlog: number; adapters: { name: string; cursor: number }[] }>([
    'compliance',
    'status',
  ]);
  assert.deepEqual(
    status.adapters.map((a) => a.name),
    ['lines'],
  );
  assert.ok(status.adapters[0]!.cursor > 0, 'the adapter has exported the records');
  const statusText = await cli(['compliance', 'status']);
  assert.equal(statusText.code, 0, statusText.stderr);
  assert.match(statusText.stdout, /^lines\s+yes\s/m);

  const found = await cli.json<{
    records: { type: string; content: string; sender: { userName: string } }[];
  }>([
    'compliance',
    'search',
    '--user',
    'alice',
    '--text',
    'ZQWIDGET',
    '--type',
    'chat',
    '--from',
    '2000-01-01',
    '--to',
    String(Date.now() + 60_000),
  ]);
  assert.deepEqual(
    found.records.map((r) => [r.type, r.content, r.sender.userName]),
    [['CHAT', 'the zqwidget invoice', 'alice']],
  );
  const table = await cli(['compliance', 'search', '--room', 'Plans', '--text', 'zqwidget']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^RECORD\s+AT\s+TYPE\s+USER\s+ROOM\s+CONTENT$/m);
  assert.match(table.stdout, /\sCHAT\s+alice\s+Plans\s+the zqwidget invoice$/m);

  const exported = await cli([
    'compliance',
    'search',
    '--user',
    'alice',
    '--type',
    'CHAT',
    '--export',
    'xml',
  ]);
  assert.equal(exported.code, 0, exported.stderr);
  const [, count, file] = /^Exported (\d+) records to (.+\.xml)$/m.exec(exported.stdout) ?? [];
  assert.equal(count, '2');
  assert.ok(fs.existsSync(file!), `${file} exists`);
  assert.match(fs.readFileSync(file!, 'utf8'), /zqwidget/);

  const placed = await cli.json<Hold>([
    'compliance',
    'hold',
    'place',
    '--room',
    'Plans',
    '--reason',
    'matter 42',
  ]);
  assert.deepEqual([placed.roomId, placed.reason], [roomId, 'matter 42']);
  const active = await cli.json<Hold[]>(['compliance', 'hold', 'list']);
  assert.deepEqual(
    active.map((h) => h.id),
    [placed.id],
  );
  const released = await cli.json<Hold>([
    'compliance',
    'hold',
    'release',
    String(placed.id),
    '--reason',
    'settled',
  ]);
  assert.deepEqual([released.releasedBy, released.releaseReason], ['admin', 'settled']);
  assert.deepEqual(await cli.json<Hold[]>(['compliance', 'hold', 'list']), []);
  const again = await cli(['compliance', 'hold', 'release', String(placed.id)]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^perch: hold_not_found: /m);

  const purged = await cli.json<{ purged: number }>(['compliance', 'purge', '--force']);
  assert.equal(purged.purged, 0, 'no retention period: nothing is purged');

  await expectExits(
    cli,
    [
      ['compliance', 'status'],
      ['compliance', 'search', '--text', 'x'],
      ['compliance', 'hold', 'list'],
    ],
    1,
    /^perch: admin_required: /m,
    { env: { PERCH_TOKEN: aliceToken } },
  );
  await expectExits(
    cli,
    [
      ['compliance', 'search', '--from', 'yesterday'],
      ['compliance', 'search', '--limit', '0'],
      ['compliance', 'search', '--export', 'csv'],
      ['compliance', 'search', '--type', 'not a type'],
      ['compliance', 'search', '--from', '2024-05-02', '--to', '2024-05-01'],
      ['compliance', 'status', '--bogus'],
      ['compliance', 'hold', 'place', '--user', 'alice'],
      ['compliance', 'hold', 'place', '--reason', 'no criterion'],
      ['compliance', 'hold', 'release', 'abc'],
      ['compliance', 'purge'],
    ],
    2,
  );
});

test('category retention: set, shown, purged now with category holds respected', async () => {
  const set = await cli.json<{ retentionDays: number | null }>([
    'category',
    'set',
    'Matters',
    '--retention-days',
    '30',
  ]);
  assert.equal(set.retentionDays, 30);
  const shown = await cli(['category', 'get', 'Matters']);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /^retention:\s+30 days$/m);

  const hold = await cli.json<{ id: number; categoryId: number | null }>([
    'compliance',
    'hold',
    'place',
    '--category',
    'Matters',
    '--reason',
    'litigation',
  ]);
  assert.equal(typeof hold.categoryId, 'number');
  const held = await cli.json<{
    messages: number;
    categories: { category: string; held: boolean; messages: number }[];
  }>(['category', 'purge', 'Matters', '--force']);
  assert.deepEqual(
    held.categories.map((c) => [c.category, c.held, c.messages]),
    [['Matters', true, 0]],
  );
  const released = await cli(['compliance', 'hold', 'release', String(hold.id)]);
  assert.equal(released.code, 0, released.stderr);
  // Every message is younger than 30 days: the purge runs and keeps them all.
  const free = await cli.json<{ messages: number; categories: { held: boolean }[] }>([
    'category',
    'purge',
    '--force',
  ]);
  assert.deepEqual([free.messages, free.categories[0]!.held], [0, false]);
  const alice = await httpAs(server, 'alice', 'alice-password');
  const page = await alice<{ messages: { text: string }[] }>('GET', `/rooms/${roomId}/messages`);
  assert.ok(page.messages.some((m) => m.text === 'the zqwidget invoice'));

  const none = await cli.json<{ retentionDays: number | null }>([
    'category',
    'set',
    'Matters',
    '--retention-days',
    'none',
  ]);
  assert.equal(none.retentionDays, null);
  await expectExits(
    cli,
    [
      ['category', 'set', 'Matters', '--retention-days', '0'],
      ['category', 'set', 'Matters', '--retention-days', '36501'],
      ['category', 'set', 'Matters', '--retention-days', 'soon'],
      ['category', 'purge'],
    ],
    2,
  );
  await expectExits(cli, [['category', 'purge', '--force']], 1, /^perch: admin_required: /m, {
    env: { PERCH_TOKEN: aliceToken },
  });
  await expectExits(cli, [['category', 'purge', 'Nowhere', '--force']], 1, /category_not_found/);
  const admin = await httpAs(server, 'admin', server.adminPassword);
  await assert.rejects(
    admin('PATCH', '/categories/Matters', { retentionDays: 'soon' }),
    /400 .*invalid_request/,
  );
});

test('search --export --out downloads the export file over HTTP', async () => {
  const out = await tempDir('perch-cli-export-');
  try {
    const r = await cli.json<{ file: string; downloaded: string; records: number; sha256: string }>(
      ['compliance', 'search', '--user', 'alice', '--export', 'jsonl', '--out', out],
    );
    const data = fs.readFileSync(r.downloaded);
    assert.equal(data.toString('utf8').trim().split('\n').length, r.records);
    assert.equal(crypto.createHash('sha256').update(data).digest('hex'), r.sha256);
    const admin = await httpAs(server, 'admin', server.adminPassword);
    await assert.rejects(admin('GET', '/compliance/exports/..%2Fcompliance.db'), /404/);
  } finally {
    await cleanup(out);
  }
});
