// perch data export|import: the archive round trip SQLite -> SQLite -> PostgreSQL, against the
// data of a real server, and the imported store served again (sign-in, search, sequences).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { testCluster } from '../harness/postgres.js';
import { cleanup, startServer, tempDir, type TestServer } from '../harness/server.js';
import { expectExits, httpAs, runPerch, type Cli } from './helpers.js';

let server: TestServer;
let work: string;
let roomId: number;
const fileBytes = Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 7) % 256));

/** The CLI with no server: data commands run offline on a data dir or store URL. */
const perch: Cli = Object.assign((args: string[]) => runPerch(args), {
  json: async <T>(args: string[]): Promise<T> => {
    const r = await runPerch([...args, '--json']);
    if (r.code !== 0) throw new Error(`perch ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  },
}) as Cli;

/** The archive's lines with the header's export time taken out. */
function content(file: string): string[] {
  const lines = gunzipSync(fs.readFileSync(file)).toString('utf8').split('\n');
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.match(String(header.exportedAt), /^\d{4}-\d{2}-\d{2}T/);
  delete header.exportedAt;
  return [JSON.stringify(header), ...lines.slice(1)];
}

before(async () => {
  server = await startServer();
  work = await tempDir('perch-data-');
  const admin = await httpAs(server, 'admin', server.adminPassword);
  await admin('POST', '/users', { login: 'alice', password: 'alice-password', email: 'a@x.org' });
  await admin('POST', '/users', { login: 'bob', password: 'bob-password' });
  await admin('POST', '/groups', { name: 'legal', members: ['alice'] });
  await admin('PUT', '/policies/no-chat', { enabled: false });
  await admin('POST', '/users', { login: 'carol', password: 'carol-password' });
  await admin('PUT', '/principals/carol/policy', { policy: 'no-chat' });
  await admin('PATCH', '/settings', { defaultHistory: 42 });
  await admin('POST', '/addins', { name: 'Board', url: 'https://board.example.org/' });
  await admin('POST', '/categories', {
    name: 'General',
    allowed: ['legal', 'bob'],
    denied: ['carol'],
    creators: ['alice'],
    fileUpload: true,
  });
  const room = await admin<{ id: number }>('POST', '/rooms', {
    name: 'Plans',
    category: 'General',
    members: ['legal', 'bob'],
    managers: ['alice'],
    addin: 'Board',
  });
  roomId = room.id;
  await admin('POST', '/rooms', { name: 'Empty', category: 'General', privacy: 'open' });
  const alice = await httpAs(server, 'alice', 'alice-password');
  for (let i = 0; i < 30; i += 1) {
    await alice('POST', `/rooms/${roomId}/messages`, {
      text: i === 7 ? 'zqimported quarterly plan, café' : `message ${i} "quoted" ✓`,
      clientId: `c-${i}`,
    });
  }
  const res = await fetch(`${server.url}/api/v1/rooms/${roomId}/files?name=plan.bin`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${((await (await fetch(`${server.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'alice', password: 'alice-password' }) })).json()) as { token: string }).token}`,
      'content-type': 'application/octet-stream',
    },
    body: fileBytes,
  });
  assert.equal(res.status, 201, await res.text());
  await admin('POST', '/messages/remove', { room: roomId, seq: 3 });
  await server.stop();
});

after(async () => {
  await cleanup(server);
  await cleanup(work);
});

describe('data export and import', () => {
  test('SQLite -> SQLite -> PostgreSQL gives the same archive; users sign in, search works', async () => {
    const a = path.join(work, 'a.jsonl.gz');
    const exported = await perch.json<{ counts: Record<string, number>; bytes: number }>([
      'data',
      'export',
      '--data-dir',
      server.dataDir,
      '--file',
      a,
    ]);
    assert.equal(exported.counts.messages, 31);
    assert.equal(exported.counts.files, 1);
    assert.equal(exported.counts.file_bytes, fileBytes.length);
    assert.equal(exported.counts.principals, 5);
    assert.equal(fs.statSync(a).mode & 0o777, 0o600);
    const lines = content(a);
    assert.ok(!lines.some((l) => l.includes('"t":"sessions"')), 'no session tokens');
    assert.ok(
      lines.some((l) => l.includes('$argon2id$')),
      'password hashes, so users can sign in',
    );

    const d2 = path.join(work, 'd2');
    const imported = await perch.json<{ counts: Record<string, number> }>([
      'data',
      'import',
      '--data-dir',
      d2,
      '--file',
      a,
    ]);
    assert.deepEqual(imported.counts, exported.counts);
    const b = path.join(work, 'b.jsonl.gz');
    await perch.json(['data', 'export', '--data-dir', d2, '--file', b]);
    assert.deepEqual(content(b), lines, 'byte-identical but for the export time');

    const cluster = await testCluster();
    const db = await cluster.createDatabase({ empty: true });
    try {
      const pgFiles = path.join(work, 'pg-files');
      await perch.json([
        'data',
        'import',
        '--store-url',
        db.url,
        '--files-dir',
        pgFiles,
        '--file',
        b,
      ]);
      const c = path.join(work, 'c.jsonl.gz');
      await perch.json([
        'data',
        'export',
        '--store-url',
        db.url,
        '--files-dir',
        pgFiles,
        '--file',
        c,
      ]);
      assert.deepEqual(content(c), lines, 'the same from PostgreSQL');
      const again = await perch([
        'data',
        'import',
        '--store-url',
        db.url,
        '--files-dir',
        pgFiles,
        '--file',
        a,
      ]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /^perch: store_not_empty: /m);

      // Served from PostgreSQL: sign-in with the old password, search, and new ids past the old.
      const pgServer = await startServer({ storeUrl: db.url, dataDir: path.join(work, 'pg-data') });
      try {
        const alice = await httpAs(pgServer, 'alice', 'alice-password');
        const hits = await alice<{ messages: { seq: number }[] }>(
          'GET',
          '/search/messages?query=zqimported',
        );
        assert.deepEqual(
          hits.messages.map((m) => m.seq),
          [8],
        );
        const posted = await alice<{ message: { seq: number; id: number } }>(
          'POST',
          `/rooms/${roomId}/messages`,
          { text: 'after the move' },
        );
        assert.equal(posted.message.seq, 32, 'the room sequence carries on');
        assert.ok(posted.message.id > 31, 'new ids come after the imported ones');
      } finally {
        await cleanup(pgServer);
      }
    } finally {
      await cluster.dropDatabase(db.name);
    }

    // Served from the imported SQLite data dir: sign-in, search, history and the file's bytes.
    const s2 = await startServer({ dataDir: d2 });
    try {
      const alice = await httpAs(s2, 'alice', 'alice-password');
      const hits = await alice<{ messages: { seq: number; body: string }[] }>(
        'GET',
        '/search/messages?query=quarterly',
      );
      assert.deepEqual(
        hits.messages.map((m) => m.seq),
        [8],
      );
      const page = await alice<{
        messages: { seq: number; file?: { id: number } | null }[];
        lastSeq: number;
      }>('GET', `/rooms/${roomId}/messages?limit=100`);
      assert.equal(page.lastSeq, 31);
      assert.deepEqual(
        page.messages.map((m) => m.seq),
        Array.from({ length: 31 }, (_, i) => i + 1),
      );
      const carol = await fetch(`${s2.url}/api/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login: 'carol', password: 'wrong-password' }),
      });
      assert.equal(carol.status, 401);
      const stored = fs.readdirSync(path.join(d2, 'files'));
      assert.equal(stored.length, 1);
      assert.deepEqual(fs.readFileSync(path.join(d2, 'files', stored[0]!)), fileBytes);
    } finally {
      await cleanup(s2);
    }
  });

  test('config level, date ranges, no password hashes; progress goes to stderr only', async () => {
    const cfg = path.join(work, 'config.jsonl.gz');
    const r = await perch([
      'data',
      'export',
      '--data-dir',
      server.dataDir,
      '--file',
      cfg,
      '--level',
      'config',
      '--no-password-hashes',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { counts: Record<string, number> };
    assert.match(r.stderr, /^perch: exported \d+ settings, .*\d+ rooms/m, 'progress on stderr');
    assert.equal(out.counts.messages, undefined);
    assert.equal(out.counts.rooms, 2);
    const lines = content(cfg);
    assert.ok(!lines.some((l) => l.includes('"t":"messages"') || l.includes('$argon2id$')));
    const none = path.join(work, 'none.jsonl.gz');
    const ranged = await perch.json<{ counts: Record<string, number> }>([
      'data',
      'export',
      '--data-dir',
      server.dataDir,
      '--file',
      none,
      '--from',
      '2000-01-01',
      '--to',
      '2000-12-31',
    ]);
    assert.deepEqual([ranged.counts.messages, ranged.counts.files, ranged.counts.rooms], [0, 0, 2]);
    const text = await perch([
      'data',
      'export',
      '--data-dir',
      server.dataDir,
      '--file',
      path.join(work, 't.jsonl.gz'),
    ]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^Exported to .* 31 messages/m);
  });

  test('refusals: existing file, corrupt archive, other schema; usage errors', async () => {
    const a = path.join(work, 'a.jsonl.gz');
    const exists = await perch(['data', 'export', '--data-dir', server.dataDir, '--file', a]);
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /^perch: file_exists: /m);
    const bad = path.join(work, 'bad.jsonl.gz');
    fs.writeFileSync(bad, 'not gzip at all');
    const corrupt = await perch([
      'data',
      'import',
      '--data-dir',
      path.join(work, 'd3'),
      '--file',
      bad,
    ]);
    assert.equal(corrupt.code, 1);
    assert.match(corrupt.stderr, /^perch: archive_corrupt: /m);
    const truncated = path.join(work, 'truncated.jsonl.gz');
    const { gzipSync } = await import('node:zlib');
    fs.writeFileSync(
      truncated,
      gzipSync(
        content(a).slice(0, 20).join('\n').replace('{"format"', '{"exportedAt":"x","format"'),
      ),
    );
    const cut = await perch([
      'data',
      'import',
      '--data-dir',
      path.join(work, 'd4'),
      '--file',
      truncated,
    ]);
    assert.equal(cut.code, 1);
    assert.match(cut.stderr, /^perch: archive_truncated: /m);
    const d4 = await perch([
      'data',
      'export',
      '--data-dir',
      path.join(work, 'd4'),
      '--file',
      path.join(work, 'x.gz'),
    ]);
    assert.equal(d4.code, 0, 'the failed import left an empty store: ' + d4.stderr);
    const x = content(path.join(work, 'x.gz'));
    assert.equal(x.length, 3, 'header, end record and the final newline');
    await expectExits(
      perch,
      [
        ['data', 'export'],
        ['data', 'export', '--file', 'f', '--level', 'everything'],
        ['data', 'export', '--file', 'f', '--from', 'last week'],
        ['data', 'export', '--file', 'f', '--level', 'config', '--from', '2024-01-01'],
        ['data', 'export', '--file', 'f', '--from', '2024-02-01', '--to', '2024-01-01'],
        ['data', 'export', '--file', 'f', '--data-dir', 'x', '--store-url', 'postgres://h/db'],
        ['data', 'import', '--file', a, '--store-url', 'mysql://h/db'],
        ['data', 'import'],
        ['data', 'import', '--file', a, '--bogus'],
      ],
      2,
    );
  });
});
