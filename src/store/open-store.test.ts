import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { testDialects } from '../../test/harness/domain.js';
import { testCluster } from '../../test/harness/postgres.js';
import { cleanup, startServer } from '../../test/harness/server.js';
import { readEnv, toConfig } from '../config/config.js';
import { migrations } from './migrations/index.js';
import { openStore } from './open-store.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { parseStoreUrl } from './store-url.js';

test('store URLs name a SQLite file, a data folder or a PostgreSQL database', () => {
  const cases: [string, ReturnType<typeof parseStoreUrl>][] = [
    ['sqlite:///var/lib/perch/perch.db', { dialect: 'sqlite', file: '/var/lib/perch/perch.db' }],
    ['sqlite:///tmp/with%20space.db', { dialect: 'sqlite', file: '/tmp/with space.db' }],
    ['sqlite://data/chat.db', { dialect: 'sqlite', file: path.resolve('data/chat.db') }],
    ['/srv/perch', { dialect: 'sqlite', file: '/srv/perch/perch.db' }],
    ['./data', { dialect: 'sqlite', file: path.resolve('data/perch.db') }],
    [
      'postgres://perch:secret@db.example:5432/perch',
      { dialect: 'postgres', connectionString: 'postgres://perch:secret@db.example:5432/perch' },
    ],
    [
      'postgresql://perch@127.0.0.1/chat?sslmode=disable',
      {
        dialect: 'postgres',
        connectionString: 'postgresql://perch@127.0.0.1/chat?sslmode=disable',
      },
    ],
  ];
  for (const [url, expected] of cases) assert.deepEqual(parseStoreUrl(url), expected, url);
});

test('bad store URLs fail with a message that says why, without the password', () => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['sqlite:', /sqlite:\/\/\/path/],
    ['sqlite://', /names a file/],
    ['sqlite:///var/lib/perch/', /names a file/],
    ['postgres://perch:secret@db.example:5432', /no database/],
    ['postgres://perch:secret@db.example:5432/', /no database/],
    ['postgres://perch:secret@:5432/perch', /no host|not a valid URL/],
    ['mysql://db/perch', /unsupported store URL scheme "mysql:"/],
    ['http://db/perch', /unsupported/],
  ];
  for (const [url, message] of cases) {
    assert.throws(() => parseStoreUrl(url), message, url);
    try {
      parseStoreUrl(url);
    } catch (err) {
      assert.doesNotMatch((err as Error).message, /secret/, `${url} leaks its password`);
    }
  }
});

test('PERCH_STORE_URL is validated with the rest of the configuration', () => {
  assert.equal(toConfig(readEnv({})).storeUrl, undefined);
  const ok = toConfig(readEnv({ PERCH_STORE_URL: 'postgres://perch@127.0.0.1:5432/perch' }));
  assert.equal(ok.storeUrl, 'postgres://perch@127.0.0.1:5432/perch');
  assert.throws(
    () => toConfig(readEnv({ PERCH_STORE_URL: 'mysql://db/perch' })),
    /PERCH_STORE_URL: unsupported store URL scheme/,
  );
});

test('openStore opens a working, migratable store of the named dialect', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-open-'));
  try {
    const urls: [string, typeof SqliteStore | typeof PostgresStore][] = [];
    if (testDialects().includes('sqlite')) urls.push([`sqlite://${dir}/perch.db`, SqliteStore]);
    if (testDialects().includes('postgres')) {
      const db = await (await testCluster()).createDatabase({ empty: true });
      urls.push([db.url, PostgresStore]);
    }
    for (const [url, kind] of urls) {
      const store = openStore(url);
      try {
        assert.ok(store instanceof kind, url);
        assert.deepEqual(await store.migrate(), Object.keys(migrations).sort());
        await store.setSetting('opened', 'yes');
        assert.equal((await store.getSettings()).opened, 'yes');
      } finally {
        await store.close();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('perch serve keeps its chat store in PERCH_STORE_URL when it is set', async (t) => {
  if (!testDialects().includes('postgres')) return t.skip('PostgreSQL is not tested in this run');
  const db = await (await testCluster()).createDatabase({ empty: true });
  const server = await startServer({ env: { PERCH_STORE_URL: db.url } });
  try {
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(fs.existsSync(path.join(server.dataDir, 'perch.db')), false, 'no SQLite file');
    const store = PostgresStore.open({ connectionString: db.url, poolSize: 1 });
    try {
      assert.equal((await store.getPrincipalByName('admin'))?.isAdmin, true);
    } finally {
      await store.close();
    }
  } finally {
    await cleanup(server);
  }
});
