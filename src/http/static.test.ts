import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildDomain, type TestDomain } from '../../test/harness/domain.js';
import { createAddin } from '../domain/addins/commands.js';
import { createLogger } from '../logger.js';
import { buildHttpApp } from './app.js';

describe('web client hosting', () => {
  let t: TestDomain;
  let app: FastifyInstance;
  let root: string;
  let outside: string;

  before(async () => {
    t = await buildDomain();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-web-'));
    outside = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-secret-'));
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'top secret');
    fs.mkdirSync(path.join(root, 'assets'));
    fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>Perch web</title>');
    fs.writeFileSync(path.join(root, 'assets', 'app-1234.js'), 'console.log(1)');
    fs.writeFileSync(path.join(root, 'assets', 'app.css'), 'body{}');
    fs.writeFileSync(path.join(root, 'logo.svg'), '<svg/>');
    fs.writeFileSync(path.join(root, 'font.woff2'), Buffer.from([0x77, 0x4f, 0x46, 0x32]));
    fs.writeFileSync(path.join(root, '.env'), 'SECRET=1');
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'link.txt'));
    app = await buildHttpApp({
      domain: t.d,
      config: { maxFrameBytes: 65536 },
      log: createLogger('silent'),
      webRoot: root,
    });
  });
  after(async () => {
    await app.close();
    await t.close();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  });

  test('serves files with their content types', async () => {
    const cases: [string, RegExp][] = [
      ['/', /^text\/html/],
      ['/index.html', /^text\/html/],
      ['/assets/app-1234.js', /^text\/javascript/],
      ['/assets/app.css', /^text\/css/],
      ['/logo.svg', /^image\/svg\+xml/],
      ['/font.woff2', /^font\/woff2/],
    ];
    for (const [url, type] of cases) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), type, url);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', url);
      assert.match(String(res.headers['content-security-policy']), /default-src 'self'/, url);
    }
    const asset = await app.inject({ method: 'GET', url: '/assets/app-1234.js' });
    assert.match(String(asset.headers['cache-control']), /immutable/);
    assert.equal(asset.body, 'console.log(1)');
  });

  test('the client may frame only the registered add-ins’ origins', async () => {
    const csp = async () =>
      String(
        (await app.inject({ method: 'GET', url: '/rooms/1' })).headers['content-security-policy'],
      );
    assert.match(await csp(), /frame-src 'none'/);
    assert.match(await csp(), /frame-ancestors 'none'/);
    await createAddin(t.d, t.admin, { name: 'Board', url: 'https://board.example:8443/pane?x=1' });
    await createAddin(t.d, t.admin, { name: 'Board 2', url: 'https://board.example:8443/other' });
    await createAddin(t.d, t.admin, { name: 'Wiki', url: 'http://wiki.example/' });
    assert.match(
      await csp(),
      /frame-src http:\/\/wiki\.example https:\/\/board\.example:8443; frame-ancestors 'none'/,
    );
  });

  test('client-side routes fall back to index.html; API paths do not', async () => {
    const res = await app.inject({ method: 'GET', url: '/rooms/42' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /Perch web/);
    for (const url of ['/api/v1/unknown', '/missing.js']) {
      const miss = await app.inject({ method: 'GET', url });
      assert.equal(miss.statusCode, 404, url);
      assert.equal((miss.json() as { error: { code: string } }).error.code, 'not_found');
    }
  });

  test('never serves anything outside the root, or dotfiles', async () => {
    for (const url of [
      '/../' + path.basename(outside) + '/secret.txt',
      '/%2e%2e/' + path.basename(outside) + '/secret.txt',
      '/assets/..%2f..%2f' + path.basename(outside) + '%2fsecret.txt',
      '/link.txt',
      '/.env',
      '/%2eenv',
      '/assets%5c..%5c..%5cetc%5cpasswd',
      '/index.html%00.js',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      assert.ok(!res.body.includes('top secret') && !res.body.includes('SECRET=1'), url);
      if (res.statusCode === 200) assert.match(res.body, /Perch web/, url);
    }
  });
});

describe('without a web client, and when things fail', () => {
  let t: TestDomain;
  let app: FastifyInstance;
  const lines: string[] = [];

  before(async () => {
    t = await buildDomain();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    app = await buildHttpApp({
      domain: t.d,
      config: { maxFrameBytes: 65536 },
      log: createLogger('info', sink),
      webRoot: path.join(os.tmpdir(), 'perch-no-such-web-root'),
      health: async () => ({ ok: false, checks: { store: 'down' } }),
    });
  });
  after(async () => {
    await app.close();
  });

  test('GET / says the web client is not built and links to /openapi.json', async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /not built/);
    assert.match(res.body, /href="\/openapi.json"/);
    const other = await app.inject({ method: 'GET', url: '/rooms/1' });
    assert.equal(other.statusCode, 404);
  });

  test('a failing health check answers 503', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 503);
    assert.equal((res.json() as { status: string }).status, 'unavailable');
  });

  test('sign-in failures are throttled per client address', async () => {
    let last;
    for (let i = 0; i < 7; i++) {
      last = await app.inject({
        method: 'POST',
        url: '/api/v1/sessions',
        remoteAddress: '10.1.2.3',
        payload: { login: `nobody-${i}`, password: 'wrong-password' },
      });
    }
    assert.equal(last!.statusCode, 429);
    assert.equal((last!.json() as { error: { code: string } }).error.code, 'too_many_attempts');
    assert.ok(Number(last!.headers['retry-after']) >= 1);
    // Another address is not affected.
    const other = await app.inject({
      method: 'POST',
      url: '/api/v1/sessions',
      remoteAddress: '10.9.9.9',
      payload: { login: 'admin', password: 'admin-password' },
    });
    assert.equal(other.statusCode, 201);
  });

  test('an unexpected failure is a logged internal_error without details', async () => {
    await t.close();
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/me',
      headers: { authorization: 'Bearer abcdefabcdef' },
    });
    assert.equal(res.statusCode, 500);
    assert.deepEqual(res.json(), {
      error: { code: 'internal_error', message: 'internal server error' },
    });
    assert.ok(lines.some((l) => l.includes('"level":50') && l.includes('request failed')));
  });
});
