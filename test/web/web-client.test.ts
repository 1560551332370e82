// End-to-end tests of the web client: real server process (test/harness/server.ts), the built
// client from web/dist, and Debian's Chromium driven by playwright-core. No sleeps: every wait
// is for a selector or condition, with the default deadline.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { publishPools } from '../harness/pools.js';
import { testCluster, type PostgresCluster } from '../harness/postgres.js';
import { cleanup, startServer, type TestServer } from '../harness/server.js';
import {
  Api,
  checkA11y,
  ensureWebBuilt,
  launchChromium,
  newPage,
  outputDir,
  pageErrors,
  shownSeqs,
  signIn,
} from './browser.js';

const pw = { alice: 'alice-password-1', bob: 'bob-password-1', carol: 'carol-password-1' };

describe('web client', () => {
  let server: TestServer;
  let browser: Browser;
  let admin: Api;
  const rooms: Record<string, number> = {};

  before(async () => {
    ensureWebBuilt();
    server = await startServer();
    browser = await launchChromium();
    admin = await Api.signIn(server.url, 'admin', server.adminPassword);
    await admin.call('POST', '/users', {
      login: 'alice',
      password: pw.alice,
      displayName: 'Alice Liddell',
    });
    await admin.call('POST', '/users', {
      login: 'bob',
      password: pw.bob,
      displayName: 'Bob Builder',
    });
    await admin.call('POST', '/users', {
      login: 'carol',
      password: pw.carol,
      displayName: 'Carol Outside',
    });
    const scope = { allowed: ['admin', 'alice', 'bob'], creators: ['alice'] };
    await admin.call('POST', '/categories', { name: 'General', ...scope });
    await admin.call('POST', '/categories', { name: 'Engineering', ...scope });
    await admin.call('POST', '/categories', { name: 'Files', ...scope, fileUpload: true });
    const make = async (name: string, body: Record<string, unknown>) => {
      const r = await admin.call<{ id: number }>('POST', '/rooms', { name, ...body });
      rooms[name] = r.id;
    };
    await make('Lobby', { category: 'General', privacy: 'open', description: 'Say hello' });
    await make('History', { category: 'General', privacy: 'open' });
    await make('Ops', { category: 'General', privacy: 'open' });
    await make('Archive', { category: 'General', privacy: 'open' });
    await make('Side', { category: 'General', privacy: 'open' });
    await make('Roadmap', {
      category: 'Engineering',
      privacy: 'open',
      description: 'Plans for the next quarter',
    });
    await make('Shared files', { category: 'Files', privacy: 'open' });
    await make('Newsroom', { category: 'General', privacy: 'open' });
    await make('Secret plans', { category: 'Engineering', privacy: 'secret', members: ['alice'] });
    await make('Town hall', {
      category: 'General',
      privacy: 'open',
      type: 'auditorium',
      presenters: ['alice'],
    });
  });

  after(async () => {
    await browser?.close();
    // A server that died mid-suite explains every later failure: show why.
    if (server && server.proc.exitCode !== null)
      console.error(
        `perch server exited (${server.proc.exitCode}):\n${server.logs().slice(-4000)}`,
      );
    if (server) await cleanup(server);
  });

  async function user(login: keyof typeof pw, viewport?: { width: number; height: number }) {
    const { context, page } = await newPage(browser, viewport);
    await signIn(page, server.url, login, pw[login]);
    return { context, page };
  }

  function sidebarRoom(page: Page, name: string) {
    return page.locator('[data-testid=followed-rooms] li').filter({ hasText: name });
  }

  test('a bad sign-in shows the error; sign-in keeps the token in sessionStorage; sign-out', async () => {
    const { context, page } = await newPage(browser);
    await page.goto(`${server.url}/`);
    await page.getByLabel('Login').fill('alice');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const error = page.getByTestId('sign-in-error');
    await error.waitFor();
    assert.equal(await error.textContent(), 'Login or password is incorrect.');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);

    await page.getByLabel('Password').fill(pw.alice);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-testid=connection-status][data-status=online]').waitFor();
    assert.equal(await page.getByTestId('current-user').textContent(), 'Alice Liddell');
    const stored = await page.evaluate(() => sessionStorage.getItem('perch.session'));
    assert.match(stored ?? '', /"token"/);

    // A reload keeps the session (same tab), a new context does not have it.
    await page.reload();
    await page.locator('[data-testid=connection-status][data-status=online]').waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Perch' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('perch.session')), null);
    // The token was revoked on the server too.
    const token = (JSON.parse(stored!) as { token: string }).token;
    const res = await fetch(`${server.url}/api/v1/me`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 401);
    assert.deepEqual(pageErrors(page), []);
    await context.close();
  });

  test('two users chat live; unread counts move; HTML in a message stays text', async () => {
    const aliceApi = await Api.signIn(server.url, 'alice', pw.alice);
    const bobApi = await Api.signIn(server.url, 'bob', pw.bob);
    await aliceApi.call('PUT', `/me/follows/${rooms.Lobby}`);
    await bobApi.call('PUT', `/me/follows/${rooms.Lobby}`);
    const a = await user('alice');
    const b = await user('bob');

    await a.page.goto(`${server.url}/rooms/${rooms.Lobby}`);
    await a.page.getByRole('heading', { name: 'Lobby' }).waitFor();
    await b.page.getByRole('link', { name: 'Room directory' }).click();
    await sidebarRoom(b.page, 'Lobby').waitFor();
    assert.equal(await sidebarRoom(b.page, 'Lobby').getByTestId('unread').count(), 0);

    const composer = a.page.getByRole('textbox', { name: 'Message' });
    await composer.fill('Hello Bob');
    await composer.press('Enter');
    await a.page.locator('li[data-testid=message]', { hasText: 'Hello Bob' }).waitFor();

    // Bob is elsewhere: the sidebar counts the message as unread, live.
    await sidebarRoom(b.page, 'Lobby').getByTestId('unread').filter({ hasText: '1' }).waitFor();
    await composer.fill('@bob are you there?');
    await composer.press('Enter');
    await sidebarRoom(b.page, 'Lobby').getByTestId('unread').filter({ hasText: '2' }).waitFor();
    await sidebarRoom(b.page, 'Lobby').getByTestId('mentions').filter({ hasText: '@1' }).waitFor();

    // Opening the room shows both and clears the counts.
    await sidebarRoom(b.page, 'Lobby').getByRole('link').click();
    await b.page.locator('li[data-testid=message]', { hasText: 'are you there?' }).waitFor();
    await sidebarRoom(b.page, 'Lobby').getByTestId('unread').waitFor({ state: 'detached' });
    await sidebarRoom(b.page, 'Lobby').getByTestId('mentions').waitFor({ state: 'detached' });

    // Shift+Enter is a new line, Enter sends; Alice sees it live.
    const bobComposer = b.page.getByRole('textbox', { name: 'Message' });
    await bobComposer.click();
    await bobComposer.pressSequentially('first line');
    await bobComposer.press('Shift+Enter');
    await bobComposer.pressSequentially('second line');
    await bobComposer.press('Enter');
    const reply = a.page.locator('li[data-testid=message]', { hasText: 'first line' });
    await reply.waitFor();
    assert.equal(await reply.locator('.message-text').innerText(), 'first line\nsecond line');
    assert.equal(await bobComposer.inputValue(), '');

    // Markup and script in a message are shown literally and never run.
    const evil =
      '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>';
    await composer.fill(evil);
    await composer.press('Enter');
    const shown = b.page.locator('li[data-testid=message]', { hasText: '<script>' });
    await shown.waitFor();
    assert.equal(await shown.locator('.message-text').textContent(), evil);
    assert.equal(
      await b.page.locator('[data-testid=history] img, [data-testid=history] b').count(),
      0,
    );
    assert.equal(await b.page.evaluate(() => (window as { __pwned?: number }).__pwned), undefined);

    // Each message once, in order, on both sides.
    const seqsA = await shownSeqs(a.page);
    const seqsB = await shownSeqs(b.page);
    assert.deepEqual(seqsA, [1, 2, 3, 4]);
    assert.deepEqual(seqsB, seqsA);
    assert.deepEqual([...pageErrors(a.page), ...pageErrors(b.page)], []);
    await a.context.close();
    await b.context.close();
  });

  test('scroll-back loads older pages in order with no gaps or duplicates', async () => {
    for (let i = 1; i <= 120; i++) await admin.post(rooms.History!, `history message ${i}`);
    const a = await user('alice');
    await a.page.goto(`${server.url}/rooms/${rooms.History}`);
    await a.page.locator('li[data-seq="120"]').waitFor();
    const first = await shownSeqs(a.page);
    assert.ok(
      first.length < 120,
      `the first page holds only the latest messages (${first.length})`,
    );
    assert.deepEqual(first, range(121 - first.length, 120));

    // Scroll to the top until the room's first message is there.
    await a.page.waitForFunction(
      () => {
        const h = document.querySelector('[data-testid=history]');
        if (h) h.scrollTop = 0;
        return document.querySelector('[data-testid=history] li[data-seq="1"]') !== null;
      },
      null,
      { polling: 100, timeout: 20_000 },
    );
    await a.page.getByText('This is the beginning of the room.').waitFor();
    assert.deepEqual(await shownSeqs(a.page), range(1, 120));
    const texts = await a.page.locator('li[data-testid=message] .message-text').allTextContents();
    assert.deepEqual(
      texts,
      range(1, 120).map((i) => `history message ${i}`),
    );
    await a.context.close();
  });

  test('directory search, category filter and follow; the sidebar counts unread; secret rooms stay hidden', async () => {
    const b = await user('bob');
    await b.page.getByRole('link', { name: 'Room directory' }).click();
    await b.page.getByTestId('directory-results').waitFor();

    await b.page.getByPlaceholder('Name or description').fill('plans');
    await b.page.getByRole('button', { name: 'Search rooms' }).click();
    const cards = b.page.locator('[data-testid=directory-results] > li');
    await cards.filter({ hasText: 'Roadmap' }).waitFor();
    await b.page.waitForFunction(
      () => document.querySelectorAll('[data-testid=directory-results] > li').length === 1,
    );
    const card = cards.filter({ hasText: 'Roadmap' });
    assert.match(
      (await card.textContent()) ?? '',
      /Open.*Plans for the next quarter.*Engineering · 0 members/s,
    );

    // Category filter: General rooms only.
    await b.page.getByPlaceholder('Name or description').fill('');
    await b.page.getByRole('combobox', { name: 'Category' }).selectOption({ label: 'Engineering' });
    await b.page.waitForFunction(() => {
      const names = [...document.querySelectorAll('[data-testid=directory-results] h2')].map(
        (h) => h.textContent,
      );
      return names.length === 1 && names[0] === 'Roadmap';
    });

    await card.getByRole('button', { name: 'Follow Roadmap' }).click();
    await sidebarRoom(b.page, 'Roadmap').waitFor();
    await card.getByRole('button', { name: 'Unfollow Roadmap' }).waitFor();

    const aliceApi = await Api.signIn(server.url, 'alice', pw.alice);
    await aliceApi.post(rooms.Roadmap!, 'Q3 plan drafted');
    await aliceApi.post(rooms.Roadmap!, 'Q4 plan drafted');
    await sidebarRoom(b.page, 'Roadmap').getByTestId('unread').filter({ hasText: '2' }).waitFor();

    // A secret room is invisible to a non-member: directory, message search, its URL.
    await aliceApi.post(rooms['Secret plans']!, 'the secret plan word zanzibar');
    await b.page.getByPlaceholder('Name or description').fill('Secret');
    await b.page
      .getByRole('combobox', { name: 'Category' })
      .selectOption({ label: 'All categories' });
    await b.page.getByRole('button', { name: 'Search rooms' }).click();
    await b.page.getByText('No rooms found.').waitFor();

    await b.page.getByRole('link', { name: 'Search messages' }).click();
    await b.page.getByRole('searchbox', { name: 'Words' }).fill('zanzibar');
    await b.page.getByRole('button', { name: 'Search messages' }).click();
    await b.page.getByText('No messages found.').waitFor();

    await b.page.goto(`${server.url}/rooms/${rooms['Secret plans']}`);
    await b.page.getByText('Room not found.').waitFor();
    await b.context.close();
  });

  test('message search links into the room at the message', async () => {
    await admin.post(rooms.Archive!, 'the kumquat decision');
    for (let i = 1; i <= 80; i++) await admin.post(rooms.Archive!, `later message ${i}`);
    const a = await user('alice');
    await a.page.getByRole('link', { name: 'Search messages' }).click();
    await a.page.getByRole('searchbox', { name: 'Words' }).fill('kumquat');
    await a.page.getByRole('button', { name: 'Search messages' }).click();
    const hit = a.page.locator('[data-testid=search-results] li');
    await hit.filter({ hasText: 'the kumquat decision' }).waitFor();
    assert.equal(await hit.count(), 1);
    // The result links into the room; older pages load until the message is there.
    await hit.getByRole('link', { name: 'Archive' }).click();
    await a.page.locator('li.message.highlight[data-seq="1"]').waitFor();
    await a.page.locator('li.message.highlight[data-seq="1"]').scrollIntoViewIfNeeded();
    await a.context.close();
  });

  test('a non-presenter cannot post in an auditorium and is told why', async () => {
    const b = await user('bob');
    await b.page.goto(`${server.url}/rooms/${rooms['Town hall']}`);
    const note = b.page.getByTestId('cannot-post');
    await note.waitFor();
    assert.equal(await note.textContent(), 'Only presenters can post in this auditorium.');
    assert.equal(await b.page.getByRole('textbox', { name: 'Message' }).count(), 0);
    await b.context.close();
  });

  test('a creator creates a room; server errors show next to the field', async () => {
    const a = await user('alice');
    await a.page.getByRole('link', { name: 'New room' }).click();
    await a.page.locator('input[name=name]').fill('Design crit');
    await a.page.getByRole('combobox', { name: 'Category' }).selectOption({ label: 'Engineering' });
    await a.page.getByLabel('Description').fill('Weekly design review');
    await a.page.locator('input[name=members]').fill('alice, bob');
    await a.page.getByRole('button', { name: 'Create room' }).click();
    await a.page.getByRole('heading', { name: 'Design crit' }).waitFor();

    // The same name again: the error is on the name field.
    await a.page.getByRole('link', { name: 'New room' }).click();
    await a.page.locator('input[name=name]').fill('Design crit');
    await a.page.getByRole('button', { name: 'Create room' }).click();
    await a.page.getByTestId('name-error').waitFor();
    assert.match((await a.page.getByTestId('name-error').textContent()) ?? '', /already used/);

    // A member outside the category's scope: the error is on the members field.
    await a.page.locator('input[name=name]').fill('Design crit 2');
    await a.page.locator('input[name=members]').fill('bob, carol');
    await a.page.getByRole('button', { name: 'Create room' }).click();
    await a.page.getByTestId('members-error').waitFor();
    assert.match((await a.page.getByTestId('members-error').textContent()) ?? '', /carol/);
    assert.equal(await a.page.getByTestId('name-error').count(), 0);

    // Managers edit membership: remove bob from Design crit.
    const bobApi = await Api.signIn(server.url, 'bob', pw.bob);
    const found = await bobApi.call<{ id: number; name: string }[]>('GET', '/rooms?text=Design');
    const id = found.find((r) => r.name === 'Design crit')!.id;
    await a.page.goto(`${server.url}/rooms/${id}/settings`);
    const members = a.page.locator('input[name=members]');
    await a.page.waitForFunction(
      () =>
        (document.querySelector('input[name=members]') as HTMLInputElement | null)?.value ===
        'alice, bob',
    );
    await members.fill('alice');
    await a.page.getByRole('button', { name: 'Save changes' }).click();
    await a.page.getByText('Saved.').waitFor();
    const after = await admin.call<{ members: { name: string }[] }>('GET', `/rooms/${id}`);
    assert.deepEqual(
      after.members.map((m) => m.name),
      ['alice'],
    );
    await a.context.close();
  });

  test('a file uploaded in a room downloads with the same bytes; size limit and uploads off are refused', async () => {
    const a = await user('alice');
    const b = await user('bob');
    await a.page.goto(`${server.url}/rooms/${rooms['Shared files']}`);
    await b.page.goto(`${server.url}/rooms/${rooms['Shared files']}`);
    await b.page.getByRole('heading', { name: 'Shared files' }).waitFor();

    // Every byte value, so that any re-encoding on the way would show.
    const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
    await a.page.getByTestId('attach-file').setInputFiles({
      name: 'report ü.bin',
      mimeType: 'application/octet-stream',
      buffer: bytes,
    });
    const shown = b.page.locator('li[data-testid=message]', { hasText: 'report ü.bin' });
    await shown.getByTestId('file').waitFor();
    assert.match((await shown.getByTestId('file').textContent()) ?? '', /report ü\.bin.*3 KB/);
    const [download] = await Promise.all([
      b.page.waitForEvent('download'),
      shown.getByRole('button', { name: 'Download report ü.bin' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'report ü.bin');
    const saved = await readFile((await download.path())!);
    assert.ok(saved.equals(bytes), 'the downloaded bytes are the uploaded ones');

    // The limit is lowered after Alice signed in: the server refuses and she is told the limit.
    await admin.call('PATCH', '/settings', { maxFileSizeKb: 1 });
    try {
      await a.page.getByTestId('attach-file').setInputFiles({
        name: 'big.bin',
        mimeType: 'application/octet-stream',
        buffer: Buffer.alloc(2048, 1),
      });
      const error = a.page.getByTestId('upload-error');
      await error.waitFor();
      assert.equal(
        await error.locator('span').textContent(),
        'big.bin was not uploaded: The file is larger than the 1 KB limit.',
      );
      await error.getByRole('button', { name: 'Dismiss' }).click();
      await error.waitFor({ state: 'detached' });
    } finally {
      await admin.call('PATCH', '/settings', { maxFileSizeKb: 20_000 });
    }
    assert.equal(
      await b.page.locator('li[data-testid=message]', { hasText: 'big.bin' }).count(),
      0,
    );

    // A category with files off: no upload control, and the server refuses an upload.
    await a.page.goto(`${server.url}/rooms/${rooms.Lobby}`);
    await a.page.getByRole('textbox', { name: 'Message' }).waitFor();
    assert.equal(await a.page.getByTestId('attach-file').count(), 0);
    const aliceApi = await Api.signIn(server.url, 'alice', pw.alice);
    const res = await fetch(`${server.url}/api/v1/rooms/${rooms.Lobby}/files?name=x.txt`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${aliceApi.token}`,
        'content-type': 'application/octet-stream',
      },
      body: 'hello',
    });
    assert.equal(res.status, 403);
    assert.equal(
      ((await res.json()) as { error: { code: string } }).error.code,
      'file_upload_disabled',
    );
    assert.deepEqual([...pageErrors(a.page), ...pageErrors(b.page)], []);
    await a.context.close();
    await b.context.close();
  });

  test('topic feeds: stored on the server, past matches by search, live matches with badges and a notification', async () => {
    const aliceApi = await Api.signIn(server.url, 'alice', pw.alice);
    const bobApi = await Api.signIn(server.url, 'bob', pw.bob);
    await aliceApi.call('PUT', `/me/follows/${rooms.Newsroom}`);
    await bobApi.post(rooms.Newsroom!, 'the outage yesterday was short');
    await bobApi.post(rooms.Newsroom!, 'an outages report is not a match');

    const { context, page } = await newPage(browser);
    await context.grantPermissions(['notifications'], { origin: server.url });
    // Records each notification the page shows (the real one is still created).
    await context.addInitScript(() => {
      const Real = window.Notification;
      const shown: string[] = [];
      (window as unknown as { __notified: string[] }).__notified = shown;
      window.Notification = class extends Real {
        constructor(title: string, options?: NotificationOptions) {
          super(title, options);
          shown.push(`${title} | ${options?.body ?? ''}`);
        }
      };
    });
    await signIn(page, server.url, 'alice', pw.alice);
    await page.getByRole('link', { name: 'Topic feeds' }).click();
    await page.getByRole('heading', { name: 'Topic feeds', level: 1 }).waitFor();

    const form = page.getByTestId('feed-new-form');
    await form.getByLabel('Feed name').fill('Outages');
    await form.getByLabel('Keywords (comma-separated; any of them matches)').fill('outage, sev1');
    await form.getByRole('button', { name: 'Add feed' }).click();
    await page.getByTestId('feed-list').getByRole('link', { name: 'Outages' }).waitFor();
    // The same name again (in another case): the error is on the name field.
    await form.getByLabel('Feed name').fill('OUTAGES');
    await form.getByLabel('Keywords (comma-separated; any of them matches)').fill('down');
    await form.getByRole('button', { name: 'Add feed' }).click();
    await page.getByTestId('feed-name-error').waitFor();
    assert.equal(
      await page.getByTestId('feed-name-error').textContent(),
      'You already have a feed with this name.',
    );
    const stored = await aliceApi.call<{ name: string; keywords: string[] }[]>('GET', '/me/feeds');
    assert.deepEqual(
      stored.map((f) => [f.name, f.keywords]),
      [['Outages', ['outage', 'sev1']]],
    );

    await page.getByRole('button', { name: 'Turn on notifications' }).click();
    await page.getByTestId('notify-status').filter({ hasText: 'Notifications are on.' }).waitFor();

    // The feed shows the earlier match found by search, and not the near miss.
    const feeds = page.getByTestId('feeds');
    await feeds.getByRole('link', { name: 'Outages' }).click();
    const matches = page.locator('[data-testid=feed-matches] li');
    await matches.filter({ hasText: 'the outage yesterday was short' }).waitFor();
    assert.equal(await matches.count(), 1);

    // Elsewhere, live matches raise badges and a notification.
    await page.getByRole('link', { name: 'Room directory' }).click();
    await bobApi.post(rooms.Newsroom!, 'SEV1: the database is down');
    await bobApi.post(rooms.Newsroom!, 'nothing to see here');
    await bobApi.post(rooms.Newsroom!, '@alice can you look?');
    const outageBadge = feeds.locator('li', { hasText: 'Outages' }).getByTestId('feed-new');
    await outageBadge.filter({ hasText: '1' }).waitFor();
    const mentionBadge = feeds.locator('li', { hasText: 'Mentions of me' }).getByTestId('feed-new');
    await mentionBadge.filter({ hasText: '1' }).waitFor();
    await page.waitForFunction(
      () => (window as unknown as { __notified: string[] }).__notified.length === 2,
    );
    const notified = await page.evaluate(
      () => (window as unknown as { __notified: string[] }).__notified,
    );
    assert.deepEqual(notified, [
      'Bob Builder · Newsroom | SEV1: the database is down',
      'Bob Builder · Newsroom | @alice can you look?',
    ]);

    // Opening the feed lists the live match first and clears its badge.
    await feeds.getByRole('link', { name: 'Outages' }).click();
    await matches.first().filter({ hasText: 'SEV1: the database is down' }).waitFor();
    await outageBadge.waitFor({ state: 'detached' });
    await matches.nth(1).filter({ hasText: 'the outage yesterday was short' }).waitFor();
    assert.deepEqual((await matches.locator('.message-text').allTextContents()).slice(0, 2), [
      'SEV1: the database is down',
      'the outage yesterday was short',
    ]);
    await feeds.getByRole('link', { name: 'Mentions of me' }).click();
    await matches.filter({ hasText: '@alice can you look?' }).waitFor();
    await mentionBadge.waitFor({ state: 'detached' });
    assert.deepEqual(pageErrors(page), []);
    await context.close();

    // The feed follows the user to another browser.
    const other = await user('alice');
    await other.page.getByTestId('feeds').getByRole('link', { name: 'Outages' }).waitFor();
    await other.context.close();
  });

  test('a room add-in in a sandboxed pane reads the room and posts through the protocol', async () => {
    const addin = await serveAddin();
    try {
      await admin.call('POST', '/addins', { name: 'Board', url: `${addin.url}/pane.html` });
      const dash = await admin.call<{ id: number }>('POST', '/rooms', {
        name: 'Dashboard',
        category: 'General',
        privacy: 'open',
        addin: 'Board',
      });
      const stage = await admin.call<{ id: number }>('POST', '/rooms', {
        name: 'Stage',
        category: 'General',
        privacy: 'open',
        type: 'auditorium',
        presenters: ['alice'],
        addin: 'Board',
      });
      await admin.post(dash.id, 'dash one');
      await admin.post(dash.id, 'dash <b>two</b>');

      const a = await user('alice');
      await a.page.goto(`${server.url}/rooms/${dash.id}`);
      await a.page.getByRole('button', { name: 'Add-in: Board' }).click();
      const pane = a.page.frameLocator('[data-testid=addin-frame]');
      await pane
        .locator('#status')
        .filter({ hasText: /^posted \d+$/ })
        .waitFor();
      assert.equal(await pane.locator('#room').textContent(), 'Dashboard as alice');
      assert.deepEqual(await pane.locator('#msgs li').allTextContents(), [
        'dash one',
        'dash <b>two</b>',
      ]);
      // The add-in's post is an ordinary message of Alice's, shown to everyone.
      const posted = a.page.locator('li[data-testid=message]', {
        hasText: 'add-in read 2 messages',
      });
      await posted.waitFor();
      assert.equal(await posted.locator('.author').textContent(), 'Alice Liddell');
      const sandbox = await a.page.getByTestId('addin-frame').getAttribute('sandbox');
      assert.equal(sandbox, 'allow-scripts allow-forms allow-same-origin');

      // A request that does not come from the pane is ignored; live messages reach the pane.
      await a.page.evaluate(() =>
        window.postMessage({ type: 'perch.post', text: 'forged by the page' }, '*'),
      );
      await admin.post(dash.id, 'dash three');
      await pane.locator('#live li', { hasText: 'dash three' }).waitFor();
      const history = await admin.call<{ messages: { text: string; author: { name: string } }[] }>(
        'GET',
        `/rooms/${dash.id}/messages`,
      );
      assert.deepEqual(
        history.messages.map((m) => `${m.author.name}: ${m.text}`),
        [
          'admin: dash one',
          'admin: dash <b>two</b>',
          'alice: add-in read 2 messages',
          'admin: dash three',
        ],
      );
      assert.deepEqual(pageErrors(a.page), []);
      await a.context.close();

      // The server's permission checks apply: a non-presenter's add-in cannot post in an auditorium.
      const b = await user('bob');
      await b.page.goto(`${server.url}/rooms/${stage.id}`);
      await b.page.getByRole('button', { name: 'Add-in: Board' }).click();
      const bobPane = b.page.frameLocator('[data-testid=addin-frame]');
      await bobPane.locator('#status').filter({ hasText: 'error post_not_allowed' }).waitFor();
      const stageHistory = await admin.call<{ messages: unknown[] }>(
        'GET',
        `/rooms/${stage.id}/messages`,
      );
      assert.equal(stageHistory.messages.length, 0);
      assert.deepEqual(pageErrors(b.page), []);
      await b.context.close();
    } finally {
      await addin.close();
    }
  });

  test('the main screens at desktop and phone width: screenshots, and no serious axe violations', async () => {
    await admin.post(rooms.Lobby!, 'Welcome to the lobby, see https://example.com/agenda');
    for (const [label, viewport] of [
      ['desktop', { width: 1280, height: 800 }],
      ['phone', { width: 390, height: 844 }],
    ] as const) {
      const { context, page } = await newPage(browser, viewport);
      const screen = async (name: string) => {
        await page.screenshot({ path: path.join(outputDir, `${label}-${name}.png`) });
        await checkA11y(page, `${label} ${name}`);
      };
      await page.goto(`${server.url}/`);
      await page.getByRole('heading', { name: 'Sign in to Perch' }).waitFor();
      await screen('sign-in');
      await signIn(page, server.url, 'alice', pw.alice);
      await screen('home');
      await page.goto(`${server.url}/rooms/${rooms.Lobby}`);
      await page.locator('li[data-testid=message]').first().waitFor();
      await screen('room');
      await page.getByRole('button', { name: 'Room info' }).click();
      await page.getByTestId('roster').waitFor();
      await screen('room-info');
      await page.goto(`${server.url}/rooms/${rooms['Shared files']}`);
      await page.getByTestId('file').first().waitFor();
      await screen('room-files');
      await page.goto(`${server.url}/directory`);
      await page.getByTestId('directory-results').waitFor();
      await screen('directory');
      await page.goto(`${server.url}/search`);
      await page.getByRole('searchbox', { name: 'Words' }).fill('outage');
      await page.getByRole('button', { name: 'Search messages' }).click();
      await page.getByTestId('search-results').locator('li').first().waitFor();
      await screen('search');
      await page.goto(`${server.url}/feeds`);
      await page.getByTestId('feed-list').getByRole('link', { name: 'Outages' }).waitFor();
      await screen('feeds');
      await page.goto(`${server.url}/invitations`);
      await page.getByRole('heading', { name: 'Invitations', level: 1 }).waitFor();
      await screen('invitations');
      await page.goto(`${server.url}/rooms/new`);
      await page.getByRole('button', { name: 'Create room' }).waitFor();
      await screen('new-room');
      if (label === 'phone') {
        await page.getByRole('button', { name: 'Rooms menu' }).click();
        await page.getByRole('navigation').getByRole('link', { name: 'Room directory' }).waitFor();
        await screen('menu');
      }
      assert.deepEqual(pageErrors(page), []);
      await context.close();
    }
  });

  test('keyboard only: sign in, open a room from the sidebar, post, reach the feeds', async () => {
    const aliceApi = await Api.signIn(server.url, 'alice', pw.alice);
    await aliceApi.call('PUT', `/me/follows/${rooms.Lobby}`);
    const { context, page } = await newPage(browser);
    await page.goto(`${server.url}/`);
    await page.getByRole('heading', { name: 'Sign in to Perch' }).waitFor();
    await tabTo(page, page.getByLabel('Login'));
    await page.keyboard.type('alice');
    await page.keyboard.press('Tab');
    await page.keyboard.type(pw.alice);
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=connection-status][data-status=online]').waitFor();

    // The skip link is the first stop and moves focus to the main content.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');

    await tabTo(page, page.getByTestId('followed-rooms').getByRole('link', { name: 'Lobby' }));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Lobby' }).waitFor();
    await tabTo(page, page.getByRole('textbox', { name: 'Message' }));
    await page.keyboard.type('typed without a mouse');
    await page.keyboard.press('Enter');
    await page.locator('li[data-testid=message]', { hasText: 'typed without a mouse' }).waitFor();

    await tabTo(
      page,
      page.getByRole('navigation').getByRole('link', { name: 'Topic feeds' }),
      true,
    );
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Topic feeds', level: 1 }).waitFor();
    await tabTo(page, page.locator('input[name=feed-name]'));
    await page.keyboard.type('Keyboard');
    await page.keyboard.press('Tab');
    await page.keyboard.type('typed');
    await page.keyboard.press('Enter');
    await page.getByTestId('feed-list').getByRole('link', { name: 'Keyboard' }).waitFor();
    assert.deepEqual(pageErrors(page), []);
    await context.close();
  });

  // Last: it restarts the server.
  test('after a server restart the client reconnects and catches up exactly the missed messages', async () => {
    const aliceApi = await Api.signIn(server.url, 'alice', pw.alice);
    const bobApi = await Api.signIn(server.url, 'bob', pw.bob);
    await aliceApi.call('PUT', `/me/follows/${rooms.Side}`);
    await bobApi.post(rooms.Ops!, 'ops 1');
    await bobApi.post(rooms.Ops!, 'ops 2');

    const { context, page } = await newPage(browser);
    // A gate on the WebSocket: while closed, reconnect attempts fail, so that messages can be
    // posted while this client is certainly away.
    let gateOpen = true;
    await page.routeWebSocket(/\/ws$/, (ws) => {
      if (gateOpen) ws.connectToServer();
      else void ws.close();
    });
    await signIn(page, server.url, 'alice', pw.alice);
    await page.goto(`${server.url}/rooms/${rooms.Ops}`);
    await page.locator('[data-testid=connection-status][data-status=online]').waitFor();
    await page.locator('li[data-seq="2"]').waitFor();

    gateOpen = false;
    await server.stop();
    const status = page.getByTestId('connection-status');
    await page.locator('[data-testid=connection-status][data-status=offline]').waitFor();
    assert.match((await status.textContent()) ?? '', /Offline/);
    await server.restart();

    // Posted while the client is away: three in the open room, two in a followed one.
    const bobAgain = new Api(server.url, bobApi.token);
    for (const text of ['ops 3', 'ops 4', 'ops 5']) await bobAgain.post(rooms.Ops!, text);
    await bobAgain.post(rooms.Side!, 'side 1');
    await bobAgain.post(rooms.Side!, 'side 2');
    gateOpen = true;

    await page
      .locator('[data-testid=connection-status][data-status=online]')
      .waitFor({ timeout: 30_000 });
    await page.locator('li[data-seq="5"]').waitFor();
    assert.deepEqual(await shownSeqs(page), [1, 2, 3, 4, 5]);
    await sidebarRoom(page, 'Side').getByTestId('unread').filter({ hasText: '2' }).waitFor();

    // Live again: a new message arrives once.
    await bobAgain.post(rooms.Ops!, 'ops 6');
    await page.locator('li[data-seq="6"]').waitFor();
    assert.deepEqual(await shownSeqs(page), [1, 2, 3, 4, 5, 6]);
    const texts = await page.locator('li[data-testid=message] .message-text').allTextContents();
    assert.deepEqual(texts, ['ops 1', 'ops 2', 'ops 3', 'ops 4', 'ops 5', 'ops 6']);
    await context.close();
  });
});

/** The add-in page the tests frame: it reads the room's messages and posts one through the API. */
const addinPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Board</title></head>
<body>
<p id="room"></p><ul id="msgs"></ul><p id="status">waiting</p><ul id="live"></ul>
<script>
let perch = null;
const $ = (id) => document.getElementById(id);
const item = (list, text) => {
  const li = document.createElement('li');
  li.textContent = text;
  $(list).append(li);
};
addEventListener('message', (e) => {
  const d = e.data || {};
  if (d.type === 'perch.context') {
    perch = e.origin;
    $('room').textContent = d.room.name + ' as ' + d.user.name;
    parent.postMessage({ type: 'perch.messages', id: 'm1', limit: 10 }, perch);
  } else if (e.origin !== perch) {
    return;
  } else if (d.type === 'perch.messages') {
    for (const m of d.messages) item('msgs', m.text);
    parent.postMessage({ type: 'perch.post', id: 'p1', text: 'add-in read ' + d.messages.length + ' messages' }, perch);
  } else if (d.type === 'perch.posted') {
    $('status').textContent = 'posted ' + d.seq;
  } else if (d.type === 'perch.error') {
    $('status').textContent = 'error ' + d.code;
  } else if (d.type === 'perch.message') {
    item('live', d.message.text);
  }
});
// Nothing secret in it, and Perch's origin is not known yet: any target.
parent.postMessage({ type: 'perch.ready' }, '*');
</script>
</body></html>
`;

/** Serves the add-in page on another loopback port (another origin than Perch's). */
async function serveAddin(): Promise<{ url: string; close(): Promise<void> }> {
  const srv = createServer((req, res) => {
    if (req.url === '/pane.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(addinPage);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        srv.close(() => resolve());
        srv.closeAllConnections();
      }),
  };
}

/** Presses Tab (or Shift+Tab) until `target` has the focus; fails after 80 presses. */
async function tabTo(page: Page, target: Locator, back = false): Promise<void> {
  await target.waitFor();
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
    if (await target.evaluate((el) => el === document.activeElement)) return;
  }
  assert.fail(`the keyboard never reached ${target.toString()}`);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

// Two front ends of an Enterprise Edition pool on a real PostgreSQL store, fe2 idle: the page
// loaded from fe2 signs in there (sign-in is served), is refused a session (front_end_idle)
// and carries on against fe1, the active one it was named, for the socket and the HTTP API.
describe('web client on an idle front end of a pool', () => {
  let cluster: PostgresCluster;
  let db: { name: string; url: string };
  const fe: TestServer[] = [];
  let browser: Browser;
  let roomId: number;
  const adminPassword = 'Pw1!web-pool-admin';

  function frontEnd(name: string): Promise<TestServer> {
    return startServer({
      storeUrl: db.url,
      adminPassword,
      startDeadlineMs: 90_000,
      env: { PERCH_POOL: 'webpool', PERCH_FRONT_END: name, PERCH_POOL_HEARTBEAT_MS: '200' },
    });
  }

  before(async () => {
    ensureWebBuilt();
    cluster = await testCluster();
    db = await cluster.createDatabase();
    fe.push(await frontEnd('fe1'));
    fe.push(await frontEnd('fe2'));
    browser = await launchChromium();
    const admin = await Api.signIn(fe[0]!.url, 'admin', adminPassword);
    await admin.call('POST', '/users', { login: 'alice', password: pw.alice });
    await admin.call('POST', '/categories', { name: 'General', allowed: ['alice'] });
    const room = await admin.call<{ id: number }>('POST', '/rooms', {
      name: 'Pool lobby',
      category: 'General',
      privacy: 'open',
    });
    roomId = room.id;
    await admin.call('PUT', '/pools/webpool/active-servers', { servers: ['fe1'] });
    const alice = await Api.signIn(fe[1]!.url, 'alice', pw.alice);
    // fe2 follows the active set within a heartbeat.
    for (;;) {
      const res = await fetch(`${fe[1]!.url}/api/v1/rooms`, {
        headers: { authorization: `Bearer ${alice.token}` },
      });
      if (res.status === 503) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  after(async () => {
    await browser?.close();
    for (const s of fe) await cleanup(s);
    if (db) await cluster.dropDatabase(db.name);
  });

  test('the page opened on the idle front end signs in and chats through the active one', async () => {
    const { context, page } = await newPage(browser);
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await signIn(page, fe[1]!.url, 'alice', pw.alice);
    // The socket that is online is fe1's; the page is still fe2's.
    assert.equal(new URL(page.url()).origin, fe[1]!.url);
    assert.equal(sockets[0], `${fe[1]!.url.replace('http', 'ws')}/ws`);
    assert.equal(sockets.at(-1), `${fe[0]!.url.replace('http', 'ws')}/ws`);

    // The room (an HTTP read and a join) and a post through the page, then one through fe1.
    await page.goto(`${fe[1]!.url}/rooms/${roomId}`);
    await page.getByRole('heading', { name: 'Pool lobby' }).waitFor();
    const composer = page.getByRole('textbox', { name: 'Message' });
    await composer.fill('hello from the idle front end');
    await composer.press('Enter');
    await page
      .locator('li[data-testid=message]', { hasText: 'hello from the idle front end' })
      .waitFor();
    const alice = await Api.signIn(fe[0]!.url, 'alice', pw.alice);
    const { messages } = await alice.call<{ messages: { text: string }[] }>(
      'GET',
      `/rooms/${roomId}/messages`,
    );
    assert.deepEqual(
      messages.map((m) => m.text),
      ['hello from the idle front end'],
    );
    await alice.post(roomId, 'and back through fe1');
    await page.locator('li[data-testid=message]', { hasText: 'and back through fe1' }).waitFor();
    assert.deepEqual(await shownSeqs(page), [1, 2]);
    assert.deepEqual(pageErrors(page), []);
    await context.close();
  });
});

// Two pools, north and south, on two databases of one PostgreSQL cluster, published as one
// topology. alice's page is north's; she finds a south room in the directory, opens it (through
// north's relay socket), posts, receives south's posts live, follows it and finds it in search;
// the room's page is /pools/south/rooms/ID and every call goes through north.
describe('web client with several pools', () => {
  let cluster: PostgresCluster;
  const db: Record<string, { name: string; url: string }> = {};
  const fe: Record<string, TestServer> = {};
  let dir: string | undefined;
  let browser: Browser;
  let harbour: number;
  let bob: Api;
  const adminPassword = 'Pw1!web-pools-admin';

  before(async () => {
    ensureWebBuilt();
    cluster = await testCluster();
    for (const pool of ['north', 'south']) {
      db[pool] = await cluster.createDatabase();
      fe[pool] = await startServer({
        storeUrl: db[pool]!.url,
        adminPassword,
        startDeadlineMs: 90_000,
        env: { PERCH_POOL: pool, PERCH_FRONT_END: `${pool}-fe1`, PERCH_POOL_HEARTBEAT_MS: '200' },
      });
      const admin = await Api.signIn(fe[pool]!.url, 'admin', adminPassword);
      for (const login of ['alice', 'bob'])
        await admin.call('POST', '/users', { login, password: pw[login as 'alice' | 'bob'] });
      await admin.call('POST', '/categories', {
        name: `${pool} general`,
        allowed: ['alice', 'bob'],
      });
    }
    const published = await publishPools({
      north: { fe: fe.north!, storeUrl: db.north!.url },
      south: { fe: fe.south!, storeUrl: db.south!.url },
    });
    dir = published.dir;
    assert.equal(published.publish.code, 0, published.publish.stderr);
    const southAdmin = await Api.signIn(fe.south!.url, 'admin', adminPassword);
    harbour = (
      await southAdmin.call<{ id: number }>('POST', '/rooms', {
        name: 'Harbour',
        category: 'south general',
        privacy: 'open',
      })
    ).id;
    bob = await Api.signIn(fe.south!.url, 'bob', pw.bob);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    for (const s of Object.values(fe)) await cleanup(s);
    for (const d of Object.values(db)) await cluster.dropDatabase(d.name);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the directory, a room's page, live messages, follows and search span the pools", async () => {
    const { context, page } = await newPage(browser);
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await signIn(page, fe.north!.url, 'alice', pw.alice);
    await bob.post(harbour, 'first light over the harbour');

    await page.goto(`${fe.north!.url}/directory`);
    const southRooms = page.locator('section.pool-results[data-pool=south]');
    await southRooms.getByRole('heading', { name: 'Rooms in pool south' }).waitFor();
    const card = southRooms.locator(`li[data-room-id="${harbour}"]`);
    await card.getByRole('button', { name: 'Join' }).click();
    await page.waitForURL(`${fe.north!.url}/pools/south/rooms/${harbour}`);
    await page.getByRole('heading', { name: 'Harbour' }).waitFor();
    assert.equal(await page.getByTestId('room-pool').textContent(), 'south');
    await page
      .locator('li[data-testid=message]', { hasText: 'first light over the harbour' })
      .waitFor();
    // The page talks to north only: its home socket and the relay to south.
    const north = fe.north!.url.replace('http', 'ws');
    assert.ok(sockets.includes(`${north}/ws`), sockets.join(' '));
    assert.ok(sockets.includes(`${north}/ws/pool/south`), sockets.join(' '));
    assert.ok(sockets.every((u) => u.startsWith(north)));

    // A post from the page is south's post by alice; bob's next one arrives live.
    const composer = page.getByRole('textbox', { name: 'Message' });
    await composer.fill('ahoy from the north');
    await composer.press('Enter');
    await page.locator('li[data-testid=message]', { hasText: 'ahoy from the north' }).waitFor();
    const { messages } = await bob.call<{
      messages: { text: string; author: { name: string } }[];
    }>('GET', `/rooms/${harbour}/messages`);
    assert.deepEqual(
      messages.map((m) => [m.author.name, m.text]),
      [
        ['bob', 'first light over the harbour'],
        ['alice', 'ahoy from the north'],
      ],
    );
    await bob.post(harbour, 'the tide turns at noon');
    await page.locator('li[data-testid=message]', { hasText: 'the tide turns at noon' }).waitFor();
    assert.deepEqual(await shownSeqs(page), [1, 2, 3]);

    // Followed: listed under the pool in the sidebar, linking back to the room.
    await page.getByRole('button', { name: 'Follow', exact: true }).click();
    const followed = page.locator('#sidebar [data-pool=south] [data-testid=pool-followed-rooms]');
    await followed.getByRole('link', { name: 'Harbour' }).waitFor();
    assert.equal(
      await followed.getByRole('link', { name: 'Harbour' }).getAttribute('href'),
      `/pools/south/rooms/${harbour}`,
    );

    // Message search answers from both pools, each result linking into its own pool's room.
    await page.goto(`${fe.north!.url}/search`);
    await page.getByRole('searchbox', { name: 'Words' }).fill('tide');
    await page.getByRole('button', { name: 'Search messages' }).click();
    const hit = page
      .locator('section.pool-results[data-pool=south] [data-testid=pool-search-results] li')
      .filter({ hasText: 'the tide turns at noon' });
    await hit.waitFor();
    await hit.getByRole('link', { name: 'Harbour' }).click();
    await page.waitForURL(`${fe.north!.url}/pools/south/rooms/${harbour}?seq=3`);
    assert.deepEqual(pageErrors(page), []);
    await context.close();
  });

  test('a search names the pool that could not be reached', async () => {
    await cleanup(fe.south!);
    delete fe.south;
    const { context, page } = await newPage(browser);
    await signIn(page, fe.north!.url, 'alice', pw.alice);
    await page.goto(`${fe.north!.url}/search`);
    await page.getByRole('searchbox', { name: 'Words' }).fill('tide');
    await page.getByRole('button', { name: 'Search messages' }).click();
    await page
      .locator('section.pool-results[data-pool=south]')
      .getByRole('alert')
      .filter({ hasText: 'Pool south could not be searched' })
      .waitFor();
    assert.deepEqual(pageErrors(page), []);
    await context.close();
  });
});
