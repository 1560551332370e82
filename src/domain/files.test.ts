import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import {
  activityRows,
  buildCategory,
  buildRoom,
  buildUsers,
  expectCode,
  useFakeClock,
  withDomain,
} from '../../test/harness/domain-factories.js';
import type { TestDomain } from '../../test/harness/domain.js';
import {
  createDownloadToken,
  DOWNLOAD_TOKEN_TTL_MS,
  openDownload,
  uploadFile,
} from './files/commands.js';
import { roomHistory } from './messages/commands.js';
import { updateRoom } from './rooms/commands.js';

/** alice and bob members of `Files` (upload on), carol in scope but not a member. */
async function fileRoom(t: TestDomain, fileUpload = true) {
  const users = await buildUsers(t, ['alice', 'bob', 'carol']);
  await buildCategory(t, { name: 'Docs', allowed: ['alice', 'bob', 'carol'], fileUpload });
  const room = await buildRoom(t, { name: 'Files', category: 'Docs', members: ['alice', 'bob'] });
  return { ...users, room: room.id };
}

const fileCount = (t: TestDomain) => fs.readdirSync(`${t.dir}/files`).length;

describe('file upload', () => {
  test('stores the file, posts a message linking it and records FILEUPLOAD', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await fileRoom(t);
      const posted = await uploadFile(
        t.d,
        alice,
        room,
        { name: 'report.pdf', contentType: 'application/pdf', text: 'the report' },
        Buffer.from('%PDF-1.7 body'),
      );
      assert.equal(posted.message.text, 'the report');
      assert.deepEqual(
        posted.message.file && [posted.message.file.name, posted.message.file.size],
        ['report.pdf', 13],
      );
      const [m] = (await roomHistory(t.d, bob, room, {})).messages;
      assert.equal(m!.file!.id, posted.message.file!.id);
      const uploads = (await activityRows(t)).filter((r) => r.kind === 'FILEUPLOAD');
      assert.deepEqual(
        uploads.map((r) => [r.actor_id, r.room_id, r.payload.name, r.payload.size]),
        [[alice.userId, room, 'report.pdf', 13]],
      );
    }));

  test('is refused when the category has uploads off, above the size cap, or for bad names', () =>
    withDomain(async (t) => {
      const { alice, room } = await fileRoom(t, false);
      await expectCode(
        uploadFile(t.d, alice, room, { name: 'a.txt' }, Buffer.from('a')),
        'file_upload_disabled',
      );
      const open = await buildCategory(t, {
        name: 'Open docs',
        allowed: ['alice'],
        fileUpload: true,
      });
      const other = await buildRoom(t, { name: 'Other', category: open.name, privacy: 'open' });
      await t.d.settings.set({ maxFileSizeKb: 1 });
      await uploadFile(t.d, alice, other.id, { name: 'max.bin' }, Buffer.alloc(1024));
      const err = await expectCode(
        uploadFile(t.d, alice, other.id, { name: 'big.bin' }, Buffer.alloc(1025)),
        'file_too_large',
      );
      assert.deepEqual(err.details, { limitKb: 1 });
      for (const name of ['../etc/passwd', 'a\nb', '']) {
        await expectCode(
          uploadFile(t.d, alice, other.id, { name }, Buffer.from('x')),
          'invalid_request',
        );
      }
      assert.equal(fileCount(t), 1, 'refused uploads leave no file behind');
    }));

  test('whose post would be refused writes nothing: no file, no record', () =>
    withDomain(async (t) => {
      const { alice, room } = await fileRoom(t);
      await t.d.settings.set({ maxMessageChars: 16 });
      await expectCode(
        uploadFile(t.d, alice, room, { name: 'a.txt', clientId: 'bad id' }, Buffer.from('a')),
        'invalid_request',
      );
      await expectCode(
        uploadFile(t.d, alice, room, { name: 'a.txt', text: 'x'.repeat(17) }, Buffer.from('a')),
        'message_too_large',
      );
      assert.equal(fileCount(t), 0);
      assert.deepEqual(
        (await activityRows(t)).filter((r) => r.kind === 'FILEUPLOAD'),
        [],
      );
    }));

  test('needs the right to post', () =>
    withDomain(async (t) => {
      const { carol, room } = await fileRoom(t);
      await expectCode(
        uploadFile(t.d, carol, room, { name: 'a.txt' }, Buffer.from('a')),
        'forbidden',
      );
    }));
});

test('a retried upload (same clientId) returns the first post and stores no second file', () =>
  withDomain(async (t) => {
    const { alice, room } = await fileRoom(t);
    const meta = { name: 'a.txt', contentType: 'text/plain', clientId: 'up-1' };
    const first = await uploadFile(t.d, alice, room, meta, Buffer.from('one'));
    const again = await uploadFile(t.d, alice, room, meta, Buffer.from('one'));
    assert.equal(again.duplicate, true);
    assert.equal(again.message.seq, first.message.seq);
    assert.equal(fileCount(t), 1);
    assert.equal((await activityRows(t)).filter((r) => r.kind === 'FILEUPLOAD').length, 1);
  }));

describe('file download', () => {
  test('works for members with a token, records FILEDOWNLOAD, and fails for others', () =>
    withDomain(async (t) => {
      const clock = useFakeClock(t);
      const { alice, bob, carol, room } = await fileRoom(t);
      const posted = await uploadFile(t.d, alice, room, { name: 'a.txt' }, Buffer.from('hello'));
      const fileId = posted.message.file!.id;
      const link = await createDownloadToken(t.d, bob, fileId);
      assert.equal(link.expiresAt, clock.now + DOWNLOAD_TOKEN_TTL_MS);
      const opened = await openDownload(t.d, link.token);
      assert.equal(fs.readFileSync(opened.path, 'utf8'), 'hello');
      const downloads = (await activityRows(t)).filter((r) => r.kind === 'FILEDOWNLOAD');
      assert.deepEqual(
        downloads.map((r) => [r.actor_id, r.room_id, r.payload.fileId]),
        [[bob.userId, room, fileId]],
      );

      await expectCode(createDownloadToken(t.d, carol, fileId), 'file_not_found');
      await expectCode(createDownloadToken(t.d, t.admin, fileId), 'file_not_found');
      await expectCode(createDownloadToken(t.d, bob, fileId + 100), 'file_not_found');
      const [, , expiry, mac] = link.token.split('.');
      const forged = `${fileId}.${carol.userId}.${expiry}.${mac}`;
      await expectCode(openDownload(t.d, forged), 'file_not_found');
      await expectCode(openDownload(t.d, 'garbage'), 'file_not_found');

      clock.now += DOWNLOAD_TOKEN_TTL_MS + 1;
      await expectCode(openDownload(t.d, link.token), 'file_not_found');
    }));

  test('stops working when the holder of a token loses access to the room', () =>
    withDomain(async (t) => {
      const { alice, bob, room } = await fileRoom(t);
      const posted = await uploadFile(t.d, alice, room, { name: 'a.txt' }, Buffer.from('x'));
      const link = await createDownloadToken(t.d, bob, posted.message.file!.id);
      await updateRoom(t.d, t.admin, room, { members: { remove: ['bob'] } });
      await expectCode(openDownload(t.d, link.token), 'file_not_found');
    }));
});
