// eDiscovery and legal holds through a real server's HTTP routes (served by the compliance worker
// thread): search by user, room, time, type and text, covering history-off categories and the
// originals of removed and replaced messages; export to XML (valid against the XSD) and JSON lines.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminHttp, buildRoom, buildUsers, type Http, type TestUser } from '../e2e/helpers.js';
import { testDialects } from '../harness/domain.js';
import { testCluster } from '../harness/postgres.js';
import { cleanup, startServer, type TestServer } from '../harness/server.js';
import { assertValidXml, readXmlOutput } from './helpers.js';

interface Rec {
  recordId: number;
  type: string;
  content: string;
  sender: { userName: string } | null;
  room: { id: number; name: string; history: boolean | null } | null;
  payload: Record<string, unknown>;
}
interface Page {
  records: Rec[];
  nextAfterId: number | null;
}
interface Exported {
  format: string;
  file: string;
  path: string;
  records: number;
  sha256: string;
}

for (const dialect of testDialects()) {
  describe(`eDiscovery and legal holds over HTTP (chat and compliance stores on ${dialect})`, () => {
    let server: TestServer;
    let dropCompliance = async () => {};
    let admin: Http;
    let alice: TestUser;
    let bob: TestUser;
    let kept: number;
    let quiet: number;
    const search = (body: Record<string, unknown>) =>
      admin.ok<Page>('POST', '/api/v1/compliance/search', body);

    before(async () => {
      const env: Record<string, string> = {};
      if (dialect === 'postgres') {
        const cluster = await testCluster();
        const { name, url } = await cluster.createDatabase({ empty: true });
        env.PERCH_COMPLIANCE_STORE_URL = url;
        dropCompliance = () => cluster.dropDatabase(name);
      }
      // On postgres both stores are PostgreSQL databases (an Enterprise pool's layout): the worker
      // thread then reads and deletes the outbox itself.
      server = await startServer({ env, dialect });
      admin = await adminHttp(server);
      ({ alice, bob } = await buildUsers(server, admin, ['alice', 'bob']));
      await admin.ok('POST', '/api/v1/categories', { name: 'kept', allowed: ['alice', 'bob'] });
      await admin.ok('POST', '/api/v1/categories', {
        name: 'unlogged',
        allowed: ['alice', 'bob'],
        history: false,
      });
      kept = (await buildRoom(admin, { name: 'deals', category: 'kept', privacy: 'open' })).id;
      quiet = (await buildRoom(admin, { name: 'quiet', category: 'unlogged', privacy: 'open' })).id;
      const post = (u: TestUser, room: number, text: string) =>
        u.http.ok<{ message: { seq: number } }>('POST', `/api/v1/rooms/${room}/messages`, { text });
      const secret = await post(alice, kept, 'the Secret price is 42');
      await post(bob, kept, 'nothing to see');
      const typo = await post(alice, kept, 'wrong number 41');
      await post(alice, quiet, 'off the record: secret meeting');
      await post(bob, quiet, 'bob in the quiet room');
      await admin.ok('POST', '/api/v1/messages/remove', { room: kept, seq: secret.message.seq });
      await admin.ok('POST', '/api/v1/messages/remove', {
        room: kept,
        seq: typo.message.seq,
        replacement: 'corrected',
      });
      await admin.ok('POST', '/api/v1/compliance/run');
    });

    after(async () => {
      if (server) await cleanup(server);
      await dropCompliance();
    });

    test('text search finds posts, removed originals and history-off posts; case-insensitive', async () => {
      const { records } = await search({ text: 'SECRET' });
      const byType = (t: string) => records.filter((r) => r.type === t).map((r) => r.content);
      assert.deepEqual(byType('CHAT'), [
        'the Secret price is 42',
        'off the record: secret meeting',
      ]);
      assert.deepEqual(byType('MESSAGE_REMOVED'), ['the Secret price is 42']);
      const offRecord = records.find((r) => r.content === 'off the record: secret meeting')!;
      assert.equal(offRecord.room?.name, 'quiet');
      assert.equal(offRecord.room?.history, false);
      const replaced = await search({ types: ['MESSAGE_REPLACED'] });
      assert.equal(replaced.records.length, 1);
      assert.equal(replaced.records[0]!.content, 'wrong number 41');
      assert.equal(replaced.records[0]!.payload.replacement, 'corrected');
    });

    test('by user, room, event type and time range; paged with afterId', async () => {
      const bobs = await search({ user: 'bob', types: ['CHAT'] });
      assert.deepEqual(
        bobs.records.map((r) => r.content),
        ['nothing to see', 'bob in the quiet room'],
      );
      assert.ok(bobs.records.every((r) => r.sender?.userName === 'bob'));
      const inQuiet = await search({ roomId: quiet, types: ['CHAT'] });
      assert.equal(inQuiet.records.length, 2);
      assert.ok(inQuiet.records.every((r) => r.room?.id === quiet));
      const edits = await search({ roomId: kept, types: ['MESSAGE_REMOVED', 'MESSAGE_REPLACED'] });
      assert.deepEqual(
        edits.records.map((r) => r.type),
        ['MESSAGE_REMOVED', 'MESSAGE_REPLACED'],
      );
      assert.equal((await search({ roomId: quiet, types: ['MESSAGE_REMOVED'] })).records.length, 0);
      const future = new Date(Date.now() + 3_600_000).toISOString();
      assert.equal((await search({ from: future })).records.length, 0);
      assert.ok((await search({ to: future, types: ['CHAT'] })).records.length >= 5);
      // Paging walks every CHAT once, in order.
      const seen: number[] = [];
      let afterId: number | undefined;
      for (;;) {
        const page = await search({ types: ['CHAT'], limit: 2, ...(afterId ? { afterId } : {}) });
        seen.push(...page.records.map((r) => r.recordId));
        if (page.nextAfterId === null) break;
        afterId = page.nextAfterId;
      }
      const all = (await search({ types: ['CHAT'] })).records.map((r) => r.recordId);
      assert.deepEqual(seen, all);
      assert.equal(all.length, 5);
    });

    test('export writes the result set to one XML file (valid against the XSD) or JSON lines', async () => {
      const xml = await admin.ok<Exported>('POST', '/api/v1/compliance/export', {
        user: 'alice',
        format: 'xml',
      });
      assert.equal(xml.format, 'xml');
      assert.ok(xml.path.startsWith(path.join(server.dataDir, 'compliance', 'ediscovery')));
      assertValidXml(xml.path);
      const fromSearch = (await search({ user: 'alice', limit: 1000 })).records;
      const inXml = readXmlOutput(path.dirname(xml.path)).filter((r) => r.file === xml.file);
      assert.deepEqual(
        inXml.map((r) => r.recordId).sort((a, b) => a - b),
        fromSearch.map((r) => r.recordId),
      );
      assert.equal(xml.records, fromSearch.length);
      const jsonl = await admin.ok<Exported>('POST', '/api/v1/compliance/export', {
        text: 'secret',
        format: 'jsonl',
      });
      const lines = fs
        .readFileSync(jsonl.path, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Rec);
      assert.deepEqual(
        lines.map((l) => l.recordId),
        (await search({ text: 'secret' })).records.map((r) => r.recordId),
      );
      assert.equal(fs.statSync(jsonl.path).mode & 0o777, 0o600);
    });

    test('searches and exports are captured as compliance events', async () => {
      await admin.ok('POST', '/api/v1/compliance/run');
      const { records } = await search({ types: ['COMPLIANCE_SEARCHED', 'COMPLIANCE_EXPORTED'] });
      const exported = records.filter((r) => r.type === 'COMPLIANCE_EXPORTED');
      assert.equal(exported.length, 2);
      assert.equal(exported[0]!.sender?.userName, 'admin');
      assert.equal(exported[0]!.payload.format, 'xml');
      assert.ok(records.some((r) => r.type === 'COMPLIANCE_SEARCHED'));
    });

    test('holds are placed, listed and released over HTTP; purge without retention keeps all', async () => {
      const placed = await admin.call('POST', '/api/v1/compliance/holds', {
        roomId: kept,
        reason: 'case 7',
      });
      assert.equal(placed.status, 201);
      const id = placed.body.id as number;
      const active = await admin.ok<{ id: number; reason: string }[]>(
        'GET',
        '/api/v1/compliance/holds',
      );
      assert.deepEqual(
        active.map((h) => [h.id, h.reason]),
        [[id, 'case 7']],
      );
      const bad = await admin.call('POST', '/api/v1/compliance/holds', { reason: 'no scope' });
      assert.equal(bad.status, 400);
      const released = await admin.ok<{ releasedBy: string }>(
        'POST',
        `/api/v1/compliance/holds/${id}/release`,
        { reason: 'case closed' },
      );
      assert.equal(released.releasedBy, 'admin');
      assert.equal(
        (await admin.call('POST', `/api/v1/compliance/holds/${id}/release`)).status,
        404,
      );
      assert.deepEqual(await admin.ok('GET', '/api/v1/compliance/holds'), []);
      const all = await admin.ok<unknown[]>('GET', '/api/v1/compliance/holds?released=true');
      assert.equal(all.length, 1);
      const purge = await admin.ok<{ purged: number; retentionDays: null }>(
        'POST',
        '/api/v1/compliance/purge',
      );
      assert.equal(purge.retentionDays, null);
      assert.equal(purge.purged, 0);
    });

    test('only administrators search, export and manage holds', async () => {
      for (const [method, url] of [
        ['POST', '/api/v1/compliance/search'],
        ['POST', '/api/v1/compliance/export'],
        ['GET', '/api/v1/compliance/holds'],
        ['POST', '/api/v1/compliance/purge'],
      ] as const) {
        const r = await alice.http.call(method, url, method === 'POST' ? {} : undefined);
        assert.equal(r.status, 403, `${method} ${url}`);
      }
    });
  });
}
