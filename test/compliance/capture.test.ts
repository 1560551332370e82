import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openPostgresComplianceStore } from '../../src/compliance/postgres-compliance-store.js';
import { openSqliteComplianceStore } from '../../src/compliance/sqlite-compliance-store.js';
import { ComplianceWorker } from '../../src/compliance/worker.js';
import { createAddin, deleteAddin, updateAddin } from '../../src/domain/addins/commands.js';
import { deleteCategory, updateCategory } from '../../src/domain/categories/commands.js';
import { setComplianceConfig } from '../../src/domain/compliance/config.js';
import {
  changeGroupMembers,
  createGroup,
  updateUser,
} from '../../src/domain/directory/commands.js';
import { createDownloadToken, openDownload, uploadFile } from '../../src/domain/files/commands.js';
import {
  clearRoom,
  joinRooms,
  partRoom,
  postMessage,
  removeMessages,
  roomHistory,
  searchMessages,
} from '../../src/domain/messages/commands.js';
import { deleteRoom, updateRoom } from '../../src/domain/rooms/commands.js';
import { changeSettings } from '../../src/domain/settings/change.js';
import { createLogger } from '../../src/logger.js';
import { buildDomain, testDialects, type TestDomain } from '../harness/domain.js';
import { buildCategory, buildRoom, buildUsers } from '../harness/domain-factories.js';
import { testCluster } from '../harness/postgres.js';
import { assertExactlyOnce, readJsonlOutput, readXmlOutput, xsdPath } from './helpers.js';

