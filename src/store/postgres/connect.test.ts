import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseStoreUrl, pgHosts, pgUrlFor } from '../store-url.js';
import { compareLsn } from './connect.js';

test('a store URL names one host or several, as libpq allows', () => {
  assert.deepEqual(pgHosts('postgres://perch@db1/perch'), [{ host: 'db1', port: 5432 }]);
  assert.deepEqual(pgHosts('postgresql://perch:secret@db1:5433,db2,[::1]:6000/perch?x=1'), [
    { host: 'db1', port: 5433 },
    { host: 'db2', port: 5432 },
    { host: '::1', port: 6000 },
  ]);
  assert.equal(
    pgUrlFor('postgres://perch:secret@db1:5433,db2/perch?x=1', { host: 'db2', port: 5432 }),
    'postgres://perch:secret@db2:5432/perch?x=1',
  );
  assert.equal(
    pgUrlFor('postgres://db1,db2/perch', { host: '::1', port: 5432 }),
    'postgres://[::1]:5432/perch',
  );
});

test('a URL with several hosts is a valid store URL; a bad one still names the problem', () => {
  assert.deepEqual(parseStoreUrl('postgres://perch@db1:5432,db2:5432/perch'), {
    dialect: 'postgres',
    connectionString: 'postgres://perch@db1:5432,db2:5432/perch',
  });
  assert.throws(() => parseStoreUrl('postgres://perch@db1:5432,db2:5432/'), /names no database/);
});

test('WAL positions order by their 64-bit value', () => {
  assert.equal(compareLsn('0/3000148', '0/3000148'), 0);
  assert.equal(compareLsn('0/FFFFFFFF', '1/0'), -1);
  assert.equal(compareLsn('16/B374D848', '9/FFFFFFFF'), 1);
});

test('a store and its replica as one URL: every host once, in order', async () => {
  const { pgUrlWithHosts } = await import('../store-url.js');
  assert.equal(
    pgUrlWithHosts('postgres://perch@db1:5432,db2:5432/perch?x=1', 'postgres://perch@db3/perch'),
    'postgres://perch@db1:5432,db2:5432,db3:5432/perch?x=1',
  );
  assert.equal(
    pgUrlWithHosts('postgres://db1:5432/perch', 'postgres://DB1:5432,[::1]:6000/perch'),
    'postgres://db1:5432,[::1]:6000/perch',
  );
});