for (const dialect of testDialects()) {
  describe(`compliance capture through real domain commands (compliance store on ${dialect})`, () => {
    let dropCompliance = async () => {};
    let t: TestDomain;
    let worker: ComplianceWorker;
    let out: string;
    const kinds = new Set<string>();

    before(async () => {
      t = await buildDomain();
      out = path.join(t.dir, 'compliance');
      const { alice, bob } = await buildUsers(t, ['alice', 'bob']);
      await buildCategory(t, { name: 'kept', allowed: ['alice', 'bob'], fileUpload: true });
      await buildCategory(t, { name: 'unlogged', allowed: ['alice', 'bob'], history: false });
      await buildCategory(t, { name: 'spare' });
      const room = await buildRoom(t, { name: 'design', category: 'kept', privacy: 'open' });
      const quiet = await buildRoom(t, { name: 'quiet', category: 'unlogged', privacy: 'open' });
      const doomed = await buildRoom(t, { name: 'doomed', category: 'kept', privacy: 'open' });
      await setComplianceConfig(t.d, t.admin, {
        adapters: [
          {
            name: 'xml',
            type: 'xml',
            addUserDetails: true,
            addChatRoomDetails: true,
            createFileAttachmentsManifest: true,
          },
          { name: 'jsonl', type: 'jsonl' },
          { name: 'per-room', type: 'xml', oneChatRoomPerOutputFile: true },
        ],
      });
      await joinRooms(t.d, alice, [{ roomId: room.id }, { roomId: quiet.id }]);
      await joinRooms(t.d, bob, [{ roomId: room.id }]);
      const first = await postMessage(t.d, alice, room.id, {
        text: 'the secret plan <&> "quoted"\nline 2',
      });
      await postMessage(t.d, alice, quiet.id, { text: 'off the record' });
      await postMessage(t.d, bob, room.id, { text: 'to be replaced' });
      await roomHistory(t.d, bob, room.id, { limit: 10 });
      await searchMessages(t.d, bob, { query: 'plan' });
      const up = await uploadFile(
        t.d,
        alice,
        room.id,
        { name: 'notes.txt', contentType: 'text/plain' },
        Buffer.from('hello'),
      );
      const fileId = up.message.file!.id;
      const { token } = await createDownloadToken(t.d, bob, fileId);
      await openDownload(t.d, token);
      await removeMessages(t.d, t.admin, { room: room.id, seq: first.message.seq });
      await removeMessages(t.d, t.admin, {
        room: room.id,
        seq: first.message.seq + 1,
        replacement: 'replaced text',
      });
      await clearRoom(t.d, t.admin, quiet.id, Date.now() + 1000);
      await partRoom(t.d, alice, room.id);
      await updateRoom(t.d, t.admin, room.id, { description: 'new description' });
      await deleteRoom(t.d, t.admin, doomed.id);
      await updateCategory(t.d, t.admin, 'kept', { description: 'kept things' });
      await deleteCategory(t.d, t.admin, 'spare');
      await updateUser(t.d, t.admin, 'bob', { displayName: 'Robert' });
      await createGroup(t.d, t.admin, { name: 'team' });
      await changeGroupMembers(t.d, t.admin, 'team', { add: ['alice'] });
      await changeSettings(t.d, t.admin, { defaultHistory: 40 });
      const addin = await createAddin(t.d, t.admin, { name: 'wiki', url: 'https://wiki.example/' });
      await updateAddin(t.d, t.admin, addin.id, { url: 'https://wiki2.example/' });
      await deleteAddin(t.d, t.admin, addin.id);

      let openCompliance = () =>
        openSqliteComplianceStore({ file: path.join(t.dir, 'compliance.db') });
      if (dialect === 'postgres') {
        const cluster = await testCluster();
        const { name, url } = await cluster.createDatabase({ empty: true });
        openCompliance = () => openPostgresComplianceStore({ connectionString: url });
        dropCompliance = () => cluster.dropDatabase(name);
      }
      worker = new ComplianceWorker({
        chat: t.store,
        openStore: async () => openCompliance(),
        log: createLogger('silent'),
        outputRoot: out,
        adapterDir: path.join(t.dir, 'adapters'),
      });
      await worker.runNow();
    });

    after(async () => {
      await worker.stop();
      await dropCompliance();
      await t.close();
    });

    test('the outbox is drained into compliance.db (owner-only) and every adapter is caught up', async () => {
      const status = await worker.status();
      assert.equal(status.backlog, 0);
      assert.equal(await t.store.countActivity(), 0);
      assert.ok(status.captured! > 20);
      for (const a of status.adapters) {
        assert.equal(a.cursor, status.lastRecordId, a.name);
        assert.equal(a.lastError, null);
      }
      if (dialect === 'sqlite') {
        assert.equal(fs.statSync(path.join(t.dir, 'compliance.db')).mode & 0o777, 0o600);
      }
    });

    test('every event type reaches both the XML and the JSON-lines output, once', async () => {
      const status = await worker.status();
      const xml = readXmlOutput(path.join(out, 'xml'));
      const jsonl = readJsonlOutput(path.join(out, 'jsonl'));
      const perRoom = readXmlOutput(path.join(out, 'per-room'));
      assertExactlyOnce(
        xml.map((r) => r.recordId),
        status.lastRecordId!,
        'xml',
      );
      assertExactlyOnce(
        jsonl.map((r) => r.recordId),
        status.lastRecordId!,
        'jsonl',
      );
      assertExactlyOnce(
        perRoom.map((r) => r.recordId),
        status.lastRecordId!,
        'per-room',
      );
      for (const r of xml) kinds.add(r.type);
      const expected = [
        'JOIN',
        'PART',
        'CHAT',
        'BACKCHAT',
        'FILEUPLOAD',
        'FILEDOWNLOAD',
        'SEARCH',
        'MESSAGE_REMOVED',
        'MESSAGE_REPLACED',
        'ROOM_CREATED',
        'ROOM_CHANGED',
        'ROOM_DELETED',
        'ROOM_CLEARED',
        'CATEGORY_CREATED',
        'CATEGORY_CHANGED',
        'CATEGORY_DELETED',
        'USER_CHANGED',
        'GROUP_CHANGED',
        'SETTINGS_CHANGED',
        'ADDIN_CREATED',
        'ADDIN_CHANGED',
        'ADDIN_DELETED',
        'COMPLIANCE_CONFIG_CHANGED',
      ];
      for (const k of expected) {
        assert.ok(kinds.has(k), `XML lacks ${k}`);
        assert.ok(
          jsonl.some((r) => r.type === k),
          `JSONL lacks ${k}`,
        );
      }
      // One file per room (and one for administration) in one-room-per-file mode.
      const files = new Set(perRoom.map((r) => r.file));
      assert.ok(files.size >= 4, [...files].join(', '));
      assert.ok([...files].every((f) => /^per-room-\d{12}-(room-\d+|admin)\.xml$/.test(f)));
    });

    test('a post in a history-off category is captured though the chat store kept nothing', () => {
      const jsonl = readJsonlOutput(path.join(out, 'jsonl'));
      const chat = jsonl.find((r) => r.type === 'CHAT' && r.content === 'off the record');
      assert.ok(chat);
      const room = chat.room as { name: string; islogged: boolean };
      assert.equal(room.name, 'quiet');
      assert.equal(room.islogged, false);
      assert.equal(chat.id, 0);
      const xml = fs.readFileSync(
        path.join(
          out,
          'xml',
          fs.readdirSync(path.join(out, 'xml')).find((f) => f.endsWith('.xml'))!,
        ),
        'utf8',
      );
      assert.match(
        xml,
        /<Channel uri="ma-chan:\/\/perch.local\/room\/\d+" name="quiet" islogged="false">/,
      );
    });

    test('removal and replacement keep the original text, with markup and newlines intact', () => {
      const xml = readXmlOutput(path.join(out, 'xml'));
      const removed = xml.find((r) => r.type === 'MESSAGE_REMOVED');
      assert.equal(removed?.content, 'the secret plan <&> "quoted"\nline 2');
      const replaced = readJsonlOutput(path.join(out, 'jsonl')).find(
        (r) => r.type === 'MESSAGE_REPLACED',
      );
      assert.equal(replaced?.content, 'to be replaced');
      assert.equal((replaced?.payload as { replacement: string }).replacement, 'replaced text');
    });

    test('user and room details, Lync time attributes and the attachments manifest', () => {
      const dir = path.join(out, 'xml');
      const text = fs.readFileSync(
        path.join(
          dir,
          fs.readdirSync(dir).find((f) => f.endsWith('.xml'))!,
        ),
        'utf8',
      );
      assert.match(
        text,
        /<Sender UserName="bob" id="\d+" internal="true" uri="bob@perch.local" displayName="Bob|Robert"/,
      );
      assert.match(
        text,
        /<RoomDetails id="\d+" description="[^"]*" categoryId="\d+" category="kept" privacy="open" type="normal" disabled="false"\/>/,
      );
      const t0 = /<DateTimeUTC since1970="(\d+)" string="([^"]+)" long="(\d+)"\/>/.exec(text)!;
      assert.equal(BigInt(t0[3]!), BigInt(t0[1]!) * 10_000n + 621_355_968_000_000_000n);
      assert.equal(t0[2], new Date(Number(t0[1])).toISOString().replace('Z', '0000Z'));
      const attach = fs.readdirSync(dir).find((f) => f.endsWith('.ATTACH'))!;
      const lines = fs
        .readFileSync(path.join(dir, attach), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; name: string });
      assert.deepEqual(
        lines.map((l) => [l.type, l.name]),
        [
          ['FILEUPLOAD', 'notes.txt'],
          ['FILEDOWNLOAD', 'notes.txt'],
        ],
      );
    });

    test('the XSD lists every event kind the domain records', () => {
      const xsd = fs.readFileSync(xsdPath, 'utf8');
      const src = path.resolve(xsdPath, '..', '..', '..', 'src', 'domain');
      const found = new Set<string>();
      const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) {
            const s = fs.readFileSync(p, 'utf8');
            for (const m of s.matchAll(/kind: '([A-Z_]+)'/g)) found.add(m[1]!);
            for (const m of s.matchAll(/'((?:MESSAGE|LEGAL_HOLD|COMPLIANCE)_[A-Z_]+)'/g)) {
              found.add(m[1]!);
            }
          }
        }
      };
      walk(src);
      walk(path.resolve(src, '..', 'compliance'));
      assert.ok(found.size > 15);
      for (const k of found) assert.ok(xsd.includes(`value="${k}"`), `XSD lacks ${k}`);
    });
  });
}
